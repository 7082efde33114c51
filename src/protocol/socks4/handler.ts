/**
 * SOCKS4 / SOCKS4a server (`socks4://`, `socks4a://`; also reached through `auto`).
 *
 * CONNECT only: BIND is answered 91, as gost v3 does not implement it either. With an auther,
 * the USERID is checked as a user name with an empty password (gost's rule: SOCKS4 carries no
 * password, so only password-less users can pass) and a mismatch is answered 93.
 */
import { BufferedConn } from "../../core/bufconn.ts";
import { closeQuietly, type Conn, writeAll } from "../../core/conn.ts";
import { withDeadline } from "../../core/deadline.ts";
import { errMsg, ProtocolError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { relay } from "../../core/relay.ts";
import {
  type HandleContext,
  type Handler,
  type HandlerOptions,
  registerHandler,
} from "../../registry.ts";
import {
  CMD_CONNECT,
  encodeReply,
  readRequest,
  REP_BAD_USERID,
  REP_FAILED,
  REP_GRANTED,
  requestAddress,
} from "./wire.ts";

/** gost's default handshake read deadline. */
const DEFAULT_READ_TIMEOUT = 15_000;

/** The SOCKS4/4a protocol handler. */
export class Socks4Handler implements Handler {
  private readonly readTimeout: number;
  private readonly idleTimeout: number;

  constructor(private readonly o: HandlerOptions) {
    // gost treats a zero or negative readTimeout as "use the default", never as "no deadline".
    const rt = o.params.duration("readTimeout", DEFAULT_READ_TIMEOUT);
    this.readTimeout = rt > 0 ? rt : DEFAULT_READ_TIMEOUT;
    this.idleTimeout = o.params.duration("idleTimeout", 0);
  }

  async handle(conn: Conn, ctx: HandleContext): Promise<void> {
    const bc = conn instanceof BufferedConn ? conn : new BufferedConn(conn);
    const log = ctx.log;
    let req;
    try {
      req = await withDeadline(bc, this.readTimeout, "socks4 handshake", () => readRequest(bc));
    } catch (e) {
      log.debug(`socks4: bad request: ${errMsg(e)}`);
      // A client that sent something SOCKS4-shaped gets a refusal it can understand; after a
      // timeout the conn is already closed and the write just fails.
      if (e instanceof ProtocolError) await reply(bc, REP_FAILED, log);
      closeQuietly(bc);
      return;
    }
    const addr = requestAddress(req);
    const kind = req.socks4a ? "socks4a" : "socks4";

    if (
      this.o.auther && !(await this.o.auther.verify(req.userId, "", { service: this.o.service }))
    ) {
      log.debug(`${kind}: USERID ${JSON.stringify(req.userId)} rejected by the auther`, {
        dst: addr,
      });
      await reply(bc, REP_BAD_USERID, log);
      closeQuietly(bc);
      return;
    }
    if (req.cmd !== CMD_CONNECT) {
      log.debug(`${kind}: command ${req.cmd} not supported`, { dst: addr });
      await reply(bc, REP_FAILED, log);
      closeQuietly(bc);
      return;
    }

    let target: Conn;
    try {
      target = await this.o.router.dial("tcp", addr);
    } catch (e) {
      log.warn(`${kind}: connect ${addr}: ${errMsg(e)}`);
      await reply(bc, REP_FAILED, log);
      closeQuietly(bc);
      return;
    }
    if (!(await reply(bc, REP_GRANTED, log))) {
      closeQuietly(target);
      closeQuietly(bc);
      return;
    }
    log.debug(`${kind}: connected to ${addr}`);
    await relay(bc, target, { idleTimeout: this.idleTimeout });
  }
}

/** Writes an 8-byte reply (one write); false when the client is already gone. */
async function reply(conn: Conn, code: number, log: Logger): Promise<boolean> {
  try {
    await writeAll(conn, encodeReply(code));
    return true;
  } catch (e) {
    // The client (or our own handshake deadline) closed the conn first: nothing to report.
    log.trace(`socks4: writing reply ${code}: ${errMsg(e)}`);
    return false;
  }
}

registerHandler(["socks4", "socks4a"], (o) => new Socks4Handler(o));

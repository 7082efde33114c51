/**
 * Shadowsocks server (`ss://method:password@:8338`): AEAD (SIP004) and 2022 (SIP022) streams;
 * the first plaintext bytes are the SOCKS-style target address, the rest is relayed.
 *
 * A client that fails — wrong key, a replayed salt, a malformed header, too slow — gets no
 * answer at all: the server reads and discards what it sends until it closes (capped), so a
 * prober cannot tell a shadowsocks port from a silent one by when or how it closes.
 */
import { BufferedConn } from "../../core/bufconn.ts";
import { type Conn } from "../../core/conn.ts";
import { withDeadline } from "../../core/deadline.ts";
import { ConfigError, errMsg } from "../../core/errors.ts";
import { relay } from "../../core/relay.ts";
import {
  type HandleContext,
  type Handler,
  type HandlerOptions,
  registerHandler,
} from "../../registry.ts";
import { readAddr, socksAddrString } from "../socks/addr.ts";
import { type SsCipher, ssCipher } from "./cipher.ts";
import { SaltFilter } from "./replay.ts";
import { SsAuthError, SsStreamConn } from "./stream.ts";
import { check2022, Ss2022ServerConn } from "./ss2022.ts";

/** gost's handshake read timeout. */
const HANDSHAKE_TIMEOUT = 15_000;
/** How long a failed client is read from and ignored before the connection is dropped. */
const DRAIN_LIMIT = 60_000;

/** Reads and discards until the peer closes or `ms` pass (a failed client learns nothing). */
export async function drain(conn: Conn, ms = DRAIN_LIMIT): Promise<void> {
  const t = setTimeout(() => conn.close(), ms);
  const buf = new Uint8Array(4096);
  try {
    while ((await conn.read(buf)) !== null) { /* discard */ }
  } catch { /* reset or cut by the timer */ }
  clearTimeout(t);
  conn.close();
}

export class SsHandler implements Handler {
  private readonly cipher: SsCipher;
  private readonly salts = new SaltFilter();
  private readonly timeout: number;

  constructor(private readonly o: HandlerOptions) {
    const auth = o.auth;
    const where = o.params.where;
    if (!auth) {
      throw new ConfigError(
        `${where}: shadowsocks needs method:password (ss://method:password@:port)`,
      );
    }
    this.cipher = ssCipher(auth.username, auth.password ?? "", where, o.params.str("key"));
    if (this.cipher.method.kind === "2022") check2022(this.cipher, where);
    this.timeout = o.params.duration("readTimeout", HANDSHAKE_TIMEOUT);
  }

  private wrap(conn: Conn): Conn {
    const refuse = (salt: Uint8Array) => {
      if (!this.salts.add(salt)) throw new SsAuthError("shadowsocks: replayed salt");
    };
    switch (this.cipher.method.kind) {
      case "none": // no salt, no encryption (testing)
        return conn;
      case "2022":
        return new Ss2022ServerConn(conn, this.cipher, refuse);
      default:
        return new SsStreamConn(conn, this.cipher, refuse);
    }
  }

  async handle(conn: Conn, ctx: HandleContext): Promise<void> {
    const bc = new BufferedConn(this.wrap(conn));
    let target: string;
    try {
      const a = await withDeadline(conn, this.timeout, "shadowsocks request", () => readAddr(bc));
      target = socksAddrString(a);
    } catch (e) {
      ctx.log.debug(`shadowsocks: bad client: ${errMsg(e)} (reading and discarding)`);
      await drain(conn);
      return;
    }
    let upstream: Conn;
    try {
      upstream = await this.o.router.dial("tcp", target);
    } catch (e) {
      ctx.log.warn(`shadowsocks connect ${target}: ${errMsg(e)}`);
      conn.close();
      return;
    }
    ctx.log.debug(`shadowsocks connect ${target}`);
    await relay(bc, upstream);
  }
}

registerHandler("ss", (o) => new SsHandler(o));

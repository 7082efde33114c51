/**
 * Auto-detecting proxy handler (`auto`, the default of `-L :8080`): one port serving HTTP,
 * SOCKS4/4a and SOCKS5, told apart by the client's first byte as gost does — 0x05 SOCKS5,
 * 0x04 SOCKS4, anything else HTTP.
 *
 * The three sub-handlers are built once, from the same options, so each reads (and thereby
 * claims) its own parameters and shares the auther: with credentials, SOCKS5 and HTTP ask for
 * them and SOCKS4, which cannot carry a password, is refused by the SOCKS4 handler's own rule.
 */
import { BufferedConn } from "../../core/bufconn.ts";
import { closeQuietly, type Conn } from "../../core/conn.ts";
import { withDeadline } from "../../core/deadline.ts";
import { errMsg } from "../../core/errors.ts";
import {
  type HandleContext,
  type Handler,
  type HandlerOptions,
  registerHandler,
} from "../../registry.ts";
import { HttpHandler } from "../http/handler.ts";
import { Socks4Handler } from "../socks4/handler.ts";
import { Socks5Handler } from "../socks5/handler.ts";

/** gost's default handshake read deadline. */
const DEFAULT_READ_TIMEOUT = 15_000;

/** SOCKS version bytes that open a SOCKS4 request and a SOCKS5 greeting. */
const SOCKS4 = 0x04;
const SOCKS5 = 0x05;

/** Dispatches each connection to the HTTP, SOCKS4 or SOCKS5 handler by its first byte. */
export class AutoHandler implements Handler {
  private readonly readTimeout: number;
  private readonly http: Handler;
  private readonly socks4: Handler;
  private readonly socks5: Handler;

  constructor(o: HandlerOptions) {
    const rt = o.params.duration("readTimeout", DEFAULT_READ_TIMEOUT);
    this.readTimeout = rt > 0 ? rt : DEFAULT_READ_TIMEOUT;
    this.http = new HttpHandler({ ...o, log: o.log.child("http") });
    this.socks4 = new Socks4Handler({ ...o, log: o.log.child("socks4") });
    this.socks5 = new Socks5Handler({ ...o, log: o.log.child("socks5") });
  }

  async handle(conn: Conn, ctx: HandleContext): Promise<void> {
    // The sub-handler gets this same BufferedConn, so the peeked byte is not lost.
    const bc = conn instanceof BufferedConn ? conn : new BufferedConn(conn);
    let first: Uint8Array | null;
    try {
      first = await withDeadline(bc, this.readTimeout, "auto: first byte", () => bc.peekSome());
    } catch (e) {
      ctx.log.debug(`auto: ${errMsg(e)}`);
      closeQuietly(bc);
      return;
    }
    if (first === null) {
      ctx.log.debug("auto: client closed before sending anything");
      closeQuietly(bc);
      return;
    }
    switch (first[0]) {
      case SOCKS5:
        return await this.socks5.handle(bc, ctx);
      case SOCKS4:
        return await this.socks4.handle(bc, ctx);
      default:
        return await this.http.handle(bc, ctx);
    }
  }
}

registerHandler("auto", (o) => new AutoHandler(o));

/**
 * Shadowsocks UDP relay server (`ssu://method:password@:8338`, on the `udp` listener): each client
 * address is a session; each of its packets names a target, reached with the service's router
 * (directly, or through a chain that carries UDP); replies go back sealed with the address they
 * came from. A packet that does not open is dropped without an answer.
 */
import { addrString, closeQuietly, type Conn } from "../../core/conn.ts";
import { ConfigError, errMsg } from "../../core/errors.ts";
import {
  type HandleContext,
  type Handler,
  type HandlerOptions,
  registerHandler,
} from "../../registry.ts";
import { encodeAddr, normalizeIP, socksAddrString } from "../socks/addr.ts";
import { MAX_DATAGRAM } from "../../transport/udp/relay.ts";
import { type SsCipher, ssCipher } from "./cipher.ts";
import { checkPacketMethod, SsPacketCodec } from "./packet.ts";

/** Targets one client may talk to at once; packets for more are dropped. */
const MAX_TARGETS = 256;

/** Reads one datagram from a message-preserving conn (its own fast path when it has one). */
function reader(c: Conn): () => Promise<Uint8Array | null> {
  const rd = (c as { readDatagram?: () => Promise<Uint8Array | null> }).readDatagram;
  if (typeof rd === "function") return () => rd.call(c);
  const buf = new Uint8Array(MAX_DATAGRAM);
  return async () => {
    const n = await c.read(buf);
    return n === null ? null : buf.subarray(0, n);
  };
}

export class SsuHandler implements Handler {
  private readonly cipher: SsCipher;
  private readonly codec: SsPacketCodec;

  constructor(private readonly o: HandlerOptions) {
    const where = o.params.where;
    if (!o.auth) {
      throw new ConfigError(
        `${where}: shadowsocks needs method:password (ssu://method:password@:port)`,
      );
    }
    this.cipher = ssCipher(o.auth.username, o.auth.password ?? "", where, o.params.str("key"));
    checkPacketMethod(this.cipher, where);
    this.codec = new SsPacketCodec(this.cipher);
  }

  async handle(conn: Conn, ctx: HandleContext): Promise<void> {
    const client = addrString(conn.remoteAddr);
    const ups = new Map<string, Promise<Conn | null>>();
    const next = reader(conn);
    let bad = 0;
    try {
      for (let d; (d = await next()) !== null;) {
        let addr, payload;
        try {
          ({ addr, payload } = this.codec.open(d));
        } catch (e) {
          if (bad++ === 0) ctx.log.debug(`ssu ${client}: dropped a packet: ${errMsg(e)}`);
          continue;
        }
        const target = socksAddrString(addr);
        let up = ups.get(target);
        if (!up) {
          if (ups.size >= MAX_TARGETS) continue;
          up = this.open(conn, target, ctx);
          ups.set(target, up);
        }
        const c = await up;
        if (!c) continue;
        await c.write(payload).catch((e) =>
          ctx.log.debug(`ssu ${client} → ${target}: ${errMsg(e)}`)
        );
      }
    } finally {
      for (const up of ups.values()) void up.then(closeQuietly);
      if (bad > 1) ctx.log.debug(`ssu ${client}: ${bad} packets dropped in all`);
    }
  }

  /** Opens the UDP path to `target` and pumps its replies back to the client, sealed. */
  private async open(conn: Conn, target: string, ctx: HandleContext): Promise<Conn | null> {
    let up: Conn;
    try {
      up = await this.o.router.dialUDP(target);
    } catch (e) {
      ctx.log.warn(`ssu to ${target}: ${errMsg(e)}`);
      return null;
    }
    ctx.log.debug(`ssu ${addrString(conn.remoteAddr)} → ${target}`);
    const from = up.remoteAddr;
    // Replies carry the address they came from (the resolved target).
    const src = encodeAddr(normalizeIP(from.hostname), from.port);
    const next = reader(up);
    (async () => {
      for (let d; (d = await next()) !== null;) await conn.write(this.codec.seal(src, d));
    })().catch(() => {}).finally(() => closeQuietly(up));
    return up;
  }
}

registerHandler("ssu", (o) => new SsuHandler(o));

/**
 * Shadowsocks UDP relay server (`ssu://method:password@:8338`, on the `udp` listener): each client
 * address is a session; each of its packets names a target, reached with the service's router
 * (directly, or through a chain that carries UDP); replies go back sealed with the address they
 * came from. A packet that does not open is dropped without an answer.
 *
 * When the session and an upstream are both FFI sockets (DatagramPorts), packets move inside the
 * socket's receive round: opened, sent on, sealed and answered without a promise, and replies
 * leave in sendmmsg batches. Otherwise (Deno's UDP API, a chain) an async loop does the same.
 *
 * On a stream transport (`ssu+tcp`, `ssu+tls`, `ssu+ws`, …) the client's datagrams come as
 * gost's UDP-TUN frames inside one shadowsocks AEAD stream, and replies go back the same way.
 * A stream that does not open (wrong key, replayed salt, garbage) is read and dropped without
 * an answer, as the ss handler does.
 */
import { BufferedConn } from "../../core/bufconn.ts";
import { addrString, closeQuietly, type Conn, writeAll } from "../../core/conn.ts";
import { ConfigError, errMsg } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import {
  DATAGRAM_TRANSPORTS,
  type HandleContext,
  type Handler,
  type HandlerOptions,
  registerHandler,
} from "../../registry.ts";
import { encodeAddr, normalizeIP, socksAddrString } from "../socks/addr.ts";
import { type DatagramPort, MAX_DATAGRAM, portOf } from "../../transport/udp/relay.ts";
import { encodeUdpTunFrame, readUdpTunFrame } from "../socks5/udp_tun.ts";
import { type SsCipher, ssCipher } from "./cipher.ts";
import { drain } from "./handler.ts";
import { checkPacketMethod, type PacketCodec, SsPacketCodec } from "./packet.ts";
import { Ss2022UdpServer } from "./packet2022.ts";
import { SaltFilter } from "./replay.ts";
import { SsAuthError, SsStreamConn } from "./stream.ts";

/** Targets one client may talk to at once; packets for more are dropped. */
const MAX_TARGETS = 256;
/** Packets queued for a target whose UDP path is still being opened. */
const MAX_PENDING = 64;

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

/** One target of a session: its UDP path once open, and what waits for it meanwhile. */
interface Upstream {
  conn?: Conn;
  port?: DatagramPort;
  pending: Uint8Array[];
  failed?: boolean;
}

export class SsuHandler implements Handler {
  private readonly cipher: SsCipher;
  private readonly codec: SsPacketCodec;
  /** 2022 methods: client sessions by session ID (replies are sealed per session). */
  private readonly server2022?: Ss2022UdpServer;
  private readonly stream: boolean;
  private readonly salts = new SaltFilter();

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
    // On a stream listener the client speaks UDP-TUN.
    this.stream = !DATAGRAM_TRANSPORTS.has(o.transport ?? "udp");
    if (this.cipher.method.kind === "2022") {
      if (this.stream) {
        throw new ConfigError(
          `${where}: ssu with ${this.cipher.method.name} runs over UDP only ` +
            "(gost has no 2022 UDP-over-TCP)",
        );
      }
      this.server2022 = new Ss2022UdpServer(this.cipher);
    }
  }

  handle(conn: Conn, ctx: HandleContext): Promise<void> {
    if (this.stream) return this.handleStream(conn, ctx);
    const client = addrString(conn.remoteAddr);
    const ups = new Map<string, Upstream>();
    const port = portOf(conn);
    let bad = 0;
    // Replies are sealed for the client's latest session (2022) or statelessly (SIP004).
    let session: Pick<PacketCodec, "seal"> | undefined;
    const replies: Pick<PacketCodec, "seal"> = {
      seal: (a, p) => (session ?? this.codec).seal(a, p),
    };
    /** One client packet (a view valid during the call). */
    const onPacket = (d: Uint8Array) => {
      let addr, payload;
      try {
        if (this.server2022) {
          const o = this.server2022.open(d);
          ({ addr, payload } = o);
          session = o.session;
        } else ({ addr, payload } = this.codec.open(d));
      } catch (e) {
        if (bad++ === 0) ctx.log.debug(`ssu ${client}: dropped a packet: ${errMsg(e)}`);
        return;
      }
      const target = socksAddrString(addr);
      let up = ups.get(target);
      if (!up) {
        if (ups.size >= MAX_TARGETS) return;
        up = { pending: [] };
        ups.set(target, up);
        void this.open(conn, port, target, up, replies, ctx.log);
      }
      if (up.port) {
        try {
          up.port.sendSync(payload);
        } catch (e) {
          ctx.log.debug(`ssu ${client} → ${target}: ${errMsg(e)}`);
        }
      } else if (up.conn) {
        up.conn.write(payload.slice()).catch((e) =>
          ctx.log.debug(`ssu ${client} → ${target}: ${errMsg(e)}`)
        );
      } else if (!up.failed && up.pending.length < MAX_PENDING) {
        up.pending.push(payload.slice());
      }
    };
    const finish = () => {
      for (const up of ups.values()) closeQuietly(up.conn);
      if (bad > 1) ctx.log.debug(`ssu ${client}: ${bad} packets dropped in all`);
    };
    if (port) {
      return new Promise<void>((resolve) => {
        port.pushTo(onPacket, () => {
          finish();
          resolve();
        }, () => {});
      });
    }
    return (async () => {
      const next = reader(conn);
      try {
        for (let d; (d = await next()) !== null;) onPacket(d);
      } finally {
        finish();
      }
    })();
  }

  /** Opens the UDP path to `target`, flushes what waited, and relays its replies back. */
  private async open(
    conn: Conn,
    port: DatagramPort | undefined,
    target: string,
    up: Upstream,
    replies: Pick<PacketCodec, "seal">,
    log: Logger,
  ): Promise<void> {
    let c: Conn;
    try {
      c = await this.o.router.dialUDP(target);
    } catch (e) {
      up.failed = true;
      up.pending.length = 0;
      log.warn(`ssu to ${target}: ${errMsg(e)}`);
      return;
    }
    log.debug(`ssu ${addrString(conn.remoteAddr)} → ${target}`);
    up.conn = c;
    const from = c.remoteAddr;
    // Replies carry the address they came from (the resolved target).
    const src = encodeAddr(normalizeIP(from.hostname), from.port);
    const upPort = port ? portOf(c) : undefined;
    for (const p of up.pending.splice(0)) await c.write(p).catch(() => {});
    if (port && upPort) {
      up.port = upPort;
      upPort.pushTo(
        (d) => {
          try {
            port.sendSync(replies.seal(src, d));
          } catch { /* the session closed: its end closes this upstream */ }
        },
        () => {},
        () => {},
      );
      return;
    }
    const next = reader(c);
    try {
      for (let d; (d = await next()) !== null;) {
        await conn.write(replies.seal(src, d).slice());
      }
    } catch { /* the session or the upstream closed */ }
    closeQuietly(c);
  }

  /** UDP over a stream: UDP-TUN frames in a shadowsocks stream, one UDP path per target. */
  private async handleStream(conn: Conn, ctx: HandleContext): Promise<void> {
    const refuse = (salt: Uint8Array) => {
      if (!this.salts.add(salt)) throw new SsAuthError("shadowsocks: replayed salt");
    };
    const bc = new BufferedConn(
      this.cipher.method.kind === "none" ? conn : new SsStreamConn(conn, this.cipher, refuse),
    );
    const ups = new Map<string, Promise<Conn | null>>();
    // Replies from every target share the stream: one frame at a time.
    let writing: Promise<void> = Promise.resolve();
    const reply = (host: string, port: number, d: Uint8Array) => {
      if (d.length === 0 || d.length > 0xffff) return;
      const frame = encodeUdpTunFrame(host, port, d);
      writing = writing.then(() => writeAll(bc, frame)).catch(() => closeQuietly(conn));
    };
    let frames = 0;
    try {
      for (;;) {
        let f;
        try {
          f = await readUdpTunFrame(bc);
        } catch (e) {
          if (frames === 0) {
            ctx.log.debug(`ssu: bad client: ${errMsg(e)} (reading and discarding)`);
            await drain(conn);
          } else ctx.log.debug(`ssu: stream ended: ${errMsg(e)}`);
          return;
        }
        if (!f) return;
        frames++;
        const target = socksAddrString(f.addr);
        let up = ups.get(target);
        if (!up) {
          if (ups.size >= MAX_TARGETS) continue;
          up = this.openForStream(target, reply, ctx.log);
          ups.set(target, up);
        }
        const c = await up;
        if (c && f.data.length) {
          c.write(f.data).catch((e) => ctx.log.debug(`ssu → ${target}: ${errMsg(e)}`));
        }
      }
    } finally {
      for (const up of ups.values()) up.then((c) => closeQuietly(c ?? undefined));
      await writing;
      closeQuietly(conn);
    }
  }

  /** Opens the UDP path to `target` and frames its replies back with their source. */
  private async openForStream(
    target: string,
    reply: (host: string, port: number, d: Uint8Array) => void,
    log: Logger,
  ): Promise<Conn | null> {
    let c: Conn;
    try {
      c = await this.o.router.dialUDP(target);
    } catch (e) {
      log.warn(`ssu to ${target}: ${errMsg(e)}`);
      return null;
    }
    log.debug(`ssu (over a stream) → ${target}`);
    const from = c.remoteAddr;
    const host = normalizeIP(from.hostname);
    (async () => {
      const next = reader(c);
      try {
        for (let d; (d = await next()) !== null;) reply(host, from.port, d);
      } catch { /* the upstream closed */ }
    })();
    return c;
  }
}

registerHandler("ssu", (o) => new SsuHandler(o));

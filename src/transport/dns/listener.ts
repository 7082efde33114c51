/**
 * The `dns` listener, as gost's: one transport per service chosen by `mode` —
 *  - `udp` (default): per-client sessions of the udp listener, one read = one query datagram;
 *  - `tcp`: RFC 7766 framing (2-byte length prefix), several queries per connection;
 *  - `tls`: the same framing inside TLS (DNS over TLS, RFC 7858; `cert=`/`key=` as the tls
 *    listener, else cert.pem/key.pem or a self-signed certificate);
 *  - `https`: DNS over HTTPS (RFC 8484, doh_server.ts), HTTP/2 or HTTP/1.1 over TLS.
 * gost serves one of them per service (UDP only by default), so a proxy answering both UDP and
 * TCP on one port is two services: `-L dns://:53/… -L "dns://:53/…?mode=tcp"`. dost keeps that
 * default (gost configs with such pairs load as they are) and also takes a list,
 * `mode=udp,tcp`, for one service answering on both.
 *
 * Whatever the mode, the handler reads whole messages, so it never sees framing. A stream
 * message longer than the handler's buffer, or one cut short, is a ProtocolError from read()
 * (the handler logs it and closes that connection). Parameters: `mode`, `readBufferSize`
 * [65535, UDP receive size], `readTimeout` [8s: idle time of a stream connection between
 * queries, miekg/dns's default], `writeTimeout` [none], `backlog` [128].
 */
import { type Addr, type Conn, type Listener, writeAll } from "../../core/conn.ts";
import { ConfigError, ProtocolError } from "../../core/errors.ts";
import { UpgradeListener } from "../../core/upgrade_listener.ts";
import { type ListenerOptions, registerListener } from "../../registry.ts";
import { listenTCP } from "../tcp/listener.ts";
import { listenUDP } from "../udp/listener.ts";
import { tlsBase } from "../tls/listener.ts";
import { listenDoH } from "./doh_server.ts";

/** Idle time after which a UDP client session is dropped (a new datagram opens a new one). */
const UDP_SESSION_TTL = 10_000;
/** Stream idle timeout between queries, when `readTimeout` is not given. */
const DEFAULT_IDLE = 8_000;

/**
 * A stream connection seen as messages: read() returns one length-prefixed message, write()
 * sends one (writes are serialized so concurrent replies never interleave).
 */
export class FramedConn implements Conn {
  private writing: Promise<unknown> = Promise.resolve();
  private idleTimedOut = false;

  constructor(
    private readonly inner: Conn,
    private readonly idleMs: number,
    private readonly writeTimeoutMs: number,
  ) {}

  get localAddr(): Addr {
    return this.inner.localAddr;
  }
  get remoteAddr(): Addr {
    return this.inner.remoteAddr;
  }

  /** Reads exactly `p.length` bytes; returns how many arrived before the end of the stream. */
  private async fill(p: Uint8Array): Promise<number> {
    let off = 0;
    while (off < p.length) {
      const n = await this.inner.read(p.subarray(off));
      if (n === null) break;
      off += n;
    }
    return off;
  }

  async read(p: Uint8Array): Promise<number | null> {
    const len = new Uint8Array(2);
    const timer = this.idleMs > 0
      ? setTimeout(() => {
        this.idleTimedOut = true;
        this.inner.close();
      }, this.idleMs)
      : undefined;
    let got: number;
    try {
      got = await this.fill(len.subarray(0, 1));
    } catch (e) {
      if (this.idleTimedOut) return null;
      throw e;
    } finally {
      clearTimeout(timer);
    }
    if (got === 0) return null;
    if (await this.fill(len.subarray(1)) !== 1) {
      throw new ProtocolError("stream ended inside a message's 2-byte length prefix");
    }
    const n = (len[0] << 8) | len[1];
    if (n === 0) throw new ProtocolError("zero-length message");
    if (n > p.length) {
      throw new ProtocolError(
        `message of ${n} bytes is larger than the read buffer (${p.length} bytes)`,
      );
    }
    const body = await this.fill(p.subarray(0, n));
    if (body !== n) throw new ProtocolError(`stream ended after ${body} of a ${n}-byte message`);
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (p.length > 0xffff) {
      return Promise.reject(new ProtocolError(`reply of ${p.length} bytes cannot be framed`));
    }
    const framed = new Uint8Array(2 + p.length);
    new DataView(framed.buffer).setUint16(0, p.length);
    framed.set(p, 2);
    const run = this.writing.then(async () => {
      const timer = this.writeTimeoutMs > 0
        ? setTimeout(() => this.inner.close(), this.writeTimeoutMs)
        : undefined;
      try {
        await writeAll(this.inner, framed);
      } finally {
        clearTimeout(timer);
      }
      return p.length;
    });
    this.writing = run.catch(() => {});
    return run;
  }

  closeWrite(): Promise<void> {
    return this.inner.closeWrite();
  }

  close(): void {
    this.inner.close();
  }
}

/** Several listeners on one address seen as one: accept() yields whichever has a conn first. */
class MergedListener implements Listener {
  private readonly ready: Conn[] = [];
  private readonly waiters: { resolve: (c: Conn) => void; reject: (e: Error) => void }[] = [];
  private closed = false;

  constructor(private readonly parts: Listener[]) {
    for (const l of parts) void this.pump(l);
  }

  get addr(): Addr {
    return this.parts[0].addr;
  }

  private async pump(l: Listener): Promise<void> {
    while (!this.closed) {
      let c: Conn;
      try {
        c = await l.accept();
      } catch (e) {
        if (this.closed || e instanceof Deno.errors.BadResource) return;
        await new Promise((r) => setTimeout(r, 50)); // transient (EMFILE): retry
        continue;
      }
      const w = this.waiters.shift();
      if (w) w.resolve(c);
      else this.ready.push(c);
    }
  }

  accept(): Promise<Conn> {
    const c = this.ready.shift();
    if (c) return Promise.resolve(c);
    if (this.closed) return Promise.reject(new Deno.errors.BadResource("listener closed"));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.parts) {
      try {
        l.close();
      } catch { /* closed */ }
    }
    for (const w of this.waiters.splice(0)) {
      w.reject(new Deno.errors.BadResource("listener closed"));
    }
    for (const c of this.ready.splice(0)) c.close();
  }
}

registerListener("dns", async (o: ListenerOptions) => {
  const p = o.params;
  const modes = p.str("mode", "udp").split(",").map((m) => m.trim().toLowerCase()).filter((m) => m);
  if (modes.length > 1) {
    const parts: Listener[] = [];
    try {
      for (const m of new Set(modes)) parts.push(await listenMode(o, m));
    } catch (e) {
      for (const l of parts) l.close();
      throw e;
    }
    return new MergedListener(parts);
  }
  return await listenMode(o, modes[0] ?? "udp");
});

/** The listener of one mode. */
async function listenMode(o: ListenerOptions, mode: string): Promise<Listener> {
  const p = o.params;
  const readBufferSize = p.int("readBufferSize", 65535, 512, 65535);
  const idle = p.duration("readTimeout", DEFAULT_IDLE);
  const writeTimeout = p.duration("writeTimeout", 0);
  const backlog = p.int("backlog", 128, 1, 65536);
  switch (mode) {
    case "udp":
      return listenUDP(o.addr, {
        ttl: UDP_SESSION_TTL,
        keepalive: true,
        readBufferSize,
        readQueueSize: 128,
        backlog,
        log: o.log,
      });
    case "tcp":
      return new UpgradeListener(
        listenTCP(o.addr),
        (raw, emit) => Promise.resolve(emit(new FramedConn(raw, idle, writeTimeout))),
        o.log,
        "dns over tcp",
      );
    case "tls": {
      const { tcp, tls } = await tlsBase(o);
      return new UpgradeListener(
        tcp,
        async (raw, emit) => emit(new FramedConn(await tls.handshake(raw), idle, writeTimeout)),
        o.log,
        "dns over tls handshake",
      );
    }
    case "https":
      return await listenDoH(o, o.log);
    default:
      throw new ConfigError(
        `${p.where}: parameter "mode": "${mode}" is not a dns listener mode (udp, tcp, tls, https; or a list such as udp,tcp)`,
      );
  }
}

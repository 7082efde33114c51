/**
 * UDP listener (`udp`): one datagram socket, demultiplexed into per-client *sessions* keyed by
 * the client's ip:port. Each session is a message-preserving `Conn` (one read = one datagram,
 * one write = one datagram back to that client), so any handler (udp forward, dns later) serves
 * UDP clients with the same accept → handle model as streams — gost's shape.
 *
 * Session lifetime (a deliberate choice between gost's two behaviours, see protocols.md §12):
 *  - gost v2 kept a forward session until it had been idle for `ttl` (default 60 s);
 *  - gost v3's listener closes a session right after its first reply unless `keepalive=true`,
 *    and its `ttl` (default 5 s) is only the idle sweep — so v3 forwards DNS-like one-shot
 *    exchanges only, which surprised users (go-gost/gost#56).
 *  dost keeps sessions until they are idle for `ttl` (default 60 s, traffic either way counts),
 *  i.e. `keepalive` defaults to true; `keepalive=false` restores v3's close-after-first-reply.
 *
 * Parameters: `ttl` [60s], `keepalive` [true], `readBufferSize`/`udp.bufferSize` [65535: whole
 * datagrams; smaller values truncate longer datagrams as gost does], `readQueueSize` [128
 * datagrams queued per session before drops], `backlog` [128 sessions waiting for the handler].
 */
import { type Addr, addrString, type Conn, type Listener, splitHostPort } from "../../core/conn.ts";
import { errMsg } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { type ListenerOptions, registerListener } from "../../registry.ts";
import { normalizeIP } from "../../protocol/socks/addr.ts";
import { FfiUdpSocket } from "../../../ffi/udp.ts";
import { openListenSocket } from "./socket.ts";
import { copyDatagram } from "./slab.ts";
import type { DatagramPort } from "./relay.ts";
import { readDatagramInto } from "./relay.ts";

/** Settings of a UDP listener. */
export interface UdpListenerOptions {
  /** Idle time (ms) after which a session closes. */
  ttl: number;
  /** False: close a session after its first reply datagram (gost v3's default). */
  keepalive: boolean;
  /** Receive buffer size; longer datagrams are truncated. */
  readBufferSize: number;
  /** Datagrams queued per session while its handler is busy; more are dropped. */
  readQueueSize: number;
  /** Sessions waiting to be accepted; datagrams of further new clients are dropped. */
  backlog: number;
  log: Logger;
}

/** Reads the listener's parameters (consuming them) with dost's defaults. */
export function udpListenerOptions(o: ListenerOptions): UdpListenerOptions {
  const p = o.params;
  return {
    ttl: Math.max(p.duration("ttl", 60_000), 100),
    keepalive: p.bool("keepalive", true),
    readBufferSize: p.int(["readBufferSize", "udp.bufferSize"], 65535, 512, 65535),
    readQueueSize: p.int("readQueueSize", 128, 1, 65536),
    backlog: p.int("backlog", 128, 1, 65536),
    log: o.log,
  };
}

/** Closed-session and closed-listener errors look like a closed socket's. */
function closedError(what: string): Error {
  return new Deno.errors.BadResource(`${what} is closed`);
}

/** Logs at most one line per `everyMs` (a flood must not turn into a log flood). */
class RateLimitedLog {
  private last = 0;
  private suppressed = 0;
  constructor(private readonly log: Logger, private readonly everyMs = 10_000) {}
  warn(msg: string): void {
    const now = Date.now();
    if (now - this.last < this.everyMs) {
      this.suppressed++;
      return;
    }
    this.log.warn(this.suppressed ? `${msg} (${this.suppressed} more since last report)` : msg);
    this.last = now;
    this.suppressed = 0;
  }
}

/** A UDP listener yielding one `UdpSession` per client address. */
export class UdpListener implements Listener {
  private readonly sessions = new Map<string, UdpSession>();
  private readonly pending: UdpSession[] = [];
  private waiter?: { resolve: (c: Conn) => void; reject: (e: Error) => void };
  private closed = false;
  private readonly dropLog: RateLimitedLog;
  /** The session of the previous datagram (checked before the map). */
  private lastSession?: UdpSession;

  /**
   * `sock`: a Deno datagram socket (read by an await-per-datagram loop) or an FFI socket, which
   * pushes each drained datagram synchronously (the fast path).
   */
  constructor(
    private readonly sock: Deno.DatagramConn | FfiUdpSocket,
    readonly opts: UdpListenerOptions,
  ) {
    this.dropLog = new RateLimitedLog(opts.log);
    if (sock instanceof FfiUdpSocket) {
      sock.onDatagram(
        (data, from) => this.deliver(data, from),
        (e) => this.dropLog.warn(`udp listener ${addrString(sock.addr)}: ${errMsg(e)}`),
      );
    } else {
      void this.receiveLoop(sock);
    }
  }

  get addr(): Addr {
    return this.sock.addr as Addr;
  }

  /** Number of live sessions. */
  get size(): number {
    return this.sessions.size;
  }

  accept(): Promise<Conn> {
    const s = this.pending.shift();
    if (s) return Promise.resolve(s);
    if (this.closed) return Promise.reject(closedError("udp listener"));
    return new Promise((resolve, reject) => this.waiter = { resolve, reject });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.sock.close();
    } catch { /* already closed */ }
    for (const s of [...this.sessions.values()]) s.close();
    this.pending.length = 0;
    this.waiter?.reject(closedError("udp listener"));
    this.waiter = undefined;
  }

  /** Sends one datagram from the listening socket (used by sessions). */
  send(p: Uint8Array, to: Deno.NetAddr): Promise<number> {
    return this.sock.send(p, to);
  }

  /** The FFI socket when sessions can push and send synchronously (DatagramPort). */
  get ffiSocket(): FfiUdpSocket | undefined {
    return this.sock instanceof FfiUdpSocket ? this.sock : undefined;
  }

  /** Forgets a closed session, so the client's next datagram opens a new one. */
  remove(s: UdpSession): void {
    if (this.sessions.get(s.key) === s) this.sessions.delete(s.key);
    const i = this.pending.indexOf(s);
    if (i >= 0) this.pending.splice(i, 1);
  }

  /** Datagrams in: find or open the sender's session and queue a copy. */
  private async receiveLoop(sock: Deno.DatagramConn): Promise<void> {
    const buf = new Uint8Array(this.opts.readBufferSize);
    for (;;) {
      let data: Uint8Array, from: Deno.NetAddr;
      try {
        [data, from] = (await sock.receive(buf)) as [Uint8Array, Deno.NetAddr];
      } catch (e) {
        if (this.closed) return;
        if (e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted) {
          this.opts.log.warn(`udp listener: socket closed: ${errMsg(e)}`);
          this.close();
          return;
        }
        // Anything else (an ICMP error surfacing, ENOBUFS) concerns one datagram: keep serving.
        this.dropLog.warn(`udp listener: receive: ${errMsg(e)}`);
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      this.deliver(data, from);
    }
  }

  /** One datagram in (`data` is a view of a reused buffer): queue a copy on its session. */
  private deliver(data: Uint8Array, from: Deno.NetAddr): void {
    // Fast path: the datagram is from the same client as the last one (one busy flow).
    let s = this.lastSession;
    if (!s || s.closed || s.port !== from.port || s.host !== from.hostname) {
      s = this.sessions.get(`${from.hostname}|${from.port}`);
    }
    if (!s) {
      const key = `${from.hostname}|${from.port}`;
      if (this.pending.length >= this.opts.backlog) {
        this.dropLog.warn(
          `udp listener: ${this.pending.length} new sessions wait for the handler; ` +
            `dropping datagrams of new client ${addrString(from)}`,
        );
        return;
      }
      s = new UdpSession(this, key, from);
      this.sessions.set(key, s);
      if (this.waiter) {
        this.waiter.resolve(s);
        this.waiter = undefined;
      } else {
        this.pending.push(s);
      }
    }
    if (data.length === this.opts.readBufferSize) {
      this.opts.log.debug(
        `udp listener: datagram from ${addrString(from)} filled the ` +
          `${this.opts.readBufferSize}-byte ` +
          `buffer and may be truncated (readBufferSize)`,
      );
    }
    this.lastSession = s;
    s.receive(data);
  }
}

/**
 * One client's session on a UDP listener: a message-preserving Conn whose reads return the
 * client's datagrams and whose writes send datagrams back to the client. Closes itself after
 * `ttl` without traffic either way.
 */
export class UdpSession implements Conn, DatagramPort {
  private readonly queue: Uint8Array[] = [];
  private reader?: (n: Uint8Array | null) => void;
  /** Push mode (a DatagramPort relay): datagrams go straight to `pushFn`. */
  private pushFn?: (d: Uint8Array) => void;
  private onEnd?: () => void;
  /** True once closed (read by the listener's fast path). */
  closed = false;
  private last = Date.now();
  private timer?: ReturnType<typeof setTimeout>;
  readonly remoteAddr: Addr;
  /** The client's host and port as the socket reports them (the session key's parts). */
  readonly host: string;
  readonly port: number;

  constructor(
    private readonly ln: UdpListener,
    readonly key: string,
    private readonly client: Deno.NetAddr,
  ) {
    // Dual-stack sockets report IPv4 clients as ::ffff:a.b.c.d; logs and selectors get a.b.c.d.
    this.remoteAddr = {
      transport: "udp",
      hostname: normalizeIP(client.hostname),
      port: client.port,
    };
    this.host = client.hostname;
    this.port = client.port;
    this.arm(ln.opts.ttl);
  }

  get localAddr(): Addr {
    return this.ln.addr;
  }

  /** Lazily re-armed idle timer: one timer per session, reset only when it fires. */
  private arm(ms: number): void {
    this.timer = setTimeout(() => {
      const left = this.last + this.ln.opts.ttl - Date.now();
      if (left > 0) return this.arm(left);
      const who = addrString(this.remoteAddr);
      this.ln.opts.log.debug(`udp session ${who}: idle for ${this.ln.opts.ttl} ms (ttl), closing`);
      this.close();
    }, ms);
  }

  /** A client datagram (a view of the receive buffer), from the listener. */
  receive(d: Uint8Array): void {
    if (this.pushFn) {
      if (this.closed) return;
      this.last = Date.now();
      this.pushFn(d);
    } else this.enqueue(copyDatagram(d));
  }

  /** This session as a DatagramPort when its listener's socket is an FFI socket. */
  datagramPort(): DatagramPort | undefined {
    return this.ln.ffiSocket ? this : undefined;
  }

  pushTo(fn: (d: Uint8Array) => void, onEnd: () => void, _onError: (e: Error) => void): void {
    // Send failures on the shared listening socket are logged by the listener.
    this.onEnd = onEnd;
    for (let d; (d = this.queue.shift()) && !this.closed;) fn(d);
    if (this.closed) return onEnd();
    this.pushFn = fn;
  }

  sendSync(p: Uint8Array): void {
    if (this.closed) throw closedError(`udp session ${addrString(this.remoteAddr)}`);
    this.ln.ffiSocket!.sendSync(p, this.client);
    this.last = Date.now();
    if (!this.ln.opts.keepalive) this.close();
  }

  /** Queues a client datagram (owned by the session). */
  enqueue(d: Uint8Array): void {
    if (this.closed) return;
    this.last = Date.now();
    if (this.reader) {
      const r = this.reader;
      this.reader = undefined;
      r(d);
      return;
    }
    if (this.queue.length >= this.ln.opts.readQueueSize) {
      this.ln.opts.log.debug(
        `udp session ${addrString(this.remoteAddr)}: receive queue full, datagram dropped`,
      );
      return;
    }
    this.queue.push(d);
  }

  /** The next client datagram (owned by the caller); null once the session closed. */
  readDatagram(): Promise<Uint8Array | null> {
    const d = this.queue.shift();
    if (d) return Promise.resolve(d);
    if (this.closed) return Promise.resolve(null);
    return new Promise<Uint8Array | null>((r) => this.reader = r);
  }

  /** Reads one datagram into `p` (truncated to `p.length`); null once the session closed. */
  read(p: Uint8Array): Promise<number | null> {
    return readDatagramInto(this, p);
  }

  /** Sends `p` as one datagram to the client. */
  async write(p: Uint8Array): Promise<number> {
    if (this.closed) throw closedError(`udp session ${addrString(this.remoteAddr)}`);
    const n = await this.ln.send(p, this.client);
    this.last = Date.now();
    if (!this.ln.opts.keepalive) this.close();
    return n;
  }

  /** UDP has no half-close: nothing to send. */
  closeWrite(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.queue.length = 0;
    this.ln.remove(this);
    const r = this.reader;
    this.reader = undefined;
    r?.(null);
    this.pushFn = undefined;
    this.onEnd?.();
  }
}

/** Opens a UDP listener on `addr` (empty host = all interfaces of both families). */
export function listenUDP(addr: string, opts: UdpListenerOptions): UdpListener {
  const { host, port } = splitHostPort(addr);
  return new UdpListener(openListenSocket(host, port, opts.readBufferSize), opts);
}

registerListener("udp", (o) => Promise.resolve(listenUDP(o.addr, udpListenerOptions(o))));

/**
 * An smux session (xtaci/smux, protocols.md §4) over any `Conn`: many streams over one
 * connection, wire-compatible with gost's mtls/mws/mtcp/kcp transports, relay BIND and SOCKS5
 * MUX-BIND.
 *
 * - Roles: the client opens odd stream IDs (3, 5, …), the server even ones (2, 4, …); either
 *   side may open and accept streams. There is no handshake.
 * - One reader task parses frames and hands PSH payloads to their stream. Received-but-unread
 *   bytes count against `maxReceiveBuffer`; past it the reader stops reading the socket, which
 *   is smux's (v1) flow control. v2 adds per-stream windows (see stream.ts).
 * - One writer task sends queued frames in order, control frames (SYN, NOP, UPD) ahead of data
 *   frames (PSH, FIN), coalescing small frames into one socket write.
 * - Keepalive: NOP every `keepAliveInterval`; the session closes when nothing was received for
 *   `keepAliveTimeout` (unless the reader is paused by our own full buffer).
 * - Any protocol violation (wrong version, unknown command, UPD on v1, malformed lengths) or a
 *   socket error ends the session: the socket is closed and every stream's pending and future
 *   calls fail with the reason.
 */
import { type Addr, closeQuietly, type Conn, writeAll } from "../../core/conn.ts";
import { errMsg, ProtocolError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { type MuxConfig, muxConfig } from "./config.ts";
import {
  CMD_FIN,
  CMD_NOP,
  CMD_PSH,
  CMD_SYN,
  CMD_UPD,
  cmdName,
  decodeHeader,
  decodeUpdate,
  encodeFrame,
  HEADER_SIZE,
  UPD_SIZE,
} from "./frame.ts";
import { MuxStream, type StreamHost } from "./stream.ts";

export { MuxStream } from "./stream.ts";

/** Options of a session. */
export interface MuxSessionOptions {
  /** true: this end is the smux client (odd stream IDs); false: server (even IDs). */
  client: boolean;
  config?: Partial<MuxConfig>;
  /** Receives one debug line when the session ends. */
  log?: Logger;
}

/** Why a session ended when it was closed locally. */
export class SessionClosedError extends Error {
  override name = "SessionClosedError";
}

interface Pending {
  buf: Uint8Array;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** Frames up to this size are coalesced with their neighbours into one socket write. */
const SMALL_FRAME = 4096;
const COALESCE_MAX = 16384;
const READ_BUFFER = 256 * 1024;
const MIN_READ_ROOM = 65536 + 16;

export class MuxSession implements StreamHost {
  readonly config: MuxConfig;
  private readonly streams = new Map<number, MuxStream>();
  private nextId: number;
  private err: Error | undefined;
  private readonly accepted: MuxStream[] = [];
  private acceptWaiters: { resolve: (s: MuxStream) => void; reject: (e: Error) => void }[] = [];
  private backlogWaiter: (() => void) | undefined;
  private readonly ctrlQ: Pending[] = [];
  private readonly dataQ: Pending[] = [];
  private writing = false;
  /** Received bytes not yet read by any stream. */
  private unread = 0;
  private bucketWaiter: (() => void) | undefined;
  private dataSeen = false;
  private timers: ReturnType<typeof setInterval>[] = [];
  private resolveDone!: () => void;
  /** Resolves when the session has ended (never rejects). */
  readonly done: Promise<void> = new Promise((r) => (this.resolveDone = r));

  private rbuf = new Uint8Array(READ_BUFFER);
  private rs = 0;
  private re = 0;

  constructor(private readonly conn: Conn, private readonly opts: MuxSessionOptions) {
    this.config = muxConfig(opts.config);
    this.nextId = opts.client ? 1 : 0;
    if (!this.config.keepAliveDisabled) {
      this.timers.push(setInterval(() => this.ping(), this.config.keepAliveInterval));
      this.timers.push(setInterval(() => this.checkAlive(), this.config.keepAliveTimeout));
    }
    this.readLoop();
  }

  get localAddr(): Addr {
    return this.conn.localAddr;
  }
  get remoteAddr(): Addr {
    return this.conn.remoteAddr;
  }
  /** Why the session ended; undefined while it runs. */
  get error(): Error | undefined {
    return this.err;
  }
  get isClosed(): boolean {
    return this.err !== undefined;
  }
  /** Streams currently open (not yet closed on both sides). */
  get numStreams(): number {
    return this.streams.size;
  }

  /** Opens a stream (sends SYN). */
  async openStream(): Promise<MuxStream> {
    if (this.err) throw this.err;
    const id = this.nextId + 2;
    if (id > 0xffffffff) throw new Error("mux: stream IDs exhausted, open a new session");
    this.nextId = id;
    const s = new MuxStream(id, this);
    this.streams.set(id, s);
    try {
      await this.sendControl(encodeFrame(this.config.version, CMD_SYN, id));
    } catch (e) {
      this.streams.delete(id);
      throw e;
    }
    return s;
  }

  /** Waits for the next stream the peer opens. Rejects once the session has ended. */
  acceptStream(): Promise<MuxStream> {
    const s = this.accepted.shift();
    if (s) {
      this.backlogWaiter?.();
      return Promise.resolve(s);
    }
    if (this.err) return Promise.reject(this.err);
    return new Promise((resolve, reject) => this.acceptWaiters.push({ resolve, reject }));
  }

  /** Ends the session and closes the connection. */
  close(): void {
    this.die(new SessionClosedError("mux session closed"));
  }

  // ---- StreamHost ----

  sendData(frame: Uint8Array): Promise<void> {
    return this.enqueue(this.dataQ, frame);
  }
  sendControl(frame: Uint8Array): Promise<void> {
    return this.enqueue(this.ctrlQ, frame);
  }
  consumed(n: number): void {
    this.unread -= n;
    if (this.unread < this.config.maxReceiveBuffer && this.bucketWaiter) {
      const w = this.bucketWaiter;
      this.bucketWaiter = undefined;
      w();
    }
  }
  forget(id: number): void {
    this.streams.delete(id);
  }

  // ---- writer ----

  private enqueue(q: Pending[], buf: Uint8Array): Promise<void> {
    if (this.err) return Promise.reject(this.err);
    return new Promise<void>((resolve, reject) => {
      q.push({ buf, resolve, reject });
      if (!this.writing) this.flush();
    });
  }

  private next(): Pending | undefined {
    return this.ctrlQ.shift() ?? this.dataQ.shift();
  }

  private peek(): Pending | undefined {
    return this.ctrlQ[0] ?? this.dataQ[0];
  }

  private async flush(): Promise<void> {
    this.writing = true;
    let batch: Pending[] = [];
    try {
      for (let p = this.next(); p; p = this.next()) {
        batch = [p];
        let out = p.buf;
        if (p.buf.length <= SMALL_FRAME) {
          let size = p.buf.length;
          for (let q = this.peek(); q && size + q.buf.length <= COALESCE_MAX; q = this.peek()) {
            batch.push(this.next()!);
            size += q.buf.length;
          }
          if (batch.length > 1) {
            out = new Uint8Array(size);
            let off = 0;
            for (const b of batch) {
              out.set(b.buf, off);
              off += b.buf.length;
            }
          }
        }
        await writeAll(this.conn, out);
        for (const b of batch) b.resolve();
        batch = [];
      }
    } catch (e) {
      const err = this.err ?? new Error(`mux: write failed: ${errMsg(e)}`);
      for (const b of batch) b.reject(err);
      this.die(err);
    } finally {
      this.writing = false;
    }
  }

  // ---- reader ----

  /** Ensures `n` unparsed bytes are buffered; false on a clean end of stream before any. */
  private async need(n: number): Promise<boolean> {
    if (this.rs === this.re) this.rs = this.re = 0;
    while (this.re - this.rs < n) {
      // Keep room for a whole frame (≤ 64 KiB + header) after the unparsed bytes.
      if (this.rbuf.length - this.re < MIN_READ_ROOM) {
        this.rbuf.copyWithin(0, this.rs, this.re);
        this.re -= this.rs;
        this.rs = 0;
      }
      const got = await this.conn.read(this.rbuf.subarray(this.re));
      if (got === null) {
        if (this.re === this.rs) return false;
        throw new ProtocolError("mux: connection ended inside a frame");
      }
      this.re += got;
    }
    return true;
  }

  private async readLoop(): Promise<void> {
    const ver = this.config.version;
    try {
      for (;;) {
        while (this.unread >= this.config.maxReceiveBuffer && !this.err) {
          await new Promise<void>((r) => (this.bucketWaiter = r));
        }
        if (this.err) return;
        if (!(await this.need(HEADER_SIZE))) {
          this.die(new Error("mux: connection closed by peer"));
          return;
        }
        const h = decodeHeader(this.rbuf, this.rs);
        this.rs += HEADER_SIZE;
        this.dataSeen = true;
        if (h.ver !== ver) {
          throw new ProtocolError(`mux: frame version ${h.ver} on a v${ver} session`);
        }
        switch (h.cmd) {
          case CMD_NOP:
          case CMD_SYN:
          case CMD_FIN:
            if (h.length !== 0) {
              throw new ProtocolError(
                `mux: ${cmdName(h.cmd)} frame with ${h.length} payload bytes`,
              );
            }
            if (h.cmd === CMD_SYN) await this.onSyn(h.sid);
            else if (h.cmd === CMD_FIN) this.streams.get(h.sid)?.fin();
            break;
          case CMD_PSH: {
            if (h.length === 0) break;
            if (!(await this.need(h.length))) throw new ProtocolError("mux: truncated PSH frame");
            const s = this.streams.get(h.sid);
            if (s) {
              const data = this.rbuf.slice(this.rs, this.rs + h.length);
              this.unread += h.length;
              s.push(data);
            }
            this.rs += h.length;
            break;
          }
          case CMD_UPD: {
            if (ver !== 2) throw new ProtocolError("mux: UPD frame on a v1 session");
            if (h.length !== UPD_SIZE) {
              throw new ProtocolError(`mux: UPD frame with ${h.length} payload bytes`);
            }
            if (!(await this.need(UPD_SIZE))) throw new ProtocolError("mux: truncated UPD frame");
            const u = decodeUpdate(this.rbuf, this.rs);
            this.rs += UPD_SIZE;
            this.streams.get(h.sid)?.update(u.consumed, u.window);
            break;
          }
          default:
            throw new ProtocolError(`mux: unknown command ${cmdName(h.cmd)}`);
        }
      }
    } catch (e) {
      this.die(
        this.err ?? (e instanceof ProtocolError ? e : new Error(`mux: read failed: ${errMsg(e)}`)),
      );
    }
  }

  private async onSyn(id: number): Promise<void> {
    if (this.streams.has(id)) return; // duplicate SYN for a live stream: ignored, as smux does
    while (this.accepted.length >= this.config.acceptBacklog && !this.err) {
      await new Promise<void>((r) => (this.backlogWaiter = r));
      this.backlogWaiter = undefined;
    }
    if (this.err) return;
    const s = new MuxStream(id, this);
    this.streams.set(id, s);
    const w = this.acceptWaiters.shift();
    if (w) w.resolve(s);
    else this.accepted.push(s);
  }

  // ---- keepalive and teardown ----

  private ping(): void {
    this.sendControl(encodeFrame(this.config.version, CMD_NOP, 0)).catch(() => {});
  }

  private checkAlive(): void {
    const seen = this.dataSeen;
    this.dataSeen = false;
    // A reader paused by our own full receive buffer is not a dead peer.
    if (!seen && this.unread < this.config.maxReceiveBuffer) {
      this.die(new Error(`mux: no frame received for ${this.config.keepAliveTimeout} ms`));
    }
  }

  private die(err: Error): void {
    if (this.err) return;
    this.err = err;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    closeQuietly(this.conn);
    if (!(err instanceof SessionClosedError)) {
      this.opts.log?.debug(`mux session with ${this.remoteAddrText()} ended: ${err.message}`);
    }
    for (const q of [this.ctrlQ, this.dataQ]) {
      for (const p of q.splice(0)) p.reject(err);
    }
    for (const w of this.acceptWaiters.splice(0)) w.reject(err);
    for (const s of this.accepted.splice(0)) s.close();
    for (const s of [...this.streams.values()]) s.sessionEnded();
    this.bucketWaiter?.();
    this.backlogWaiter?.();
    this.resolveDone();
  }

  private remoteAddrText(): string {
    try {
      const a = this.conn.remoteAddr;
      return `${a.hostname}:${a.port}`;
    } catch {
      return "?";
    }
  }
}

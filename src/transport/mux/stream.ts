/**
 * One smux stream as a `Conn`.
 *
 * Reads drain the frames the session pushed; writes are split into PSH frames of at most
 * `maxFrameSize` and resolve once the frames reached the socket. v2 streams respect the peer's
 * window (and wait for UPD frames when it is used up) and announce their own consumption.
 *
 * End of stream: `closeWrite()` sends FIN and keeps reading (half-close, as smux ≥ 2026 does);
 * a FIN from the peer makes reads return null once the buffered data is drained, while writes stay
 * allowed. gost's smux (1.5.x) treats FIN as a full close, so across a gost peer a half-closed
 * stream cannot carry data the other way (protocols.md §4.2). `close()` sends FIN if not yet sent
 * and forgets the stream; data still arriving for it is discarded.
 */
import type { Addr, Conn } from "../../core/conn.ts";
import { ProtocolError } from "../../core/errors.ts";
import type { MuxConfig } from "./config.ts";
import { CMD_FIN, CMD_PSH, encodeFrame, encodeUpdate, INITIAL_PEER_WINDOW } from "./frame.ts";

/** What a stream needs from its session. */
export interface StreamHost {
  readonly config: MuxConfig;
  readonly localAddr: Addr;
  readonly remoteAddr: Addr;
  /** Queues a data-class frame (PSH, FIN: kept in order); resolves once written. */
  sendData(frame: Uint8Array): Promise<void>;
  /** Queues a control frame (UPD): sent ahead of queued data. */
  sendControl(frame: Uint8Array): Promise<void>;
  /** Returns `n` read bytes to the session's receive budget. */
  consumed(n: number): void;
  /** The stream is done on both sides (or closed locally): drop it from the session. */
  forget(id: number): void;
  /** Why the session ended, once it has. */
  readonly error: Error | undefined;
}

type Waiter = { resolve: () => void; reject: (e: Error) => void };

/** Error for operations on a stream after `close()`. */
export class StreamClosedError extends Error {
  override name = "StreamClosedError";
  constructor(id: number) {
    super(`mux stream ${id} is closed`);
  }
}

export class MuxStream implements Conn {
  private chunks: Uint8Array[] = [];
  private headOff = 0;
  /** Received bytes not yet read. */
  private buffered = 0;
  private finRecv = false;
  private finSent = false;
  private closed = false;
  private readers: Waiter[] = [];
  private writers: Waiter[] = [];
  // v2 flow control (all counters are u32, compared in modular arithmetic as smux does).
  private numRead = 0;
  private sinceUpdate = 0;
  private announced = false;
  private numWritten = 0;
  private peerConsumed = 0;
  private peerWindow = INITIAL_PEER_WINDOW;
  private addrs: { local?: Addr; remote?: Addr } = {};

  constructor(readonly id: number, private readonly host: StreamHost) {}

  get localAddr(): Addr {
    return this.addrs.local ?? this.host.localAddr;
  }
  get remoteAddr(): Addr {
    return this.addrs.remote ?? this.host.remoteAddr;
  }
  /** Overrides the addresses reported (e.g. a remote-forward stream stands for a far-end peer). */
  setAddrs(local?: Addr, remote?: Addr): void {
    this.addrs = { local: local ?? this.addrs.local, remote: remote ?? this.addrs.remote };
  }

  /** True once `close()` was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  // ---- called by the session ----

  /** Data from a PSH frame (the session has counted it against its receive budget). */
  push(data: Uint8Array): void {
    if (this.closed) {
      this.host.consumed(data.length);
      return;
    }
    this.chunks.push(data);
    this.buffered += data.length;
    this.wake(this.readers);
  }

  /** The peer sent FIN. */
  fin(): void {
    if (this.finRecv) return;
    this.finRecv = true;
    if (this.finSent) this.host.forget(this.id);
    this.wake(this.readers);
  }

  /** A UPD frame (v2). */
  update(consumed: number, window: number): void {
    this.peerConsumed = consumed >>> 0;
    this.peerWindow = window >>> 0;
    this.wake(this.writers);
  }

  /** The session ended: wake everyone so they see `host.error`. */
  sessionEnded(): void {
    this.wake(this.readers);
    this.wake(this.writers);
  }

  // ---- Conn ----

  async read(p: Uint8Array): Promise<number | null> {
    for (;;) {
      if (this.closed) throw new StreamClosedError(this.id);
      if (this.buffered > 0) return this.take(p);
      if (this.finRecv) return null;
      const err = this.host.error;
      if (err) throw err;
      if (p.length === 0) return 0;
      await this.wait(this.readers);
    }
  }

  private take(p: Uint8Array): number {
    let n = 0;
    while (n < p.length && this.chunks.length) {
      const head = this.chunks[0];
      const k = Math.min(p.length - n, head.length - this.headOff);
      p.set(head.subarray(this.headOff, this.headOff + k), n);
      n += k;
      this.headOff += k;
      if (this.headOff === head.length) {
        this.chunks.shift();
        this.headOff = 0;
      }
    }
    this.buffered -= n;
    this.host.consumed(n);
    if (this.host.config.version === 2) this.afterReadV2(n);
    return n;
  }

  /** Announces consumption after the first read and whenever half the window was consumed. */
  private afterReadV2(n: number): void {
    this.numRead = (this.numRead + n) >>> 0;
    this.sinceUpdate += n;
    const cfg = this.host.config;
    if (!this.announced || this.sinceUpdate >= cfg.maxStreamBuffer / 2) {
      this.announced = true;
      this.sinceUpdate = 0;
      if (this.finRecv && this.finSent) return; // the peer has nothing more to send
      this.host.sendControl(encodeUpdate(2, this.id, this.numRead, cfg.maxStreamBuffer))
        .catch(() => {}); // a failed write ends the session, which readers see
    }
  }

  async write(p: Uint8Array): Promise<number> {
    this.checkWritable();
    if (p.length === 0) return 0;
    if (this.host.config.version === 2) await this.writeV2(p);
    else await this.sendFrames(p);
    return p.length;
  }

  private checkWritable(): void {
    if (this.closed) throw new StreamClosedError(this.id);
    if (this.finSent) {
      throw new Deno.errors.BrokenPipe(`mux stream ${this.id}: write after closeWrite`);
    }
    const err = this.host.error;
    if (err) throw err;
  }

  /** Splits `p` into PSH frames, queues them all, and waits until the last one is written. */
  private sendFrames(p: Uint8Array): Promise<void> {
    const max = this.host.config.maxFrameSize;
    let last: Promise<void> | undefined;
    for (let off = 0; off < p.length; off += max) {
      const frame = encodeFrame(
        this.host.config.version,
        CMD_PSH,
        this.id,
        p.subarray(off, off + max),
      );
      last?.catch(() => {}); // earlier frames fail only when the session dies; `last` reports it
      last = this.host.sendData(frame);
      this.numWritten = (this.numWritten + frame.length - 8) >>> 0;
    }
    return last!;
  }

  private async writeV2(p: Uint8Array): Promise<void> {
    let off = 0;
    while (off < p.length) {
      this.checkWritable();
      const inflight = (this.numWritten - this.peerConsumed) | 0;
      if (inflight < 0) {
        throw new ProtocolError(`mux stream ${this.id}: peer consumed more than was sent`);
      }
      const win = (this.peerWindow | 0) - inflight;
      if (win > 0) {
        const n = Math.min(win, p.length - off);
        await this.sendFrames(p.subarray(off, off + n));
        off += n;
      } else {
        await this.wait(this.writers);
      }
    }
  }

  /** Sends FIN; reading continues until the peer's FIN. */
  async closeWrite(): Promise<void> {
    if (this.closed || this.finSent) return;
    this.finSent = true;
    if (this.finRecv) this.host.forget(this.id);
    if (this.host.error) return;
    await this.host.sendData(encodeFrame(this.host.config.version, CMD_FIN, this.id));
  }

  /** Closes both directions: FIN (unless sent), buffered data dropped, pending calls fail. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.finSent && !this.host.error) {
      this.finSent = true;
      this.host.sendData(encodeFrame(this.host.config.version, CMD_FIN, this.id)).catch(() => {});
    }
    if (this.buffered) this.host.consumed(this.buffered);
    this.chunks = [];
    this.buffered = 0;
    this.host.forget(this.id);
    this.wake(this.readers);
    this.wake(this.writers);
  }

  private wait(list: Waiter[]): Promise<void> {
    return new Promise<void>((resolve, reject) => list.push({ resolve, reject }));
  }

  private wake(list: Waiter[]): void {
    for (const w of list.splice(0)) w.resolve();
  }
}

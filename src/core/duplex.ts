/**
 * Adapters between dost's `Conn` and `node:stream` Duplex, for libraries that speak Node streams
 * (node:tls over a tunnel stream, node:http2, ssh2).
 *
 * - `connToDuplex`: one `conn.read` in flight at a time, reading on while `push()` accepts more.
 * - `duplexToConn`: built on `'data'`/`'end'` with `pause()`/`resume()` (a `'readable'`-based
 *   version never saw `'end'` from a server TLSSocket in Deno 2.9.6).
 *
 * Both attach `'error'` listeners: an unhandled stream error would end the process.
 */
import { Buffer } from "node:buffer";
import { Duplex } from "node:stream";
import { type Addr, closeQuietly, type Conn, writeAll } from "./conn.ts";

const READ_SIZE = 65536;
/** How long a Duplex destroyed while ending may still flush its writes and end. */
const LINGER_MS = 5000;

/**
 * Holds a `connToDuplex` pump back between reads: backpressure applied below a layered stream
 * (TLS) instead of pausing the layered stream itself (see DuplexConn).
 */
export class FlowGate {
  private shut = false;
  private waiters: (() => void)[] = [];
  /** Stop reading the Conn (after the read in flight). */
  close(): void {
    this.shut = true;
  }
  /** Read again. */
  open(): void {
    this.shut = false;
    for (const w of this.waiters.splice(0)) w();
  }
  get isClosed(): boolean {
    return this.shut;
  }
  /** Undefined when open, else a promise that resolves on `open()`. */
  pass(): Promise<void> | undefined {
    return this.shut ? new Promise((r) => this.waiters.push(r)) : undefined;
  }
}

/**
 * Wraps a Conn as a Duplex. Destroying the Duplex closes the Conn. `gate` is given for a
 * TLSSocket on the Duplex: the pump waits while the gate is closed, and end()/destroy() wait
 * for the TLSSocket's queued records (holdEndForTls).
 */
export function connToDuplex(conn: Conn, gate?: FlowGate): Duplex {
  let reading = false;
  let writing = 0; // writes handed to the Conn and not yet done
  let wrote: (() => void) | undefined; // wakes deferredEnd when a write is done
  const written = (cb: (e?: Error | null) => void) => (e?: Error) => {
    writing--;
    cb(e);
    const w = wrote;
    wrote = undefined;
    w?.();
  };
  const d: Duplex = new Duplex({
    read() {
      if (reading) return;
      reading = true;
      pump();
    },
    write(chunk: Uint8Array, _enc: string, cb: (e?: Error | null) => void) {
      writing++;
      const done = written(cb);
      writeAll(conn, chunk).then(() => done(), done);
    },
    writev(chunks: { chunk: Uint8Array }[], cb: (e?: Error | null) => void) {
      const all = chunks.length === 1 ? chunks[0].chunk : Buffer.concat(chunks.map((c) => c.chunk));
      writing++;
      const done = written(cb);
      writeAll(conn, all).then(() => done(), done);
    },
    final(cb: (e?: Error | null) => void) {
      conn.closeWrite().then(() => cb(), () => cb());
    },
    destroy(err: Error | null, cb: (e: Error | null) => void) {
      closeQuietly(conn);
      gate?.open();
      cb(err);
    },
  });
  d.on("error", () => {}); // reported to whoever consumes the Duplex; never fatal here
  if (gate) holdEndForTls();
  /** Makes end() and destroy() wait for a TLSSocket on this Duplex (see the comments). */
  function holdEndForTls(): void {
    // Deno 2.9.6's TLSSocket over a Duplex writes its records from its own queue, one write at a
    // time, each after the previous write's callback, while its end() ends this Duplex at once.
    // When writes complete slowly (TLS or a mux stream below), end() overtook the queued
    // records: application data and close_notify were lost ("write after end", thrown in a
    // microtask). So end() here waits until no write is in flight and the writer had a turn
    // (a macrotask) to queue its next record, then ends for real.
    const realEnd = d.end.bind(d) as (...a: unknown[]) => Duplex;
    let ending = false;
    d.end = ((...args: unknown[]) => {
      if (d.writableEnded || d.destroyed) return realEnd(...args);
      if (ending) {
        // A second end() (the TLSSocket's and closeWrite's) waits for the first one.
        const cb = args.find((a) => typeof a === "function") as (() => void) | undefined;
        if (cb) d.once("finish", () => cb());
        return d;
      }
      ending = true;
      deferredEnd(args);
      return d;
    }) as typeof d.end;
    // The same TLSSocket reports its end done, and destroys this Duplex once both its sides are
    // done, before its queued records went out. A destroy without an error after end() so lingers
    // (at most LINGER_MS): the end finishes, and the Conn is read to its end, so that a peer
    // whose layers below still send their close_notify / FIN does not meet a closed socket (a
    // reset there lost the tail of the data it was still receiving).
    const realDestroy = d.destroy.bind(d);
    let lingering = false;
    d.destroy = ((err?: Error, ...rest: unknown[]) => {
      if (err || !ending || d.destroyed) return realDestroy(err, ...(rest as []));
      if (lingering) return d; // DuplexConn.close() destroys it after the TLSSocket did
      lingering = true;
      let left = (d.writableFinished ? 0 : 1) + (d.readableEnded ? 0 : 1);
      if (left === 0) return realDestroy();
      const t = setTimeout(() => realDestroy(), LINGER_MS);
      const step = () => {
        if (--left > 0) return;
        clearTimeout(t);
        realDestroy();
      };
      const stop = () => {
        clearTimeout(t);
        realDestroy();
      };
      if (!d.writableFinished) d.once("finish", step);
      if (!d.readableEnded) {
        d.once("end", step);
        gate?.open();
        d.resume(); // nobody reads any more: drain to the end
      }
      d.once("error", stop);
      return d;
    }) as typeof d.destroy;
    async function deferredEnd(args: unknown[]): Promise<void> {
      for (;;) {
        await new Promise((r) => setTimeout(r, 0));
        if (d.destroyed) return;
        if (writing === 0 && d.writableLength === 0) break;
        if (writing > 0) await new Promise<void>((r) => (wrote = r));
      }
      realEnd(...args);
    }
  }
  async function pump(): Promise<void> {
    try {
      for (;;) {
        const wait = gate?.pass();
        if (wait) await wait;
        const b = Buffer.allocUnsafe(READ_SIZE);
        const n = await conn.read(b);
        if (n === null) {
          d.push(null);
          return;
        }
        if (!d.push(b.subarray(0, n))) return;
      }
    } catch (e) {
      d.destroy(e as Error);
    } finally {
      reading = false;
    }
  }
  return d;
}

/** Received chunks above this many bytes pause the Duplex until reads catch up. */
const HIGH_WATER = 256 * 1024;

/** A Duplex seen as a Conn. `addrs` supplies the addresses (a Duplex has none of its own). */
export class DuplexConn implements Conn {
  private chunks: Uint8Array[] = [];
  private headOff = 0;
  private buffered = 0;
  private ended = false;
  private err: Error | undefined;
  private closed = false;
  private waiter: (() => void) | undefined;

  /**
   * `under`: for a stream layered on a `connToDuplex` (a TLSSocket), that transport and its
   * gate. Deno 2.9.6's TLSSocket loses its end of stream in both directions once it has been
   * paused, and does not always pass its end on to its transport (seen after ~100 MB of
   * two-way traffic). So backpressure closes the gate below it instead of pausing it, and
   * closeWrite ends the transport too.
   */
  constructor(
    readonly stream: Duplex,
    private readonly addrs: { localAddr: Addr; remoteAddr: Addr },
    private readonly under?: { transport: Duplex; gate: FlowGate },
  ) {
    stream.on("data", (c: Uint8Array) => {
      this.chunks.push(c);
      this.buffered += c.length;
      if (this.buffered > HIGH_WATER) this.hold();
      this.wake();
    });
    stream.on("end", () => {
      this.ended = true;
      this.wake();
    });
    stream.on("error", (e: Error) => {
      this.err ??= e;
      this.wake();
    });
    stream.on("close", () => {
      this.ended = true;
      this.wake();
    });
  }

  private hold(): void {
    if (this.under) this.under.gate.close();
    else this.stream.pause();
  }

  private release(): void {
    if (this.under) this.under.gate.open();
    else if (this.stream.isPaused()) this.stream.resume();
  }

  get localAddr(): Addr {
    return this.addrs.localAddr;
  }
  get remoteAddr(): Addr {
    return this.addrs.remoteAddr;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  async read(p: Uint8Array): Promise<number | null> {
    for (;;) {
      if (this.closed) throw new Deno.errors.BadResource("connection is closed");
      if (this.buffered > 0) return this.take(p);
      if (this.err) throw this.err;
      if (this.ended) return null;
      this.release();
      await new Promise<void>((r) => (this.waiter = r));
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
    if (this.buffered <= HIGH_WATER / 2 && !this.ended) this.release();
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.closed) return Promise.reject(new Deno.errors.BadResource("connection is closed"));
    if (this.err) return Promise.reject(this.err);
    if (p.length === 0) return Promise.resolve(0);
    return new Promise((resolve, reject) => {
      this.stream.write(p, (e?: Error | null) => e ? reject(e) : resolve(p.length));
    });
  }

  closeWrite(): Promise<void> {
    if (this.closed || this.stream.writableEnded) return Promise.resolve();
    return new Promise((resolve) =>
      this.stream.end(() => {
        const t = this.under?.transport;
        if (!t || t.writableFinished || t.destroyed) return resolve();
        // The TLSSocket's end is reported before its records are written: resolve once the
        // transport has ended too, so that a close() after closeWrite() finds it ending.
        t.once("finish", () => resolve());
        t.once("close", () => resolve());
        t.end();
      })
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stream.destroy();
    this.under?.transport.destroy();
    this.wake();
  }
}

/**
 * The stream shapes the relay protocol needs on both sides:
 *
 * - DeferredConn: holds a header (the client's request, or the server's response) and sends it
 *   glued to the first write, as gost does by default (`nodelay=false`), so header and first
 *   payload leave in one packet. Unlike gost it never waits for that write forever: after
 *   FLUSH_DELAY_MS without one the header goes out alone. gost's connector waits for the first
 *   client write, so server-speaks-first protocols (SSH, SMTP, MySQL, VNC, FTP) hang behind it
 *   (go-gost/gost #125, #241, #319, #680); gost's server holds its response until the target
 *   speaks, so a `nodelay=true` client talking to a client-speaks-first target waits for a
 *   response that never comes. Sending a header early is always wire-compatible.
 * - FramedConn: UDP over the stream, one datagram per `LEN(2, BE) · payload` frame, as a
 *   message-preserving Conn (one write = one datagram, one read = one datagram).
 */
import type { BufferedConn } from "../../core/bufconn.ts";
import { type Addr, closeQuietly, type Conn, writeAll } from "../../core/conn.ts";
import { concatBytes, encodeFrame, readFrame } from "./wire.ts";
import { readDatagramInto } from "../../transport/udp/relay.ts";

/**
 * How long a deferred header waits for the first payload. Applications that speak first (HTTP,
 * TLS) write within a few milliseconds of their proxy's CONNECT answer, plus one round trip to
 * the client: 100 ms covers clients up to ~100 ms away, so nearly every header still shares a
 * packet with the first payload, while a server-speaks-first session (an SSH banner) is delayed
 * by at most 100 ms once, at connection set-up.
 */
export const FLUSH_DELAY_MS = 100;

/** A Conn that sends a pending header with its first write, or alone after a short delay. */
export class DeferredConn implements Conn {
  private pending: Uint8Array | null;
  private timer?: ReturnType<typeof setTimeout>;
  /** The delayed header's write, which every later write waits for. */
  private flushing: Promise<void> = Promise.resolve();
  private failure: unknown;
  private readying?: Promise<void>;

  /**
   * `inner` takes the writes; `reader` (usually a BufferedConn over `inner`) gives the reads;
   * `beforeRead` runs once before the first read (the client reads the server's response there).
   */
  constructor(
    private readonly inner: Conn,
    private readonly reader: Conn,
    header: Uint8Array | null,
    delayMs: number,
    private readonly beforeRead?: () => Promise<void>,
  ) {
    this.pending = header && header.length ? header : null;
    if (this.pending) this.timer = setTimeout(() => this.flush(), delayMs);
  }

  get localAddr(): Addr {
    return this.inner.localAddr;
  }
  get remoteAddr(): Addr {
    return this.inner.remoteAddr;
  }

  /** Sends the pending header now (no-op when it is gone). */
  private flush(): void {
    const hdr = this.takePending();
    if (!hdr) return;
    this.flushing = writeAll(this.inner, hdr).catch((e) => {
      this.failure = e;
    });
  }

  private takePending(): Uint8Array | null {
    const hdr = this.pending;
    this.pending = null;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    return hdr;
  }

  /** Resolves once `beforeRead` has run (at most once); rejects with its error. */
  ready(): Promise<void> {
    return this.readying ??= this.beforeRead ? this.beforeRead() : Promise.resolve();
  }

  async read(p: Uint8Array): Promise<number | null> {
    await this.ready();
    return await this.reader.read(p);
  }

  async write(p: Uint8Array): Promise<number> {
    const hdr = this.takePending();
    if (hdr) {
      await writeAll(this.inner, concatBytes(hdr, p));
      return p.length;
    }
    await this.flushing;
    if (this.failure) throw this.failure;
    return await this.inner.write(p);
  }

  /** Half-close; a header still pending goes first (the peer must see it before the FIN). */
  async closeWrite(): Promise<void> {
    this.flush();
    await this.flushing;
    if (this.failure) throw this.failure;
    await this.inner.closeWrite();
  }

  close(): void {
    this.takePending();
    closeQuietly(this.inner);
  }
}

/** Datagrams over a relay stream: one frame per datagram, writes through a DeferredConn. */
export class FramedConn implements Conn {
  constructor(private readonly stream: DeferredConn, private readonly bc: BufferedConn) {}

  get localAddr(): Addr {
    return this.stream.localAddr;
  }
  get remoteAddr(): Addr {
    return this.stream.remoteAddr;
  }

  /** The next datagram (possibly empty); null when the stream ends. */
  async readDatagram(): Promise<Uint8Array | null> {
    await this.stream.ready();
    return await readFrame(this.bc);
  }

  read(p: Uint8Array): Promise<number | null> {
    return readDatagramInto(this, p);
  }

  /** Sends `p` as one frame (a single write, so frames never interleave). */
  async write(p: Uint8Array): Promise<number> {
    await writeAll(this.stream, encodeFrame(p));
    return p.length;
  }

  /** Datagrams have no half-close. */
  closeWrite(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    this.stream.close();
  }
}

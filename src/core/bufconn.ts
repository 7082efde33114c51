/**
 * A Conn with a read-ahead buffer for parsing handshakes: byte, exact-length and line reads,
 * and peeking. Once the handshake is done, `read` drains what is buffered and then passes
 * straight through to the wrapped Conn, so relaying through it costs one call.
 */
import { type Addr, type Conn } from "./conn.ts";
import { ProtocolError } from "./errors.ts";

const dec = new TextDecoder();
const EMPTY = new Uint8Array(0);

export class BufferedConn implements Conn {
  private buf: Uint8Array;
  private start = 0;
  private end = 0;
  private eof = false;

  constructor(readonly inner: Conn, initialSize = 512) {
    this.buf = new Uint8Array(initialSize);
  }

  get localAddr(): Addr {
    return this.inner.localAddr;
  }
  get remoteAddr(): Addr {
    return this.inner.remoteAddr;
  }

  /** Bytes read ahead and not yet consumed. */
  get buffered(): number {
    return this.end - this.start;
  }

  /** Reads more from the wrapped conn; false at end of stream. */
  private async fill(max: number): Promise<boolean> {
    if (this.eof) return false;
    if (this.buf.length === 0) this.buf = new Uint8Array(512);
    if (this.start > 0 && this.start === this.end) {
      this.start = this.end = 0;
    }
    if (this.end === this.buf.length) {
      const live = this.end - this.start;
      if (this.start > 0 && live < this.buf.length / 2) {
        this.buf.copyWithin(0, this.start, this.end);
      } else {
        if (this.buf.length >= max) {
          throw new ProtocolError(`input exceeds ${max} bytes`);
        }
        const nb = new Uint8Array(Math.min(max, this.buf.length * 2));
        nb.set(this.buf.subarray(this.start, this.end));
        this.buf = nb;
      }
      this.start = 0;
      this.end = live;
    }
    const n = await this.inner.read(this.buf.subarray(this.end));
    if (n === null) {
      this.eof = true;
      return false;
    }
    this.end += n;
    return true;
  }

  /** Ensures `n` bytes are buffered and returns a view of them without consuming. */
  async peek(n: number, max = 65536): Promise<Uint8Array> {
    while (this.end - this.start < n) {
      if (!(await this.fill(Math.max(max, n)))) {
        throw new ProtocolError(`unexpected end of stream (wanted ${n} bytes)`);
      }
    }
    return this.buf.subarray(this.start, this.start + n);
  }

  /** Returns at least one buffered byte without consuming; null at end of stream. */
  async peekSome(): Promise<Uint8Array | null> {
    if (this.end === this.start && !(await this.fill(65536))) return null;
    return this.buf.subarray(this.start, this.end);
  }

  async readByte(): Promise<number> {
    const v = await this.peek(1);
    this.start++;
    return v[0];
  }

  /** Reads exactly `n` bytes (a copy). Throws ProtocolError on a short stream. */
  async readFull(n: number): Promise<Uint8Array> {
    const v = await this.peek(n, n);
    const out = v.slice();
    this.start += n;
    return out;
  }

  /**
   * Reads one line ending in LF, without the CR/LF. Null when the stream ends before any byte.
   * Throws ProtocolError when the line is longer than `max` bytes.
   */
  async readLine(max = 65536): Promise<string | null> {
    let scanned = 0;
    for (;;) {
      const i = this.buf.subarray(this.start + scanned, this.end).indexOf(10);
      if (i >= 0) {
        const lineEnd = this.start + scanned + i;
        let contentEnd = lineEnd;
        if (contentEnd > this.start && this.buf[contentEnd - 1] === 13) contentEnd--;
        const s = dec.decode(this.buf.subarray(this.start, contentEnd));
        this.start = lineEnd + 1;
        return s;
      }
      scanned = this.end - this.start;
      if (scanned > max) throw new ProtocolError(`line longer than ${max} bytes`);
      if (!(await this.fill(max + 2))) {
        if (this.end === this.start) return null;
        throw new ProtocolError("unexpected end of stream inside a line");
      }
    }
  }

  /** Removes and returns everything buffered (possibly empty). */
  takeBuffered(): Uint8Array {
    const out = this.buf.slice(this.start, this.end);
    this.start = this.end = 0;
    return out;
  }

  read(p: Uint8Array): Promise<number | null> {
    if (this.end > this.start) {
      const n = Math.min(p.length, this.end - this.start);
      p.set(this.buf.subarray(this.start, this.start + n));
      this.start += n;
      return Promise.resolve(n);
    }
    if (this.buf.length) {
      // Reads past the handshake go straight to the wrapped conn; drop the buffer so idle
      // tunnels stay small (fill() allocates again if parsing resumes).
      this.buf = EMPTY;
      this.start = this.end = 0;
    }
    if (this.eof) return Promise.resolve(null);
    return this.inner.read(p);
  }
  write(p: Uint8Array): Promise<number> {
    return this.inner.write(p);
  }
  closeWrite(): Promise<void> {
    return this.inner.closeWrite();
  }
  close(): void {
    this.inner.close();
  }
}

/** Decodes bytes as UTF-8 (lossy). */
export function utf8(b: Uint8Array): string {
  return dec.decode(b);
}

/**
 * A WebSocket connection as a byte stream (`Conn`), as gost uses it: every `write` is sent as
 * binary frames, reads concatenate the payloads of data frames (message boundaries mean
 * nothing), pings are answered with pongs.
 *
 * End of stream: `closeWrite()` sends a Close frame and keeps reading; a Close frame (or the
 * transport's end at a frame boundary, as gost's CloseWrite gives) makes reads return null.
 * A Close received is not answered at once, so data may still flow the other way (half-close);
 * gost treats Close as the end of both directions, as it treats smux FIN.
 */
import { type Addr, closeQuietly, type Conn, writeAll } from "../../core/conn.ts";
import { ProtocolError } from "../../core/errors.ts";
import {
  MAX_HEADER,
  OP_BINARY,
  OP_CLOSE,
  OP_CONTINUATION,
  OP_PING,
  OP_PONG,
  OP_TEXT,
  unmask,
  writeFrameHeader,
} from "./frame.ts";

/** Options of a WebSocket stream. */
export interface WsConnOptions {
  /** true on the dialing side: frames sent are masked (RFC 6455 requires it of clients). */
  client: boolean;
  /** Size of the frame-header read buffer (`readBufferSize`). */
  readBufferSize?: number;
  /** Largest payload per frame sent; longer writes are split (`writeBufferSize`). */
  maxFramePayload?: number;
  /** Client keepalive: a Ping every `pingInterval` ms; no frame for twice that closes. */
  pingInterval?: number;
}

/** Header read-ahead (gorilla's default size); payload goes straight into the reader's buffer. */
const DEFAULT_READ_BUFFER = 4096;
/** Frames up to this size are built in a kept buffer; bigger ones in a fresh one (idle RSS). */
const KEPT_WRITE_BUFFER = 16 * 1024;
const DEFAULT_MAX_PAYLOAD = 1 << 20;
/** How long a closed conn waits for the peer's end of the closing handshake. */
const LINGER_MS = 5000;

export class WsConn implements Conn {
  private readonly rbuf: Uint8Array;
  private rs = 0;
  private re = 0;
  /** Payload bytes of the current data frame not yet read. */
  private left = 0;
  private mask: Uint8Array | undefined;
  private maskPos = 0;
  private eof = false;
  private closeSent = false;
  private closed = false;
  /** A read of the transport is in progress (a second one must not start beside it). */
  private reading = false;
  private writing: Promise<void> = Promise.resolve();
  private wbuf = new Uint8Array(0);
  private readonly maxPayload: number;
  private readonly keyBuf = new Uint8Array(4);
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private seen = true;

  constructor(private readonly inner: Conn, private readonly opts: WsConnOptions) {
    this.rbuf = new Uint8Array(Math.max(opts.readBufferSize || DEFAULT_READ_BUFFER, 256));
    this.maxPayload = opts.maxFramePayload || DEFAULT_MAX_PAYLOAD;
    if (opts.pingInterval && opts.pingInterval > 0) {
      let ticks = 0;
      this.pingTimer = setInterval(() => {
        // Something must have arrived within two intervals (a pong at least).
        if (++ticks >= 2) {
          if (!this.seen) {
            this.close();
            return;
          }
          this.seen = false;
          ticks = 0;
        }
        this.sendFrame(OP_PING, new Uint8Array(0)).catch(() => this.close());
      }, opts.pingInterval);
    }
  }

  get localAddr(): Addr {
    return this.inner.localAddr;
  }
  get remoteAddr(): Addr {
    return this.inner.remoteAddr;
  }

  // ---- reading ----

  /** Ensures `n` buffered bytes; false at a clean end of stream with nothing buffered. */
  private async need(n: number): Promise<boolean> {
    if (this.rs === this.re) this.rs = this.re = 0;
    while (this.re - this.rs < n) {
      if (this.rbuf.length - this.re < n - (this.re - this.rs)) {
        this.rbuf.copyWithin(0, this.rs, this.re);
        this.re -= this.rs;
        this.rs = 0;
      }
      const got = await this.readInner(this.rbuf.subarray(this.re));
      if (got === null) {
        if (this.re === this.rs) return false;
        throw new ProtocolError("ws: connection ended inside a frame");
      }
      this.re += got;
    }
    return true;
  }

  /** A read of the transport, marked so close() knows one is in progress. */
  private async readInner(p: Uint8Array): Promise<number | null> {
    this.reading = true;
    try {
      return await this.inner.read(p);
    } finally {
      this.reading = false;
    }
  }

  async read(p: Uint8Array): Promise<number | null> {
    for (;;) {
      if (this.closed) throw new Deno.errors.BadResource("ws connection is closed");
      if (this.left > 0) return await this.readPayload(p);
      if (this.eof) return null;
      if (!(await this.nextFrame())) {
        this.eof = true;
        return null;
      }
    }
  }

  /** Reads payload of the current data frame into `p`. */
  private async readPayload(p: Uint8Array): Promise<number> {
    if (p.length === 0) return 0;
    let n: number;
    const max = Math.min(p.length, this.left);
    if (this.re > this.rs) {
      n = Math.min(max, this.re - this.rs);
      p.set(this.rbuf.subarray(this.rs, this.rs + n));
      this.rs += n;
    } else {
      // Nothing buffered: read straight into the caller's buffer, never past this frame.
      const got = await this.readInner(p.subarray(0, max));
      if (got === null) throw new ProtocolError("ws: connection ended inside a frame");
      n = got;
    }
    if (this.mask) this.maskPos = unmask(p.subarray(0, n), this.mask, this.maskPos);
    this.left -= n;
    this.seen = true;
    return n;
  }

  /**
   * Parses the next frame header and handles control frames. Returns false at the end of the
   * stream (Close frame, or the transport's end between frames).
   */
  private async nextFrame(): Promise<boolean> {
    if (!(await this.need(2))) return false;
    const b0 = this.rbuf[this.rs];
    const b1 = this.rbuf[this.rs + 1];
    const opcode = b0 & 0x0f;
    if (b0 & 0x70) throw new ProtocolError("ws: frame with RSV bits set (no extension agreed)");
    const masked = (b1 & 0x80) !== 0;
    let len = b1 & 0x7f;
    const hlen = 2 + (len === 126 ? 2 : len === 127 ? 8 : 0) + (masked ? 4 : 0);
    if (!(await this.need(hlen))) throw new ProtocolError("ws: truncated frame header");
    let off = this.rs + 2;
    const dv = new DataView(this.rbuf.buffer, this.rbuf.byteOffset);
    if (len === 126) {
      len = dv.getUint16(off);
      off += 2;
    } else if (len === 127) {
      const hi = dv.getUint32(off);
      if (hi > 0x1fffff) throw new ProtocolError("ws: frame length out of range");
      len = hi * 2 ** 32 + dv.getUint32(off + 4);
      off += 8;
    }
    let mask: Uint8Array | undefined;
    if (masked) {
      mask = this.rbuf.slice(off, off + 4);
      off += 4;
    }
    this.rs = off;
    this.seen = true;
    switch (opcode) {
      case OP_BINARY:
      case OP_TEXT:
      case OP_CONTINUATION:
        this.left = len;
        this.mask = mask;
        this.maskPos = 0;
        return true;
      case OP_CLOSE:
      case OP_PING:
      case OP_PONG: {
        if (len > 125 || !(b0 & 0x80)) {
          throw new ProtocolError(`ws: bad control frame (opcode ${opcode}, ${len} bytes)`);
        }
        if (len > 0 && !(await this.need(len))) throw new ProtocolError("ws: truncated frame");
        const payload = this.rbuf.slice(this.rs, this.rs + len);
        this.rs += len;
        if (mask) unmask(payload, mask, 0);
        if (opcode === OP_CLOSE) return false;
        if (opcode === OP_PING && !this.closeSent) {
          this.sendFrame(OP_PONG, payload).catch(() => {}); // a broken socket shows on read
        }
        return true;
      }
      default:
        throw new ProtocolError(`ws: unknown opcode 0x${opcode.toString(16)}`);
    }
  }

  // ---- writing ----

  async write(p: Uint8Array): Promise<number> {
    if (this.closed) throw new Deno.errors.BadResource("ws connection is closed");
    if (this.closeSent) throw new Deno.errors.BrokenPipe("ws: write after closeWrite");
    for (let off = 0; off < p.length; off += this.maxPayload) {
      await this.sendFrame(OP_BINARY, p.subarray(off, off + this.maxPayload));
    }
    return p.length;
  }

  /** Sends one frame; frames from the reader (pong) and writers never interleave. */
  private sendFrame(opcode: number, payload: Uint8Array): Promise<void> {
    const run = this.writing.then(() => this.writeFrame(opcode, payload));
    this.writing = run.catch(() => {});
    return run;
  }

  private async writeFrame(opcode: number, payload: Uint8Array): Promise<void> {
    const need = MAX_HEADER + payload.length;
    let out = this.wbuf;
    if (out.length < need) {
      out = new Uint8Array(need);
      if (need <= KEPT_WRITE_BUFFER) this.wbuf = out;
    }
    let key: Uint8Array | undefined;
    if (this.opts.client) {
      key = this.keyBuf;
      crypto.getRandomValues(key);
    }
    const h = writeFrameHeader(out, opcode, payload.length, key);
    const body = out.subarray(h, h + payload.length);
    body.set(payload);
    if (key) unmask(body, key, 0);
    await writeAll(this.inner, out.subarray(0, h + payload.length));
  }

  /** Sends a Close frame (status 1000); reading goes on until the peer's end. */
  async closeWrite(): Promise<void> {
    if (this.closed || this.closeSent) return;
    this.closeSent = true;
    await this.sendFrame(OP_CLOSE, new Uint8Array([0x03, 0xe8]));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
    if (!this.closeSent) {
      this.closeSent = true;
      // A polite Close frame when the socket takes it at once; the socket goes regardless.
      const t = setTimeout(() => closeQuietly(this.inner), 1000);
      this.sendFrame(OP_CLOSE, new Uint8Array([0x03, 0xe8])).finally(() => {
        clearTimeout(t);
        closeQuietly(this.inner);
      }).catch(() => {});
      return;
    }
    if (!this.eof && !this.reading) {
      this.linger();
      return;
    }
    closeQuietly(this.inner);
  }

  /**
   * Our Close went out but the peer's has not been read (a layer above stopped reading at its
   * own end, e.g. TLS close_notify): read and drop what is left until the peer's end, bounded.
   * Closing a socket with unread bytes resets it, and the reset throws away data the peer has
   * not read yet (RFC 6455 §7.1.1: the server closes TCP after the closing handshake).
   */
  private linger(): void {
    const t = setTimeout(() => closeQuietly(this.inner), LINGER_MS);
    (async () => {
      const sink = new Uint8Array(4096);
      try {
        while ((await this.inner.read(sink)) !== null) { /* discard */ }
      } catch { /* reset or closed: nothing left to protect */ }
    })().finally(() => {
      clearTimeout(t);
      closeQuietly(this.inner);
    });
  }
}

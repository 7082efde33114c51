/**
 * The Shadowsocks AEAD stream (SIP004): each direction starts with a random salt, then carries
 * chunks `[sealed 2-byte length + tag][sealed payload + tag]` with a 12-byte little-endian nonce
 * counted up after every seal/open. `SsStreamConn` wraps a Conn with it; writes are split into
 * chunks of at most 0x3FFF bytes and sent in one write, reads decrypt straight into the
 * caller's buffer when it is big enough.
 *
 * A chunk that fails authentication throws `SsAuthError` (the handler then reads and discards
 * until the client gives up, as shadowsocks-rust does, so a prober learns nothing).
 */
import type { Addr, Conn } from "../../core/conn.ts";
import { writeAll } from "../../core/conn.ts";
import { ProtocolError } from "../../core/errors.ts";
import { type Aead, newAead, TAG_SIZE } from "../../crypto/aead.ts";
import { aeadSubkey, type SsCipher } from "./cipher.ts";

/** Largest read-ahead of a busy stream. */
const MAX_READ_AHEAD = 256 * 1024;

/** Largest SIP004 chunk payload. */
export const MAX_CHUNK = 0x3fff;

/**
 * Sealed-output buffers big enough for one relay write (256 KiB of payload, its chunk overhead
 * and a salt), shared by all streams: a bulk stream borrows one per write, an idle one holds
 * none. (Allocating one per write cost ~10% of a pair's CPU in page faults and zero-filling.)
 */
const OUT_BIG = 256 * 1024 + 4096;
const outPool: Uint8Array[] = [];
const OUT_POOL_MAX = 16;
/** Writes up to this size seal into the stream's own small buffer. */
const OUT_SMALL = 4096;

/** A chunk or header that did not authenticate (wrong key, tampering, or a probe). */
export class SsAuthError extends ProtocolError {
  override name = "SsAuthError";
}

/** 12-byte little-endian counter nonce. */
export class Nonce {
  readonly bytes = new Uint8Array(12);
  /** Adds one (after every seal/open). */
  next(): void {
    // (not `++b[i] !== 0`: that expression is 256, not the stored 0, when a byte wraps)
    for (let i = 0; i < 12; i++) {
      this.bytes[i]++;
      if (this.bytes[i] !== 0) break;
    }
  }
}

/** Seals chunks for one direction. */
export class ChunkSealer {
  private readonly nonce = new Nonce();
  private readonly len = new Uint8Array(2);
  constructor(private readonly aead: Aead, private readonly maxChunk: number) {}

  /** Bytes `sealInto` writes for `n` payload bytes. */
  size(n: number): number {
    const chunks = Math.max(1, Math.ceil(n / this.maxChunk));
    return n + chunks * (2 + 2 * TAG_SIZE);
  }

  /** Seals `p` as chunks into `out` at `off`; returns the end offset. */
  sealInto(p: Uint8Array, out: Uint8Array, off: number): number {
    for (let i = 0; i < p.length || (i === 0 && p.length === 0); i += this.maxChunk) {
      const chunk = p.subarray(i, Math.min(p.length, i + this.maxChunk));
      this.len[0] = chunk.length >> 8;
      this.len[1] = chunk.length & 0xff;
      this.aead.seal(this.nonce.bytes, this.len, out.subarray(off, off + 2 + TAG_SIZE));
      this.nonce.next();
      off += 2 + TAG_SIZE;
      this.aead.seal(this.nonce.bytes, chunk, out.subarray(off, off + chunk.length + TAG_SIZE));
      this.nonce.next();
      off += chunk.length + TAG_SIZE;
      if (p.length === 0) break;
    }
    return off;
  }

  /** Seals `p` alone (no chunk framing), as SIP022 headers are sealed. */
  sealRaw(p: Uint8Array, out: Uint8Array, off: number): number {
    this.aead.seal(this.nonce.bytes, p, out.subarray(off, off + p.length + TAG_SIZE));
    this.nonce.next();
    return off + p.length + TAG_SIZE;
  }
}

/**
 * Reads the inner conn into a growing buffer and opens what arrives: raw sealed blocks of a
 * known size, or length-prefixed chunks.
 */
export class ChunkReader {
  private buf = new Uint8Array(4096);
  private readAhead = 4096;
  private start = 0;
  private end = 0;
  private eof = false;
  private aead?: Aead;
  private readonly nonce = new Nonce();
  private readonly lenOut = new Uint8Array(2);
  /** Decrypted bytes not yet returned. */
  private pending: Uint8Array = new Uint8Array(0);
  /** The length of the chunk whose header was opened but whose payload is not read yet. */
  private chunkLen = -1;

  constructor(private readonly inner: Conn, private readonly maxChunk: number) {}

  /** Sets the opening AEAD (once the salt is known). */
  setAead(a: Aead): void {
    this.aead = a;
  }

  /** Ensures `n` bytes are buffered; false at a clean end of stream before any of them. */
  async need(n: number): Promise<boolean> {
    while (this.end - this.start < n) {
      if (this.eof) {
        if (this.end === this.start) return false;
        throw new ProtocolError("shadowsocks: stream ended inside a chunk");
      }
      const live = this.end - this.start;
      // Room for what is missing plus read-ahead, so bulk transfers read big blocks (fewer
      // syscalls and wake-ups) while an idle or chatty stream keeps a small buffer.
      const room = Math.max(n - live, this.readAhead);
      if (this.buf.length - this.end < room) {
        const size = Math.max(this.buf.length, live + room);
        const nb = size > this.buf.length ? new Uint8Array(size) : this.buf;
        if (nb === this.buf) nb.copyWithin(0, this.start, this.end);
        else nb.set(this.buf.subarray(this.start, this.end));
        this.buf = nb;
        this.start = 0;
        this.end = live;
      }
      const free = this.buf.length - this.end;
      const r = await this.inner.read(this.buf.subarray(this.end));
      if (r === null) this.eof = true;
      else {
        this.end += r;
        // A read that filled all the room means more is waiting: read bigger next time.
        if (r === free && this.readAhead < MAX_READ_AHEAD) this.readAhead *= 2;
      }
    }
    return true;
  }

  /** Takes `n` buffered bytes (a view, valid until the next read). */
  take(n: number): Uint8Array {
    const v = this.buf.subarray(this.start, this.start + n);
    this.start += n;
    return v;
  }

  /** Opens a raw sealed block of `plainLen` bytes (+ tag); null at a clean end of stream. */
  async openRaw(plainLen: number): Promise<Uint8Array | null> {
    if (!(await this.need(plainLen + TAG_SIZE))) return null;
    const out = new Uint8Array(plainLen);
    if (!this.aead!.open(this.nonce.bytes, this.take(plainLen + TAG_SIZE), out)) {
      throw new SsAuthError("shadowsocks: header authentication failed");
    }
    this.nonce.next();
    return out;
  }

  /** Makes `b` the next bytes `read` returns (a SIP022 header's initial payload). */
  unread(b: Uint8Array): void {
    this.pending = b;
  }

  /**
   * Reads decrypted payload into `p`; null at a clean end of stream. Every whole chunk already
   * buffered that fits goes into one read, so a bulk stream is written on in large blocks
   * rather than one 16 KiB chunk per write.
   */
  async read(p: Uint8Array): Promise<number | null> {
    if (this.pending.length) {
      const n = Math.min(p.length, this.pending.length);
      p.set(this.pending.subarray(0, n));
      this.pending = this.pending.subarray(n);
      return n;
    }
    let got = 0;
    for (;;) {
      if (this.chunkLen < 0) {
        if (got > 0 && this.end - this.start < 2 + TAG_SIZE) return got;
        if (!(await this.need(2 + TAG_SIZE))) return null;
        if (!this.aead!.open(this.nonce.bytes, this.take(2 + TAG_SIZE), this.lenOut)) {
          throw new SsAuthError("shadowsocks: chunk authentication failed");
        }
        this.nonce.next();
        const len = (this.lenOut[0] << 8) | this.lenOut[1];
        if (len > this.maxChunk) {
          throw new SsAuthError(`shadowsocks: chunk length ${len} over ${this.maxChunk}`);
        }
        this.chunkLen = len;
      }
      const len = this.chunkLen;
      if (got > 0 && (this.end - this.start < len + TAG_SIZE || p.length - got < len)) return got;
      if (!(await this.need(len + TAG_SIZE))) {
        throw new ProtocolError("shadowsocks: stream ended inside a chunk");
      }
      const sealed = this.take(len + TAG_SIZE);
      this.chunkLen = -1;
      // An empty chunk carries nothing (SIP004 never sends one, but it is harmless).
      const direct = p.length - got >= len;
      const out = direct ? (got ? p.subarray(got) : p) : new Uint8Array(len);
      if (!this.aead!.open(this.nonce.bytes, sealed, out)) {
        throw new SsAuthError("shadowsocks: chunk authentication failed");
      }
      this.nonce.next();
      if (direct) {
        got += len;
        continue;
      }
      p.set(out.subarray(0, p.length));
      this.pending = out.subarray(p.length);
      return p.length;
    }
  }
}

/**
 * A Conn speaking SIP004 over `inner`. `onSalt` (server side) sees the peer's salt before it is
 * used, so a replayed one can be refused.
 */
export class SsStreamConn implements Conn {
  private sealer?: ChunkSealer;
  private readonly reader: ChunkReader;
  private saltRead = false;
  private wbuf = new Uint8Array(0);
  private writing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly inner: Conn,
    private readonly cipher: SsCipher,
    private readonly onSalt?: (salt: Uint8Array) => void,
  ) {
    this.reader = new ChunkReader(inner, MAX_CHUNK);
  }

  get localAddr(): Addr {
    return this.inner.localAddr;
  }
  get remoteAddr(): Addr {
    return this.inner.remoteAddr;
  }

  /** Our salt, made on the first write. */
  private startWriting(): { salt: Uint8Array; sealer: ChunkSealer } {
    const m = this.cipher.method;
    const salt = crypto.getRandomValues(new Uint8Array(m.saltSize));
    const sealer = new ChunkSealer(
      newAead(m.algo!, aeadSubkey(this.cipher.key, salt), true),
      MAX_CHUNK,
    );
    this.sealer = sealer;
    return { salt, sealer };
  }

  write(p: Uint8Array): Promise<number> {
    const w = this.writing.then(() => this.writeNow(p));
    this.writing = w.catch(() => {});
    return w;
  }

  private async writeNow(p: Uint8Array): Promise<number> {
    let off = 0, salt: Uint8Array | undefined, sealer = this.sealer;
    if (!sealer) ({ salt, sealer } = this.startWriting());
    const need = (salt?.length ?? 0) + sealer.size(p.length);
    let out: Uint8Array, pooled = false;
    if (need <= OUT_SMALL) {
      out = this.wbuf.length ? this.wbuf : (this.wbuf = new Uint8Array(OUT_SMALL));
    } else if (need <= OUT_BIG) {
      out = outPool.pop() ?? new Uint8Array(OUT_BIG);
      pooled = true;
    } else out = new Uint8Array(need);
    try {
      if (salt) {
        out.set(salt);
        off = salt.length;
      }
      off = sealer.sealInto(p, out, off);
      await writeAll(this.inner, out.subarray(0, off));
    } finally {
      if (pooled && outPool.length < OUT_POOL_MAX) outPool.push(out);
    }
    return p.length;
  }

  async read(p: Uint8Array): Promise<number | null> {
    if (!this.saltRead) {
      const m = this.cipher.method;
      if (!(await this.reader.need(m.saltSize))) return null;
      const salt = this.reader.take(m.saltSize).slice();
      this.onSalt?.(salt);
      this.reader.setAead(newAead(m.algo!, aeadSubkey(this.cipher.key, salt), false));
      this.saltRead = true;
    }
    return this.reader.read(p);
  }

  closeWrite(): Promise<void> {
    return this.writing.then(() => this.inner.closeWrite());
  }

  close(): void {
    this.inner.close();
  }
}

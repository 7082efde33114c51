/**
 * Shadowsocks 2022 streams (SIP022): BLAKE3-derived session subkeys, a sealed fixed header with
 * a timestamp (checked within ±30 s) and, for the client, a sealed variable header (address,
 * padding, initial payload); the server's first header repeats the client's salt, which the
 * client checks. Chunks then carry up to 65535 bytes. Salts are remembered by the server's
 * SaltFilter; a failed header makes the handler read and discard (no distinguishable reply).
 *
 * SIP023 multi-user identity headers are not implemented: several `:`-separated PSKs fail at
 * start-up.
 */
import { blake3 } from "@noble/hashes/blake3";
import { type Addr, type Conn, writeAll } from "../../core/conn.ts";
import { newAead, TAG_SIZE } from "../../crypto/aead.ts";
import { ConfigError } from "../../core/errors.ts";
import { decodeAddr } from "../socks/addr.ts";
import type { SsCipher } from "./cipher.ts";
import { ChunkReader, ChunkSealer, SsAuthError } from "./stream.ts";

/** SIP022 chunk payload limit. */
export const MAX_CHUNK_2022 = 0xffff;
/** Allowed clock difference (s). */
const MAX_SKEW = 30;
const SUBKEY_CONTEXT = new TextEncoder().encode("shadowsocks 2022 session subkey");
const TYPE_REQUEST = 0;
const TYPE_RESPONSE = 1;
/** When a write has not come this long after connect, the request goes out with padding only. */
export const HEADER_FLUSH_MS = 100;

/** BLAKE3 derive_key("shadowsocks 2022 session subkey", psk ‖ salt). */
export function sessionSubkey(psk: Uint8Array, salt: Uint8Array): Uint8Array {
  const m = new Uint8Array(psk.length + salt.length);
  m.set(psk);
  m.set(salt, psk.length);
  return blake3(m, { context: SUBKEY_CONTEXT, dkLen: psk.length });
}

/** Rejects SIP023 identity chains (not implemented) at start-up. */
export function check2022(c: SsCipher, where: string): void {
  if (c.identityKeys.length) {
    throw new ConfigError(
      `${where}: shadowsocks 2022 multi-user keys (iPSK:uPSK, SIP023) are not supported yet`,
    );
  }
}

/** Unix time in seconds, as SIP022 headers carry it. */
export function now(): number {
  return Math.floor(Date.now() / 1000);
}

/** Refuses a SIP022 header timestamp more than 30 s away from our clock. */
export function checkTime(ts: number): void {
  if (Math.abs(now() - ts) > MAX_SKEW) {
    throw new SsAuthError(`shadowsocks 2022: timestamp ${ts} is more than ${MAX_SKEW} s off`);
  }
}

/** Common read side: the peer's salt, then its headers (per side), then chunks. */
abstract class Ss2022Conn implements Conn {
  protected readonly reader: ChunkReader;
  protected sealer?: ChunkSealer;
  private started = false;
  private writing: Promise<unknown> = Promise.resolve();

  constructor(protected readonly inner: Conn, protected readonly cipher: SsCipher) {
    this.reader = new ChunkReader(inner, MAX_CHUNK_2022);
  }

  get localAddr(): Addr {
    return this.inner.localAddr;
  }
  get remoteAddr(): Addr {
    return this.inner.remoteAddr;
  }

  protected newSealer(salt: Uint8Array): ChunkSealer {
    const m = this.cipher.method;
    return new ChunkSealer(
      newAead(m.algo!, sessionSubkey(this.cipher.key, salt), true),
      MAX_CHUNK_2022,
    );
  }

  /** Reads the peer's salt and opens its headers; false at a clean end of stream. */
  protected abstract readHeaders(): Promise<boolean>;

  /** The first write: salt and headers, with `p` as initial payload. */
  protected abstract firstWrite(p: Uint8Array): Promise<void>;

  async read(p: Uint8Array): Promise<number | null> {
    if (!this.started) {
      this.started = true;
      if (!(await this.readHeaders())) return null;
    }
    return this.reader.read(p);
  }

  write(p: Uint8Array): Promise<number> {
    const w = this.writing.then(async () => {
      if (!this.sealer) await this.firstWrite(p);
      else {
        const out = new Uint8Array(this.sealer.size(p.length));
        await writeAll(this.inner, out.subarray(0, this.sealer.sealInto(p, out, 0)));
      }
      return p.length;
    });
    this.writing = w.catch(() => {});
    return w;
  }

  /** Lets a write queued behind the headers go after them. */
  protected queue(f: () => Promise<void>): Promise<void> {
    const w = this.writing.then(f);
    this.writing = w.catch(() => {});
    return w;
  }

  closeWrite(): Promise<void> {
    return this.writing.then(() => this.inner.closeWrite());
  }

  close(): void {
    this.inner.close();
  }
}

/** Server side: request headers in, response header with the first write. */
export class Ss2022ServerConn extends Ss2022Conn {
  private requestSalt?: Uint8Array;

  constructor(inner: Conn, cipher: SsCipher, private readonly onSalt: (s: Uint8Array) => void) {
    super(inner, cipher);
  }

  protected async readHeaders(): Promise<boolean> {
    const m = this.cipher.method;
    if (!(await this.reader.need(m.saltSize))) return false;
    const salt = this.reader.take(m.saltSize).slice();
    this.onSalt(salt);
    this.requestSalt = salt;
    this.reader.setAead(newAead(m.algo!, sessionSubkey(this.cipher.key, salt), false));
    const fixed = await this.reader.openRaw(11);
    if (!fixed) throw new SsAuthError("shadowsocks 2022: stream ended in the request header");
    const v = new DataView(fixed.buffer);
    if (fixed[0] !== TYPE_REQUEST) {
      throw new SsAuthError(`shadowsocks 2022: header type ${fixed[0]}`);
    }
    checkTime(Number(v.getBigUint64(1)));
    const varLen = v.getUint16(9);
    const vh = await this.reader.openRaw(varLen);
    if (!vh) throw new SsAuthError("shadowsocks 2022: stream ended in the request header");
    // address · padding length · padding · initial payload; the handler reads the address.
    const { next } = decodeAddr(vh, 0);
    if (next + 2 > vh.length) throw new SsAuthError("shadowsocks 2022: truncated request header");
    const pad = (vh[next] << 8) | vh[next + 1];
    const payloadAt = next + 2 + pad;
    if (payloadAt > vh.length || pad > 900) {
      throw new SsAuthError(`shadowsocks 2022: bad padding length ${pad}`);
    }
    if (pad === 0 && payloadAt === vh.length) {
      throw new SsAuthError("shadowsocks 2022: request with neither payload nor padding");
    }
    const out = new Uint8Array(next + vh.length - payloadAt);
    out.set(vh.subarray(0, next));
    out.set(vh.subarray(payloadAt), next);
    this.reader.unread(out);
    return true;
  }

  protected async firstWrite(p: Uint8Array): Promise<void> {
    const m = this.cipher.method;
    const salt = crypto.getRandomValues(new Uint8Array(m.saltSize));
    const sealer = this.newSealer(salt);
    const first = p.subarray(0, MAX_CHUNK_2022);
    const fixed = new Uint8Array(1 + 8 + m.saltSize + 2);
    const v = new DataView(fixed.buffer);
    fixed[0] = TYPE_RESPONSE;
    v.setBigUint64(1, BigInt(now()));
    fixed.set(this.requestSalt ?? new Uint8Array(m.saltSize), 9);
    v.setUint16(9 + m.saltSize, first.length);
    const rest = p.subarray(first.length);
    const out = new Uint8Array(
      salt.length + fixed.length + first.length + 2 * TAG_SIZE +
        (rest.length ? sealer.size(rest.length) : 0),
    );
    out.set(salt);
    let off = sealer.sealRaw(fixed, out, salt.length);
    off = sealer.sealRaw(first, out, off);
    if (rest.length) off = sealer.sealInto(rest, out, off);
    this.sealer = sealer;
    await writeAll(this.inner, out.subarray(0, off));
  }
}

/** Client side: the request (with the target address) goes with the first write. */
export class Ss2022ClientConn extends Ss2022Conn {
  private salt?: Uint8Array;
  private timer?: ReturnType<typeof setTimeout>;

  constructor(inner: Conn, cipher: SsCipher, private readonly target: Uint8Array) {
    super(inner, cipher);
    // A server that speaks first must not wait for our first write: send the request alone.
    this.timer = setTimeout(() => {
      if (!this.sealer) {
        void this.queue(() => this.sealer ? Promise.resolve() : this.firstWrite(new Uint8Array(0)))
          .catch(() => {});
      }
    }, HEADER_FLUSH_MS);
  }

  protected async firstWrite(p: Uint8Array): Promise<void> {
    clearTimeout(this.timer);
    const m = this.cipher.method;
    const salt = this.salt = crypto.getRandomValues(new Uint8Array(m.saltSize));
    const sealer = this.newSealer(salt);
    const pad = p.length === 0 ? 1 + Math.floor(Math.random() * 900) : 0;
    // The variable header holds at most one chunk's worth; the rest follows as chunks.
    const room = MAX_CHUNK_2022 - this.target.length - 2 - pad;
    const first = p.subarray(0, Math.max(0, room));
    const vh = new Uint8Array(this.target.length + 2 + pad + first.length);
    vh.set(this.target);
    vh[this.target.length] = pad >> 8;
    vh[this.target.length + 1] = pad & 0xff;
    crypto.getRandomValues(vh.subarray(this.target.length + 2, this.target.length + 2 + pad));
    vh.set(first, this.target.length + 2 + pad);
    const fixed = new Uint8Array(11);
    const v = new DataView(fixed.buffer);
    fixed[0] = TYPE_REQUEST;
    v.setBigUint64(1, BigInt(now()));
    v.setUint16(9, vh.length);
    const rest = p.subarray(first.length);
    const out = new Uint8Array(
      salt.length + fixed.length + vh.length + 2 * TAG_SIZE +
        (rest.length ? sealer.size(rest.length) : 0),
    );
    out.set(salt);
    let off = sealer.sealRaw(fixed, out, salt.length);
    off = sealer.sealRaw(vh, out, off);
    if (rest.length) off = sealer.sealInto(rest, out, off);
    this.sealer = sealer;
    await writeAll(this.inner, out.subarray(0, off));
  }

  protected async readHeaders(): Promise<boolean> {
    const m = this.cipher.method;
    if (!(await this.reader.need(m.saltSize))) return false;
    const salt = this.reader.take(m.saltSize).slice();
    this.reader.setAead(newAead(m.algo!, sessionSubkey(this.cipher.key, salt), false));
    const fixed = await this.reader.openRaw(1 + 8 + m.saltSize + 2);
    if (!fixed) throw new SsAuthError("shadowsocks 2022: stream ended in the response header");
    const v = new DataView(fixed.buffer);
    if (fixed[0] !== TYPE_RESPONSE) {
      throw new SsAuthError(`shadowsocks 2022: header type ${fixed[0]}`);
    }
    checkTime(Number(v.getBigUint64(1)));
    const echoed = fixed.subarray(9, 9 + m.saltSize);
    if (!this.salt || echoed.some((b, i) => b !== this.salt![i])) {
      throw new SsAuthError("shadowsocks 2022: the response is not for our request (salt differs)");
    }
    const firstLen = v.getUint16(9 + m.saltSize);
    const first = await this.reader.openRaw(firstLen);
    if (!first) throw new SsAuthError("shadowsocks 2022: stream ended in the response");
    this.reader.unread(first);
    return true;
  }

  override close(): void {
    clearTimeout(this.timer);
    super.close();
  }
}

/**
 * Shadowsocks 2022 UDP packets (SIP022 §3.2, §4.1): session-based, with full replay protection.
 *
 * AES methods: `AES-ECB(PSK, session ID ‖ packet ID) ‖ AEAD(subkey, nonce = header[4..16], body)`,
 * the subkey BLAKE3-derived from `PSK ‖ session ID` (cached per session). ChaCha method:
 * `nonce(24) ‖ XChaCha20-Poly1305(PSK, nonce, session ID ‖ packet ID ‖ body)`.
 * Body: type (0 from clients, 1 from servers) · timestamp (±30 s) · [the client's session ID,
 * in server packets] · padding length · padding · SOCKS address · payload.
 *
 * A client session (`Ss2022UdpClient`) has a random session ID and counts its packets from 0;
 * the server (`Ss2022UdpServer`) keys sessions by the client's session ID, answers each with its
 * own session ID, and both sides drop a packet ID seen before or older than the sliding window.
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { xchacha20poly1305 } from "@noble/ciphers/chacha";
import { type Aead, newAead, TAG_SIZE } from "../../crypto/aead.ts";
import { decodeAddr, type SocksAddr } from "../socks/addr.ts";
import type { SsCipher } from "./cipher.ts";
import { checkTime, now, sessionSubkey } from "./ss2022.ts";
import { SsAuthError } from "./stream.ts";

const TYPE_CLIENT = 0;
const TYPE_SERVER = 1;
/** Packet IDs accepted behind the highest one seen (WireGuard uses 2048 too). */
const WINDOW = 2048;
/** Server sessions idle this long are forgotten (SIP022: at least the 60 s NAT timeout). */
const SESSION_IDLE_MS = 5 * 60_000;
const XNONCE = 24;

/** Sliding-window filter of a peer's packet IDs (RFC 6479 style, one bit per ID). */
export class ReplayWindow {
  private top = -1;
  private readonly bits = new Uint32Array(WINDOW / 32);

  /** Records `id`; false when it was seen before or is too old. */
  accept(id: number): boolean {
    const n = this.bits.length;
    if (id > this.top) {
      // Clear the words the window slides onto (those after the current top's word).
      const from = this.top < 0 ? 0 : Math.floor(this.top / 32) + 1, to = Math.floor(id / 32);
      for (let w = from; w <= to && w - from < n; w++) this.bits[w % n] = 0;
      this.top = id;
    } else if (this.top - id >= WINDOW - 32) return false;
    const w = Math.floor(id / 32) % n, m = 1 << (id % 32);
    if (this.bits[w] & m) return false;
    this.bits[w] |= m;
    return true;
  }
}

/** What one opened packet carries. */
export interface Opened2022 {
  sessionId: Uint8Array;
  packetId: number;
  /** The body after type and timestamp (server packets: from the client session ID on). */
  body: Uint8Array;
}

/** Seals and opens the outer layer (separate header or nonce) of one method. */
interface Outer {
  seal(sessionId: Uint8Array, packetId: number, body: Uint8Array): Uint8Array;
  open(packet: Uint8Array): Opened2022;
}

function writeU64(b: Uint8Array, at: number, v: number): void {
  const dv = new DataView(b.buffer, b.byteOffset);
  dv.setUint32(at, Math.floor(v / 0x100000000));
  dv.setUint32(at + 4, v >>> 0);
}

function readU64(b: Uint8Array, at: number): number {
  const dv = new DataView(b.buffer, b.byteOffset);
  const hi = dv.getUint32(at);
  if (hi >= 0x200000) throw new SsAuthError("shadowsocks 2022: packet ID out of range");
  return hi * 0x100000000 + dv.getUint32(at + 4);
}

/** AES methods: ECB-sealed separate header, AES-GCM body under a per-session subkey. */
class AesOuter implements Outer {
  private readonly enc;
  private readonly dec;
  /** Body AEADs by session ID (ours to seal, the peer's to open); small, pruned by age. */
  private readonly sealers = new Map<string, Aead>();
  private readonly openers = new Map<string, Aead>();

  constructor(private readonly c: SsCipher) {
    const ecb = c.method.keySize === 16 ? "aes-128-ecb" : "aes-256-ecb";
    this.enc = createCipheriv(ecb, c.key, null).setAutoPadding(false);
    this.dec = createDecipheriv(ecb, c.key, null).setAutoPadding(false);
  }

  /** The body AEAD of session `id`: cached, except an opener that has not opened anything. */
  private aead(map: Map<string, Aead>, id: Uint8Array, encrypt: boolean): [Aead, string | null] {
    const k = String.fromCharCode(...id);
    const a = map.get(k);
    if (a) return [a, null];
    return [newAead(this.c.method.algo!, sessionSubkey(this.c.key, id), encrypt), k];
  }

  private keep(map: Map<string, Aead>, k: string, a: Aead): void {
    if (map.size >= 4096) {
      for (const old of map.values()) old.free();
      map.clear();
    }
    map.set(k, a);
  }

  seal(sessionId: Uint8Array, packetId: number, body: Uint8Array): Uint8Array {
    const header = new Uint8Array(16);
    header.set(sessionId);
    writeU64(header, 8, packetId);
    const out = new Uint8Array(16 + body.length + TAG_SIZE);
    const [a, fresh] = this.aead(this.sealers, sessionId, true);
    if (fresh) this.keep(this.sealers, fresh, a);
    a.seal(header.subarray(4), body, out.subarray(16));
    out.set(this.enc.update(header));
    return out;
  }

  open(packet: Uint8Array): Opened2022 {
    if (packet.length < 16 + TAG_SIZE) {
      throw new SsAuthError(`shadowsocks 2022: ${packet.length}-byte packet is too short`);
    }
    const header = new Uint8Array(this.dec.update(packet.subarray(0, 16)));
    const sessionId = header.slice(0, 8);
    const body = new Uint8Array(packet.length - 16 - TAG_SIZE);
    const [a, fresh] = this.aead(this.openers, sessionId, false);
    if (!a.open(header.subarray(4), packet.subarray(16), body)) {
      if (fresh) a.free();
      throw new SsAuthError("shadowsocks 2022: packet authentication failed");
    }
    if (fresh) this.keep(this.openers, fresh, a);
    return { sessionId, packetId: readU64(header, 8), body };
  }
}

/** The ChaCha method: XChaCha20-Poly1305 on the PSK, IDs inside the sealed body. */
class XChaChaOuter implements Outer {
  constructor(private readonly key: Uint8Array) {}

  seal(sessionId: Uint8Array, packetId: number, body: Uint8Array): Uint8Array {
    const nonce = crypto.getRandomValues(new Uint8Array(XNONCE));
    const plain = new Uint8Array(16 + body.length);
    plain.set(sessionId);
    writeU64(plain, 8, packetId);
    plain.set(body, 16);
    const sealed = xchacha20poly1305(this.key, nonce).encrypt(plain);
    const out = new Uint8Array(XNONCE + sealed.length);
    out.set(nonce);
    out.set(sealed, XNONCE);
    return out;
  }

  open(packet: Uint8Array): Opened2022 {
    if (packet.length < XNONCE + 16 + TAG_SIZE) {
      throw new SsAuthError(`shadowsocks 2022: ${packet.length}-byte packet is too short`);
    }
    let plain: Uint8Array;
    try {
      plain = xchacha20poly1305(this.key, packet.subarray(0, XNONCE)).decrypt(
        packet.subarray(XNONCE),
      );
    } catch {
      throw new SsAuthError("shadowsocks 2022: packet authentication failed");
    }
    return { sessionId: plain.slice(0, 8), packetId: readU64(plain, 8), body: plain.subarray(16) };
  }
}

function outerFor(c: SsCipher): Outer {
  return c.method.algo === "chacha20-poly1305" ? new XChaChaOuter(c.key) : new AesOuter(c);
}

/** type · timestamp · [client session ID] · padding length (0) · address · payload. */
function body(type: number, clientId: Uint8Array | null, addr: Uint8Array, payload: Uint8Array) {
  const head = 1 + 8 + (clientId ? 8 : 0) + 2;
  const b = new Uint8Array(head + addr.length + payload.length);
  b[0] = type;
  writeU64(b, 1, now());
  if (clientId) b.set(clientId, 9);
  // Padding length stays 0: sizes are the payload's own, as with SIP004 packets.
  b.set(addr, head);
  b.set(payload, head + addr.length);
  return b;
}

/** Checks type and timestamp; returns the offset after them. */
function checkHead(b: Uint8Array, type: number): number {
  if (b.length < 9 || b[0] !== type) {
    throw new SsAuthError(`shadowsocks 2022: packet of type ${b[0]}, want ${type}`);
  }
  checkTime(readU64(b, 1));
  return 9;
}

/** Skips the padding and reads the address: what is left is the payload. */
function tail(b: Uint8Array, at: number): { addr: SocksAddr; payload: Uint8Array } {
  if (b.length < at + 2) throw new SsAuthError("shadowsocks 2022: truncated header");
  const pad = (b[at] << 8) | b[at + 1];
  at += 2 + pad;
  if (b.length < at) throw new SsAuthError("shadowsocks 2022: padding beyond the packet");
  const { addr, next } = decodeAddr(b, at);
  return { addr, payload: b.subarray(next) };
}

/** One client UDP session: our session ID and packet counter, the server's replay windows. */
export class Ss2022UdpClient {
  private readonly outer: Outer;
  private readonly sessionId = crypto.getRandomValues(new Uint8Array(8));
  private packetId = 0;
  /** Server sessions seen (normally one; a server restart starts another). */
  private readonly servers = new Map<string, ReplayWindow>();

  constructor(cipher: SsCipher) {
    this.outer = outerFor(cipher);
  }

  /** `address ‖ payload` → one packet to the server. */
  seal(addr: Uint8Array, payload: Uint8Array): Uint8Array {
    return this.outer.seal(this.sessionId, this.packetId++, body(TYPE_CLIENT, null, addr, payload));
  }

  /** A server packet → its source address and payload; throws SsAuthError when it fails. */
  open(packet: Uint8Array): { addr: SocksAddr; payload: Uint8Array } {
    const o = this.outer.open(packet);
    let at = checkHead(o.body, TYPE_SERVER);
    if (o.body.length < at + 8) throw new SsAuthError("shadowsocks 2022: truncated header");
    for (let i = 0; i < 8; i++) {
      if (o.body[at + i] !== this.sessionId[i]) {
        throw new SsAuthError("shadowsocks 2022: packet for another client session");
      }
    }
    at += 8;
    const k = String.fromCharCode(...o.sessionId);
    let w = this.servers.get(k);
    if (!w) {
      if (this.servers.size >= 4) this.servers.clear();
      this.servers.set(k, w = new ReplayWindow());
    }
    if (!w.accept(o.packetId)) throw new SsAuthError("shadowsocks 2022: replayed packet");
    return tail(o.body, at);
  }
}

/** The server's side of one client session: its replay window and our reply counter. */
export class Ss2022ServerSession {
  readonly window = new ReplayWindow();
  private readonly serverId = crypto.getRandomValues(new Uint8Array(8));
  private packetId = 0;
  seen = Date.now();

  constructor(private readonly outer: Outer, readonly clientId: Uint8Array) {}

  /** `source address ‖ payload` → one packet back to the client. */
  seal(addr: Uint8Array, payload: Uint8Array): Uint8Array {
    return this.outer.seal(
      this.serverId,
      this.packetId++,
      body(TYPE_SERVER, this.clientId, addr, payload),
    );
  }
}

/** The server side of one `ssu` service: client sessions by session ID. */
export class Ss2022UdpServer {
  private readonly outer: Outer;
  private readonly sessions = new Map<string, Ss2022ServerSession>();

  constructor(cipher: SsCipher) {
    this.outer = outerFor(cipher);
  }

  /** A client packet → its session, target address and payload; throws SsAuthError. */
  open(packet: Uint8Array): { session: Ss2022ServerSession; addr: SocksAddr; payload: Uint8Array } {
    const o = this.outer.open(packet);
    const at = checkHead(o.body, TYPE_CLIENT);
    const k = String.fromCharCode(...o.sessionId);
    let s = this.sessions.get(k);
    if (!s) {
      this.prune();
      s = new Ss2022ServerSession(this.outer, o.sessionId);
      this.sessions.set(k, s);
    }
    if (!s.window.accept(o.packetId)) throw new SsAuthError("shadowsocks 2022: replayed packet");
    s.seen = Date.now();
    return { session: s, ...tail(o.body, at) };
  }

  private prune(): void {
    if (this.sessions.size < 1024) return;
    const old = Date.now() - SESSION_IDLE_MS;
    for (const [k, s] of this.sessions) if (s.seen < old) this.sessions.delete(k);
  }
}

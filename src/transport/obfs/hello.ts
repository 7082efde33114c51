/**
 * The fake TLS 1.2 handshake messages of gost's obfs-tls (`otls`), encoded and parsed by hand:
 * a ClientHello whose SessionTicket extension carries the client's first bytes, and the fixed
 * 91-byte ServerHello (gost's client skips exactly 91 bytes of it, whatever the record says).
 */
import { ProtocolError } from "../../core/errors.ts";

export const REC_HANDSHAKE = 0x16;
export const REC_CCS = 0x14;
export const REC_APPDATA = 0x17;
/** Largest record body gost writes and accepts for data records. */
export const MAX_RECORD = 16384;

const CIPHER_SUITES = [
  0xc02c,
  0xc030,
  0x009f,
  0xcca9,
  0xcca8,
  0xccaa,
  0xc02b,
  0xc02f,
  0x009e,
  0xc024,
  0xc028,
  0x006b,
  0xc023,
  0xc027,
  0x0067,
  0xc00a,
  0xc014,
  0x0039,
  0xc009,
  0xc013,
  0x0033,
  0x009d,
  0x009c,
  0x003d,
  0x003c,
  0x0035,
  0x002f,
  0x00ff,
];
const SIG_ALGS = [
  0x0601,
  0x0602,
  0x0603,
  0x0501,
  0x0502,
  0x0503,
  0x0401,
  0x0402,
  0x0403,
  0x0301,
  0x0302,
  0x0303,
  0x0201,
  0x0202,
  0x0203,
];
const EXT_SERVER_NAME = 0x0000;
const EXT_SESSION_TICKET = 0x0023;

/** Growable big-endian byte writer. */
class Out {
  private b = new Uint8Array(512);
  n = 0;
  private room(k: number) {
    if (this.n + k <= this.b.length) return;
    const nb = new Uint8Array(Math.max(this.b.length * 2, this.n + k));
    nb.set(this.b.subarray(0, this.n));
    this.b = nb;
  }
  u8(v: number) {
    this.room(1);
    this.b[this.n++] = v;
  }
  u16(v: number) {
    this.u8(v >> 8);
    this.u8(v & 0xff);
  }
  u24(v: number) {
    this.u8(v >> 16);
    this.u16(v & 0xffff);
  }
  bytes(p: Uint8Array) {
    this.room(p.length);
    this.b.set(p, this.n);
    this.n += p.length;
  }
  /** Writes a u16/u24 length placeholder, runs `f`, then fills in the length. */
  sized(width: 2 | 3, f: () => void) {
    const at = this.n;
    if (width === 2) this.u16(0);
    else this.u24(0);
    f();
    const len = this.n - at - width;
    if (width === 3) this.b[at] = len >> 16;
    this.b[at + width - 2] = (len >> 8) & 0xff;
    this.b[at + width - 1] = len & 0xff;
  }
  ext(type: number, f: () => void) {
    this.u16(type);
    this.sized(2, f);
  }
  done(): Uint8Array {
    return this.b.slice(0, this.n);
  }
}

function random32(): Uint8Array {
  const r = crypto.getRandomValues(new Uint8Array(32));
  new DataView(r.buffer).setUint32(0, Math.floor(Date.now() / 1000));
  return r;
}

/** A TLS record: type, version, u16 length, body. */
export function record(type: number, minor: number, body: Uint8Array): Uint8Array {
  const r = new Uint8Array(5 + body.length);
  r[0] = type;
  r[1] = 3;
  r[2] = minor;
  r[3] = body.length >> 8;
  r[4] = body.length & 0xff;
  r.set(body, 5);
  return r;
}

/** The ClientHello record (TLS 1.0 record, TLS 1.2 hello) carrying `payload` as session ticket. */
export function clientHello(host: string, payload: Uint8Array): Uint8Array {
  const o = new Out();
  o.u8(1); // ClientHello
  o.sized(3, () => {
    o.u16(0x0303);
    o.bytes(random32());
    o.u8(32);
    o.bytes(crypto.getRandomValues(new Uint8Array(32)));
    o.u16(CIPHER_SUITES.length * 2);
    for (const c of CIPHER_SUITES) o.u16(c);
    o.u8(1);
    o.u8(0);
    o.sized(2, () => {
      o.ext(EXT_SESSION_TICKET, () => o.bytes(payload));
      o.ext(EXT_SERVER_NAME, () => {
        const name = new TextEncoder().encode(host);
        o.sized(2, () => {
          o.u8(0); // host_name
          o.u16(name.length);
          o.bytes(name);
        });
      });
      o.ext(0x000b, () => o.bytes(new Uint8Array([3, 1, 0, 2]))); // ec_point_formats
      o.ext(0x000a, () => { // supported_groups
        o.u16(8);
        for (const g of [0x001d, 0x0017, 0x0019, 0x0018]) o.u16(g);
      });
      o.ext(0x000d, () => { // signature_algorithms
        o.u16(SIG_ALGS.length * 2);
        for (const a of SIG_ALGS) o.u16(a);
      });
      o.ext(0x0016, () => {}); // encrypt_then_mac
      o.ext(0x0017, () => {}); // extended_master_secret
    });
  });
  return record(REC_HANDSHAKE, 1, o.done());
}

/** What the server needs from a ClientHello body. */
export interface ParsedHello {
  sessionId: Uint8Array;
  /** The session ticket extension's data: the client's first bytes. */
  payload: Uint8Array;
  serverName?: string;
}

/** Parses a ClientHello handshake message (the body of the first record). */
export function parseClientHello(b: Uint8Array): ParsedHello {
  let pos = 0;
  const need = (n: number, what: string) => {
    if (pos + n > b.length) throw new ProtocolError(`otls: ClientHello truncated in ${what}`);
  };
  const u8 = () => b[pos++];
  const u16 = () => (b[pos++] << 8) | b[pos++];
  need(4, "header");
  if (u8() !== 1) throw new ProtocolError("otls: first handshake message is not a ClientHello");
  const len = (u8() << 16) | u16();
  if (len < 34 || pos + len > b.length) {
    throw new ProtocolError(`otls: bad ClientHello length ${len}`);
  }
  const end = pos + len;
  const version = u16();
  if (version < 0x0301 || version > 0x0304) {
    throw new ProtocolError(`otls: bad ClientHello version ${version.toString(16)}`);
  }
  pos += 32; // random
  need(1, "session id");
  const sidLen = u8();
  need(sidLen, "session id");
  const sessionId = b.slice(pos, pos + sidLen);
  pos += sidLen;
  // (read the length before adding: `pos += u16()` would add to the pre-read position)
  need(2, "cipher suites");
  const suites = u16();
  pos += suites;
  need(1, "compression methods");
  const methods = u8();
  pos += methods;
  const out: ParsedHello = { sessionId, payload: new Uint8Array(0) };
  if (pos >= end) return out;
  need(2, "extensions");
  const extLen = u16();
  const extEnd = pos + extLen;
  if (extEnd > end) throw new ProtocolError("otls: ClientHello extensions overrun");
  while (pos + 4 <= extEnd) {
    const type = u16(), n = u16();
    if (pos + n > extEnd) throw new ProtocolError("otls: ClientHello extension overrun");
    if (type === EXT_SESSION_TICKET) out.payload = b.slice(pos, pos + n);
    else if (type === EXT_SERVER_NAME && n >= 5) {
      const nameLen = (b[pos + 3] << 8) | b[pos + 4];
      out.serverName = new TextDecoder().decode(b.subarray(pos + 5, pos + 5 + nameLen));
    }
    pos += n;
  }
  return out;
}

/** ServerHello (91 bytes, TLS 1.0 record) + ChangeCipherSpec, as gost's server sends them. */
export function serverHello(sessionId: Uint8Array): Uint8Array {
  const o = new Out();
  o.u8(2); // ServerHello
  o.sized(3, () => {
    o.u16(0x0303);
    o.bytes(random32());
    o.u8(sessionId.length);
    o.bytes(sessionId);
    o.u16(0xcca8);
    o.u8(0);
    o.sized(2, () => {
      o.ext(0xff01, () => o.u8(0)); // renegotiation_info
      o.ext(0x0017, () => {}); // extended_master_secret
      o.ext(0x000b, () => o.bytes(new Uint8Array([1, 0]))); // ec_point_formats
    });
  });
  const hello = record(REC_HANDSHAKE, 1, o.done());
  const ccs = record(REC_CCS, 3, new Uint8Array([1]));
  const both = new Uint8Array(hello.length + ccs.length);
  both.set(hello);
  both.set(ccs, hello.length);
  return both;
}

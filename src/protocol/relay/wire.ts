/**
 * gost's relay protocol codec (go-gost/relay, protocols.md §1): a request
 * `VER(1)=1 · CMD/FLAGS(1) · FEALEN(2, BE) · features`, a response of the same shape with a
 * STATUS byte, and TLV features `TYPE(1) · LEN(2, BE) · DATA`. After the headers: raw bytes for
 * TCP, or datagrams framed as `LEN(2, BE) · payload` for UDP.
 */
import type { BufferedConn } from "../../core/bufconn.ts";
import { ProtocolError } from "../../core/errors.ts";
import { addrSize, decodeAddr, type SocksAddr, writeAddr } from "../socks/addr.ts";

/** The only protocol version. */
export const VERSION = 0x01;

/** Commands (low nibble of byte 1). 0 is what gost v2 clients send for CONNECT. */
export const Cmd = { Connect: 0x01, Bind: 0x02, Associate: 0x03 } as const;
/** Mask of the command bits. */
export const CMD_MASK = 0x0f;
/** Flag bit: the request is UDP (gost v2 and v3 clients set it; v3 may add a Network feature). */
export const FLAG_UDP = 0x80;

/** Response status codes. */
export const Status = {
  OK: 0x00,
  BadRequest: 0x01,
  Unauthorized: 0x02,
  Forbidden: 0x03,
  Timeout: 0x04,
  ServiceUnavailable: 0x05,
  HostUnreachable: 0x06,
  NetworkUnreachable: 0x07,
  InternalServerError: 0x08,
} as const;

/** Status code → text for log lines and errors. */
export const STATUS_TEXT: Record<number, string> = {
  0: "ok",
  1: "bad request",
  2: "unauthorized",
  3: "forbidden",
  4: "timeout",
  5: "service unavailable",
  6: "host unreachable",
  7: "network unreachable",
  8: "internal server error",
};

/** Feature types. */
export const Feature = { UserAuth: 0x01, Addr: 0x02, Tunnel: 0x03, Network: 0x04 } as const;

/** Network ids of the Network feature. */
export const Network = { TCP: 0x0000, UDP: 0x0001, IP: 0x0002, Unix: 0x0010, Serial: 0x0011 };

/** Largest UDP payload one frame carries. */
export const MAX_FRAME = 0xffff;

/** A decoded request or response header. */
export interface RelayHeader {
  /** CMD/FLAGS byte of a request, STATUS byte of a response. */
  code: number;
  user?: { username: string; password: string };
  addr?: SocksAddr;
  /** Network feature value, when present. */
  network?: number;
  /** Types of features this codec does not interpret (kept for log lines). */
  unknown: number[];
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** What to put in a request or response. */
export interface HeaderFields {
  code: number;
  user?: { username: string; password?: string };
  addr?: { host: string; port: number };
  network?: number;
}

/**
 * Encodes a request (or response) header. Throws RangeError for a user name, password or host
 * longer than 255 bytes.
 */
export function encodeHeader(f: HeaderFields): Uint8Array {
  const parts: [number, Uint8Array][] = [];
  if (f.user) {
    const u = enc.encode(f.user.username);
    const p = enc.encode(f.user.password ?? "");
    if (u.length > 255 || p.length > 255) {
      throw new RangeError("relay: user name and password are limited to 255 bytes each");
    }
    const b = new Uint8Array(2 + u.length + p.length);
    b[0] = u.length;
    b.set(u, 1);
    b[1 + u.length] = p.length;
    b.set(p, 2 + u.length);
    parts.push([Feature.UserAuth, b]);
  }
  if (f.addr) {
    const b = new Uint8Array(addrSize(f.addr.host));
    writeAddr(b, 0, f.addr.host, f.addr.port);
    parts.push([Feature.Addr, b]);
  }
  if (f.network !== undefined) {
    parts.push([Feature.Network, new Uint8Array([f.network >> 8, f.network & 0xff])]);
  }
  const flen = parts.reduce((s, [, b]) => s + 3 + b.length, 0);
  const out = new Uint8Array(4 + flen);
  out[0] = VERSION;
  out[1] = f.code;
  out[2] = flen >> 8;
  out[3] = flen & 0xff;
  let off = 4;
  for (const [t, b] of parts) {
    out[off] = t;
    out[off + 1] = b.length >> 8;
    out[off + 2] = b.length & 0xff;
    out.set(b, off + 3);
    off += 3 + b.length;
  }
  return out;
}

/** A header the peer sent that breaks the protocol; `status` is the answer it deserves. */
export class RelayHeaderError extends ProtocolError {
  override name = "RelayHeaderError";
}

/**
 * Decodes the feature list of a header. Throws RelayHeaderError on a feature that runs past the
 * list or a malformed UserAuth/Addr/Network body. Unknown types are skipped (newer go-gost/relay
 * keeps them as opaque blobs; v0.5.0 rejected them — skipping is the lenient reading).
 */
export function decodeFeatures(code: number, b: Uint8Array): RelayHeader {
  const h: RelayHeader = { code, unknown: [] };
  for (let off = 0; off < b.length;) {
    if (off + 3 > b.length) throw new RelayHeaderError("relay: truncated feature header");
    const type = b[off];
    const len = (b[off + 1] << 8) | b[off + 2];
    const start = off + 3;
    if (start + len > b.length) {
      throw new RelayHeaderError(
        `relay: feature 0x${type.toString(16)} of ${len} bytes runs past the feature list`,
      );
    }
    const body = b.subarray(start, start + len);
    switch (type) {
      case Feature.UserAuth: {
        const ulen = body[0];
        if (body.length < 2 || body.length < 2 + ulen) {
          throw new RelayHeaderError("relay: truncated user-auth feature");
        }
        const plen = body[1 + ulen];
        if (body.length < 2 + ulen + plen) {
          throw new RelayHeaderError("relay: truncated user-auth feature");
        }
        h.user = {
          username: dec.decode(body.subarray(1, 1 + ulen)),
          password: dec.decode(body.subarray(2 + ulen, 2 + ulen + plen)),
        };
        break;
      }
      case Feature.Addr:
        try {
          h.addr = decodeAddr(body).addr;
        } catch (e) {
          throw new RelayHeaderError(`relay: bad address feature: ${(e as Error).message}`);
        }
        break;
      case Feature.Network:
        if (len < 2) throw new RelayHeaderError("relay: truncated network feature");
        h.network = (body[0] << 8) | body[1];
        break;
      default:
        h.unknown.push(type);
    }
    off = start + len;
  }
  return h;
}

/**
 * Reads one header (request or response) from the stream. Throws RelayHeaderError for a bad
 * version or bad features, and ProtocolError when the stream ends inside the header.
 */
export async function readHeader(bc: BufferedConn): Promise<RelayHeader> {
  const head = await bc.readFull(4);
  if (head[0] !== VERSION) {
    throw new RelayHeaderError(
      `relay: bad version 0x${head[0].toString(16).padStart(2, "0")} (want 0x01)`,
    );
  }
  const flen = (head[2] << 8) | head[3];
  const features = flen ? await bc.readFull(flen) : new Uint8Array(0);
  return decodeFeatures(head[1], features);
}

/** Frames one datagram for the stream: LEN(2, BE) · payload. */
export function encodeFrame(data: Uint8Array, prefix?: Uint8Array): Uint8Array {
  if (data.length > MAX_FRAME) {
    throw new RangeError(`relay: datagram of ${data.length} bytes is too long (max ${MAX_FRAME})`);
  }
  const pre = prefix?.length ?? 0;
  const out = new Uint8Array(pre + 2 + data.length);
  if (prefix) out.set(prefix);
  out[pre] = data.length >> 8;
  out[pre + 1] = data.length & 0xff;
  out.set(data, pre + 2);
  return out;
}

/** Reads one framed datagram; null on a clean end of stream between frames. */
export async function readFrame(bc: BufferedConn): Promise<Uint8Array | null> {
  if ((await bc.peekSome()) === null) return null;
  const h = await bc.readFull(2);
  const len = (h[0] << 8) | h[1];
  return len ? await bc.readFull(len) : new Uint8Array(0);
}

/** Joins two byte arrays. */
export function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * The wire of gost's gRPC tunnel service, by hand (no protobuf library needed):
 *
 * - method path: `/GostTunel/Tunnel` (service `GostTunel` — gost's spelling — of a proto file
 *   without a package); `path` renames it: `/svc` → `/svc/Tunnel`, `/svc/a/b` → `/svc/a-b`.
 * - each message: compressed flag (1 byte, 0) · length (4 bytes, big-endian) · protobuf
 *   `Chunk { bytes data = 1; }`, i.e. `0x0A` · varint(len) · data.
 */
import { ProtocolError } from "../../core/errors.ts";

/** gRPC-Go's default limit on a received message (4 MiB). */
export const MAX_MESSAGE = 4 << 20;
/** Largest chunk put in one message when writing (well under MAX_MESSAGE). */
export const MAX_CHUNK = 1 << 20;

/** The method path for gost's `path` parameter (empty: the default). */
export function methodPath(path: string): string {
  let service = "GostTunel";
  let stream = "Tunnel";
  const trimmed = path.replace(/^\/+|\/+$/g, "");
  const i = trimmed.indexOf("/");
  if (i < 0) {
    if (trimmed !== "") service = trimmed;
  } else {
    service = trimmed.slice(0, i);
    stream = trimmed.slice(i + 1).replaceAll("/", "-");
  }
  return `/${service}/${stream}`;
}

function varintSize(n: number): number {
  let s = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    s++;
  }
  return s;
}

/** One gRPC message (prefix included) carrying `data` as a Chunk. */
export function encodeChunk(data: Uint8Array): Uint8Array {
  const n = data.length;
  const body = n === 0 ? 0 : 1 + varintSize(n) + n; // proto3 omits an empty bytes field
  const out = new Uint8Array(5 + body);
  out[0] = 0;
  new DataView(out.buffer).setUint32(1, body);
  if (n === 0) return out;
  let o = 5;
  out[o++] = 0x0a; // field 1, wire type 2 (length-delimited)
  let v = n;
  while (v >= 0x80) {
    out[o++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  out[o++] = v;
  out.set(data, o);
  return out;
}

/** Parses the 5-byte message prefix: the message length (throws on compression or size). */
export function parsePrefix(h: Uint8Array): number {
  if (h[0] !== 0) {
    throw new ProtocolError(
      h[0] === 1 ? "grpc: compressed messages are not supported" : `grpc: bad message flag ${h[0]}`,
    );
  }
  const len = new DataView(h.buffer, h.byteOffset, 5).getUint32(1);
  if (len > MAX_MESSAGE) {
    throw new ProtocolError(`grpc: message of ${len} bytes exceeds the ${MAX_MESSAGE}-byte limit`);
  }
  return len;
}

/** The `data` of a Chunk message (a view into `msg`); unknown fields are skipped. */
export function decodeChunk(msg: Uint8Array): Uint8Array {
  let data: Uint8Array = msg.subarray(0, 0);
  let o = 0;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (o >= msg.length) throw new ProtocolError("grpc: truncated protobuf varint");
      const b = msg[o++];
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
    throw new ProtocolError("grpc: protobuf varint too long");
  };
  while (o < msg.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wt = key & 7;
    if (field === 0) throw new ProtocolError("grpc: protobuf field number 0");
    if (wt === 0) varint();
    else if (wt === 1 || wt === 5) o += wt === 1 ? 8 : 4;
    else if (wt === 2) {
      const len = varint();
      if (o + len > msg.length) throw new ProtocolError("grpc: truncated protobuf field");
      if (field === 1) data = msg.subarray(o, o + len);
      o += len;
    } else throw new ProtocolError(`grpc: unsupported protobuf wire type ${wt}`);
    if (o > msg.length) throw new ProtocolError("grpc: truncated protobuf field");
  }
  return data;
}

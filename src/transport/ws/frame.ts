/**
 * RFC 6455 framing: header encoding and payload masking.
 *
 * Header: FIN|RSV1-3|OPCODE, MASK|LEN7, then a 16- or 64-bit big-endian length when LEN7 is 126
 * or 127, then the 4-byte masking key when MASK is set (client → server frames).
 */

export const OP_CONTINUATION = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

/** Largest header: 2 + 8 (64-bit length) + 4 (mask). */
export const MAX_HEADER = 14;

/** The GUID of the Sec-WebSocket-Accept computation. */
export const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/**
 * Writes a final frame's header into `out` at 0 and returns its length. `mask` (4 bytes) is
 * included when given.
 */
export function writeFrameHeader(
  out: Uint8Array,
  opcode: number,
  length: number,
  mask?: Uint8Array,
): number {
  out[0] = 0x80 | opcode;
  const m = mask ? 0x80 : 0;
  let off: number;
  if (length < 126) {
    out[1] = m | length;
    off = 2;
  } else if (length < 65536) {
    out[1] = m | 126;
    out[2] = length >>> 8;
    out[3] = length & 0xff;
    off = 4;
  } else {
    out[1] = m | 127;
    const hi = Math.floor(length / 2 ** 32);
    const lo = length >>> 0;
    out[2] = hi >>> 24;
    out[3] = (hi >>> 16) & 0xff;
    out[4] = (hi >>> 8) & 0xff;
    out[5] = hi & 0xff;
    out[6] = lo >>> 24;
    out[7] = (lo >>> 16) & 0xff;
    out[8] = (lo >>> 8) & 0xff;
    out[9] = lo & 0xff;
    off = 10;
  }
  if (mask) {
    out.set(mask, off);
    off += 4;
  }
  return off;
}

/**
 * XORs `b` in place with the 4-byte `key`, starting at key position `pos` (0..3); returns the
 * key position after the last byte. Works a 32-bit word at a time over the aligned middle
 * (little-endian hosts: x86-64 and arm64).
 */
export function unmask(b: Uint8Array, key: Uint8Array, pos: number): number {
  const n = b.length;
  let i = 0;
  while (i < n && ((b.byteOffset + i) & 3) !== 0) {
    b[i] ^= key[(pos + i) & 3];
    i++;
  }
  const words = (n - i) >>> 2;
  if (words > 0) {
    const k = (pos + i) & 3;
    const w = (key[k] | (key[(k + 1) & 3] << 8) | (key[(k + 2) & 3] << 16) |
      (key[(k + 3) & 3] << 24)) >>> 0;
    const u32 = new Uint32Array(b.buffer, b.byteOffset + i, words);
    for (let j = 0; j < words; j++) u32[j] ^= w;
    i += words * 4;
  }
  while (i < n) {
    b[i] ^= key[(pos + i) & 3];
    i++;
  }
  return (pos + n) & 3;
}

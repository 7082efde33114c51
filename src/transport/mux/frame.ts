/**
 * smux frame codec (xtaci/smux, protocols.md §4.1): an 8-byte header — VER, CMD, LENGTH (LE u16),
 * STREAM ID (LE u32) — followed by LENGTH payload bytes.
 */

/** Open a stream. */
export const CMD_SYN = 0;
/** Close a stream (end of stream). */
export const CMD_FIN = 1;
/** Data. */
export const CMD_PSH = 2;
/** Keepalive (no operation). */
export const CMD_NOP = 3;
/** v2 only: window update — consumed bytes and window size. */
export const CMD_UPD = 4;

/** Header size in bytes. */
export const HEADER_SIZE = 8;
/** Payload size of a UPD frame: CONSUMED (LE u32) + WINDOW (LE u32). */
export const UPD_SIZE = 8;
/** A v2 sender's assumption about the peer's window until the first UPD arrives. */
export const INITIAL_PEER_WINDOW = 262144;
/** LENGTH is 16 bits. */
export const MAX_PAYLOAD = 65535;

/** A decoded frame header. */
export interface FrameHeader {
  ver: number;
  cmd: number;
  length: number;
  sid: number;
}

/** Writes a header into `buf` at `off`. */
export function writeHeader(
  buf: Uint8Array,
  off: number,
  ver: number,
  cmd: number,
  sid: number,
  length: number,
): void {
  buf[off] = ver;
  buf[off + 1] = cmd;
  buf[off + 2] = length & 0xff;
  buf[off + 3] = (length >>> 8) & 0xff;
  buf[off + 4] = sid & 0xff;
  buf[off + 5] = (sid >>> 8) & 0xff;
  buf[off + 6] = (sid >>> 16) & 0xff;
  buf[off + 7] = (sid >>> 24) & 0xff;
}

/** One whole frame (header + a copy of `payload`) in a single buffer, ready to write. */
export function encodeFrame(
  ver: number,
  cmd: number,
  sid: number,
  payload?: Uint8Array,
): Uint8Array {
  const len = payload?.length ?? 0;
  if (len > MAX_PAYLOAD) throw new RangeError(`smux frame payload of ${len} bytes exceeds 65535`);
  const out = new Uint8Array(HEADER_SIZE + len);
  writeHeader(out, 0, ver, cmd, sid, len);
  if (payload) out.set(payload, HEADER_SIZE);
  return out;
}

/** Decodes the header at `off` (the caller ensures 8 bytes are there). */
export function decodeHeader(b: Uint8Array, off = 0): FrameHeader {
  return {
    ver: b[off],
    cmd: b[off + 1],
    length: b[off + 2] | (b[off + 3] << 8),
    sid: (b[off + 4] | (b[off + 5] << 8) | (b[off + 6] << 16) | (b[off + 7] << 24)) >>> 0,
  };
}

/** A UPD frame: the reader has consumed `consumed` bytes in total and buffers up to `window`. */
export function encodeUpdate(
  ver: number,
  sid: number,
  consumed: number,
  window: number,
): Uint8Array {
  const p = new Uint8Array(UPD_SIZE);
  const dv = new DataView(p.buffer);
  dv.setUint32(0, consumed >>> 0, true);
  dv.setUint32(4, window >>> 0, true);
  return encodeFrame(ver, CMD_UPD, sid, p);
}

/** Decodes a UPD payload. */
export function decodeUpdate(b: Uint8Array, off = 0): { consumed: number; window: number } {
  const dv = new DataView(b.buffer, b.byteOffset + off, UPD_SIZE);
  return { consumed: dv.getUint32(0, true), window: dv.getUint32(4, true) };
}

/** Name of a command byte, for error messages. */
export function cmdName(cmd: number): string {
  return ["SYN", "FIN", "PSH", "NOP", "UPD"][cmd] ?? `0x${cmd.toString(16)}`;
}

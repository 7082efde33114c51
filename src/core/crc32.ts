/** CRC-32 (IEEE 802.3), as Go's crc32.ChecksumIEEE (gost's hash selector, Gost-Target). */

let table: Uint32Array | undefined;

/** CRC-32 of bytes, or of a string's UTF-8 bytes. */
export function crc32(data: Uint8Array | string): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[i] = c >>> 0;
    }
  }
  const b = typeof data === "string" ? new TextEncoder().encode(data) : data;
  let c = 0xffffffff;
  for (const x of b) c = table[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

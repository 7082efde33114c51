/**
 * `copyDatagram(d)`: a private copy of a received datagram, carved from a shared slab instead of
 * one ArrayBuffer (a calloc and a GC-tracked backing store) per datagram. A slab is never reused:
 * it is replaced when full and freed by the GC once no copy refers to it, so copies stay valid
 * for as long as they are held. Copies are views (mind `byteOffset`); large datagrams get their
 * own buffer so one long-held copy cannot pin much memory.
 */

const SLAB_SIZE = 256 * 1024;
/** Datagrams above this are copied into their own buffer. */
const MAX_SLAB_COPY = 4096;

let slab = new Uint8Array(0);
let used = 0;

/** A copy of `d` that no later receive overwrites. */
export function copyDatagram(d: Uint8Array): Uint8Array {
  const n = d.length;
  if (n > MAX_SLAB_COPY) return d.slice();
  if (used + n > slab.length) {
    slab = new Uint8Array(SLAB_SIZE);
    used = 0;
  }
  const c = slab.subarray(used, used + n);
  c.set(d);
  used += (n + 7) & ~7; // keep copies 8-byte aligned
  return c;
}

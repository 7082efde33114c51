/**
 * `relay(a, b)`: copies bytes both ways until both directions have ended.
 *
 * Two read/write pumps (measured faster than `pipeTo` on Deno 2.9). Each pump starts with a
 * small buffer and switches to a large pooled one (256 KiB) once a read fills it, so idle interactive tunnels
 * cost little memory while bulk transfers get large reads. End of stream on one side is
 * propagated as a half-close (FIN) to the other; an error on either side closes both.
 */
import { closeQuietly, type Conn } from "./conn.ts";

/** Options for relay(). */
export interface RelayOptions {
  /** Close both sides after this many ms without traffic in either direction (0 = never). */
  idleTimeout?: number;
  /** Size of the large buffer each pump switches to (default 256 KiB: fewer reads per GB). */
  bufferSize?: number;
}

/** Byte counts of a finished relay. */
export interface RelayStats {
  /** Bytes copied from a to b. */
  aToB: number;
  /** Bytes copied from b to a. */
  bToA: number;
}

/** Idle pumps wait on a buffer this small, so idle tunnels cost little memory. */
const SMALL = 512;
/** A read shorter than this goes back to the small buffer (the big one returns to the pool). */
const SHRINK_BELOW = 4096;

/** Recycled large buffers: bulk pumps come and go without allocating a large buffer each time. */
const pool: Uint8Array<ArrayBuffer>[] = [];
const POOL_MAX = 16;

function takeBig(size: number): Uint8Array<ArrayBuffer> {
  const b = pool.pop();
  return b && b.length === size ? b : new Uint8Array(size);
}

function giveBack(b: Uint8Array<ArrayBuffer>): void {
  if (pool.length < POOL_MAX) pool.push(b);
}

async function pump(
  src: Conn,
  dst: Conn,
  bigSize: number,
  touch: () => void,
  counter: { n: number },
): Promise<void> {
  const small = new Uint8Array(SMALL);
  let big: Uint8Array<ArrayBuffer> | undefined;
  let buf = small;
  try {
    for (;;) {
      const n = await src.read(buf);
      if (n === null) break;
      touch();
      let off = 0;
      while (off < n) off += await dst.write(buf.subarray(off, n));
      counter.n += n;
      if (buf === small) {
        if (n === SMALL) buf = big = takeBig(bigSize);
      } else if (n < SHRINK_BELOW) {
        giveBack(big!);
        big = undefined;
        buf = small;
      }
    }
  } finally {
    if (big) giveBack(big);
  }
  await dst.closeWrite();
}

/**
 * Relays between `a` and `b` until both directions end or one fails; always closes both.
 * Resolves with the byte counts (never rejects).
 */
export async function relay(a: Conn, b: Conn, opts: RelayOptions = {}): Promise<RelayStats> {
  const big = opts.bufferSize ?? 262144;
  const ab = { n: 0 };
  const ba = { n: 0 };
  let last = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  const closeBoth = () => {
    if (closed) return;
    closed = true;
    closeQuietly(a);
    closeQuietly(b);
  };
  const touch = opts.idleTimeout ? () => (last = Date.now()) : () => {};
  if (opts.idleTimeout) {
    const idle = opts.idleTimeout;
    const check = () => {
      const left = last + idle - Date.now();
      if (left <= 0) closeBoth();
      else timer = setTimeout(check, left);
    };
    timer = setTimeout(check, idle);
  }
  const fail = () => closeBoth();
  await Promise.all([
    pump(a, b, big, touch, ab).catch(fail),
    pump(b, a, big, touch, ba).catch(fail),
  ]);
  if (timer !== undefined) clearTimeout(timer);
  closeBoth();
  return { aToB: ab.n, bToA: ba.n };
}

/**
 * Salt replay filter: a server remembers the salts it has seen and refuses a repeat (a replayed
 * recording of a real client's connection). Two generations of sets rotated by count and age
 * bound the memory (gost uses a Bloom ring of similar size; SIP022 asks for ≥ 60 s of memory
 * and no false positives, which exact sets give).
 */

/** Salts kept per generation before rotating. */
const GENERATION = 1 << 16;
/** A generation also rotates after this long (ms), so SIP022's 60 s window is always covered. */
const MAX_AGE = 120_000;

export class SaltFilter {
  private cur = new Set<string>();
  private prev = new Set<string>();
  private since = Date.now();

  /** Records `salt`; false when it was seen already. */
  add(salt: Uint8Array): boolean {
    let k = "";
    for (let i = 0; i < salt.length; i++) k += String.fromCharCode(salt[i]);
    if (this.cur.has(k) || this.prev.has(k)) return false;
    const now = Date.now();
    if (this.cur.size >= GENERATION || now - this.since > MAX_AGE) {
      this.prev = this.cur;
      this.cur = new Set();
      this.since = now;
    }
    this.cur.add(k);
    return true;
  }
}

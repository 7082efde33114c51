/**
 * The DNS proxy's answer cache, keyed by question (name, class, type), with gost's lifetimes:
 *  - `ttl` > 0 (the `ttl=` parameter) overrides every answer's lifetime;
 *  - `ttl` < 0 turns the cache off;
 *  - otherwise an answer lives for the smallest TTL of its answer records, and a reply without
 *    answers (NXDOMAIN, NODATA) for 60 s (gost's default).
 * Served copies carry the cache's remaining lifetime as their answer TTLs (at least 1 s), as gost
 * does. Unlike gost, answers whose records have TTL 0 (meant not to be cached) are not cached.
 */
import { minAnswerTtl, records, setAnswerTtls, setId } from "./wire.ts";

/** Lifetime of replies without answers, in seconds (gost's default cache TTL). */
export const NEGATIVE_TTL = 60;
/** Entries kept at most; the oldest go first. */
const MAX_ENTRIES = 4096;

interface Entry {
  msg: Uint8Array;
  stored: number;
  /** Lifetime in seconds. */
  ttl: number;
}

export class DnsCache {
  private readonly entries = new Map<string, Entry>();

  /** `ttlOverride` in seconds (the `ttl=` parameter): 0 = the records' TTL, < 0 = no cache. */
  constructor(private readonly ttlOverride = 0) {}

  /** The key of a question. */
  static key(name: string, qclass: number, qtype: number): string {
    return `${name}/${qclass}/${qtype}`;
  }

  /** A copy of the cached reply with message ID `id` and the remaining lifetime, if fresh. */
  get(key: string, id: number): { msg: Uint8Array; ttl: number } | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    const elapsed = Math.floor((Date.now() - e.stored) / 1000);
    const left = e.ttl - elapsed;
    if (Date.now() - e.stored >= e.ttl * 1000) {
      this.entries.delete(key);
      return undefined;
    }
    const msg = e.msg.slice();
    setId(msg, id);
    setAnswerTtls(msg, Math.max(1, left));
    return { msg, ttl: left };
  }

  /** Stores `reply` (copied) under `key`; returns the lifetime used, or 0 when not cached. */
  set(key: string, reply: Uint8Array): number {
    if (this.ttlOverride < 0) return 0;
    const refs = records(reply);
    const min = minAnswerTtl(reply, refs);
    const ttl = this.ttlOverride > 0 ? this.ttlOverride : min === undefined ? NEGATIVE_TTL : min;
    if (ttl <= 0) return 0;
    const msg = reply.slice();
    setAnswerTtls(msg, ttl, refs);
    this.entries.delete(key);
    this.entries.set(key, { msg, stored: Date.now(), ttl });
    if (this.entries.size > MAX_ENTRIES) this.evict();
    return ttl;
  }

  /** Number of entries (tests). */
  get size(): number {
    return this.entries.size;
  }

  /** Drops expired entries, then the oldest until under the cap. */
  private evict(): void {
    const now = Date.now();
    for (const [k, e] of this.entries) {
      if (now - e.stored >= e.ttl * 1000) this.entries.delete(k);
    }
    for (const k of this.entries.keys()) {
      if (this.entries.size <= MAX_ENTRIES) break;
      this.entries.delete(k);
    }
  }
}

/**
 * Request (new connection) rate limits, gost v3 style (`rlimiters`): `$` for the whole service,
 * `$$` per client IP, IP/CIDR entries per matching client IP (replacing `$$` for it). Each is a
 * token bucket of `r` per second with a burst of ⌊r⌋+1, as gost's.
 */
import { normalizeIP } from "../../core/ip.ts";
import { TokenBucket } from "./bucket.ts";
import { ScopeTable } from "./parse.ts";

/** Parses a rate in requests per second (a float; ≤ 0 means no limit). */
export function parseRate(values: string[]): number {
  const v = values[0];
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n)) throw new Error(`invalid rate limit "${v}"`);
  return n;
}

const rateBucket = (r: number) => new TokenBucket(r, Math.floor(r) + 1);

/** Above this many remembered client IPs, idle ones are forgotten. */
const MAX_IDLE_IPS = 4096;

/** Decides whether a new request from a client may proceed now. */
export class RateLimiter {
  private readonly global?: TokenBucket;
  private readonly perIp = new Map<string, TokenBucket>();

  constructor(private readonly table: ScopeTable<number>) {
    const g = table.global ?? 0;
    if (g > 0) this.global = rateBucket(g);
  }

  /** Builds a limiter from gost limit lines (`$ 100`, `$$ 10`, `192.168.0.0/16 5`). */
  static parse(lines: string[]): RateLimiter {
    return new RateLimiter(ScopeTable.parse(lines, parseRate));
  }

  /** Takes one token from every bucket that applies to `host`; false when any was empty. */
  allow(host: string): boolean {
    const key = normalizeIP(host);
    let ok = true;
    const r = this.table.lookupAddress(key)?.value ?? this.table.client ?? 0;
    if (r > 0) {
      let b = this.perIp.get(key);
      if (!b) {
        if (this.perIp.size >= MAX_IDLE_IPS) {
          for (const [k, v] of this.perIp) if (v.idle) this.perIp.delete(k);
        }
        b = rateBucket(r);
        this.perIp.set(key, b);
      }
      ok = b.tryTake(1);
    }
    // As gost's limiter group, every bucket is charged even when an earlier one refused.
    if (this.global && !this.global.tryTake(1)) ok = false;
    return ok;
  }
}

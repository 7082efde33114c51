/**
 * Concurrent connection limits, gost v3 style (`climiters`): `$` caps the whole service, `$$`
 * each client IP, an IP/CIDR entry each matching client IP (and replaces `$$` for it).
 * A connection over any applicable limit is refused.
 */
import { normalizeIP } from "../../core/ip.ts";
import { ScopeTable } from "./parse.ts";

/** Parses a positive integer count, as gost (strconv.Atoi; ≤ 0 means no limit). */
export function parseCount(values: string[]): number {
  const v = values[0];
  if (!/^[-+]?\d+$/.test(v)) throw new Error(`invalid connection limit "${v}"`);
  return Number(v);
}

/** Counts open connections per service and per client IP. */
export class ConnLimiter {
  private total = 0;
  private readonly perIp = new Map<string, number>();

  constructor(private readonly table: ScopeTable<number>) {}

  /** Builds a limiter from gost limit lines (`$ 1000`, `$$ 100`, `192.168.1.1 10`). */
  static parse(lines: string[]): ConnLimiter {
    return new ConnLimiter(ScopeTable.parse(lines, parseCount));
  }

  private ipLimit(host: string): number {
    const v = this.table.lookupAddress(host)?.value ?? this.table.client ?? 0;
    return v > 0 ? v : Infinity;
  }

  /**
   * Counts a new connection from `host`: returns the function that releases it (call once,
   * when it closes), or undefined when a limit is reached (the caller refuses it).
   */
  acquire(host: string): (() => void) | undefined {
    const global = (this.table.global ?? 0) > 0 ? this.table.global! : Infinity;
    if (this.total >= global) return undefined;
    const key = normalizeIP(host);
    const ipLimit = this.ipLimit(key);
    const current = this.perIp.get(key) ?? 0;
    if (current >= ipLimit) return undefined;
    this.total++;
    const tracked = ipLimit !== Infinity;
    if (tracked) this.perIp.set(key, current + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      if (!tracked) return;
      const n = (this.perIp.get(key) ?? 1) - 1;
      if (n > 0) this.perIp.set(key, n);
      else this.perIp.delete(key);
    };
  }

  /** Open connections counted by this limiter. */
  get count(): number {
    return this.total;
  }
}

/**
 * Typed, consumption-tracked access to a node's parameters (`?key=value` or config metadata).
 *
 * Every module reads the parameters it understands through these accessors; whatever no module
 * read is reported at start-up as an unknown parameter, so nothing is silently ignored.
 * Keys are case-insensitive, as in gost.
 */
import { ConfigError } from "../core/errors.ts";

type Keys = string | string[];

export class Params {
  private readonly values = new Map<string, string>();
  private readonly consumed = new Set<string>();

  /** `where` names the node for error messages, e.g. `-L "http://:8080?x=1"`. */
  constructor(entries: Record<string, unknown> = {}, readonly where = "") {
    for (const [k, v] of Object.entries(entries)) {
      if (v === undefined || v === null) continue;
      this.values.set(k.toLowerCase(), Array.isArray(v) ? v.join(",") : String(v));
    }
  }

  private find(keys: Keys): [string, string] | undefined {
    for (const k of Array.isArray(keys) ? keys : [keys]) {
      const lk = k.toLowerCase();
      this.consumed.add(lk);
      const v = this.values.get(lk);
      if (v !== undefined) return [k, v];
    }
    return undefined;
  }

  private fail(key: string, msg: string): never {
    throw new ConfigError(`${this.where ? this.where + ": " : ""}parameter "${key}": ${msg}`);
  }

  /** True when any of the keys is present (marks them consumed). */
  has(keys: Keys): boolean {
    return this.find(keys) !== undefined;
  }

  /** A string value, or `def`. */
  str(keys: Keys): string | undefined;
  str(keys: Keys, def: string): string;
  str(keys: Keys, def?: string): string | undefined {
    return this.find(keys)?.[1] ?? def;
  }

  /** A boolean: true/false, 1/0, yes/no, on/off (a bare `?key` counts as true). */
  bool(keys: Keys, def = false): boolean {
    const f = this.find(keys);
    if (!f) return def;
    const v = f[1].trim().toLowerCase();
    if (["", "1", "t", "true", "yes", "y", "on"].includes(v)) return true;
    if (["0", "f", "false", "no", "n", "off"].includes(v)) return false;
    this.fail(f[0], `invalid boolean "${f[1]}"`);
  }

  /** An integer within [min, max]. */
  int(keys: Keys, def: number, min = -Infinity, max = Infinity): number {
    const f = this.find(keys);
    if (!f) return def;
    const v = f[1].trim();
    if (!/^-?\d+$/.test(v)) this.fail(f[0], `invalid integer "${f[1]}"`);
    const n = Number(v);
    if (n < min || n > max) this.fail(f[0], `${n} out of range [${min}, ${max}]`);
    return n;
  }

  /** A duration in milliseconds: Go syntax (`1m30s`, `500ms`, `1.5h`) or bare seconds. */
  duration(keys: Keys, defMs: number): number {
    const f = this.find(keys);
    if (!f) return defMs;
    const ms = parseDuration(f[1]);
    if (ms === undefined) this.fail(f[0], `invalid duration "${f[1]}"`);
    return ms;
  }

  /** A comma-separated list (empty items dropped). */
  list(keys: Keys): string[] {
    const f = this.find(keys);
    if (!f) return [];
    return f[1].split(",").map((s) => s.trim()).filter((s) => s !== "");
  }

  /** Keys present but never read by any module. */
  unconsumed(): string[] {
    return [...this.values.keys()].filter((k) => !this.consumed.has(k));
  }

  /** Throws a ConfigError naming the first parameter no module consumed. */
  assertAllConsumed(): void {
    const left = this.unconsumed();
    if (left.length) {
      throw new ConfigError(
        `${this.where ? this.where + ": " : ""}unknown parameter${left.length > 1 ? "s" : ""} ${
          left.map((k) => `"${k}"`).join(", ")
        }`,
      );
    }
  }

  /** All entries, for printing (`-O`). */
  entries(): Record<string, string> {
    return Object.fromEntries(this.values);
  }
}

const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Parses a Go duration or a bare number of seconds into milliseconds. */
export function parseDuration(s: string): number | undefined {
  const v = s.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  if (v === "0") return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  let neg = false;
  if (v.startsWith("-")) {
    neg = true;
    pos = 1;
  }
  if (pos === v.length) return undefined;
  while (pos < v.length) {
    re.lastIndex = pos;
    const m = re.exec(v);
    if (!m) return undefined;
    total += Number(m[1]) * UNITS[m[2]];
    pos = re.lastIndex;
  }
  return neg ? -total : total;
}

/** Formats milliseconds the way Go's time.Duration prints (`30s`, `1m30s`, `1h0m0s`, `500ms`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  const sign = ms < 0 ? "-" : "";
  ms = Math.abs(ms);
  if (ms < 1000) return `${sign}${+ms.toFixed(6)}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = +((ms % 60_000) / 1000).toFixed(9);
  if (h) return `${sign}${h}h${m}m${s}s`;
  if (m) return `${sign}${m}m${s}s`;
  return `${sign}${s}s`;
}

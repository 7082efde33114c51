/**
 * gost's limiter syntax: one limit per line, `<scope> <value> [<value>]`, where scope is `$`
 * (the whole service), `$$` (per connection for traffic, per client IP for connection and
 * request limits), an IP address or a CIDR. `#` starts a comment. Sizes use gost's units
 * (alecthomas/units ParseBase2Bytes): B, KB/KiB, MB/MiB, GB/GiB, TB/TiB, PB/PiB, EB/EiB, all
 * powers of 1024, case-sensitive, fractions and sums (`1MB512KB`) allowed.
 */
import { isV4Mapped, normalizeIP, parseIPv4, parseIPv6 } from "../../core/ip.ts";

/** The service-wide scope key. */
export const GLOBAL_KEY = "$";
/** The per-connection (traffic) or per-client-IP (connections, requests) scope key. */
export const CLIENT_KEY = "$$";

const SIZE_UNITS: Record<string, number> = { B: 1 };
["K", "M", "G", "T", "P", "E"].forEach((p, i) => {
  SIZE_UNITS[`${p}B`] = SIZE_UNITS[`${p}iB`] = 1024 ** (i + 1);
});

/**
 * Parses a byte size such as `512KB`, `1MB`, `10MiB`, `1.5GB`. A bare number counts as bytes
 * (gost rejects it and so silently means "unlimited"; an explicit number of bytes is clearer).
 * Throws on anything else.
 */
export function parseSize(s: string): number {
  const v = s.trim();
  if (/^[-+]?\d+$/.test(v)) return Number(v);
  const re = /(\d*\.?\d*)([A-Za-z]+)/y;
  let pos = 0;
  let sign = 1;
  if (v[0] === "-" || v[0] === "+") {
    sign = v[0] === "-" ? -1 : 1;
    pos = 1;
  }
  if (pos >= v.length) throw new Error(`invalid size "${s}"`);
  let total = 0;
  while (pos < v.length) {
    re.lastIndex = pos;
    const m = re.exec(v);
    if (!m || m[1] === "" || m[1] === ".") throw new Error(`invalid size "${s}"`);
    const unit = SIZE_UNITS[m[2]];
    if (unit === undefined) {
      throw new Error(`unknown unit "${m[2]}" in size "${s}" (use B, KB, MB, GB, TB, KiB, MiB…)`);
    }
    total += Number(m[1]) * unit;
    pos = re.lastIndex;
  }
  return Math.floor(sign * total);
}

/** One parsed line: its scope and its value fields. */
export interface LimitLine {
  scope: string;
  values: string[];
}

/** Splits a limit line; undefined for blank and comment-only lines. */
export function parseLimitLine(line: string): LimitLine | undefined {
  const hash = line.indexOf("#");
  const fields = (hash >= 0 ? line.slice(0, hash) : line).trim().split(/\s+/).filter((f) =>
    f !== ""
  );
  if (fields.length === 0) return undefined;
  if (fields.length < 2) throw new Error(`limit "${line.trim()}" has no value`);
  return { scope: fields[0], values: fields.slice(1) };
}

/** An IP as 4 (IPv4, also when IPv4-mapped) or 16 bytes; null when not an IP literal. */
export function ipBytes(host: string): Uint8Array | null {
  const v4 = parseIPv4(host);
  if (v4) return v4;
  const v6 = parseIPv6(host);
  if (!v6) return null;
  return isV4Mapped(v6) ? v6.slice(12) : v6;
}

interface Cidr<T> {
  net: Uint8Array;
  bits: number;
  value: T;
}

function parseCidr(s: string): { net: Uint8Array; bits: number } | null {
  const slash = s.indexOf("/");
  if (slash < 0) return null;
  const net = ipBytes(s.slice(0, slash));
  const bitsText = s.slice(slash + 1);
  if (!net || !/^\d{1,3}$/.test(bitsText)) return null;
  const bits = Number(bitsText);
  if (bits > net.length * 8) return null;
  return { net, bits };
}

function cidrContains(net: Uint8Array, bits: number, ip: Uint8Array): boolean {
  if (net.length !== ip.length) return false;
  let i = 0;
  for (; bits >= 8; bits -= 8, i++) if (net[i] !== ip[i]) return false;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return (net[i] & mask) === (ip[i] & mask);
}

/**
 * Limits keyed by scope: the service-wide value, the per-client value, and per-IP / per-CIDR
 * values (the most specific CIDR wins; an exact IP beats any CIDR).
 */
export class ScopeTable<T> {
  global?: T;
  client?: T;
  private readonly ips = new Map<string, T>();
  private readonly cidrs: Cidr<T>[] = [];

  /** Builds a table from limit lines, turning each line's values into a T with `value`. */
  static parse<T>(lines: string[], value: (values: string[]) => T): ScopeTable<T> {
    const t = new ScopeTable<T>();
    for (const raw of lines) {
      const l = parseLimitLine(raw);
      if (!l) continue;
      const v = value(l.values);
      if (l.scope === GLOBAL_KEY) t.global = v;
      else if (l.scope === CLIENT_KEY) t.client = v;
      else if (ipBytes(l.scope)) t.ips.set(normalizeIP(l.scope), v);
      else {
        const c = parseCidr(l.scope);
        if (!c) throw new Error(`invalid limit scope "${l.scope}" (want $, $$, an IP or a CIDR)`);
        t.cidrs.push({ ...c, value: v });
      }
    }
    t.cidrs.sort((a, b) => b.bits - a.bits);
    return t;
  }

  /** True when any per-IP or per-CIDR entry exists. */
  get hasAddressEntries(): boolean {
    return this.ips.size > 0 || this.cidrs.length > 0;
  }

  /** The value for a client IP from the IP/CIDR entries, with the key it is shared under. */
  lookupAddress(host: string): { key: string; value: T } | undefined {
    if (!this.hasAddressEntries) return undefined;
    const key = normalizeIP(host);
    const exact = this.ips.get(key);
    if (exact !== undefined) return { key, value: exact };
    const ip = ipBytes(key);
    if (!ip) return undefined;
    for (const c of this.cidrs) {
      if (cidrContains(c.net, c.bits, ip)) return { key, value: c.value };
    }
    return undefined;
  }
}

/**
 * Address matchers shared by bypass, admission and permissions, with gost v3's pattern kinds:
 * IP addresses, CIDR blocks, IP ranges (`10.0.0.1-10.0.0.9`), exact host names, `.example.com`
 * (the apex and every subdomain), wildcards (`*.example.com`, `?`, `[a-z]`, `{a,b}`), each
 * optionally with `:port` or `:min-max` (host names and wildcards only, as in gost).
 *
 * Unlike gost, which files anything it cannot parse under "host name", a pattern that is
 * clearly broken (an invalid CIDR or range, a bad port, an unbalanced bracket) is an error, so
 * a typo in a rules file is reported and the previous rules kept instead of silently changed.
 */
import { isFilePath } from "../chain/nodefile.ts";
import { parseDuration } from "../config/params.ts";
import { ConfigError, errMsg } from "../core/errors.ts";
import { DEFAULT_RELOAD_CHECK, FileWatcher } from "../core/filewatch.ts";
import { isV4Mapped, parseIPv4, parseIPv6 } from "../core/ip.ts";
import type { Logger } from "../core/logger.ts";

/** An inclusive port range. */
export interface PortRange {
  min: number;
  max: number;
}

/**
 * Parses `80`, `8000-9000` or `*` (every port). Bounds outside 0–65535 or not numbers are
 * errors; a reversed range is put in order.
 */
export function parsePortRange(s: string): PortRange {
  s = s.trim();
  if (s === "*") return { min: 0, max: 65535 };
  const parts = s.split("-");
  if (parts.length > 2 || parts.some((p) => !/^\d{1,5}$/.test(p.trim()))) {
    throw new Error(`invalid port or port range "${s}"`);
  }
  const [a, b] = parts.map((p) => Number(p.trim()));
  const lo = Math.min(a, b ?? a);
  const hi = Math.max(a, b ?? a);
  if (hi > 65535) throw new Error(`port out of range in "${s}"`);
  return { min: lo, max: hi };
}

/** A comma-separated list of port ranges (`80,443,8000-9000`). */
export function parsePortList(s: string): PortRange[] {
  if (s.trim() === "") throw new Error("empty port list");
  return s.split(",").map(parsePortRange);
}

function inRanges(prs: (PortRange | null)[], port: number): boolean {
  return prs.some((r) => r === null || (port >= r.min && port <= r.max));
}

/** Parses an IP literal to 16 bytes (IPv4 as IPv4-mapped IPv6); null when not an IP. */
export function ipBytes(s: string): Uint8Array | null {
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const v4 = parseIPv4(s);
  if (v4) {
    const out = new Uint8Array(16);
    out[10] = out[11] = 0xff;
    out.set(v4, 12);
    return out;
  }
  return parseIPv6(s);
}

/** A CIDR block. */
export interface Cidr {
  net: Uint8Array;
  /** Prefix length over the 16-byte form (IPv4 prefixes are offset by 96). */
  bits: number;
}

/** Parses `a.b.c.d/n` or `x::/n`; throws on a malformed block. */
export function parseCidr(s: string): Cidr {
  const slash = s.indexOf("/");
  const ipText = s.slice(0, slash);
  const bitsText = s.slice(slash + 1);
  const v4 = parseIPv4(ipText) !== null;
  const ip = ipBytes(ipText);
  const max = v4 ? 32 : 128;
  if (!ip || !/^\d{1,3}$/.test(bitsText) || Number(bitsText) > max) {
    throw new Error(`invalid CIDR "${s}"`);
  }
  const bits = Number(bitsText) + (v4 ? 96 : 0);
  return { net: maskIP(ip, bits), bits };
}

/** `ip` (16 bytes) with all bits past the first `bits` cleared. */
export function maskIP(ip: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    out[i] = ip[i] & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

/** True when the 16-byte `ip` lies in `c`. */
export function cidrContains(c: Cidr, ip: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, c.bits - i * 8));
    if (keep === 0) return true;
    const mask = (0xff << (8 - keep)) & 0xff;
    if ((ip[i] & mask) !== c.net[i]) return false;
  }
  return true;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/** An inclusive IP range. */
interface IPRange {
  lo: Uint8Array;
  hi: Uint8Array;
}

/**
 * Compiles a gobwas/glob-style pattern (no separators, so `*` spans dots): `*`, `?`,
 * `[abc]` / `[!abc]` / `[a-z]`, `{a,b}`, `\x`. Throws on unbalanced brackets or braces.
 */
export function compileGlob(pattern: string): RegExp {
  let re = "";
  let depth = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      if (i + 1 >= pattern.length) throw new Error(`dangling escape in "${pattern}"`);
      re += escapeRe(pattern[++i]);
    } else if (c === "*") re += ".*";
    else if (c === "?") re += ".";
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 1);
      if (end < 0) throw new Error(`unclosed "[" in "${pattern}"`);
      let body = pattern.slice(i + 1, end);
      const neg = body.startsWith("!");
      if (neg) body = body.slice(1);
      if (body === "") throw new Error(`empty "[]" in "${pattern}"`);
      re += `[${neg ? "^" : ""}${body.replace(/[\\\]^]/g, "\\$&")}]`;
      i = end;
    } else if (c === "{") {
      depth++;
      re += "(?:";
    } else if (c === "}") {
      if (depth === 0) throw new Error(`unbalanced "}" in "${pattern}"`);
      depth--;
      re += ")";
    } else if (c === "," && depth > 0) re += "|";
    else re += escapeRe(c);
  }
  if (depth !== 0) throw new Error(`unclosed "{" in "${pattern}"`);
  return new RegExp(`^${re}$`, "s");
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** Splits `host:port` (also `[v6]:port`); a bare host or IPv6 literal gives port "". */
export function splitPattern(s: string): { host: string; port: string } {
  if (s.startsWith("[")) {
    const end = s.indexOf("]");
    if (end > 0) {
      const rest = s.slice(end + 1);
      return { host: s.slice(1, end), port: rest.startsWith(":") ? rest.slice(1) : "" };
    }
  }
  const first = s.indexOf(":");
  // Two or more colons without brackets: an IPv6 literal, never host:port.
  if (first < 0 || s.indexOf(":", first + 1) >= 0) return { host: s, port: "" };
  return { host: s.slice(0, first), port: s.slice(first + 1) };
}

/**
 * A set of address patterns. `match(addr)` takes `host` or `host:port` and is true when any
 * pattern matches: an IP or IP range equal to/containing the host, a CIDR containing it, a
 * host name (`.domain` also matching its subdomains) or wildcard matching it and, when the
 * pattern names ports, the port.
 */
export class AddressMatcher {
  private readonly ips = new Set<string>();
  /** CIDR networks by prefix length: one masked lookup per distinct length, not one per block. */
  private readonly cidrs = new Map<number, Set<number | string>>();
  private readonly ranges: IPRange[] = [];
  /** Lower-cased host name (or `.domain`) → port ranges (null = any port). */
  private readonly names = new Map<string, (PortRange | null)[]>();
  private readonly globs: { re: RegExp; ports: PortRange | null }[] = [];
  /** `*.domain` patterns by `.domain`: any name below it, not the apex (gost's `*` spans dots). */
  private readonly below = new Map<string, (PortRange | null)[]>();

  /**
   * Builds from patterns; throws on a malformed one, naming it. `ipOnly` (admission) accepts
   * IPs, CIDRs and IP ranges only.
   */
  constructor(patterns: Iterable<string>, readonly ipOnly = false) {
    for (const raw of patterns) {
      const p = raw.trim();
      if (p !== "") this.add(p);
    }
  }

  /** Number of patterns. */
  get size(): number {
    let n = this.ips.size + this.ranges.length + this.globs.length;
    for (const v of this.cidrs.values()) n += v.size;
    for (const v of this.names.values()) n += v.length;
    for (const v of this.below.values()) n += v.length;
    return n;
  }

  private add(p: string): void {
    if (p.includes("/")) {
      const c = parseCidr(p);
      const set = this.cidrs.get(c.bits) ?? new Set<number | string>();
      set.add(cidrKey(c.net, c.bits));
      this.cidrs.set(c.bits, set);
      return;
    }
    const ip = ipBytes(p);
    if (ip) {
      this.ips.add(ipKey(ip));
      return;
    }
    const dash = p.indexOf("-");
    if (dash > 0) {
      const lo = ipBytes(p.slice(0, dash).trim());
      const hi = ipBytes(p.slice(dash + 1).trim());
      if (lo || hi) {
        if (!lo || !hi || isV4Mapped(lo) !== isV4Mapped(hi)) {
          throw new Error(`invalid IP range "${p}"`);
        }
        this.ranges.push(compareBytes(lo, hi) <= 0 ? { lo, hi } : { lo: hi, hi: lo });
        return;
      }
    }
    if (this.ipOnly) throw new Error(`"${p}" is not an IP address, CIDR or IP range`);
    const { host, port } = splitPattern(p);
    if (host === "") throw new Error(`invalid pattern "${p}"`);
    const ports = port === "" ? null : parsePortRange(port);
    if (/^\*\.[^*?[\]{}\\\s]+$/.test(host)) {
      // The common `*.example.com` form is a suffix lookup, not one regex per pattern.
      const key = host.slice(1).toLowerCase();
      const list = this.below.get(key) ?? [];
      list.push(ports);
      this.below.set(key, list);
      return;
    }
    if (/[*?[\]{}]/.test(host)) {
      this.globs.push({ re: compileGlob(host.toLowerCase()), ports });
      return;
    }
    if (/\s/.test(host)) throw new Error(`invalid pattern "${p}"`);
    const key = host.toLowerCase();
    const list = this.names.get(key) ?? [];
    list.push(ports);
    this.names.set(key, list);
  }

  /** True when `addr` (`host` or `host:port`) matches any pattern. */
  match(addr: string): boolean {
    const { host: h, port: sp } = splitPattern(addr);
    const host = h.toLowerCase();
    const port = sp === "" ? 0 : Number(sp) || 0;
    const ip = ipBytes(host);
    if (ip) {
      if (this.ips.size && this.ips.has(ipKey(ip))) return true;
      for (const [bits, nets] of this.cidrs) {
        if (nets.has(cidrKey(ip, bits))) return true;
      }
      for (const r of this.ranges) {
        if (compareBytes(ip, r.lo) >= 0 && compareBytes(ip, r.hi) <= 0) return true;
      }
    }
    if (this.names.size) {
      // The name itself, `.name` (apex of a `.domain` pattern), then each parent `.domain`.
      for (const key of [host, "." + host]) {
        const prs = this.names.get(key);
        if (prs && inRanges(prs, port)) return true;
      }
      for (let i = host.indexOf("."); i > 0; i = host.indexOf(".", i + 1)) {
        const prs = this.names.get(host.slice(i));
        if (prs && inRanges(prs, port)) return true;
      }
    }
    if (this.below.size) {
      // Every proper parent `.domain` of the name (never the name itself: `*.` needs a label).
      for (let i = host.indexOf("."); i > 0; i = host.indexOf(".", i + 1)) {
        const prs = this.below.get(host.slice(i));
        if (prs && inRanges(prs, port)) return true;
      }
    }
    for (const g of this.globs) {
      if (g.re.test(host) && (g.ports === null || inRanges([g.ports], port))) return true;
    }
    return false;
  }
}

/**
 * Key of `ip`'s network at prefix `bits` (16-byte form): a number for IPv4 (the common case,
 * no allocation), the masked hex text otherwise.
 */
function cidrKey(ip: Uint8Array, bits: number): number | string {
  if (bits >= 96 && isV4Mapped(ip)) {
    const n = ((ip[12] << 24) | (ip[13] << 16) | (ip[14] << 8) | ip[15]) >>> 0;
    const len = bits - 96;
    return len === 0 ? 0 : (n & ((~0 << (32 - len)) >>> 0)) >>> 0;
  }
  return ipKey(maskIP(ip, bits));
}

/** Canonical key of a 16-byte IP (IPv4 and its IPv4-mapped form are the same address). */
function ipKey(ip: Uint8Array): string {
  return Array.from(ip, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A parsed rules file: its patterns and gost v2's directives. */
export interface RulesFile {
  patterns: string[];
  /** `reload <duration>`: how often the file is checked for changes (ms). */
  reload?: number;
  /** `reverse <bool>` (bypass): whitelist mode. */
  reverse?: boolean;
}

/**
 * Parses a rules file: one pattern per line (the first word; `#` starts a comment), and the
 * directives `reload 10s` and `reverse true`.
 */
export function parseRulesFile(text: string): RulesFile {
  const out: RulesFile = { patterns: [] };
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const hash = raw.indexOf("#");
    const words = (hash >= 0 ? raw.slice(0, hash) : raw).trim().split(/\s+/).filter(Boolean);
    if (!words.length) continue;
    const key = words[0].toLowerCase();
    if (key === "reload" && words.length > 1) {
      const ms = parseDuration(words[1]);
      if (ms === undefined) throw new Error(`line ${i + 1}: invalid reload period "${words[1]}"`);
      out.reload = ms;
    } else if (key === "reverse" && words.length > 1) {
      const v = words[1].toLowerCase();
      if (!["true", "false", "1", "0", "yes", "no", "on", "off"].includes(v)) {
        throw new Error(`line ${i + 1}: invalid reverse value "${words[1]}"`);
      }
      out.reverse = ["true", "1", "yes", "on"].includes(v);
    } else out.patterns.push(words[0]);
  }
  return out;
}

/** Options of a MatcherSource. */
export interface MatcherSourceOptions {
  /** Admission: IPs, CIDRs and IP ranges only. */
  ipOnly?: boolean;
  log?: Logger;
  /** Names the parameter in errors, e.g. `-L "…": parameter "bypass"`. */
  where?: string;
  /** Patterns added to the value's (gost v3 `matchers` next to a `file`). */
  patterns?: string[];
  /** File check period when the file has no `reload` line (gost v3 `reload`), ms. */
  reload?: number;
}

/**
 * The patterns behind a `bypass=` / `admission=` value: `[~]a,b,c` inline, or `[~]path` naming
 * a rules file, watched for changes (a file's `reverse` directive overrides the `~`). A failed
 * reload keeps the previous rules and logs one line.
 */
export class MatcherSource {
  private current: AddressMatcher;
  private rev: boolean;
  /** The watcher of a file source (closed by close()). */
  readonly watcher?: FileWatcher;
  /** The file, when the rules come from one. */
  readonly file?: string;

  constructor(value: string, opts: MatcherSourceOptions = {}) {
    const where = opts.where ? `${opts.where}: ` : "";
    let v = value.trim();
    const tilde = v.startsWith("~");
    if (tilde) v = v.slice(1).trim();
    this.rev = tilde;
    let file: string | undefined;
    try {
      file = v !== "" && isFilePath(v) ? v : undefined;
    } catch (e) {
      throw new ConfigError(`${where}${errMsg(e)}`);
    }
    if (!file) {
      try {
        this.current = new AddressMatcher(
          [...v.split(",").map((s) => s.trim()), ...opts.patterns ?? []],
          opts.ipOnly,
        );
      } catch (e) {
        throw new ConfigError(`${where}${errMsg(e)}`);
      }
      return;
    }
    this.file = file;
    this.current = new AddressMatcher([]);
    const w = new FileWatcher(file, (text) => {
      const rf = parseRulesFile(text);
      const m = new AddressMatcher([...rf.patterns, ...opts.patterns ?? []], opts.ipOnly);
      // Everything parsed: swap (an error above keeps the previous rules).
      this.current = m;
      this.rev = rf.reverse ?? tilde;
      w.watch(rf.reload ?? (opts.reload || DEFAULT_RELOAD_CHECK));
      opts.log?.debug(`${file}: ${m.size} rule(s)${this.rev ? ", reversed" : ""}`);
    }, opts.log);
    try {
      w.loadNow();
    } catch (e) {
      throw new ConfigError(`${where}${errMsg(e)}`);
    }
    this.watcher = w;
  }

  /** The current rules. */
  get matcher(): AddressMatcher {
    return this.current;
  }

  /** True in reversed (whitelist) mode. */
  get reversed(): boolean {
    return this.rev;
  }

  /** Stops watching the file. */
  close(): void {
    this.watcher?.close();
  }
}

/**
 * Static host mappings consulted before DNS (gost's Hosts): inline `hosts=name:ip,name2:ip`
 * (gost v3 CLI) or a file (gost v2) with lines `ip hostname [aliases…]`, `#` comments and a
 * `reload 10s` directive, reloaded live. A name may map to several IPs (IPv4 and IPv6 lines).
 * An entry `.example.com` matches every subdomain of example.com (gost v3 wildcard form).
 */
import { ConfigError, errMsg } from "../core/errors.ts";
import { DEFAULT_RELOAD_CHECK, FileWatcher } from "../core/filewatch.ts";
import { ipVersion, normalizeIP } from "../core/ip.ts";
import type { Logger } from "../core/logger.ts";
import { parseDuration } from "../config/params.ts";

/** Looks names up in a static table. */
export interface HostMapper {
  /** The IPs mapped to `host` (lower-cased, no trailing dot), or undefined when none. */
  lookup(host: string): string[] | undefined;
  /** Stops reloading. */
  close(): void;
}

/** A parsed hosts table plus the file's `reload` period (ms, 0 when absent). */
export interface HostsTable {
  map: Map<string, string[]>;
  reload: number;
}

function canon(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, "");
}

function add(map: Map<string, string[]>, name: string, ip: string): void {
  const k = canon(name);
  const list = map.get(k);
  if (!list) map.set(k, [ip]);
  else if (!list.includes(ip)) list.push(ip);
}

/** Parses hosts-file text; throws (naming the line) on a malformed entry. */
export function parseHostsFile(text: string): HostsTable {
  const map = new Map<string, string[]>();
  let reload = 0;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) return;
    const f = line.split(/\s+/);
    if (f[0].toLowerCase() === "reload") {
      const ms = f.length === 2 ? parseDuration(f[1]) : undefined;
      if (ms === undefined || ms < 0) throw new Error(`line ${i + 1}: invalid reload "${f[1]}"`);
      reload = ms;
      return;
    }
    if (ipVersion(f[0]) === 0) throw new Error(`line ${i + 1}: "${f[0]}" is not an IP address`);
    if (f.length < 2) throw new Error(`line ${i + 1}: no host name for ${f[0]}`);
    const ip = normalizeIP(f[0]);
    for (const name of f.slice(1)) add(map, name, ip);
  });
  return { map, reload };
}

/** Parses the inline form `name:ip,name2:ip` (split at the first colon, so IPv6 works). */
export function parseInlineHosts(value: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const item of value.split(",").map((s) => s.trim()).filter(Boolean)) {
    const c = item.indexOf(":");
    const name = c > 0 ? item.slice(0, c) : "";
    const ip = c > 0 ? item.slice(c + 1).replace(/^\[|\]$/g, "") : "";
    if (!name || ipVersion(ip) === 0) {
      throw new ConfigError(`hosts entry "${item}": expected hostname:ip`);
    }
    add(map, name, normalizeIP(ip));
  }
  return map;
}

/** A hosts table, static or backed by a live-reloaded file. */
export class Hosts implements HostMapper {
  private map: Map<string, string[]>;
  private watcher?: FileWatcher;

  constructor(map = new Map<string, string[]>()) {
    this.map = map;
  }

  /** Loads `path` now (throws ConfigError on failure) and watches it for changes. */
  static fromFile(path: string, log?: Logger): Hosts {
    const h = new Hosts();
    let period = 0;
    const w = new FileWatcher(path, (text) => {
      const t = parseHostsFile(text);
      h.map = t.map;
      if (t.reload !== period) {
        period = t.reload;
        // Without a `reload` directive the file is still checked, on the default period.
        w.watch(period || DEFAULT_RELOAD_CHECK);
      }
    }, log);
    h.watcher = w;
    w.loadNow();
    if (period === 0) w.watch(DEFAULT_RELOAD_CHECK);
    return h;
  }

  lookup(host: string): string[] | undefined {
    const name = canon(host);
    const hit = this.map.get(name);
    if (hit) return hit;
    // Wildcard entries `.example.com`: try each parent suffix.
    for (let i = name.indexOf("."); i >= 0; i = name.indexOf(".", i + 1)) {
      const w = this.map.get(name.slice(i));
      if (w) return w;
    }
    return undefined;
  }

  /** Number of names mapped (for logs and tests). */
  get size(): number {
    return this.map.size;
  }

  close(): void {
    this.watcher?.close();
  }
}

/**
 * Builds the hosts of a `hosts=` value: a readable file path, else the inline list.
 * Throws ConfigError when neither fits.
 */
export function buildHosts(value: string, log?: Logger): Hosts {
  let isFile = false;
  try {
    isFile = Deno.statSync(value).isFile;
  } catch (e) {
    // Inline lists always contain a colon; anything else was meant as a file.
    if (!value.includes(":")) throw new ConfigError(`hosts file ${value}: ${errMsg(e)}`);
  }
  return isFile ? Hosts.fromFile(value, log) : new Hosts(parseInlineHosts(value));
}

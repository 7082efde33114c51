/**
 * Node sources for hop groups from gost v2: the `ip=` address list (inline or a file, one
 * address per line, `#` comments) and the `peer=` file (selector settings plus node URLs, in
 * gost's line format or JSON), with live reload when the file's mtime changes.
 */
import { joinHostPort } from "../core/conn.ts";
import { ConfigError, errMsg } from "../core/errors.ts";
import { parseDuration } from "../config/params.ts";

/**
 * Normalises one `ip=` entry: a host without a port takes `defaultPort`; bare IPv6 literals are
 * bracketed (gost v2's parseIP).
 */
export function ipEntryAddr(entry: string, defaultPort: number | string): string {
  const s = entry.trim();
  const colons = s.split(":").length - 1;
  if (colons === 0 || s.endsWith("]")) return `${s}:${defaultPort}`;
  if (colons > 1 && !s.startsWith("[")) return joinHostPort(s, defaultPort);
  return s;
}

/** Splits an inline `ip=a,b:2` list into addresses. */
export function parseIPList(list: string, defaultPort: number | string): string[] {
  if (/[/\\]/.test(list)) {
    // Addresses have no slashes: this was meant to be a file.
    throw new ConfigError(`ip=${list}: no such file, and not an address list`);
  }
  return list.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) =>
    ipEntryAddr(s, defaultPort)
  );
}

/** Parses an `ip=` file: one address per line, blank lines and `#` lines skipped. */
export function parseIPFile(text: string, defaultPort: number | string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/#.*/, "").trim();
    if (line !== "") out.push(ipEntryAddr(line, defaultPort));
  }
  return out;
}

/** The content of a peer file. Absent fields leave the `-F` node's settings in force. */
export interface PeerFile {
  strategy?: string;
  maxFails?: number;
  failTimeout?: number;
  fastestCount?: number;
  /** Reload period in ms from the `reload` directive (0 = no reloading). */
  reload?: number;
  /** Node URLs (`socks5://host:port?…`), added to the hop after its own nodes. */
  nodes: string[];
}

function intField(v: unknown, what: string): number {
  const n = typeof v === "string" ? Number(v.trim()) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0) {
    throw new ConfigError(`${what}: invalid number "${v}"`);
  }
  return n;
}

function durField(v: unknown, what: string): number {
  if (typeof v === "number" && v >= 0) return v * 1000;
  const ms = typeof v === "string" ? parseDuration(v) : undefined;
  if (ms === undefined || ms < 0) throw new ConfigError(`${what}: invalid duration "${v}"`);
  return ms;
}

/**
 * Parses a peer file. JSON (`{"strategy", "max_fails", "fail_timeout", "fastest_count",
 * "reload", "nodes": [urls]}`; durations as Go strings or seconds) or gost's line format:
 *
 * ```
 * strategy      random
 * max_fails     1
 * fail_timeout  30s
 * fastest_count 2
 * reload        10s
 * peer          socks5://10.0.0.1:1080
 * ```
 */
export function parsePeerFile(text: string): PeerFile {
  const t = text.trim();
  if (t.startsWith("{")) return parsePeerJSON(t);
  const out: PeerFile = { nodes: [] };
  text.split(/\r?\n/).forEach((raw, i) => {
    const f = raw.replace(/#.*/, "").trim().split(/\s+/).filter((s) => s !== "");
    if (f.length < 2) return;
    const what = `line ${i + 1}`;
    switch (f[0].toLowerCase()) {
      case "strategy":
        out.strategy = f[1];
        break;
      case "max_fails":
        out.maxFails = intField(f[1], `${what}: max_fails`);
        break;
      case "fail_timeout":
        out.failTimeout = durField(f[1], `${what}: fail_timeout`);
        break;
      case "fastest_count":
        out.fastestCount = intField(f[1], `${what}: fastest_count`);
        break;
      case "reload":
        out.reload = durField(f[1], `${what}: reload`);
        break;
      case "peer":
        out.nodes.push(f[1]);
        break;
      default:
        throw new ConfigError(`${what}: unknown directive "${f[0]}"`);
    }
  });
  return out;
}

function parsePeerJSON(t: string): PeerFile {
  let j: unknown;
  try {
    j = JSON.parse(t);
  } catch (e) {
    throw new ConfigError(`invalid JSON: ${errMsg(e)}`);
  }
  if (typeof j !== "object" || j === null || Array.isArray(j)) {
    throw new ConfigError("JSON peer file must be an object");
  }
  const out: PeerFile = { nodes: [] };
  // Keys are matched case-insensitively with or without underscores, as Go's decoder would
  // for `FailTimeout` and gost's documented `fail_timeout`.
  for (const [k, v] of Object.entries(j as Record<string, unknown>)) {
    switch (k.toLowerCase().replace(/_/g, "")) {
      case "strategy":
        if (typeof v !== "string") throw new ConfigError(`"${k}" must be a string`);
        out.strategy = v;
        break;
      case "maxfails":
        out.maxFails = intField(v, k);
        break;
      case "failtimeout":
        out.failTimeout = durField(v, k);
        break;
      case "fastestcount":
        out.fastestCount = intField(v, k);
        break;
      case "reload":
        out.reload = durField(v, k);
        break;
      case "nodes":
        if (!Array.isArray(v) || v.some((n) => typeof n !== "string")) {
          throw new ConfigError(`"${k}" must be a list of node URLs`);
        }
        out.nodes = v as string[];
        break;
      default:
        throw new ConfigError(`unknown key "${k}"`);
    }
  }
  return out;
}

/**
 * Whether an `ip=` value names a file (gost v2 tries to open it and otherwise reads it as a
 * list). Without read permission a value that looks like a path is an error, not a list.
 */
export function isFilePath(v: string): boolean {
  try {
    return Deno.statSync(v).isFile;
  } catch (e) {
    if (
      (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) &&
      v.includes("/")
    ) {
      throw new ConfigError(`reading "${v}" needs --allow-read`);
    }
    return false;
  }
}

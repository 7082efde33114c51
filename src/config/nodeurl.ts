/**
 * The gost node URL grammar:
 * `[scheme://][user:pass@][host]:port[/target[,target…]][?params]`.
 *
 * Hand-written rather than `new URL()` because gost URLs have no host (`:8080`), port ranges,
 * Shadowsocks `method:password@` user parts (plain or SIP002 base64), and comma target lists.
 */
import { ConfigError } from "../core/errors.ts";
import { joinHostPort } from "../core/conn.ts";

/** One parsed node URL. */
export interface NodeURL {
  /** The original text, for messages. */
  raw: string;
  /** Full scheme as written (`socks5+wss`), or "" when absent. */
  scheme: string;
  /** The protocol part (before `+`). */
  protocol: string;
  /** The transport part (after `+`), or "" when the scheme has one part. */
  transport: string;
  username?: string;
  password?: string;
  /** Host without brackets; "" means all interfaces (listen) or localhost (dial). */
  host: string;
  /** The first port (or the only one). */
  port: number;
  /** Last port of a `a-b` range (equals `port` when no range). */
  portEnd: number;
  /** Forward targets from the path, in order. */
  targets: string[];
  /** Query parameters, keys as written. */
  params: Record<string, string>;
}

function pdecode(s: string, what: string, raw: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ConfigError(`"${raw}": invalid percent-encoding in ${what}`);
  }
}

function parsePort(p: string, raw: string): number {
  if (!/^\d+$/.test(p)) throw new ConfigError(`"${raw}": invalid port "${p}"`);
  const n = Number(p);
  if (n > 65535) throw new ConfigError(`"${raw}": port out of range`);
  return n;
}

/** Parses a node URL; throws ConfigError with the URL and the problem. */
export function parseNodeURL(raw: string): NodeURL {
  let rest = raw.trim();
  if (rest === "") throw new ConfigError(`empty node address`);
  let scheme = "";
  const m = /^([A-Za-z0-9][A-Za-z0-9+.\-]*):\/\//.exec(rest);
  if (m) {
    scheme = m[1].toLowerCase();
    rest = rest.slice(m[0].length);
  } else if (rest.includes("://")) {
    throw new ConfigError(`"${raw}": invalid scheme`);
  }
  const parts = scheme.split("+");
  if (parts.length > 2 || parts.some((p) => p === "") && scheme !== "") {
    throw new ConfigError(`"${raw}": invalid scheme "${scheme}"`);
  }
  const protocol = parts[0] ?? "";
  const transport = parts[1] ?? "";

  // Query.
  let query = "";
  const qi = rest.indexOf("?");
  if (qi >= 0) {
    query = rest.slice(qi + 1);
    rest = rest.slice(0, qi);
  }
  // User info: up to the last '@' before the path starts (the path may not contain '@').
  let username: string | undefined;
  let password: string | undefined;
  const slash0 = rest.indexOf("/");
  const authEnd = slash0 < 0 ? rest.length : slash0;
  const at = rest.lastIndexOf("@", authEnd);
  if (at >= 0) {
    const ui = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const ci = ui.indexOf(":");
    if (ci >= 0) {
      username = pdecode(ui.slice(0, ci), "user name", raw);
      password = pdecode(ui.slice(ci + 1), "password", raw);
    } else {
      username = pdecode(ui, "user name", raw);
      // SIP002: ss://base64(method:password)@host:port
      if (/^ss/.test(protocol) && /^[A-Za-z0-9+/_-]+=*$/.test(username)) {
        try {
          const dec = atob(username.replace(/-/g, "+").replace(/_/g, "/"));
          const di = dec.indexOf(":");
          if (di > 0 && /^[\x20-\x7e]+$/.test(dec)) {
            username = dec.slice(0, di);
            password = dec.slice(di + 1);
          }
        } catch {
          // not base64: a plain user name
        }
      }
    }
  }
  // Host and port, then path targets.
  const slash = rest.indexOf("/");
  const hostport = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? "" : rest.slice(slash + 1);
  let host: string;
  let portStr: string;
  if (hostport.startsWith("[")) {
    const end = hostport.indexOf("]");
    if (end < 0) throw new ConfigError(`"${raw}": unterminated IPv6 address`);
    host = hostport.slice(1, end);
    const after = hostport.slice(end + 1);
    if (!after.startsWith(":")) throw new ConfigError(`"${raw}": missing port`);
    portStr = after.slice(1);
  } else {
    const ci = hostport.lastIndexOf(":");
    if (ci < 0) {
      // A bare number is a port (`-L 8080`), anything else lacks one.
      if (/^\d+(-\d+)?$/.test(hostport)) {
        host = "";
        portStr = hostport;
      } else throw new ConfigError(`"${raw}": missing port`);
    } else {
      host = hostport.slice(0, ci);
      portStr = hostport.slice(ci + 1);
      if (host.includes(":")) {
        throw new ConfigError(`"${raw}": IPv6 address must be in brackets`);
      }
    }
  }
  if (portStr === "") throw new ConfigError(`"${raw}": missing port`);
  let port: number;
  let portEnd: number;
  const range = /^(\d+)-(\d+)$/.exec(portStr);
  if (range) {
    port = parsePort(range[1], raw);
    portEnd = parsePort(range[2], raw);
    if (portEnd < port) throw new ConfigError(`"${raw}": invalid port range ${portStr}`);
  } else {
    port = portEnd = parsePort(portStr, raw);
  }
  if (/[\s/@]/.test(host)) throw new ConfigError(`"${raw}": invalid host "${host}"`);

  const targets = path === "" ? [] : path.split(",").map((t) => pdecode(t.trim(), "target", raw))
    .filter((t) => t !== "");

  const params: Record<string, string> = {};
  if (query !== "") {
    for (const kv of query.split("&")) {
      if (kv === "") continue;
      const ei = kv.indexOf("=");
      const k = pdecode((ei < 0 ? kv : kv.slice(0, ei)).replace(/\+/g, " "), "parameter", raw);
      const v = ei < 0 ? "" : pdecode(kv.slice(ei + 1).replace(/\+/g, " "), "parameter", raw);
      if (!(k in params)) params[k] = v; // first value wins, as url.Query().Get does
    }
  }
  return {
    raw,
    scheme,
    protocol,
    transport,
    username,
    password,
    host,
    port,
    portEnd,
    targets,
    params,
  };
}

/** `host:port` of a parsed URL (host may be empty: `:8080`). */
export function nodeAddr(u: NodeURL, port = u.port): string {
  return u.host === "" ? `:${port}` : joinHostPort(u.host, port);
}

/**
 * Where a proxy request goes: parsing absolute-form URLs and CONNECT authorities into a
 * host and port, gost v2's encoded `Gost-Target` header, and knock-host matching.
 */
import { joinHostPort } from "../../core/conn.ts";
import { HttpError } from "./wire.ts";
import { crc32 } from "../../core/crc32.ts";
import { b64urlDecode } from "../../core/base64url.ts";

/** A host and port to dial, and how the request names it. */
export interface Authority {
  /** Host name or IP literal (IPv6 without brackets). */
  host: string;
  port: number;
  /** The authority as the request wrote it, minus any userinfo (for the Host header). */
  hostHeader: string;
}

/** An absolute-form `http://` request-target split for forwarding. */
export interface AbsoluteTarget extends Authority {
  /** Lower-cased scheme. */
  scheme: string;
  /** The origin-form to send upstream (`/path?query`, at least `/`). */
  path: string;
}

const HOST_RE = /^[A-Za-z0-9._~!$&'()*+,;=%-]+$/;

/**
 * Parses `host[:port]` / `[v6][:port]` (userinfo dropped). Throws HttpError 400 when malformed.
 */
export function parseAuthority(a: string, defaultPort: number): Authority {
  const bad = () => new HttpError(400, `invalid authority "${a.slice(0, 80)}"`);
  const at = a.lastIndexOf("@");
  const hostport = at >= 0 ? a.slice(at + 1) : a;
  let host: string;
  let portStr = "";
  if (hostport.startsWith("[")) {
    const end = hostport.indexOf("]");
    if (end < 0) throw bad();
    host = hostport.slice(1, end);
    const rest = hostport.slice(end + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) throw bad();
      portStr = rest.slice(1);
    }
    if (!/^[0-9A-Fa-f:.]+$/.test(host) || !host.includes(":")) throw bad();
  } else {
    const i = hostport.lastIndexOf(":");
    if (i >= 0) {
      host = hostport.slice(0, i);
      portStr = hostport.slice(i + 1);
    } else {
      host = hostport;
    }
    if (!HOST_RE.test(host)) throw bad();
  }
  let port = defaultPort;
  if (portStr !== "") {
    if (!/^\d{1,5}$/.test(portStr)) throw bad();
    port = Number(portStr);
  }
  if (port < 1 || port > 65535) throw bad();
  return { host, port, hostHeader: hostport };
}

/**
 * Parses an absolute-form request-target (`scheme://authority/path?query`). Returns null when
 * `target` is not absolute-form (origin-form `/x`, `*`, …). Throws HttpError 400 when the
 * authority is malformed.
 */
export function parseAbsoluteTarget(target: string): AbsoluteTarget | null {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/.exec(target);
  if (!m) return null;
  const scheme = m[1].toLowerCase();
  const auth = parseAuthority(m[2], scheme === "https" ? 443 : 80);
  let path = m[3];
  const hash = path.indexOf("#");
  if (hash >= 0) path = path.slice(0, hash);
  if (path === "") path = "/";
  else if (path.startsWith("?")) path = `/${path}`;
  return { ...auth, scheme, path };
}

/** The `host:port` string to dial. */
export function dialAddress(a: { host: string; port: number }): string {
  return joinHostPort(a.host, a.port);
}

/** True when `host` is one of the knock hosts (case-insensitive). */
export function knockMatch(host: string, knock: string[]): boolean {
  const h = host.toLowerCase();
  return knock.some((k) => k.toLowerCase() === h);
}

/**
 * Decodes a gost v2 `Gost-Target` / `X-Gost-Target` value:
 * base64url-nopad( CRC32(name) as 4 BE bytes ‖ base64url-nopad(name) ).
 * Returns undefined when it is malformed or the checksum does not match.
 */
export function decodeServerName(v: string): string | undefined {
  const b = b64urlDecode(v.trim());
  if (!b || b.length < 4) return undefined;
  const name = b64urlDecode(new TextDecoder().decode(b.subarray(4)));
  if (!name) return undefined;
  const want = new DataView(b.buffer, b.byteOffset, 4).getUint32(0);
  if (crc32(name) !== want) return undefined;
  return new TextDecoder().decode(name);
}

/** Encodes a name as decodeServerName expects (used by tests and a future sni connector). */
export function encodeServerName(name: string): string {
  const enc = (b: Uint8Array) =>
    btoa(String.fromCharCode(...b)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
  const nb = new TextEncoder().encode(name);
  const inner = new TextEncoder().encode(enc(nb));
  const out = new Uint8Array(4 + inner.length);
  new DataView(out.buffer).setUint32(0, crc32(nb));
  out.set(inner, 4);
  return enc(out);
}

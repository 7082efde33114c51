/**
 * The SOCKS-style address (protocols.md §0.1), shared by SOCKS5, relay, Shadowsocks and UDP-TUN:
 * ATYP (1 IPv4, 3 domain, 4 IPv6), the address, and a big-endian port.
 *
 * Also holds the small IP-literal helpers every SOCKS codec needs: parsing and canonical
 * formatting of IPv4/IPv6 text, and unwrapping IPv4-mapped IPv6 addresses, which dual-stack
 * sockets report for IPv4 peers.
 */
import type { BufferedConn } from "../../core/bufconn.ts";
import { joinHostPort } from "../../core/conn.ts";
import { ProtocolError } from "../../core/errors.ts";

/** Address type bytes. */
export const ATYP_IPV4 = 0x01;
export const ATYP_DOMAIN = 0x03;
export const ATYP_IPV6 = 0x04;

/** A decoded SOCKS address: an IP literal (canonical text) or a domain name, and a port. */
export interface SocksAddr {
  host: string;
  port: number;
}

/** Why an address could not be decoded; handlers map `reason` to reply codes. */
export class SocksAddrError extends ProtocolError {
  override name = "SocksAddrError";
  constructor(
    message: string,
    readonly reason: "atyp" | "empty-domain" | "truncated" | "too-long",
  ) {
    super(message);
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Parses dotted-quad IPv4 text (no leading zeros, as Go's net.ParseIP); null if not one. */
export function parseIPv4(s: string): Uint8Array | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    out[i] = v;
  }
  return out;
}

/** Parses IPv6 text (with `::`, an embedded IPv4 tail, an optional `%zone`); null if not one. */
export function parseIPv6(s: string): Uint8Array | null {
  const pct = s.indexOf("%");
  if (pct >= 0) s = s.slice(0, pct);
  const lastColon = s.lastIndexOf(":");
  if (lastColon < 0) return null;
  let v4: Uint8Array | null = null;
  if (s.slice(lastColon + 1).includes(".")) {
    v4 = parseIPv4(s.slice(lastColon + 1));
    if (!v4) return null;
    // Stand two zero groups in for the IPv4 tail, then overwrite them below.
    s = s.slice(0, lastColon + 1) + "0:0";
  }
  const groupsOf = (part: string): number[] =>
    part === ""
      ? []
      : part.split(":").map((g) => /^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : NaN);
  let groups: number[];
  const dbl = s.indexOf("::");
  if (dbl >= 0) {
    if (s.indexOf("::", dbl + 1) >= 0) return null;
    const head = groupsOf(s.slice(0, dbl));
    const tail = groupsOf(s.slice(dbl + 2));
    if (head.length + tail.length > 7) return null;
    groups = [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    groups = groupsOf(s);
    if (groups.length !== 8) return null;
  }
  if (groups.some((g) => Number.isNaN(g))) return null;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  if (v4) out.set(v4, 12);
  return out;
}

/** True when 16 bytes are an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`). */
function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** Formats 4 bytes as dotted-quad text. */
export function formatIPv4(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/**
 * Formats 16 bytes as canonical IPv6 text (RFC 5952: lower case, longest zero run as `::`).
 * IPv4-mapped addresses come out as plain IPv4, as Go prints them.
 */
export function formatIPv6(b: Uint8Array): string {
  if (isV4Mapped(b)) return formatIPv4(b.subarray(12, 16));
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[2 * i] << 8) | b[2 * i + 1]);
  let bestStart = -1;
  let bestLen = 1; // a single zero group is not shortened (RFC 5952 §4.2.2)
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** The IP version of a literal (4 or 6), or 0 when `host` is not an IP literal. */
export function ipVersion(host: string): 0 | 4 | 6 {
  if (parseIPv4(host)) return 4;
  const v6 = parseIPv6(host);
  if (!v6) return 0;
  return isV4Mapped(v6) ? 4 : 6;
}

/**
 * Canonical text of an IP literal, with IPv4-mapped IPv6 unwrapped to IPv4 (dual-stack sockets
 * report IPv4 peers as `::ffff:a.b.c.d`); other strings are returned unchanged.
 */
export function normalizeIP(host: string): string {
  if (parseIPv4(host)) return host;
  const v6 = parseIPv6(host);
  return v6 ? formatIPv6(v6) : host;
}

/** Encoded size of `host` as a SOCKS address (ATYP + address + port). */
export function addrSize(host: string): number {
  if (host === "" || parseIPv4(host)) return 7;
  const v6 = parseIPv6(host);
  if (v6) return isV4Mapped(v6) ? 7 : 19;
  return 4 + enc.encode(host).length;
}

/**
 * Writes `host:port` as a SOCKS address into `buf` at `off`; returns the offset after it.
 * An IP literal is written as IPv4/IPv6 (mapped IPv6 as IPv4), anything else as a domain, and an
 * empty host as IPv4 0.0.0.0 (gost's encoder does the same).
 */
export function writeAddr(buf: Uint8Array, off: number, host: string, port: number): number {
  const v4 = host === "" ? new Uint8Array(4) : parseIPv4(host);
  const v6 = v4 ? null : parseIPv6(host);
  if (v4 || (v6 && isV4Mapped(v6))) {
    buf[off] = ATYP_IPV4;
    buf.set(v4 ?? v6!.subarray(12, 16), off + 1);
    off += 5;
  } else if (v6) {
    buf[off] = ATYP_IPV6;
    buf.set(v6, off + 1);
    off += 17;
  } else {
    const name = enc.encode(host);
    if (name.length > 255) {
      throw new SocksAddrError(
        `domain name longer than 255 bytes: ${host.slice(0, 40)}…`,
        "too-long",
      );
    }
    buf[off] = ATYP_DOMAIN;
    buf[off + 1] = name.length;
    buf.set(name, off + 2);
    off += 2 + name.length;
  }
  buf[off] = (port >> 8) & 0xff;
  buf[off + 1] = port & 0xff;
  return off + 2;
}

/** Encodes `host:port` as a SOCKS address (see writeAddr). */
export function encodeAddr(host: string, port: number): Uint8Array {
  const out = new Uint8Array(addrSize(host));
  writeAddr(out, 0, host, port);
  return out;
}

function decodeHost(atyp: number, body: Uint8Array): string {
  if (atyp === ATYP_IPV4) return formatIPv4(body);
  if (atyp === ATYP_IPV6) return formatIPv6(body);
  return dec.decode(body);
}

/**
 * Decodes a SOCKS address from `b` at `off`; returns it with the offset after it.
 * Throws SocksAddrError on an unknown ATYP, an empty domain name or a short buffer.
 */
export function decodeAddr(b: Uint8Array, off = 0): { addr: SocksAddr; next: number } {
  if (off >= b.length) throw new SocksAddrError("truncated address", "truncated");
  const atyp = b[off];
  let start = off + 1;
  let len: number;
  if (atyp === ATYP_IPV4) len = 4;
  else if (atyp === ATYP_IPV6) len = 16;
  else if (atyp === ATYP_DOMAIN) {
    if (start >= b.length) throw new SocksAddrError("truncated address", "truncated");
    len = b[start++];
    if (len === 0) throw new SocksAddrError("empty domain name", "empty-domain");
  } else {
    throw new SocksAddrError(`unknown address type 0x${hex2(atyp)}`, "atyp");
  }
  if (start + len + 2 > b.length) throw new SocksAddrError("truncated address", "truncated");
  const host = decodeHost(atyp, b.subarray(start, start + len));
  const port = (b[start + len] << 8) | b[start + len + 1];
  return { addr: { host, port }, next: start + len + 2 };
}

/**
 * Reads a SOCKS address from a stream. Throws SocksAddrError for an unknown ATYP or an empty
 * domain name, and ProtocolError when the stream ends early.
 */
export async function readAddr(bc: BufferedConn): Promise<SocksAddr> {
  const atyp = await bc.readByte();
  let len: number;
  if (atyp === ATYP_IPV4) len = 4;
  else if (atyp === ATYP_IPV6) len = 16;
  else if (atyp === ATYP_DOMAIN) {
    len = await bc.readByte();
    if (len === 0) throw new SocksAddrError("empty domain name", "empty-domain");
  } else {
    throw new SocksAddrError(`unknown address type 0x${hex2(atyp)}`, "atyp");
  }
  const b = await bc.readFull(len + 2);
  return {
    host: decodeHost(atyp, b.subarray(0, len)),
    port: (b[len] << 8) | b[len + 1],
  };
}

/** `host:port` of a SOCKS address, IPv6 in brackets (what the router dials). */
export function socksAddrString(a: SocksAddr): string {
  return joinHostPort(a.host, a.port);
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}

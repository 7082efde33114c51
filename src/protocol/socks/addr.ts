/**
 * The SOCKS-style address (protocols.md §0.1), shared by SOCKS5, relay, Shadowsocks and UDP-TUN:
 * ATYP (1 IPv4, 3 domain, 4 IPv6), the address, and a big-endian port.
 */
import type { BufferedConn } from "../../core/bufconn.ts";
import { joinHostPort } from "../../core/conn.ts";
import { ProtocolError } from "../../core/errors.ts";
import { formatIPv4, formatIPv6, isV4Mapped, parseIPv4, parseIPv6 } from "../../core/ip.ts";
export {
  formatIPv4,
  formatIPv6,
  ipVersion,
  normalizeIP,
  parseIPv4,
  parseIPv6,
} from "../../core/ip.ts";

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

/**
 * SOCKS5 wire codec (RFC 1928, RFC 1929 user/pass): constants, stream readers for the server
 * side of the handshake, and encoders for replies and the UDP request header.
 */
import type { BufferedConn } from "../../core/bufconn.ts";
import { ProtocolError } from "../../core/errors.ts";
import { addrSize, decodeAddr, readAddr, type SocksAddr, writeAddr } from "../socks/addr.ts";

/** Protocol version byte. */
export const VERSION = 0x05;
/** RFC 1929 sub-negotiation version byte. */
export const USERPASS_VERSION = 0x01;

/** Authentication methods. */
export const Method = {
  NoAuth: 0x00,
  GSSAPI: 0x01,
  UserPass: 0x02,
  /** gost: TLS handshake on the socket right after the method reply, the request inside. */
  Tls: 0x80,
  /** gost: TLS, then RFC 1929 user/pass inside it. */
  TlsAuth: 0x82,
  NoAcceptable: 0xff,
} as const;

/** Request commands. */
export const Cmd = {
  Connect: 0x01,
  Bind: 0x02,
  UdpAssociate: 0x03,
} as const;

/** Reply codes. */
export const Rep = {
  Succeeded: 0x00,
  Failure: 0x01,
  NotAllowed: 0x02,
  NetUnreachable: 0x03,
  HostUnreachable: 0x04,
  ConnRefused: 0x05,
  TTLExpired: 0x06,
  CmdUnsupported: 0x07,
  AddrUnsupported: 0x08,
} as const;

/** A client request: command and destination. */
export interface Request {
  cmd: number;
  addr: SocksAddr;
}

/** Credentials from an RFC 1929 sub-negotiation. */
export interface UserPass {
  username: string;
  password: string;
}

const dec = new TextDecoder();

/**
 * Reads the method-selection message (VER NMETHODS METHODS…); returns the offered methods.
 * Throws ProtocolError on a wrong version or a short stream.
 */
export async function readGreeting(bc: BufferedConn): Promise<Uint8Array> {
  const ver = await bc.readByte();
  if (ver !== VERSION) throw new ProtocolError(`bad SOCKS version 0x${hex2(ver)}`);
  const n = await bc.readByte();
  return n === 0 ? new Uint8Array(0) : await bc.readFull(n);
}

/** The method-selection reply. */
export function encodeMethodReply(method: number): Uint8Array {
  return Uint8Array.of(VERSION, method);
}

/** Reads an RFC 1929 request (VER ULEN UNAME PLEN PASSWD). Throws ProtocolError if malformed. */
export async function readUserPass(bc: BufferedConn): Promise<UserPass> {
  const ver = await bc.readByte();
  if (ver !== USERPASS_VERSION) {
    throw new ProtocolError(`bad user/pass sub-negotiation version 0x${hex2(ver)}`);
  }
  const username = dec.decode(await bc.readFull(await bc.readByte()));
  const password = dec.decode(await bc.readFull(await bc.readByte()));
  return { username, password };
}

/** The RFC 1929 status reply: `01 00` success, `01 01` failure. */
export function encodeUserPassReply(ok: boolean): Uint8Array {
  return Uint8Array.of(USERPASS_VERSION, ok ? 0x00 : 0x01);
}

/**
 * Reads a request (VER CMD RSV ATYP ADDR PORT). Throws ProtocolError on a wrong version or a
 * short stream, SocksAddrError (a ProtocolError) on an unknown ATYP or an empty domain.
 */
export async function readRequest(bc: BufferedConn): Promise<Request> {
  const head = await bc.readFull(3);
  if (head[0] !== VERSION) {
    throw new ProtocolError(`bad SOCKS version 0x${hex2(head[0])} in request`);
  }
  // RSV (head[2]) must be 0 by the RFC; like most servers, ignore it.
  const addr = await readAddr(bc);
  return { cmd: head[1], addr };
}

/** A reply (VER REP RSV BND.ADDR BND.PORT) as one buffer, so it goes out in one write. */
export function encodeReply(rep: number, host = "0.0.0.0", port = 0): Uint8Array {
  const out = new Uint8Array(3 + addrSize(host));
  out[0] = VERSION;
  out[1] = rep;
  writeAddr(out, 3, host, port);
  return out;
}

/** A decoded UDP request datagram (RSV FRAG ATYP ADDR PORT DATA). */
export interface UdpDatagram {
  frag: number;
  addr: SocksAddr;
  /** A view into the input buffer. */
  data: Uint8Array;
}

/** Decodes a UDP request datagram. Throws SocksAddrError when the header is short or bad. */
export function decodeUdpDatagram(b: Uint8Array): UdpDatagram {
  if (b.length < 4) throw new ProtocolError(`UDP datagram too short (${b.length} bytes)`);
  const { addr, next } = decodeAddr(b, 3);
  return { frag: b[2], addr, data: b.subarray(next) };
}

/** Size of the UDP header for a datagram from `host` (RSV FRAG + address). */
export function udpHeaderSize(host: string): number {
  return 3 + addrSize(host);
}

/** Writes the UDP header (RSV 0, FRAG 0, address) at `off`; returns the offset after it. */
export function writeUdpHeader(buf: Uint8Array, off: number, host: string, port: number): number {
  buf[off] = 0;
  buf[off + 1] = 0;
  buf[off + 2] = 0;
  return writeAddr(buf, off + 3, host, port);
}

/** Encodes a whole UDP datagram (header + data). */
export function encodeUdpDatagram(host: string, port: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(udpHeaderSize(host) + data.length);
  out.set(data, writeUdpHeader(out, 0, host, port));
  return out;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}

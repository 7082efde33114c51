/**
 * PROXY protocol (HAProxy) v1 and v2 codec: encoding headers for the sending side and an
 * incremental parser for the receiving side (docs/protocols.md §9).
 *
 * The parser works on "the bytes seen so far" and says whether they are a complete header, a
 * prefix that needs more bytes, or not a PROXY header at all, so a stream reader can detect a
 * header without consuming the bytes of a client that sent none.
 */
import { type BufferedConn } from "../../core/bufconn.ts";
import { type Addr } from "../../core/conn.ts";
import { ProtocolError } from "../../core/errors.ts";
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "../socks/addr.ts";

/** The 12-byte v2 signature, `\r\n\r\n\0\r\nQUIT\n`. */
export const V2_SIGNATURE = new Uint8Array([13, 10, 13, 10, 0, 13, 10, 81, 85, 73, 84, 10]);
const V1_PREFIX = new TextEncoder().encode("PROXY ");
/** Longest v1 line, CRLF included (spec §2.1). */
export const V1_MAX = 107;
/** v2 fixed part: signature, version/command, family/protocol, length. */
const V2_FIXED = 16;

/** A parsed PROXY header. */
export interface ProxyHeader {
  version: 1 | 2;
  /**
   * `proxy`: addresses relayed for a client. `local`: the proxy's own connection (v2 LOCAL,
   * v1 `UNKNOWN`, or an address family that carries no IP) — the socket's addresses apply.
   */
  command: "proxy" | "local";
  /** The original client, when the header carries an IP address. */
  source?: Addr;
  /** The address the client connected to, when the header carries an IP address. */
  destination?: Addr;
  /** Header size in bytes (what a reader consumes). */
  length: number;
}

/** What `parseHeader` made of the bytes seen so far. */
export type ParseResult =
  | { kind: "header"; header: ProxyHeader }
  /** Not a PROXY header: the bytes belong to the client's own protocol. */
  | { kind: "none" }
  /**
   * More bytes are needed: at least `need` in total. `signature` tells whether a full
   * signature was already seen (then end of stream means a truncated header).
   */
  | { kind: "incomplete"; need: number; signature: boolean };

const dec = new TextDecoder();

/** How `b` compares with the start of `sig`: mismatch, a strict prefix, or the whole signature. */
function matchPrefix(b: Uint8Array, sig: Uint8Array): "no" | "partial" | "full" {
  const n = Math.min(b.length, sig.length);
  for (let i = 0; i < n; i++) if (b[i] !== sig[i]) return "no";
  return b.length >= sig.length ? "full" : "partial";
}

/**
 * Parses a PROXY header at the start of `b`. Throws ProtocolError when `b` starts with a PROXY
 * signature but the header is malformed or oversized.
 */
export function parseHeader(b: Uint8Array): ParseResult {
  if (b.length === 0) return { kind: "incomplete", need: 1, signature: false };
  const v2 = matchPrefix(b, V2_SIGNATURE);
  // A strict prefix of a signature: ask for one more byte, so a client whose own protocol
  // shares a first byte or two with a signature (`POST`, a bare CRLF) is recognised early.
  if (v2 === "partial") return { kind: "incomplete", need: b.length + 1, signature: false };
  if (v2 === "full") return parseV2(b);
  const v1 = matchPrefix(b, V1_PREFIX);
  if (v1 === "partial") {
    return { kind: "incomplete", need: b.length + 1, signature: false };
  }
  if (v1 === "full") return parseV1(b);
  return { kind: "none" };
}

function parseV1(b: Uint8Array): ParseResult {
  const lf = b.subarray(0, V1_MAX).indexOf(0x0a);
  if (lf < 0) {
    if (b.length >= V1_MAX) {
      throw new ProtocolError(`PROXY v1 header longer than ${V1_MAX} bytes`);
    }
    return { kind: "incomplete", need: b.length + 1, signature: true };
  }
  if (lf === 0 || b[lf - 1] !== 0x0d) {
    throw new ProtocolError("PROXY v1 header does not end in CRLF");
  }
  const line = dec.decode(b.subarray(0, lf - 1));
  const length = lf + 1;
  const parts = line.split(" ");
  if (parts[1] === "UNKNOWN") {
    // Everything after UNKNOWN is to be ignored (spec §2.1).
    return { kind: "header", header: { version: 1, command: "local", length } };
  }
  if (parts[1] !== "TCP4" && parts[1] !== "TCP6") {
    throw new ProtocolError(`PROXY v1: unknown protocol ${JSON.stringify(parts[1] ?? "")}`);
  }
  if (parts.length !== 6) {
    throw new ProtocolError(`PROXY v1: malformed line ${JSON.stringify(line)}`);
  }
  const ip = (s: string): string => {
    if (parts[1] === "TCP4") {
      const v = parseIPv4(s);
      if (v) return formatIPv4(v);
    } else if (!s.includes("%")) {
      const v = parseIPv6(s);
      if (v) return formatIPv6(v);
    }
    throw new ProtocolError(`PROXY v1: invalid ${parts[1]} address ${JSON.stringify(s)}`);
  };
  const port = (s: string): number => {
    if (!/^(0|[1-9]\d{0,4})$/.test(s) || Number(s) > 65535) {
      throw new ProtocolError(`PROXY v1: invalid port ${JSON.stringify(s)}`);
    }
    return Number(s);
  };
  return {
    kind: "header",
    header: {
      version: 1,
      command: "proxy",
      source: { transport: "tcp", hostname: ip(parts[2]), port: port(parts[4]) },
      destination: { transport: "tcp", hostname: ip(parts[3]), port: port(parts[5]) },
      length,
    },
  };
}

function parseV2(b: Uint8Array): ParseResult {
  if (b.length < V2_FIXED) return { kind: "incomplete", need: V2_FIXED, signature: true };
  const verCmd = b[12];
  if (verCmd >> 4 !== 2) {
    throw new ProtocolError(`PROXY v2: unsupported version ${verCmd >> 4}`);
  }
  const cmd = verCmd & 0x0f;
  if (cmd > 1) throw new ProtocolError(`PROXY v2: unknown command ${cmd}`);
  const family = b[13] >> 4;
  const proto = b[13] & 0x0f;
  if (family > 3 || proto > 2) {
    throw new ProtocolError(`PROXY v2: unknown family/protocol 0x${b[13].toString(16)}`);
  }
  const length = V2_FIXED + ((b[14] << 8) | b[15]);
  if (b.length < length) return { kind: "incomplete", need: length, signature: true };
  const local: ParseResult = { kind: "header", header: { version: 2, command: "local", length } };
  // LOCAL: the proxy's own connection (health check); whatever follows is skipped.
  if (cmd === 0) return local;
  const body = b.subarray(V2_FIXED, length);
  const transport = proto === 2 ? "udp" : "tcp";
  const port = (off: number) => (body[off] << 8) | body[off + 1];
  if (family === 1) {
    if (body.length < 12) throw new ProtocolError("PROXY v2: INET address block too short");
    return {
      kind: "header",
      header: {
        version: 2,
        command: "proxy",
        source: { transport, hostname: formatIPv4(body.subarray(0, 4)), port: port(8) },
        destination: { transport, hostname: formatIPv4(body.subarray(4, 8)), port: port(10) },
        length,
      },
    };
  }
  if (family === 2) {
    if (body.length < 36) throw new ProtocolError("PROXY v2: INET6 address block too short");
    return {
      kind: "header",
      header: {
        version: 2,
        command: "proxy",
        source: { transport, hostname: formatIPv6(body.subarray(0, 16)), port: port(32) },
        destination: { transport, hostname: formatIPv6(body.subarray(16, 32)), port: port(34) },
        length,
      },
    };
  }
  if (family === 3 && body.length < 216) {
    throw new ProtocolError("PROXY v2: UNIX address block too short");
  }
  // UNSPEC or UNIX: no IP address to use; TLVs after the addresses are skipped either way.
  return local;
}

/** An IP literal as 4 bytes (IPv4 or IPv4-mapped) or 16 bytes; null for anything else. */
function ipBytes(host: string): Uint8Array | null {
  const v4 = parseIPv4(host);
  if (v4) return v4;
  const v6 = host.includes("%") ? null : parseIPv6(host);
  if (!v6) return null;
  const mapped = v6.subarray(0, 10).every((x) => x === 0) && v6[10] === 0xff && v6[11] === 0xff;
  return mapped ? v6.slice(12) : v6;
}

/** IPv4 bytes as IPv4-mapped IPv6 (for a header mixing the two families). */
function to16(b: Uint8Array): Uint8Array {
  if (b.length === 16) return b;
  const out = new Uint8Array(16);
  out[10] = out[11] = 0xff;
  out.set(b, 12);
  return out;
}

/**
 * The addresses as both IPv4 or both IPv6 (an IPv4 one is mapped when the other is IPv6);
 * null when either is not an IP literal.
 */
function ipPair(src: Addr, dst: Addr): [Uint8Array, Uint8Array] | null {
  const s = ipBytes(src.hostname);
  const d = ipBytes(dst.hostname);
  if (!s || !d) return null;
  if (s.length === d.length) return [s, d];
  return [to16(s), to16(d)];
}

const enc = new TextEncoder();

/** Text of 16 address bytes for a v1 TCP6 line (IPv4-mapped stays in IPv6 form). */
function v6Text(b: Uint8Array): string {
  const t = formatIPv6(b);
  return t.includes(":") ? t : `::ffff:${t}`;
}

/**
 * Encodes a v1 header announcing `src` → `dst`; `PROXY UNKNOWN` when either is not an IP
 * address.
 */
export function encodeV1(src: Addr, dst: Addr): Uint8Array {
  const pair = ipPair(src, dst);
  if (!pair) return enc.encode("PROXY UNKNOWN\r\n");
  const [s, d] = pair;
  const line = s.length === 4
    ? `PROXY TCP4 ${formatIPv4(s)} ${formatIPv4(d)} ${src.port} ${dst.port}\r\n`
    : `PROXY TCP6 ${v6Text(s)} ${v6Text(d)} ${src.port} ${dst.port}\r\n`;
  return enc.encode(line);
}

/**
 * Encodes a v2 PROXY header (no TLVs) announcing `src` → `dst` over a stream (`udp` transport:
 * datagram); a LOCAL header when either is not an IP address.
 */
export function encodeV2(src: Addr, dst: Addr): Uint8Array {
  const pair = ipPair(src, dst);
  if (!pair) {
    const out = new Uint8Array(V2_FIXED);
    out.set(V2_SIGNATURE);
    out[12] = 0x20; // v2 LOCAL, UNSPEC family, length 0
    return out;
  }
  const [s, d] = pair;
  const alen = s.length === 4 ? 12 : 36;
  const out = new Uint8Array(V2_FIXED + alen);
  out.set(V2_SIGNATURE);
  out[12] = 0x21;
  out[13] = (s.length === 4 ? 0x10 : 0x20) | (src.transport === "udp" ? 2 : 1);
  out[14] = alen >> 8;
  out[15] = alen & 0xff;
  out.set(s, 16);
  out.set(d, 16 + s.length);
  const pp = 16 + 2 * s.length;
  out[pp] = src.port >> 8;
  out[pp + 1] = src.port & 0xff;
  out[pp + 2] = dst.port >> 8;
  out[pp + 3] = dst.port & 0xff;
  return out;
}

/** Encodes a header of `version` (1 or 2) announcing `src` → `dst`. */
export function encodeHeader(version: 1 | 2, src: Addr, dst: Addr): Uint8Array {
  return version === 2 ? encodeV2(src, dst) : encodeV1(src, dst);
}

/**
 * Reads an optional PROXY header from the start of `bc`. Returns null, consuming nothing, when
 * the stream does not start with one (or ends inside what could have been a signature); on a
 * header, consumes exactly its bytes. Throws ProtocolError on a malformed or truncated header.
 * Callers bound it with a deadline: a peer may stall inside the header.
 */
export async function readProxyHeader(bc: BufferedConn): Promise<ProxyHeader | null> {
  let view = await bc.peekSome();
  if (!view) return null;
  for (;;) {
    const r = parseHeader(view);
    if (r.kind === "none") return null;
    if (r.kind === "header") {
      await bc.readFull(r.header.length);
      return r.header;
    }
    try {
      view = await bc.peek(Math.max(r.need, view.length + 1));
    } catch (e) {
      // peek throws ProtocolError only at end of stream; anything else is a socket error.
      if (!(e instanceof ProtocolError)) throw e;
      if (!r.signature) return null;
      throw new ProtocolError(`truncated PROXY header (${bc.buffered} bytes, stream ended)`);
    }
  }
}

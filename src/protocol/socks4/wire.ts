/**
 * SOCKS4 / SOCKS4a codec (protocols.md §2.5; openssh.com/txt/socks4.protocol and socks4a.protocol).
 *
 * Request:  VN=4 | CD | DSTPORT (2, BE) | DSTIP (4) | USERID | 0x00 [| HOSTNAME | 0x00]
 * Reply:    VN=0 | CD | DSTPORT (2, BE) | DSTIP (4)
 *
 * SOCKS4a marks a request whose DSTIP is 0.0.0.x (x ≠ 0): the client could not resolve the name
 * and sends it after the USERID, for the server to resolve.
 */
import type { BufferedConn } from "../../core/bufconn.ts";
import { joinHostPort } from "../../core/conn.ts";
import { ProtocolError } from "../../core/errors.ts";

/** Protocol version byte of a request. */
export const VER4 = 0x04;
/** Command: open a TCP stream to the destination. */
export const CMD_CONNECT = 0x01;
/** Command: accept one inbound connection for the client (not served by dost). */
export const CMD_BIND = 0x02;

/** Reply code: request granted. */
export const REP_GRANTED = 90;
/** Reply code: request rejected or failed. */
export const REP_FAILED = 91;
/** Reply code: rejected, the server cannot reach the client's identd. */
export const REP_NO_IDENTD = 92;
/** Reply code: rejected, the USERID does not match (gost uses it for failed authentication). */
export const REP_BAD_USERID = 93;

/**
 * Longest USERID and HOSTNAME accepted, as gost's codec (go-gost/gosocks4): real clients send a
 * few bytes; anything longer is garbage or an attempt to make the server buffer without end.
 */
export const MAX_USERID = 255;
export const MAX_HOSTNAME = 255;

/** A decoded SOCKS4/4a request. */
export interface Socks4Request {
  /** CD byte: CMD_CONNECT, CMD_BIND. */
  cmd: number;
  /** Destination host: dotted IPv4 text, or the SOCKS4a host name. */
  host: string;
  port: number;
  /** The USERID field (decoded as UTF-8), possibly empty. */
  userId: string;
  /** True when the request used the SOCKS4a host-name form. */
  socks4a: boolean;
}

/** `host:port` of a request, for dialing and logs. */
export function requestAddress(r: Socks4Request): string {
  return joinHostPort(r.host, r.port);
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Reads a NUL-terminated field of at most `max` bytes (terminator excluded) and consumes it.
 * Throws ProtocolError when the field is longer or the stream ends first.
 */
async function readCString(conn: BufferedConn, max: number, what: string): Promise<string> {
  let scanned = 0;
  for (;;) {
    const avail = conn.buffered;
    if (avail > scanned) {
      // Only the first max+1 bytes can hold a valid terminator; later bytes may be payload the
      // client pipelined after its request.
      const view = await conn.peek(Math.min(avail, max + 1));
      const i = view.indexOf(0, scanned);
      if (i >= 0) {
        const field = await conn.readFull(i + 1);
        return dec.decode(field.subarray(0, i));
      }
      scanned = view.length;
    }
    if (scanned > max) throw new ProtocolError(`socks4: ${what} longer than ${max} bytes`);
    try {
      await conn.peek(scanned + 1); // waits for at least one more byte
    } catch (e) {
      if (e instanceof ProtocolError) {
        throw new ProtocolError(`socks4: stream ended inside the ${what}`);
      }
      throw e;
    }
  }
}

/**
 * Reads one request from `conn`. Throws ProtocolError on a wrong version, an unknown command,
 * an oversized field, an empty SOCKS4a host name or a truncated request.
 */
export async function readRequest(conn: BufferedConn): Promise<Socks4Request> {
  let hdr: Uint8Array;
  try {
    hdr = await conn.readFull(8);
  } catch (e) {
    if (e instanceof ProtocolError) throw new ProtocolError("socks4: truncated request header");
    throw e;
  }
  if (hdr[0] !== VER4) throw new ProtocolError(`socks4: bad version ${hdr[0]}`);
  const cmd = hdr[1];
  if (cmd !== CMD_CONNECT && cmd !== CMD_BIND) {
    throw new ProtocolError(`socks4: unknown command ${cmd}`);
  }
  const port = (hdr[2] << 8) | hdr[3];
  const socks4a = hdr[4] === 0 && hdr[5] === 0 && hdr[6] === 0 && hdr[7] !== 0;
  const userId = await readCString(conn, MAX_USERID, "USERID");
  let host = `${hdr[4]}.${hdr[5]}.${hdr[6]}.${hdr[7]}`;
  if (socks4a) {
    host = await readCString(conn, MAX_HOSTNAME, "host name");
    if (host === "") throw new ProtocolError("socks4a: empty host name");
  }
  return { cmd, host, port, userId, socks4a };
}

/** Parses dotted-quad IPv4 text; null when `s` is not one. */
function ipv4Bytes(s: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  const b = m.slice(1).map(Number);
  return b.every((x) => x <= 255) ? b : null;
}

/**
 * Encodes a request. A host that is not IPv4 text uses the SOCKS4a form (DSTIP 0.0.0.1).
 * Throws on fields over the limits, which a server would refuse anyway.
 */
export function encodeRequest(
  cmd: number,
  host: string,
  port: number,
  userId = "",
): Uint8Array {
  const ip = ipv4Bytes(host);
  const uid = enc.encode(userId);
  const name = ip ? new Uint8Array(0) : enc.encode(host);
  if (uid.length > MAX_USERID) throw new RangeError(`socks4: USERID over ${MAX_USERID} bytes`);
  if (name.length > MAX_HOSTNAME) {
    throw new RangeError(`socks4a: host name over ${MAX_HOSTNAME} bytes`);
  }
  const out = new Uint8Array(8 + uid.length + 1 + (ip ? 0 : name.length + 1));
  out.set([VER4, cmd, port >> 8, port & 0xff, ...(ip ?? [0, 0, 0, 1])]);
  out.set(uid, 8);
  if (!ip) out.set(name, 8 + uid.length + 1);
  return out;
}

/** Encodes the 8-byte reply; gost leaves port and address zero, and so do we by default. */
export function encodeReply(code: number, port = 0, ip: number[] = [0, 0, 0, 0]): Uint8Array {
  return new Uint8Array([0, code, port >> 8, port & 0xff, ...ip]);
}

/** A decoded reply. */
export interface Socks4Reply {
  code: number;
  port: number;
  /** Dotted IPv4 text. */
  host: string;
}

/** Decodes an 8-byte reply; throws ProtocolError on a wrong length or version byte. */
export function decodeReply(b: Uint8Array): Socks4Reply {
  if (b.length !== 8) throw new ProtocolError(`socks4: reply is ${b.length} bytes, want 8`);
  if (b[0] !== 0) throw new ProtocolError(`socks4: bad reply version ${b[0]}`);
  return { code: b[1], port: (b[2] << 8) | b[3], host: `${b[4]}.${b[5]}.${b[6]}.${b[7]}` };
}

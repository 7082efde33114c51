/**
 * Reading the server name out of a TLS ClientHello without consuming it: the records are only
 * peeked, so the proxy can replay the exact bytes to the upstream. The ClientHello may span
 * several handshake records (large post-quantum key shares do); it is reassembled up to a cap.
 */
import type { BufferedConn } from "../../core/bufconn.ts";
import { ProtocolError } from "../../core/errors.ts";

/** TLS record type of handshake messages (the first byte of a ClientHello record). */
export const RECORD_HANDSHAKE = 0x16;
/** Largest record body TLS allows (2^14 plus the 2048 bytes of expansion TLS 1.2 permits). */
const MAX_RECORD = 16384 + 2048;
/** Largest ClientHello accepted (several records' worth). */
export const MAX_CLIENT_HELLO = 65536;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const NAME_TYPE_HOST = 0x00;
/** What a DNS host name (RFC 6066 §3: ASCII, no trailing dot) may contain. */
const HOST_RE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

const u16 = (b: Uint8Array, i: number) => (b[i] << 8) | b[i + 1];

/**
 * Peeks the TLS records at the start of `bc` until a whole ClientHello is buffered, and returns
 * its server name ("" when it has no server_name extension). Throws ProtocolError when the
 * bytes are not a ClientHello, are truncated, or exceed MAX_CLIENT_HELLO.
 */
export async function peekServerName(bc: BufferedConn): Promise<string> {
  const parts: Uint8Array[] = [];
  let have = 0;
  for (let off = 0;;) {
    const hdr = (await bc.peek(off + 5, MAX_CLIENT_HELLO + 5)).subarray(off);
    if (hdr[0] !== RECORD_HANDSHAKE) {
      throw new ProtocolError(`tls: record type ${hdr[0]} where a handshake record was expected`);
    }
    if (hdr[1] !== 3) throw new ProtocolError(`tls: bad record version ${hdr[1]}.${hdr[2]}`);
    const len = u16(hdr, 3);
    if (len === 0 || len > MAX_RECORD) throw new ProtocolError(`tls: bad record length ${len}`);
    if (off + 5 + len > MAX_CLIENT_HELLO) {
      throw new ProtocolError(`tls: ClientHello larger than ${MAX_CLIENT_HELLO} bytes`);
    }
    const rec = await bc.peek(off + 5 + len, MAX_CLIENT_HELLO + 5);
    parts.push(rec.slice(off + 5, off + 5 + len));
    have += len;
    off += 5 + len;
    if (have < 4) continue;
    const msg = join(parts, have);
    if (msg[0] !== HANDSHAKE_CLIENT_HELLO) {
      throw new ProtocolError(`tls: handshake message ${msg[0]} where a ClientHello was expected`);
    }
    const msgLen = (msg[1] << 16) | u16(msg, 2);
    if (msgLen > MAX_CLIENT_HELLO) {
      throw new ProtocolError(`tls: ClientHello larger than ${MAX_CLIENT_HELLO} bytes`);
    }
    if (have >= 4 + msgLen) return parseServerName(msg.subarray(4, 4 + msgLen));
  }
}

function join(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * The server name in a ClientHello body (after the 4-byte handshake header); "" when there is
 * no server_name extension. Throws ProtocolError on a malformed body or an invalid host name.
 */
export function parseServerName(b: Uint8Array): string {
  const short = () => new ProtocolError("tls: truncated ClientHello");
  let pos = 2 + 32; // legacy_version, random
  if (pos + 1 > b.length) throw short();
  pos += 1 + b[pos]; // legacy_session_id
  if (pos + 2 > b.length) throw short();
  pos += 2 + u16(b, pos); // cipher_suites
  if (pos + 1 > b.length) throw short();
  pos += 1 + b[pos]; // legacy_compression_methods
  if (pos > b.length) throw short();
  if (pos === b.length) return ""; // no extensions at all
  if (pos + 2 > b.length) throw short();
  const end = pos + 2 + u16(b, pos);
  if (end > b.length) throw short();
  pos += 2;
  while (pos + 4 <= end) {
    const type = u16(b, pos);
    const len = u16(b, pos + 2);
    pos += 4;
    if (pos + len > end) throw short();
    if (type === EXT_SERVER_NAME) return hostName(b.subarray(pos, pos + len));
    pos += len;
  }
  return "";
}

/** The host_name entry of a server_name extension body. */
function hostName(ext: Uint8Array): string {
  if (ext.length < 2) throw new ProtocolError("tls: truncated server_name extension");
  const end = Math.min(2 + u16(ext, 0), ext.length);
  for (let pos = 2; pos + 3 <= end;) {
    const type = ext[pos];
    const len = u16(ext, pos + 1);
    pos += 3;
    if (pos + len > end) throw new ProtocolError("tls: truncated server_name extension");
    if (type === NAME_TYPE_HOST) {
      const name = String.fromCharCode(...ext.subarray(pos, pos + len));
      if (len === 0 || len > 253 || !HOST_RE.test(name)) {
        throw new ProtocolError(`tls: invalid server name "${name.slice(0, 64)}"`);
      }
      return name;
    }
    pos += len;
  }
  return "";
}

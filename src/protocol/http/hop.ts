/**
 * Hop-by-hop semantics (RFC 9110 §7.6.1): which header fields a proxy must not pass on, and
 * whether each side wants the connection kept open.
 */
import type { HeaderList } from "./wire.ts";

/** Fields that only concern one connection, plus gost's own request fields. */
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "proxy-authenticate",
  "te",
  "trailer",
  "upgrade",
  "gost-target",
  "x-gost-target",
  "gost-record",
];

/**
 * Removes hop-by-hop fields, including those the Connection field names. `keep` lists fields
 * to spare (e.g. `upgrade` while switching protocols). Transfer-Encoding is left alone: bodies
 * are passed on in the framing they arrived in.
 */
export function stripHopByHop(h: HeaderList, keep: string[] = []): void {
  const named = h.tokens("connection");
  for (const name of [...HOP_BY_HOP, ...named]) {
    if (name === "transfer-encoding" || name === "content-length" || name === "host") continue;
    if (!keep.includes(name)) h.delete(name);
  }
}

/** The connection options of a message: Connection plus the legacy Proxy-Connection. */
function connectionTokens(h: HeaderList): string[] {
  return [...h.tokens("connection"), ...h.tokens("proxy-connection")];
}

/**
 * True when the sender of this message wants the connection closed after it: HTTP/1.1
 * unless it says `close`, HTTP/1.0 unless it says `keep-alive`.
 */
export function wantsClose(version: string, h: HeaderList): boolean {
  const t = connectionTokens(h);
  if (t.includes("close")) return true;
  return version === "HTTP/1.0" && !t.includes("keep-alive");
}

/** The protocol an upgrade request asks for (`websocket`, …), or undefined. */
export function upgradeRequested(h: HeaderList): string | undefined {
  if (!h.tokens("connection").includes("upgrade")) return undefined;
  return h.get("upgrade") || undefined;
}

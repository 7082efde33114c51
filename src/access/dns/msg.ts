/**
 * DNS message codec for the resolver: A/AAAA queries and their answers, on top of npm:dns-packet
 * (typed here so the rest of dost never touches its untyped objects).
 */
// @ts-types="npm:@types/dns-packet@5.6.5"
import dnsPacket from "dns-packet";
import { ProtocolError } from "../../core/errors.ts";
import { normalizeIP } from "../../core/ip.ts";

/** The record types the resolver asks for. */
export type QType = "A" | "AAAA";

/** What an answer to one A/AAAA question says. */
export interface Answer {
  /** Message ID (matched against the query by datagram exchangers). */
  id: number;
  /** Response code: NOERROR, NXDOMAIN, SERVFAIL, … */
  rcode: string;
  /** Addresses of the asked type, in the server's order. */
  ips: string[];
  /** Smallest TTL of those records in seconds (0 when there are none). */
  ttl: number;
}

/** Encodes a recursive query for `name`/`type` with message ID `id`. */
export function encodeQuery(name: string, type: QType, id: number): Uint8Array {
  const b = dnsPacket.encode({
    type: "query",
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name, class: "IN" }],
  });
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** A random 16-bit message ID. */
export function randomId(): number {
  return crypto.getRandomValues(new Uint16Array(1))[0];
}

/** Decodes a response and extracts the `type` addresses; throws ProtocolError on garbage. */
export function decodeAnswer(msg: Uint8Array, type: QType): Answer {
  let p;
  try {
    // deno-lint-ignore no-node-globals
    p = dnsPacket.decode(Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength));
  } catch (e) {
    throw new ProtocolError(`malformed DNS response: ${(e as Error).message}`);
  }
  if (p.type !== "response") throw new ProtocolError("DNS message is not a response");
  const ips: string[] = [];
  let ttl = Infinity;
  for (const a of p.answers ?? []) {
    if (a.type !== type || typeof a.data !== "string") continue;
    ips.push(normalizeIP(a.data));
    ttl = Math.min(ttl, a.ttl ?? 0);
  }
  // dns-packet sets `rcode` (as a name) on decoded messages; its type declarations omit it.
  const rcode = (p as { rcode?: string }).rcode ?? "NOERROR";
  return { id: p.id ?? 0, rcode, ips, ttl: ips.length ? ttl : 0 };
}

/** The message ID of a raw DNS message (first two bytes), or -1 when too short. */
export function messageId(msg: Uint8Array): number {
  return msg.length >= 2 ? (msg[0] << 8) | msg[1] : -1;
}

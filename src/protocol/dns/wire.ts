/**
 * The few DNS wire-format operations the proxy needs, done on the raw bytes so that whatever the
 * proxy does not touch (unknown record types, EDNS options, name compression) passes through
 * exactly as the upstream sent it: reading the header and first question, walking records to find
 * their TTLs, building small replies (hosts answers, bypass), and adding an EDNS client subnet.
 */
import { ProtocolError } from "../../core/errors.ts";
import { ipVersion } from "../../core/ip.ts";

/** Header flag bits (RFC 1035 §4.1.1). */
export const FLAG_QR = 0x8000;
export const FLAG_TC = 0x0200;
const FLAG_RD = 0x0100;
const FLAG_RA = 0x0080;
const FLAG_CD = 0x0010;
const OPCODE_MASK = 0x7800;

export const TYPE_A = 1;
export const TYPE_AAAA = 28;
const TYPE_OPT = 41;
export const CLASS_IN = 1;
/** EDNS0 option code of the client subnet (RFC 7871). */
const OPTION_ECS = 8;

const RCODES = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];
const TYPES: Record<number, string> = {
  1: "A",
  2: "NS",
  5: "CNAME",
  6: "SOA",
  12: "PTR",
  15: "MX",
  16: "TXT",
  28: "AAAA",
  33: "SRV",
  64: "SVCB",
  65: "HTTPS",
  255: "ANY",
};

/** A record type's mnemonic (`TYPE123` for the rest). */
export function typeName(t: number): string {
  return TYPES[t] ?? `TYPE${t}`;
}

/** A response code's mnemonic. */
export function rcodeName(r: number): string {
  return RCODES[r] ?? `RCODE${r}`;
}

/** The header and first question of a message. */
export interface Question {
  id: number;
  flags: number;
  qdcount: number;
  /** Lower-cased name without the trailing dot ("" for the root). */
  name: string;
  qtype: number;
  qclass: number;
  /** Offset just past the first question. */
  end: number;
}

const u16 = (b: Uint8Array, o: number) => (b[o] << 8) | b[o + 1];

function need(b: Uint8Array, end: number, what: string): void {
  if (end > b.length) throw new ProtocolError(`${what} runs past the end of the message`);
}

/** Reads a (possibly compressed) name at `off`; returns it and the offset after it. */
export function readName(b: Uint8Array, off: number): { name: string; end: number } {
  const labels: string[] = [];
  let end = -1;
  let total = 0;
  for (let hops = 0;; hops++) {
    need(b, off + 1, "name");
    const len = b[off];
    if (len === 0) {
      if (end < 0) end = off + 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      need(b, off + 2, "name pointer");
      if (hops > 64) throw new ProtocolError("name compression loop");
      if (end < 0) end = off + 2;
      off = ((len & 0x3f) << 8) | b[off + 1];
      continue;
    }
    if (len & 0xc0) throw new ProtocolError(`bad label type 0x${len.toString(16)}`);
    need(b, off + 1 + len, "label");
    total += len + 1;
    if (total > 255) throw new ProtocolError("name longer than 255 bytes");
    labels.push(String.fromCharCode(...b.subarray(off + 1, off + 1 + len)));
    off += 1 + len;
  }
  return { name: labels.join(".").toLowerCase(), end };
}

/** Parses the header and the first question; throws ProtocolError on garbage. */
export function parseMessage(b: Uint8Array): Question {
  if (b.length < 12) throw new ProtocolError(`${b.length} bytes is shorter than a DNS header`);
  const qdcount = u16(b, 4);
  if (qdcount === 0) throw new ProtocolError("no question");
  const { name, end } = readName(b, 12);
  need(b, end + 4, "question");
  return {
    id: u16(b, 0),
    flags: u16(b, 2),
    qdcount,
    name,
    qtype: u16(b, end),
    qclass: u16(b, end + 2),
    end: end + 4,
  };
}

/** A resource record's position in a message. */
interface RecordRef {
  section: "answer" | "authority" | "additional";
  type: number;
  /** Offset of the TTL field. */
  ttlOff: number;
  /** Offset of RDLENGTH; RDATA follows it. */
  rdlenOff: number;
  end: number;
}

/** Every resource record of a message, in order; throws ProtocolError when they do not parse. */
export function records(b: Uint8Array): RecordRef[] {
  if (b.length < 12) throw new ProtocolError("message shorter than a DNS header");
  let off = 12;
  for (let i = u16(b, 4); i > 0; i--) {
    off = readName(b, off).end + 4;
    need(b, off, "question");
  }
  const out: RecordRef[] = [];
  const counts: [RecordRef["section"], number][] = [
    ["answer", u16(b, 6)],
    ["authority", u16(b, 8)],
    ["additional", u16(b, 10)],
  ];
  for (const [section, n] of counts) {
    for (let i = 0; i < n; i++) {
      off = readName(b, off).end;
      need(b, off + 10, "record header");
      const rdlenOff = off + 8;
      const end = rdlenOff + 2 + u16(b, rdlenOff);
      need(b, end, "record data");
      out.push({ section, type: u16(b, off), ttlOff: off + 4, rdlenOff, end });
      off = end;
    }
  }
  return out;
}

const ttlAt = (b: Uint8Array, o: number) =>
  ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

function setTtl(b: Uint8Array, o: number, ttl: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(o, ttl >>> 0);
}

/** The smallest TTL of the answer section, or undefined when it is empty. */
export function minAnswerTtl(b: Uint8Array, refs = records(b)): number | undefined {
  let min: number | undefined;
  for (const r of refs) {
    if (r.section !== "answer") continue;
    const t = ttlAt(b, r.ttlOff);
    if (min === undefined || t < min) min = t;
  }
  return min;
}

/** Sets every answer record's TTL to `ttl` (in place). */
export function setAnswerTtls(b: Uint8Array, ttl: number, refs = records(b)): void {
  for (const r of refs) if (r.section === "answer") setTtl(b, r.ttlOff, ttl);
}

/** Overwrites the message ID (in place). */
export function setId(b: Uint8Array, id: number): void {
  b[0] = id >> 8;
  b[1] = id & 0xff;
}

/** A reply's response code (low 4 bits of the flags; extended RCODEs are not needed here). */
export function rcodeOf(b: Uint8Array): number {
  return b[3] & 0x0f;
}

/**
 * A reply to `q` (whose raw bytes are `query`) carrying `ips` as A/AAAA answers with `ttl`:
 * QR set, the query's opcode, RD and CD copied, RCODE NOERROR; no answers makes the empty reply
 * gost gives bypassed names.
 */
export function buildReply(query: Uint8Array, q: Question, ips: string[], ttl: number): Uint8Array {
  const question = query.subarray(12, q.end);
  const rdata = ips.map(ipBytes);
  const size = 12 + question.length + rdata.reduce((n, d) => n + 12 + d.length, 0);
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  v.setUint16(0, q.id);
  v.setUint16(2, FLAG_QR | FLAG_RA | (q.flags & (OPCODE_MASK | FLAG_RD | FLAG_CD)));
  v.setUint16(4, 1);
  v.setUint16(6, rdata.length);
  b.set(question, 12);
  let off = 12 + question.length;
  for (const d of rdata) {
    v.setUint16(off, 0xc00c); // the name: a pointer to the question's
    v.setUint16(off + 2, d.length === 4 ? TYPE_A : TYPE_AAAA);
    v.setUint16(off + 4, CLASS_IN);
    v.setUint32(off + 6, ttl);
    v.setUint16(off + 10, d.length);
    b.set(d, off + 12);
    off += 12 + d.length;
  }
  return b;
}

/** The 4 or 16 bytes of an IP literal. */
export function ipBytes(ip: string): Uint8Array {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(ip)) return new Uint8Array(ip.split(".").map(Number));
  const s = ip.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  let groups: string[];
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  let body = s;
  if (v4) {
    const p = v4[1].split(".").map(Number);
    body = s.slice(0, -v4[1].length) +
      `${((p[0] << 8) | p[1]).toString(16)}:${((p[2] << 8) | p[3]).toString(16)}`;
  }
  const [head, tail] = body.split("::");
  if (tail === undefined) groups = head.split(":");
  else {
    const h = head ? head.split(":") : [];
    const t = tail ? tail.split(":") : [];
    groups = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[2 * i] = n >> 8;
    out[2 * i + 1] = n & 0xff;
  });
  return out;
}

/** The EDNS0 client-subnet option for `ip`: IPv4 as /24, IPv6 as /128 (gost's choice). */
function ecsOption(ip: string): Uint8Array {
  const v6 = ipVersion(ip) === 6;
  const bits = v6 ? 128 : 24;
  const addr = ipBytes(ip).subarray(0, bits / 8);
  const o = new Uint8Array(8 + addr.length);
  const v = new DataView(o.buffer);
  v.setUint16(0, OPTION_ECS);
  v.setUint16(2, 4 + addr.length);
  v.setUint16(4, v6 ? 2 : 1);
  o[6] = bits;
  o[7] = 0;
  o.set(addr, 8);
  return o;
}

/**
 * `query` with an EDNS client subnet for `ip` (`clientIP=`): added to the query's OPT record, or
 * in a new OPT record when it has none. A subnet the client sent itself is kept as it is.
 */
export function withClientSubnet(query: Uint8Array, ip: string): Uint8Array {
  const refs = records(query);
  const opt = refs.find((r) => r.section === "additional" && r.type === TYPE_OPT);
  const ecs = ecsOption(ip);
  if (opt) {
    for (let o = opt.rdlenOff + 2; o + 4 <= opt.end; o += 4 + u16(query, o + 2)) {
      if (u16(query, o) === OPTION_ECS) return query;
    }
    const out = new Uint8Array(query.length + ecs.length);
    out.set(query.subarray(0, opt.end));
    out.set(ecs, opt.end);
    out.set(query.subarray(opt.end), opt.end + ecs.length);
    new DataView(out.buffer).setUint16(opt.rdlenOff, u16(query, opt.rdlenOff) + ecs.length);
    return out;
  }
  // A new OPT record: root name, type OPT, UDP payload size 1232 (the DNS flag day value).
  const rr = new Uint8Array(11 + ecs.length);
  const v = new DataView(rr.buffer);
  v.setUint16(1, TYPE_OPT);
  v.setUint16(3, 1232);
  v.setUint16(9, ecs.length);
  rr.set(ecs, 11);
  const out = new Uint8Array(query.length + rr.length);
  out.set(query);
  out.set(rr, query.length);
  new DataView(out.buffer).setUint16(10, u16(query, 10) + 1);
  return out;
}

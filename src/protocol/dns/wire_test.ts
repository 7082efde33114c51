import { assert, assertEquals, assertThrows } from "../../../tests/lib/assert.ts";
// @ts-types="npm:@types/dns-packet@5.6.5"
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { ProtocolError } from "../../core/errors.ts";
import { DnsCache, NEGATIVE_TTL } from "./cache.ts";
import {
  buildReply,
  ipBytes,
  minAnswerTtl,
  parseMessage,
  records,
  TYPE_AAAA,
  withClientSubnet,
} from "./wire.ts";

const bytes = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

function query(name: string, extra: dnsPacket.Packet["additionals"] = []): Uint8Array {
  return bytes(dnsPacket.encode({
    type: "query",
    id: 0x1234,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: "AAAA", name, class: "IN" }],
    additionals: extra,
  }));
}

/** A decoded message, loosely typed (the tests read fields dns-packet's types leave out). */
interface Loose {
  type?: string;
  id?: number;
  rcode?: string;
  answers: { name: string; type: string; ttl: number; data: unknown }[];
  additionals: { type: string; options: { code: number; type: string; [k: string]: unknown }[] }[];
}

function decode(b: Uint8Array): Loose {
  return dnsPacket.decode(Buffer.from(b)) as unknown as Loose;
}

Deno.test("wire: question, case and compression", () => {
  const q = parseMessage(query("WWW.Example.COM"));
  assertEquals([q.id, q.name, q.qtype, q.qclass, q.qdcount], [0x1234, "www.example.com", 28, 1, 1]);
  assertThrows(() => parseMessage(new Uint8Array(5)), ProtocolError, "shorter than a DNS header");
  const noQ = query("a.test");
  noQ[5] = 0;
  assertThrows(() => parseMessage(noQ), ProtocolError, "no question");
  const cut = query("a.test").subarray(0, 16);
  assertThrows(() => parseMessage(cut), ProtocolError, "past the end");
  // A pointer to itself must not loop forever.
  const loop = new Uint8Array([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
  assertThrows(() => parseMessage(loop), ProtocolError, "loop");
});

Deno.test("wire: replies built for hosts and bypass decode as expected", () => {
  const raw = query("h.test");
  const q = parseMessage(raw);
  const r = decode(buildReply(raw, q, ["fd00::1", "::ffff:1.2.3.4"], 3600));
  assertEquals(r.type, "response");
  assertEquals(r.id, 0x1234);
  assertEquals(r.answers.map((a) => [a.name, a.type, a.ttl, a.data]), [
    ["h.test", "AAAA", 3600, "fd00::1"],
    ["h.test", "AAAA", 3600, "::ffff:102:304"],
  ]);
  const empty = decode(buildReply(raw, q, [], 0));
  assertEquals(empty.answers.length, 0);
  assertEquals(empty.rcode, "NOERROR");
  assertEquals([...ipBytes("10.0.0.1")], [10, 0, 0, 1]);
  assertEquals(ipBytes("::1")[15], 1);
  assertEquals(TYPE_AAAA, 28);
});

Deno.test("wire: clientIP adds an ECS option, keeps the client's own", () => {
  // No OPT record: one is added.
  const a = decode(withClientSubnet(query("x.test"), "203.0.113.77"));
  const opt = a.additionals.find((r) => r.type === "OPT")!;
  const ecs = opt.options.find((o) => o.type === "CLIENT_SUBNET")!;
  assertEquals([ecs.family, ecs.sourcePrefixLength, ecs.ip], [1, 24, "203.0.113.0"]);
  // An OPT record with other options: ECS joins them.
  const withCookie = query("x.test", [{
    type: "OPT",
    name: ".",
    udpPayloadSize: 1232,
    flags: 0,
    options: [{ code: 10, data: Buffer.from("01234567") }],
  } as unknown as dnsPacket.Answer]);
  const b = decode(withClientSubnet(withCookie, "2001:db8::5"));
  const opt2 = b.additionals.find((r) => r.type === "OPT")!;
  assertEquals(opt2.options.map((o) => o.type), ["COOKIE", "CLIENT_SUBNET"]);
  const ecs2 = opt2.options[1];
  assertEquals([ecs2.family, ecs2.sourcePrefixLength], [2, 128]);
  // The client's own subnet is kept untouched.
  const own = withClientSubnet(query("x.test"), "198.51.100.1");
  assertEquals(withClientSubnet(own, "203.0.113.77"), own);
});

function answer(ttls: number[], rcode = "NOERROR"): Uint8Array {
  return bytes(dnsPacket.encode({
    type: "response",
    id: 7,
    flags: dnsPacket.RECURSION_DESIRED | (rcode === "NXDOMAIN" ? 3 : 0),
    questions: [{ type: "A", name: "c.test", class: "IN" }],
    answers: ttls.map((ttl, i) => ({
      type: "A",
      name: "c.test",
      ttl,
      class: "IN",
      data: `10.0.0.${i + 1}`,
    })),
    additionals: [{
      type: "OPT",
      name: ".",
      udpPayloadSize: 1232,
      flags: 0,
      options: [],
    }] as unknown as dnsPacket.Answer[],
  }));
}

Deno.test("cache: lifetimes as gost (min TTL, override, negative, off)", () => {
  const r = answer([300, 120]);
  assertEquals(minAnswerTtl(r), 120);
  assertEquals(records(r).length, 3);
  const c = new DnsCache();
  assertEquals(c.set("k", r), 120);
  const hit = c.get("k", 0xbeef)!;
  assert(hit.ttl > 118 && hit.ttl <= 120);
  const d = decode(hit.msg);
  assertEquals(d.id, 0xbeef);
  assert(d.answers.every((a) => a.ttl <= 120 && a.ttl >= 118));
  // Negative (no answers): gost's 60 s.
  assertEquals(c.set("nx", answer([], "NXDOMAIN")), NEGATIVE_TTL);
  // TTL 0 records are not cached.
  assertEquals(c.set("z", answer([0])), 0);
  assertEquals(c.get("z", 1), undefined);
  // ttl= overrides; ttl < 0 turns the cache off.
  assertEquals(new DnsCache(10).set("k", r), 10);
  const off = new DnsCache(-1);
  assertEquals(off.set("k", r), 0);
  assertEquals(off.get("k", 1), undefined);
});

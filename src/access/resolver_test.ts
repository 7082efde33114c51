import { assertEquals, assertRejects, assertThrows } from "../../tests/lib/assert.ts";
// @ts-types="npm:@types/dns-packet@5.6.5"
import dnsPacket from "dns-packet";
import type { Exchanger } from "./dns/exchanger.ts";
import { parseNameserver } from "./dns/exchanger.ts";
import { decodeAnswer, encodeQuery } from "./dns/msg.ts";
import { NameResolution, orderByPrefer, Resolver } from "./resolver.ts";
import { Hosts, parseInlineHosts } from "./hosts.ts";

/** An in-memory upstream answering from a table; counts queries. */
class FakeUpstream implements Exchanger {
  queries = 0;
  constructor(
    readonly name: string,
    private readonly table: Record<string, string[]>,
    private readonly ttl = 60,
    private readonly fail = false,
  ) {}
  exchange(query: Uint8Array): Promise<Uint8Array> {
    this.queries++;
    if (this.fail) return Promise.reject(new Error("unreachable upstream"));
    // deno-lint-ignore no-node-globals
    const q = dnsPacket.decode(Buffer.from(query));
    const qq = q.questions![0];
    const ips = this.table[`${qq.name}/${qq.type}`] ?? [];
    const b = dnsPacket.encode({
      type: "response",
      id: q.id,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
      questions: q.questions,
      answers: ips.map((ip) => ({ type: qq.type as "A", name: qq.name, ttl: this.ttl, data: ip })),
    });
    return Promise.resolve(new Uint8Array(b));
  }
}

Deno.test("dns msg: query round trip and answer decoding", () => {
  const q = encodeQuery("a.test", "AAAA", 77);
  // deno-lint-ignore no-node-globals
  const d = dnsPacket.decode(Buffer.from(q));
  assertEquals(d.id, 77);
  assertEquals(d.questions![0], { name: "a.test", type: "AAAA", class: "IN" });
  assertThrows(() => decodeAnswer(new Uint8Array([1, 2, 3]), "A"));
});

Deno.test("nameserver specs: v3 URLs, v2 addr/proto, bare ip, default ports, errors", () => {
  assertEquals(parseNameserver("1.1.1.1").name, "udp://1.1.1.1:53");
  assertEquals(parseNameserver("1.1.1.1:5353").name, "udp://1.1.1.1:5353");
  assertEquals(parseNameserver("udp://127.0.0.1:53").name, "udp://127.0.0.1:53");
  assertEquals(parseNameserver("tcp://127.0.0.1").name, "tcp://127.0.0.1:53");
  assertEquals(parseNameserver("tls://1.1.1.1").name, "tls://1.1.1.1:853");
  assertEquals(parseNameserver("1.1.1.1:853/tls").name, "tls://1.1.1.1:853");
  assertEquals(parseNameserver("8.8.8.8:53/tcp").name, "tcp://8.8.8.8:53");
  assertEquals(parseNameserver("[::1]:53").name, "udp://[::1]:53");
  assertEquals(parseNameserver("::1").name, "udp://[::1]:53");
  assertEquals(
    parseNameserver("https://1.0.0.1/dns-query").name,
    "https://1.0.0.1/dns-query",
  );
  assertThrows(() => parseNameserver("quic://1.1.1.1"), Error, "unknown protocol");
  assertThrows(() => parseNameserver("1.1.1.1:53/udp-chain"), Error, "chain");
});

Deno.test("resolver: A+AAAA, prefer order, cache hit, first upstream failing falls back", async () => {
  const bad = new FakeUpstream("bad", {}, 60, true);
  const good = new FakeUpstream("good", {
    "x.test/A": ["10.0.0.1"],
    "x.test/AAAA": ["fd00::1"],
  });
  const r = new Resolver({ servers: [bad, good] });
  assertEquals(await r.resolve("x.test"), ["10.0.0.1", "fd00::1"]);
  assertEquals(good.queries, 2);
  assertEquals(await r.resolve("X.test.", "ipv6"), ["fd00::1", "10.0.0.1"]);
  assertEquals(good.queries, 2); // served from the cache
  assertEquals(bad.queries, 2);
});

Deno.test("resolver: TTL 0 is not cached; ttl<0 disables the cache; NXDOMAIN is unreachable", async () => {
  const up = new FakeUpstream("up", { "z.test/A": ["10.0.0.9"] }, 0);
  const r = new Resolver({ servers: [up] });
  await r.resolve("z.test");
  await r.resolve("z.test");
  // A twice (TTL 0), AAAA once (its empty answer is cached briefly).
  assertEquals(up.queries, 3);
  const up2 = new FakeUpstream("up2", { "z.test/A": ["10.0.0.9"] }, 600);
  const r2 = new Resolver({ servers: [up2], ttl: -1 });
  await r2.resolve("z.test");
  await r2.resolve("z.test");
  assertEquals(up2.queries, 4);
  const err = await assertRejects(() => r.resolve("none.test"));
  assertEquals((err as { code?: string }).code, "unreachable");
  // The negative answer is cached briefly.
  const n = up.queries;
  await assertRejects(() => r.resolve("none.test"));
  assertEquals(up.queries, n);
});

Deno.test("name resolution: IP literal, hosts before resolver, prefer, null without resolver", async () => {
  const up = new FakeUpstream("up", { "r.test/A": ["10.1.1.1"] });
  const hosts = new Hosts(parseInlineHosts("h.test:10.2.2.2,h.test:fd00::2,r.test:10.3.3.3"));
  const n = new NameResolution({
    hosts,
    resolver: new Resolver({ servers: [up] }),
    prefer: "ipv6",
  });
  assertEquals(await n.lookup("::ffff:1.2.3.4"), ["1.2.3.4"]);
  assertEquals(await n.lookup("h.test"), ["fd00::2", "10.2.2.2"]);
  assertEquals(await n.lookup("r.test"), ["10.3.3.3"]);
  assertEquals(up.queries, 0);
  const n2 = new NameResolution({ hosts });
  assertEquals(await n2.lookup("elsewhere.test"), null);
  // localhost never goes upstream (RFC 6761): left to the system.
  const n3 = new NameResolution({ resolver: new Resolver({ servers: [up] }) });
  assertEquals(await n3.lookup("LOCALHOST."), null);
  assertEquals(await n3.lookup("a.localhost"), null);
  assertEquals(up.queries, 0);
  assertEquals(orderByPrefer(["::1", "1.1.1.1"], "ipv4"), ["1.1.1.1", "::1"]);
});

/** Unit tests: strategies, the fail filter, the fastest filter, the latency prober. */
import { assert, assertEquals, assertThrows } from "../../tests/lib/assert.ts";
import { NodeGroup } from "./group.ts";
import { LatencyProber } from "./latency.ts";
import { FailMarker, parseStrategy, Selector, selectorOptionsFrom } from "./selector.ts";
import { crc32 } from "../core/crc32.ts";

interface N {
  addr: string;
  marker: FailMarker;
}
const nodes = (n: number): N[] =>
  Array.from({ length: n }, (_, i) => ({ addr: `10.0.0.${i + 1}:80`, marker: new FailMarker() }));

function counts(pick: () => N | undefined, list: N[], times: number): number[] {
  const c = list.map(() => 0);
  for (let i = 0; i < times; i++) c[list.indexOf(pick()!)]++;
  return c;
}

Deno.test("selector: round-robin splits exactly, random roughly, fifo sticks to the first", () => {
  const ns = nodes(3);
  const round = new Selector<N>(selectorOptionsFrom(undefined));
  assertEquals(counts(() => round.select(ns), ns, 300), [100, 100, 100]);
  const rand = new Selector<N>(selectorOptionsFrom({ strategy: "random" }));
  for (const c of counts(() => rand.select(ns), ns, 3000)) assert(c > 700 && c < 1300, `${c}`);
  const fifo = new Selector<N>(selectorOptionsFrom({ strategy: "fifo" }));
  assertEquals(counts(() => fifo.select(ns), ns, 50), [50, 0, 0]);
});

Deno.test("selector: strategy names and aliases; unknown names are errors", () => {
  assertEquals(
    ["round", "rr", "random", "rand", "fifo", "ha", "hash", "RANDOM"].map(parseStrategy),
    ["round", "round", "random", "random", "fifo", "fifo", "hash", "random"],
  );
  assertThrows(() => parseStrategy("roundrobin"), Error, "unknown strategy");
  assertThrows(() => parseStrategy("parallel"), Error, "not supported yet");
  assertThrows(() => selectorOptionsFrom({ failTimeout: "soon" }), Error, "invalid failTimeout");
  assertEquals(selectorOptionsFrom({ strategy: "rand", maxFails: 0, failTimeout: 5 }), {
    strategy: "random",
    maxFails: 1,
    failTimeout: 5000,
  });
  assertEquals(selectorOptionsFrom(undefined).failTimeout, 10_000);
  assertEquals(selectorOptionsFrom({ strategy: "round" }).failTimeout, 30_000);
});

Deno.test("selector: hash keeps a key on one node; crc32 matches IEEE", () => {
  assertEquals(crc32("123456789"), 0xcbf43926);
  const ns = nodes(5);
  const s = new Selector<N>(selectorOptionsFrom({ strategy: "hash" }));
  for (const key of ["a.example:443", "10.1.2.3", "x"]) {
    const first = s.select(ns, { key });
    for (let i = 0; i < 20; i++) assertEquals(s.select(ns, { key }), first);
    assertEquals(first, ns[crc32(key) % 5]);
  }
});

Deno.test("selector: fail filter skips a node after max_fails until fail_timeout", () => {
  let now = 1_000_000;
  const ns = nodes(3);
  const s = new Selector<N>(
    { strategy: "fifo", maxFails: 2, failTimeout: 30_000 },
    undefined,
    () => now,
  );
  assertEquals(s.select(ns), ns[0]);
  ns[0].marker.mark(now);
  assertEquals(s.select(ns), ns[0], "one failure of two allowed");
  ns[0].marker.mark(now);
  assertEquals(s.select(ns), ns[1], "dead after max_fails");
  now += 29_999;
  assertEquals(s.select(ns), ns[1]);
  now += 1;
  assertEquals(s.select(ns), ns[0], "tried again once fail_timeout has passed");
  ns[0].marker.mark(now);
  assertEquals(s.select(ns), ns[1], "a failure after the timeout kills it again");
  ns[0].marker.reset();
  assertEquals(s.select(ns), ns[0], "a success resets the count");
});

Deno.test("selector: all dead falls back to all; one node is never filtered; exclude", () => {
  const now = 5_000;
  const ns = nodes(3);
  const s = new Selector<N>(
    { strategy: "round", maxFails: 1, failTimeout: 60_000 },
    undefined,
    () => now,
  );
  for (const n of ns) n.marker.mark(now);
  assertEquals(counts(() => s.select(ns), ns, 30), [10, 10, 10]);
  assertEquals(s.select([ns[0]]), ns[0]);
  ns[1].marker.reset();
  assertEquals(s.select(ns), ns[1], "the live one wins over dead ones");
  assertEquals(s.select(ns, { exclude: new Set([ns[1]]) }) !== ns[1], true);
  assertEquals(s.select(ns, { exclude: new Set(ns) }), undefined);
});

Deno.test("selector: round-robin continues over the live nodes only", () => {
  const now = 1;
  const ns = nodes(3);
  const s = new Selector<N>(
    { strategy: "round", maxFails: 1, failTimeout: 60_000 },
    undefined,
    () => now,
  );
  ns[2].marker.mark(now);
  assertEquals(counts(() => s.select(ns), ns, 40), [20, 20, 0]);
});

Deno.test("selector: fastest_count keeps the N lowest latencies (injected)", () => {
  const ns = nodes(4);
  const lat = new Map<N, number>([[ns[0], 50], [ns[1], 5], [ns[2], Infinity], [ns[3], 20]]);
  const s = new Selector<N>(
    { strategy: "round", maxFails: 1, failTimeout: 10_000, fastestCount: 2 },
    (n) => lat.get(n),
  );
  assertEquals(counts(() => s.select(ns), ns, 40), [0, 20, 0, 20]);
  // Unmeasured nodes sort after measured ones, before unreachable ones; the fail filter runs first.
  lat.delete(ns[3]);
  ns[1].marker.mark();
  assertEquals(counts(() => s.select(ns), ns, 40), [20, 0, 0, 20]);
  const one = new Selector<N>(
    { strategy: "fifo", maxFails: 1, failTimeout: 10_000, fastestCount: 1 },
    (n) => lat.get(n),
  );
  assertEquals(one.select(ns), ns[0]);
});

Deno.test("latency prober: first round at once, unreachable = Infinity, close stops it", async () => {
  const fake: Record<string, number> = { "a:1": 30, "b:1": 3, "c:1": Infinity };
  let calls = 0;
  const p = new LatencyProber(() => Object.keys(fake), {
    probe: (a) => {
      calls++;
      if (a === "c:1") return Promise.reject(new Error("refused"));
      return Promise.resolve(fake[a]);
    },
    period: 60_000,
  });
  try {
    await p.round();
    assertEquals([p.latency("a:1"), p.latency("b:1"), p.latency("c:1")], [30, 3, Infinity]);
    assertEquals(calls, 3);
  } finally {
    p.close();
  }
});

Deno.test("group: fastest_count through a group with an injected probe", async () => {
  const lat: Record<string, number> = { "10.0.0.1:80": 40, "10.0.0.2:80": 10, "10.0.0.3:80": 20 };
  const ns = nodes(3);
  const g = new NodeGroup<N>("g", ns, {
    strategy: "round",
    maxFails: 1,
    failTimeout: 10_000,
    fastestCount: 1,
  }, { probe: (a) => Promise.resolve(lat[a]), probePeriod: 60_000 });
  try {
    await g.latency!.round();
    assertEquals(counts(() => g.select(), ns, 10), [0, 10, 0]);
    lat["10.0.0.3:80"] = 1;
    await g.latency!.round();
    assertEquals(counts(() => g.select(), ns, 10), [0, 0, 10]);
    g.setSelector({ strategy: "round", maxFails: 1, failTimeout: 10_000 });
    assertEquals(g.latency, undefined, "probing stops without fastest_count");
    assertEquals(counts(() => g.select(), ns, 30), [10, 10, 10]);
  } finally {
    g.close();
  }
});

Deno.test("group: a real TCP probe ranks a listening address above a closed port", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dead = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadAddr = `127.0.0.1:${(dead.addr as Deno.NetAddr).port}`;
  dead.close();
  const accepting = (async () => {
    for await (const c of l) c.close();
  })().catch(() => {});
  const ns: N[] = [
    { addr: deadAddr, marker: new FailMarker() },
    { addr: `127.0.0.1:${(l.addr as Deno.NetAddr).port}`, marker: new FailMarker() },
  ];
  const g = new NodeGroup<N>("g", ns, {
    strategy: "fifo",
    maxFails: 1,
    failTimeout: 10_000,
    fastestCount: 1,
  }, { probePeriod: 60_000 });
  try {
    await g.latency!.round();
    assertEquals(g.latency!.latency(deadAddr), Infinity);
    assertEquals(g.select(), ns[1]);
  } finally {
    g.close();
    l.close();
    await accepting;
  }
});

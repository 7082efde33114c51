/** Unit tests: ip= lists and files, peer files, live reload of hop groups. */
import "../modules.ts";
import { assertEquals, assertStringIncludes, assertThrows } from "../../tests/lib/assert.ts";
import { buildConfigFromCLI } from "../config/cli.ts";
import { buildChain } from "./builder.ts";
import { FileWatcher } from "../core/filewatch.ts";
import { parseIPFile, parseIPList, parsePeerFile } from "./nodefile.ts";

Deno.test("ip=: entries without a port take the node's; IPv6 is bracketed", () => {
  assertEquals(parseIPList("10.0.0.1, 10.0.0.2:81,host,[::1],::2,[::3]:9,", 1080), [
    "10.0.0.1:1080",
    "10.0.0.2:81",
    "host:1080",
    "[::1]:1080",
    "[::2]:1080",
    "[::3]:9",
  ]);
  assertEquals(parseIPFile("# nodes\n10.0.0.1\n\n  10.0.0.2:81  # second\n#x\n", 8080), [
    "10.0.0.1:8080",
    "10.0.0.2:81",
  ]);
});

Deno.test("peer file: gost's line format and JSON", () => {
  assertEquals(
    parsePeerFile(
      "# comment\nstrategy  random\nmax_fails 2\nfail_timeout\t45s\nfastest_count 1\n" +
        "reload 10s\npeer http://:18080\npeer socks5://1.2.3.4:1080 # x\n",
    ),
    {
      nodes: ["http://:18080", "socks5://1.2.3.4:1080"],
      strategy: "random",
      maxFails: 2,
      failTimeout: 45_000,
      fastestCount: 1,
      reload: 10_000,
    },
  );
  assertEquals(
    parsePeerFile(
      `{"strategy": "fifo", "max_fails": 3, "FailTimeout": "1m", "fastest_count": 0,
        "nodes": ["socks5://a:1"], "reload": 2}`,
    ),
    {
      nodes: ["socks5://a:1"],
      strategy: "fifo",
      maxFails: 3,
      failTimeout: 60_000,
      fastestCount: 0,
      reload: 2000,
    },
  );
  assertThrows(() => parsePeerFile("peers x:1"), Error, `line 1: unknown directive "peers"`);
  assertThrows(() => parsePeerFile("max_fails many"), Error, "invalid number");
  assertThrows(() => parsePeerFile("fail_timeout soon"), Error, "invalid duration");
  assertThrows(() => parsePeerFile(`{"nodes": [1]}`), Error, "list of node URLs");
  assertThrows(() => parsePeerFile(`{"nodes": [`), Error, "invalid JSON");
});

Deno.test("file watcher: reloads on mtime change, keeps the last good data", async () => {
  const dir = Deno.makeTempDirSync();
  const f = `${dir}/list`;
  Deno.writeTextFileSync(f, "a");
  const seen: string[] = [];
  const w = new FileWatcher(f, (t) => {
    if (t.includes("bad")) throw new Error("bad content");
    seen.push(t);
  });
  try {
    w.loadNow();
    assertEquals(seen, ["a"]);
    await w.check();
    assertEquals(seen, ["a"], "unchanged mtime: no reload");
    Deno.writeTextFileSync(f, "b");
    Deno.utimeSync(f, new Date(), new Date(Date.now() + 5000));
    await w.check();
    assertEquals(seen, ["a", "b"]);
    Deno.writeTextFileSync(f, "bad");
    Deno.utimeSync(f, new Date(), new Date(Date.now() + 10_000));
    await w.check();
    assertEquals(seen, ["a", "b"]);
    Deno.removeSync(f);
    await w.check(); // a vanished file keeps the last good data too
    assertEquals(seen, ["a", "b"]);
    assertThrows(() => w.loadNow(), Error, f);
  } finally {
    w.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("-F ip=, host lists and selector params → hop nodes and selector (-O model)", () => {
  const cfg = buildConfigFromCLI(["http://:8080"], [
    "socks5://u:p@10.0.0.1:1080?ip=10.0.0.2,10.0.0.3:1081&strategy=random&max_fails=2&timeout=5s",
    "http://a:1,b:2?failTimeout=1m",
  ]);
  const [h0, h1] = cfg.chains![0].hops;
  assertEquals(h0.selector, { strategy: "random", maxFails: 2, failTimeout: "30s" });
  assertEquals(h0.nodes.map((n) => [n.name, n.addr]), [
    ["node-0", "10.0.0.2:1080"],
    ["node-1", "10.0.0.3:1081"],
  ]);
  assertEquals(h0.nodes[1].connector.auth, { username: "u", password: "p" });
  assertEquals(h0.metadata, { timeout: "5s" });
  assertEquals(h1.selector, { strategy: "round", maxFails: 1, failTimeout: "1m0s" });
  assertEquals(h1.nodes.map((n) => n.addr), ["a:1", "b:2"]);
  // Separate objects per node: YAML output must not use anchors.
  assertEquals(h0.nodes[0].metadata === h0.nodes[1].metadata, false);
  const fwd = buildConfigFromCLI(["tcp://:1/a:1,b:2?strategy=fifo"], []);
  assertEquals(fwd.services![0].forwarder!.selector, {
    strategy: "fifo",
    maxFails: 1,
    failTimeout: "30s",
  });
  assertThrows(
    () => buildConfigFromCLI(["http://:1?strategy=round"], []),
    Error,
    "apply to forward targets",
  );
  assertThrows(
    () => buildConfigFromCLI(["http://:1"], ["socks5://a:1?strategy=best"]),
    Error,
    `unknown strategy "best"`,
  );
});

Deno.test("hop: ip= file and peer= file are loaded and reloaded", async () => {
  const dir = Deno.makeTempDirSync();
  const ipf = `${dir}/ips`;
  const peerf = `${dir}/peers`;
  Deno.writeTextFileSync(ipf, "127.0.0.1:1001\n127.0.0.1 # port from the URL\n");
  Deno.writeTextFileSync(
    peerf,
    "strategy fifo\nmax_fails 3\nreload 0\npeer socks4a://127.0.0.1:2001\n",
  );
  const cfg = buildConfigFromCLI(["http://:8080"], [
    `socks5://127.0.0.1:1000?ip=${ipf}&peer=${peerf}&strategy=random`,
  ]);
  // A file stays a file reference in the model; the hop reads it.
  assertEquals(cfg.chains![0].hops[0].metadata, { ip: ipf, peer: peerf });
  const chain = buildChain(cfg.chains![0]);
  const hop = chain.hops[0];
  try {
    assertEquals(hop.nodes.map((n) => n.label), [
      "socks5://127.0.0.1:1001",
      "socks5://127.0.0.1:1000",
      "socks4a://127.0.0.1:2001",
    ]);
    assertEquals(hop.selectorOptions.strategy, "fifo", "the peer file overrides the -F selector");
    assertEquals(hop.selectorOptions.maxFails, 3);
    hop.nodes[0].marker.mark();
    // Rewrite the ip file: the hop follows, a kept address keeps its fail count.
    Deno.writeTextFileSync(ipf, "127.0.0.1:1001\n127.0.0.1:1003\n");
    Deno.utimeSync(ipf, new Date(), new Date(Date.now() + 5000));
    const watchers = (hop as unknown as { watchers: FileWatcher[] }).watchers;
    await watchers[0].check();
    assertEquals(hop.nodes.map((n) => n.addr), [
      "127.0.0.1:1001",
      "127.0.0.1:1003",
      "127.0.0.1:2001",
    ]);
    assertEquals(hop.nodes[0].marker.count, 1);
    // A broken peer file is reported and the previous peers stay.
    Deno.writeTextFileSync(peerf, "peer nosuch://x:1\n");
    Deno.utimeSync(peerf, new Date(), new Date(Date.now() + 5000));
    await watchers[1].check();
    assertEquals(hop.nodes.length, 3);
    Deno.writeTextFileSync(
      peerf,
      `{"strategy": "round", "nodes": ["http://127.0.0.1:2002", "socks5://127.0.0.1:2003"]}`,
    );
    Deno.utimeSync(peerf, new Date(), new Date(Date.now() + 10_000));
    await watchers[1].check();
    assertEquals(hop.nodes.map((n) => n.label).slice(2), [
      "http://127.0.0.1:2002",
      "socks5://127.0.0.1:2003",
    ]);
    assertEquals(hop.selectorOptions.strategy, "round");
  } finally {
    chain.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("hop: a bad peer file or unknown node parameter fails at start-up", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const peerf = `${dir}/peers`;
    Deno.writeTextFileSync(peerf, "peer socks5://127.0.0.1:1?bogus=1\n");
    const cfg = buildConfigFromCLI(["http://:8080"], [`socks5://127.0.0.1:1000?peer=${peerf}`]);
    const e = assertThrows(() => buildChain(cfg.chains![0]), Error, "bogus");
    assertStringIncludes(e.message, peerf);
    const missing = buildConfigFromCLI(["http://:8080"], [
      `socks5://127.0.0.1:1000?peer=${dir}/none`,
    ]);
    assertThrows(() => buildChain(missing.chains![0]), Error, `${dir}/none`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

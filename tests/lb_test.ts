/**
 * Load balancing end to end: forward targets and hop groups (`ip=`, `peer=`) with the round,
 * random, fifo and hash strategies, the fail filter (`max_fails`, `fail_timeout`), and `-O yaml`.
 *
 * Who served a connection is observable: forward targets are in-process servers that answer
 * with their id; hop-group nodes are dost SOCKS5 servers run with -D, whose "socks5 connect"
 * log lines are counted per target (each front dost reaches its own origin).
 */
import { assert, assertEquals, assertStringIncludes } from "./lib/assert.ts";
import { type DostProcess, freePort, IT, runDost, startDost } from "./lib/harness.ts";

const dec = new TextDecoder();

/** A TCP server that answers every connection with its id and closes. */
function startIdServer(id: string, port = 0) {
  const l = Deno.listen({ hostname: "127.0.0.1", port });
  let accepted = 0;
  (async () => {
    for await (const c of l) {
      accepted++;
      c.write(new TextEncoder().encode(id)).catch(() => 0).finally(() => {
        try {
          c.close();
        } catch { /* closed */ }
      });
    }
  })().catch(() => {});
  return {
    id,
    port: (l.addr as Deno.NetAddr).port,
    get accepted() {
      return accepted;
    },
    close() {
      try {
        l.close();
      } catch { /* closed already */ }
    },
  };
}

/** Connects, reads until EOF, returns the text (the id of whoever answered). */
async function fetchId(port: number): Promise<string> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  const t = setTimeout(() => c.close(), 10_000);
  let out = "";
  try {
    const buf = new Uint8Array(256);
    for (;;) {
      const n = await c.read(buf);
      if (n === null) break;
      out += dec.decode(buf.subarray(0, n));
    }
  } catch { /* closed by the timer */ }
  clearTimeout(t);
  try {
    c.close();
  } catch { /* closed */ }
  return out;
}

/** Runs `n` calls of `f`, `conc` at a time. */
async function runMany<T>(n: number, conc: number, f: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: conc }, async () => {
    while (next < n) {
      const i = next++;
      out[i] = await f(i);
    }
  }));
  return out;
}

function tally(ids: string[], names: string[]): number[] {
  return names.map((n) => ids.filter((x) => x === n).length);
}

/** How many connections a dost SOCKS5 node (run with -D) made to 127.0.0.1:port. */
function served(node: DostProcess, port: number): number {
  const tail = `→ 127.0.0.1:${port}`;
  return node.logs().split("\n").filter((l) => l.includes("socks5 connect ") && l.endsWith(tail))
    .length;
}

/** Per-node counts for `port`, once their sum reaches `total` (logs arrive asynchronously). */
async function servedBy(nodes: DostProcess[], port: number, total: number): Promise<number[]> {
  let c = nodes.map((n) => served(n, port));
  for (const end = Date.now() + 5000; c.reduce((a, b) => a + b, 0) < total && Date.now() < end;) {
    await new Promise((r) => setTimeout(r, 25));
    c = nodes.map((n) => served(n, port));
  }
  return c;
}

const inRange = (c: number[], lo: number, hi: number) => c.every((x) => x >= lo && x <= hi);

Deno.test({
  name: "lb: forward targets split by round, random, fifo and hash; fifo fails over",
  ...IT,
  fn: async () => {
    const o = ["o1", "o2", "o3"].map((id) => startIdServer(id));
    const ids = o.map((s) => s.id);
    const targets = o.map((s) => `127.0.0.1:${s.port}`).join(",");
    const [pr, pd, pf, ph] = [freePort(), freePort(), freePort(), freePort()];
    const dost = await startDost([
      "-L",
      `tcp://127.0.0.1:${pr}/${targets}?strategy=round`,
      "-L",
      `tcp://127.0.0.1:${pd}/${targets}?strategy=random`,
      "-L",
      `tcp://127.0.0.1:${pf}/${targets}?strategy=fifo&max_fails=1&fail_timeout=60s`,
      "-L",
      `tcp://127.0.0.1:${ph}/${targets}?strategy=hash`,
    ]);
    try {
      assertEquals(tally(await runMany(300, 8, () => fetchId(pr)), ids), [100, 100, 100]);
      const rnd = tally(await runMany(300, 8, () => fetchId(pd)), ids);
      assert(inRange(rnd, 50, 150), `random split ${rnd}`);
      assertEquals(tally(await runMany(300, 8, () => fetchId(pf)), ids), [300, 0, 0]);
      // hash: one client address always lands on the same target.
      const h = tally(await runMany(60, 8, () => fetchId(ph)), ids);
      assertEquals(h.filter((x) => x === 60).length, 1, `hash split ${h}`);

      // fifo with the first target gone: the connection that finds it dead is served by the
      // next one, and with max_fails=1 the dead one is not tried again within fail_timeout.
      o[0].close();
      const before = o[1].accepted;
      const after = await runMany(30, 1, () => fetchId(pf));
      assertEquals(tally(after, ids), [0, 30, 0]);
      assertEquals(o[1].accepted - before, 30);
      const fails = () =>
        dost.logs().split("\n").filter((l) => l.includes(`forward to 127.0.0.1:${o[0].port}:`))
          .length;
      for (const end = Date.now() + 3000; fails() < 1 && Date.now() < end;) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assertEquals(fails(), 1, "the dead target was tried exactly once");
    } finally {
      await dost.stop();
      for (const s of o) s.close();
    }
  },
});

Deno.test({
  name: "lb: hop group of three dost nodes (ip= list, peer= file) by round, random, fifo",
  ...IT,
  fn: async () => {
    const ports = [freePort(), freePort(), freePort()];
    const origins = ["round", "random", "fifo"].map((id) => startIdServer(id));
    const fronts = [freePort(), freePort(), freePort()];
    const dir = Deno.makeTempDirSync();
    const peerFile = `${dir}/peers.txt`;
    // gost v2's peer file: the -F node plus these peers form the group; it sets the strategy.
    Deno.writeTextFileSync(
      peerFile,
      `# peers\nstrategy fifo\nmax_fails 1\nfail_timeout 30s\n` +
        `peer socks5://127.0.0.1:${ports[1]}\npeer socks5://127.0.0.1:${ports[2]}\n`,
    );
    const ip = ports.map((p) => `127.0.0.1:${p}`).join(",");
    const procs: DostProcess[] = [];
    try {
      const nodes = await Promise.all(
        ports.map((p) => startDost(["-D", "-L", `socks5://127.0.0.1:${p}`])),
      );
      procs.push(...nodes);
      const fwd = (i: number) => `tcp://127.0.0.1:${fronts[i]}/127.0.0.1:${origins[i].port}`;
      procs.push(
        ...await Promise.all([
          startDost(["-L", fwd(0), "-F", `socks5://127.0.0.1:${ports[0]}?ip=${ip}`]),
          startDost(["-L", fwd(1), "-F", `socks5://127.0.0.1:${ports[0]}?ip=${ip}&strategy=rand`]),
          startDost(["-L", fwd(2), "-F", `socks5://127.0.0.1:${ports[0]}?peer=${peerFile}`]),
        ]),
      );
      const want = ["round", "random", "fifo"];
      for (let i = 0; i < 3; i++) {
        const got = await runMany(300, 8, () => fetchId(fronts[i]));
        assertEquals(got.filter((x) => x === want[i]).length, 300, `${want[i]}: all answered`);
      }
      assertEquals(await servedBy(nodes, origins[0].port, 300), [100, 100, 100]);
      const rnd = await servedBy(nodes, origins[1].port, 300);
      assert(inRange(rnd, 50, 150), `random split ${rnd}`);
      assertEquals(await servedBy(nodes, origins[2].port, 300), [300, 0, 0]);
    } finally {
      for (const p of procs) await p.stop();
      for (const s of origins) s.close();
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "lb: a node failing its handshake is dropped after exactly max_fails attempts",
  ...IT,
  fn: async () => {
    // One good dost node and one that accepts TCP and hangs up at once (a broken proxy).
    const good = freePort();
    const bad = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    let badAccepts = 0;
    (async () => {
      for await (const c of bad) {
        badAccepts++;
        c.close();
      }
    })().catch(() => {});
    const origin = startIdServer("origin");
    const front = freePort();
    const procs: DostProcess[] = [];
    try {
      procs.push(await startDost(["-L", `socks5://127.0.0.1:${good}`]));
      const ip = `127.0.0.1:${good},127.0.0.1:${(bad.addr as Deno.NetAddr).port}`;
      procs.push(
        await startDost([
          "-L",
          `tcp://127.0.0.1:${front}/127.0.0.1:${origin.port}?retries=3`,
          "-F",
          `socks5://127.0.0.1:${good}?ip=${ip}&max_fails=3&fail_timeout=60s`,
        ]),
      );
      const got = await runMany(40, 1, () => fetchId(front));
      assertEquals(got.filter((x) => x === "origin").length, 40, "retries hide the bad node");
      assertEquals(badAccepts, 3, "tried max_fails times, then skipped for fail_timeout");
    } finally {
      for (const p of procs) await p.stop();
      bad.close();
      origin.close();
    }
  },
});

Deno.test({
  name: "lb: a killed hop node stops getting connections and returns after fail_timeout",
  ...IT,
  fn: async () => {
    const ports = [freePort(), freePort(), freePort()];
    const origin = startIdServer("o");
    const front = freePort();
    const ip = ports.map((p) => `127.0.0.1:${p}`).join(",");
    const nodes = await Promise.all(
      ports.map((p) => startDost(["-D", "-L", `socks5://127.0.0.1:${p}`])),
    );
    const others: DostProcess[] = [];
    try {
      others.push(
        await startDost([
          "-L",
          `tcp://127.0.0.1:${front}/127.0.0.1:${origin.port}?retries=2`,
          "-F",
          `socks5://127.0.0.1:${ports[0]}?ip=${ip}&strategy=round&max_fails=1&fail_timeout=2s`,
        ]),
      );
      const ok = async (n: number) => {
        const got = await runMany(n, 1, () => fetchId(front));
        assertEquals(got.filter((x) => x === "o").length, n, "every connection is served");
      };
      await ok(9);
      assertEquals(await servedBy(nodes, origin.port, 9), [3, 3, 3]);

      await nodes[2].stop();
      await ok(20);
      const mid = await servedBy(nodes.slice(0, 2), origin.port, 26);
      assertEquals(mid[0] + mid[1], 26, `the live nodes took over: ${mid}`);

      // Same port, new process: after fail_timeout the node is picked again.
      nodes[2] = await startDost(["-D", "-L", `socks5://127.0.0.1:${ports[2]}`]);
      await new Promise((r) => setTimeout(r, 2200));
      await ok(30);
      const back = await servedBy(nodes, origin.port, 56);
      assertEquals(back, [mid[0] + 10, mid[1] + 10, 10], "the restarted node is back in rotation");
    } finally {
      for (const p of [...nodes, ...others]) await p.stop();
      origin.close();
    }
  },
});

Deno.test({
  name: "lb: fastest_count drops a node whose probe fails (fifo would pick it first)",
  ...IT,
  fn: async () => {
    const live = freePort();
    const dead = freePort();
    const origin = startIdServer("o");
    const front = freePort();
    const procs: DostProcess[] = [];
    try {
      procs.push(await startDost(["-L", `socks5://127.0.0.1:${live}`]));
      const f = await startDost([
        "-DD",
        "-L",
        `tcp://127.0.0.1:${front}/127.0.0.1:${origin.port}`,
        "-F",
        `socks5://127.0.0.1:${live}?ip=127.0.0.1:${dead},127.0.0.1:${live}` +
        `&strategy=fifo&fastest_count=1`,
      ]);
      procs.push(f);
      // Wait for the first probe round (logged at trace level), not for a fixed time.
      const probed = `latency: 127.0.0.1:${dead}=down 127.0.0.1:${live}=`;
      for (const end = Date.now() + 5000; !f.logs().includes(probed) && Date.now() < end;) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assertStringIncludes(f.logs(), probed);
      // No retries: a single pick of the dead node would fail a connection.
      const got = await runMany(20, 1, () => fetchId(front));
      assertEquals(got.filter((x) => x === "o").length, 20);
      assertEquals(f.logs().includes("marked"), false, "the dead node was never dialed");
    } finally {
      for (const p of procs) await p.stop();
      origin.close();
    }
  },
});

Deno.test({
  name: "lb: -O yaml shows hop groups as nodes and selectors as gost does",
  ...IT,
  fn: async () => {
    const r = await runDost([
      "-L",
      "tcp://:8080/10.0.0.1:80,10.0.0.2:80?strategy=random&max_fails=2&fail_timeout=2s",
      "-F",
      "socks5://10.0.1.1:1080?ip=10.0.1.1,10.0.1.2:1081&strategy=fifo",
      "-O",
      "yaml",
    ]);
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(
      r.stdout,
      `    forwarder:
      selector:
        strategy: random
        maxFails: 2
        failTimeout: 2s
      nodes:
        - name: target-0
          addr: 10.0.0.1:80
        - name: target-1
          addr: 10.0.0.2:80`,
    );
    assertStringIncludes(
      r.stdout,
      `      - name: hop-0
        selector:
          strategy: fifo
          maxFails: 1
          failTimeout: 30s
        nodes:
          - name: node-0
            addr: 10.0.1.1:1080
            connector:
              type: socks5
            dialer:
              type: tcp
          - name: node-1
            addr: 10.0.1.2:1081`,
    );
    const bad = await runDost(["-L", "http://:8080?strategy=round", "-O", "yaml"]);
    assertEquals(bad.code, 1);
    assertStringIncludes(bad.stderr, "apply to forward targets");
  },
});

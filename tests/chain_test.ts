/** Chains built from -F: each hop reached through the previous one, errors naming the hop. */
import { assertEquals, assertStringIncludes } from "./lib/assert.ts";
import { curl, freePort, IT, startDost, startOrigin } from "./lib/harness.ts";

Deno.test({
  name: "chain: socks5 → socks5 (user/pass) → socks5 → origin",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const [a, b, c] = [freePort(), freePort(), freePort()];
    const procs = [];
    try {
      procs.push(await startDost(["-L", `socks5://u%40x:p%3Aw@127.0.0.1:${b}`]));
      procs.push(await startDost(["-L", `socks5://127.0.0.1:${c}`]));
      procs.push(
        await startDost([
          "-L",
          `socks5://127.0.0.1:${a}`,
          "-F",
          `socks5://u%40x:p%3Aw@127.0.0.1:${b}`,
          "-F",
          `socks5://127.0.0.1:${c}`,
        ]),
      );
      const r = await curl([
        "--proxy",
        `socks5h://127.0.0.1:${a}`,
        `http://localhost:${origin.port}/x`,
      ]);
      assertEquals(r.stdout, "hello /x", r.stderr);
      // A refused target is reported back through the whole chain as "connection refused".
      const refused = await curl([
        "--proxy",
        `socks5h://127.0.0.1:${a}`,
        `http://127.0.0.1:${freePort()}/`,
      ]);
      assertStringIncludes(refused.stderr, "(5)");
    } finally {
      for (const p of procs) await p.stop();
      await origin.close();
    }
  },
});

Deno.test({
  name: "chain: a failing hop is named in the log and the client gets an error reply",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const [a, a2, b] = [freePort(), freePort(), freePort()];
    const dead = freePort();
    const procs = [];
    try {
      procs.push(await startDost(["-L", `socks5://u:p@127.0.0.1:${b}`]));
      const front = await startDost([
        "-L",
        `socks5://127.0.0.1:${a}`,
        "-F",
        `socks5://u:wrong@127.0.0.1:${b}`,
      ]);
      procs.push(front);
      const r = await curl([
        "--proxy",
        `socks5h://127.0.0.1:${a}`,
        `http://localhost:${origin.port}/`,
      ]);
      assertEquals(r.code === 0, false);
      assertStringIncludes(
        front.logs(),
        `hop 1 (socks5://127.0.0.1:${b}): socks5: authentication failed`,
      );
      const front2 = await startDost([
        "-L",
        `socks5://127.0.0.1:${a2}`,
        "-F",
        `socks5://u:p@127.0.0.1:${b}`,
        "-F",
        `socks5://127.0.0.1:${dead}`,
      ]);
      procs.push(front2);
      const r2 = await curl([
        "--proxy",
        `socks5h://127.0.0.1:${a2}`,
        `http://localhost:${origin.port}/`,
      ]);
      assertEquals(r2.code === 0, false);
      assertStringIncludes(front2.logs(), `hop 2 (socks5://127.0.0.1:${dead}): socks5 CONNECT`);
    } finally {
      for (const p of procs) await p.stop();
      await origin.close();
    }
  },
});

Deno.test({
  name: "chain: three all-dost hops over http, socks5 and socks4a connectors",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const [front, h, s5, s4] = [freePort(), freePort(), freePort(), freePort()];
    const procs = [];
    try {
      procs.push(await startDost(["-L", `http://u:p@127.0.0.1:${h}`]));
      procs.push(await startDost(["-L", `socks5://127.0.0.1:${s5}`]));
      procs.push(await startDost(["-L", `socks4://127.0.0.1:${s4}`]));
      procs.push(
        await startDost([
          "-L",
          `http://127.0.0.1:${front}`,
          "-F",
          `http://u:p@127.0.0.1:${h}`,
          "-F",
          `socks5://127.0.0.1:${s5}`,
          "-F",
          `socks4a://127.0.0.1:${s4}`,
        ]),
      );
      const r = await curl([
        "--proxy",
        `http://127.0.0.1:${front}`,
        `http://localhost:${origin.port}/3hops`,
      ]);
      assertEquals(r.stdout, "hello /3hops", r.stderr);
      const big = await curl([
        "--proxy",
        `http://127.0.0.1:${front}`,
        "-o",
        "/dev/null",
        "-w",
        "%{size_download}",
        `http://127.0.0.1:${origin.port}/big?n=5000000`,
      ]);
      assertEquals(big.stdout, "5000000", big.stderr);
    } finally {
      for (const p of procs) await p.stop();
      await origin.close();
    }
  },
});

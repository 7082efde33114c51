/**
 * Limiters end to end through a real dost process: connection limits (`climiter`), request
 * rate limits (`rlimiter`) and traffic limits (`limiter.in` / `limiter.out`). No timing asserts:
 * the 1 MB/s wall-time check lives in the bench (`--only=limit`).
 */
import { assert, assertEquals, assertStringIncludes } from "./lib/assert.ts";
import {
  curl,
  freePort,
  IT,
  needs,
  runDost,
  sha256,
  startDost,
  startEcho,
  startOrigin,
  waitForLog,
} from "./lib/harness.ts";

const enc = new TextEncoder();

/** Sends one line on `c` and resolves with whether it came back (false: dost closed it). */
async function ping(c: Deno.Conn, msg = "ping\n"): Promise<boolean> {
  const t = setTimeout(() => c.close(), 10_000);
  try {
    await c.write(enc.encode(msg));
    const buf = new Uint8Array(64);
    let got = "";
    while (got.length < msg.length) {
      const n = await c.read(buf);
      if (n === null) return false;
      got += new TextDecoder().decode(buf.subarray(0, n));
    }
    return got === msg;
  } catch {
    return false; // reset: closed by dost
  } finally {
    clearTimeout(t);
  }
}

const connect = (port: number) => Deno.connect({ hostname: "127.0.0.1", port });
const closeQuietly = (c: Deno.Conn) => {
  try {
    c.close();
  } catch { /* closed */ }
};

Deno.test({
  name: "climiter=2: the third concurrent client is closed, a slot frees when one leaves",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const port = freePort();
    const dost = await startDost([
      "-D",
      "-L",
      `tcp://127.0.0.1:${port}/127.0.0.1:${echo.port}?climiter=2`,
    ]);
    const open: Deno.Conn[] = [];
    try {
      const a = await connect(port);
      const b = await connect(port);
      open.push(a, b);
      assert(await ping(a), "first client served");
      assert(await ping(b), "second client served");
      const c = await connect(port);
      open.push(c);
      assert(!(await ping(c)), "third client must be refused");
      await waitForLog(dost, "connection limit reached");
      assert(await ping(a), "the first two keep working");
      assert(await ping(b));
      a.close();
      // The slot comes back once dost has seen the close: retry briefly.
      let served = false;
      for (let i = 0; i < 50 && !served; i++) {
        const d = await connect(port);
        open.push(d);
        served = await ping(d);
        if (!served) await new Promise((r) => setTimeout(r, 100));
      }
      assert(served, "a new client is served after one left");
    } finally {
      open.forEach(closeQuietly);
      await dost.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "rlimiter=1: a burst of new connections has some refused and some served",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const port = freePort();
    const dost = await startDost([
      "-D",
      "-L",
      `tcp://127.0.0.1:${port}/127.0.0.1:${echo.port}?rlimiter=1`,
    ]);
    const open: Deno.Conn[] = [];
    try {
      for (let i = 0; i < 6; i++) open.push(await connect(port));
      const results = await Promise.all(open.map((c) => ping(c)));
      const served = results.filter((r) => r).length;
      assert(served >= 1, `some served: ${results}`);
      assert(served < results.length, `some refused: ${results}`);
      await waitForLog(dost, "request rate limit exceeded");
    } finally {
      open.forEach(closeQuietly);
      await dost.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "limiter.in/out=100KB: 200 KB of random bytes echo back byte-exact",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const port = freePort();
    const dost = await startDost([
      "-L",
      `tcp://127.0.0.1:${port}/127.0.0.1:${echo.port}?limiter.in=100KB&limiter.out=100KB`,
    ]);
    try {
      const data = new Uint8Array(200 * 1024);
      for (let off = 0; off < data.length; off += 65536) {
        crypto.getRandomValues(data.subarray(off, off + 65536));
      }
      const c = await connect(port);
      const writer = (async () => {
        for (let off = 0; off < data.length;) off += await c.write(data.subarray(off));
        await c.closeWrite();
      })();
      const back = new Uint8Array(data.length + 1);
      let total = 0;
      for (;;) {
        const n = await c.read(back.subarray(total));
        if (n === null) break;
        total += n;
        if (total === back.length) break;
      }
      await writer;
      closeQuietly(c);
      assertEquals(total, data.length);
      assertEquals(await sha256(back.subarray(0, total)), await sha256(data));
    } finally {
      await dost.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "limiter.conn.out through SOCKS5: curl downloads 300 KB intact",
  ...IT,
  ...needs("curl"),
  fn: async () => {
    const origin = startOrigin();
    const port = freePort();
    const dost = await startDost(["-L", `socks5://127.0.0.1:${port}?limiter.conn.out=200KB`]);
    try {
      const r = await curl([
        "-x",
        `socks5h://127.0.0.1:${port}`,
        `http://127.0.0.1:${origin.port}/big?n=300000`,
      ]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(r.stdout, "a".repeat(300000));
    } finally {
      await dost.stop();
      await origin.close();
    }
  },
});

Deno.test({
  name: "limiter parameters: malformed values fail at start-up naming the parameter",
  ...IT,
  fn: async () => {
    for (
      const [q, key] of [
        ["limiter.out=1mb", "limiter"],
        ["rlimiter=fast", "rlimiter"],
        ["climiter=lots", "climiter"],
      ]
    ) {
      const r = await runDost(["-L", `tcp://127.0.0.1:${freePort()}/127.0.0.1:9?${q}`]);
      assert(r.code !== 0, `${q} must fail`);
      assertStringIncludes(r.stderr, `"${key}`);
    }
  },
});

/** TCP port forwarding (`tcp://:P/target[,target…]`) end to end through a real dost process. */
import { assert, assertEquals, assertStringIncludes } from "./lib/assert.ts";
import { freePort, IT, runDost, sha256, startDost, startEcho, waitForLog } from "./lib/harness.ts";

/** Sends `data` to 127.0.0.1:port while reading, half-closes, and returns all bytes read. */
async function echoThrough(port: number, data: Uint8Array): Promise<Uint8Array> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const writer = (async () => {
      for (let off = 0; off < data.length;) {
        off += await c.write(data.subarray(off, Math.min(off + 100_000, data.length)));
      }
      await c.closeWrite();
    })();
    const out = new Uint8Array(data.length + 65536);
    let total = 0;
    for (;;) {
      if (total === out.length) break; // more than sent: the comparison below fails
      const n = await c.read(out.subarray(total));
      if (n === null) break;
      total += n;
    }
    await writer;
    return out.subarray(0, total);
  } finally {
    try {
      c.close();
    } catch { /* closed */ }
  }
}

Deno.test({
  name: "forward: 4 MiB of random bytes are echoed byte-exact through tcp://",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const port = freePort();
    const dost = await startDost(["-L", `tcp://127.0.0.1:${port}/127.0.0.1:${echo.port}`]);
    try {
      const data = new Uint8Array(4 << 20);
      for (let off = 0; off < data.length; off += 65536) {
        crypto.getRandomValues(data.subarray(off, off + 65536));
      }
      const back = await echoThrough(port, data);
      assertEquals(back.length, data.length);
      assertEquals(await sha256(back), await sha256(data));
    } finally {
      await dost.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "forward: a dead target in the list is skipped for the live one",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const dead = freePort();
    const port = freePort();
    const dost = await startDost([
      "-L",
      `tcp://127.0.0.1:${port}/127.0.0.1:${dead},127.0.0.1:${echo.port}`,
    ]);
    try {
      // Round-robin starts at a different target each time: every connection must still land.
      for (let i = 0; i < 4; i++) {
        const msg = new TextEncoder().encode(`ping ${i}`);
        const back = await echoThrough(port, msg);
        assertEquals(new TextDecoder().decode(back), `ping ${i}`);
      }
      await waitForLog(dost, `forward to 127.0.0.1:${dead}`);
    } finally {
      await dost.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "forward: tcp:// without a target exits 1 with a one-line error",
  ...IT,
  fn: async () => {
    const r = await runDost(["-L", `tcp://127.0.0.1:${freePort()}`]);
    assertEquals(r.code, 1, r.stderr);
    const lines = r.stderr.trim().split("\n");
    assertEquals(lines.length, 1, r.stderr);
    assert(lines[0].startsWith("dost: "), lines[0]);
    assertStringIncludes(lines[0], "forwarding needs a target");
  },
});

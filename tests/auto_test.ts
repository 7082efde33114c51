/**
 * The auto handler end to end: one port serving HTTP, SOCKS4/4a and SOCKS5 to real curl, with and
 * without credentials, and bad input that must leave the service serving.
 */
import { assert, assertEquals, assertStringIncludes } from "./lib/assert.ts";
import { curl, freePort, IT, runDost, startDost, startOrigin } from "./lib/harness.ts";
import { CMD_CONNECT, encodeRequest } from "../src/protocol/socks4/wire.ts";

/**
 * Connects to 127.0.0.1:port, writes `data` while reading, and reads until the server closes.
 * `closedByPeer` is false when our safety timer had to cut the connection.
 */
async function talk(
  port: number,
  data: Uint8Array,
  safetyMs = 15_000,
): Promise<{ bytes: Uint8Array; closedByPeer: boolean }> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  let timedOut = false;
  const t = setTimeout(() => {
    timedOut = true;
    c.close();
  }, safetyMs);
  const writer = (async () => {
    for (let off = 0; off < data.length;) off += await c.write(data.subarray(off));
  })().catch(() => {/* the server closed on us */});
  const chunks: number[] = [];
  const buf = new Uint8Array(4096);
  try {
    for (;;) {
      const n = await c.read(buf);
      if (n === null) break;
      chunks.push(...buf.subarray(0, n));
    }
  } catch {
    // A reset counts as the server closing.
  }
  await writer;
  clearTimeout(t);
  try {
    c.close();
  } catch { /* closed by the timer */ }
  return { bytes: new Uint8Array(chunks), closedByPeer: !timedOut };
}

/** Every way curl can use a proxy, with the URL host it should ask for. */
function proxies(port: number, auth = ""): [string, string][] {
  const at = auth ? `${auth}@` : "";
  return [
    ["http", `http://${at}127.0.0.1:${port}`],
    ["socks5", `socks5://${at}127.0.0.1:${port}`],
    ["socks5h", `socks5h://${at}127.0.0.1:${port}`],
    ["socks4", `socks4://127.0.0.1:${port}`],
    ["socks4a", `socks4a://127.0.0.1:${port}`],
  ];
}

/** Waits until dost has logged `s` (the log line may trail the socket close it reports). */
async function waitForLog(dost: { logs(): string }, s: string, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !dost.logs().includes(s) && Date.now() < end;) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assertStringIncludes(dost.logs(), s);
}

Deno.test({
  name: "auto: -L host:port serves curl over http, CONNECT, socks4, socks4a, socks5, socks5h",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const port = freePort();
    const dost = await startDost(["-L", `127.0.0.1:${port}`]);
    try {
      for (const [kind, proxy] of proxies(port)) {
        // "localhost" makes socks4a and socks5h hand the name to dost.
        const r = await curl(["--proxy", proxy, `http://localhost:${origin.port}/${kind}`]);
        assertEquals([r.code, r.stdout], [0, `hello /${kind}`], `${kind}: ${r.stderr}`);
      }
      const tunnel = await curl([
        "--proxytunnel",
        "--proxy",
        `http://127.0.0.1:${port}`,
        `http://127.0.0.1:${origin.port}/tunnel`,
      ]);
      assertEquals([tunnel.code, tunnel.stdout], [0, "hello /tunnel"], tunnel.stderr);
    } finally {
      await dost.stop();
      await origin.close();
    }
  },
});

Deno.test({
  name: "auto: with user:pass, socks5 and http need the credentials and socks4 is refused",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const port = freePort();
    const dost = await startDost(["-D", "-L", `auto://user:pass@127.0.0.1:${port}`]);
    try {
      const url = `http://localhost:${origin.port}/secret`;
      for (const [kind, proxy] of proxies(port, "user:pass").slice(0, 3)) {
        const ok = await curl(["--proxy", proxy, url]);
        assertEquals([ok.code, ok.stdout], [0, "hello /secret"], `${kind}: ${ok.stderr}`);
      }
      for (const [kind, proxy] of proxies(port, "user:wrong")) {
        const bad = await curl(["--proxy", proxy, url]);
        assert(bad.stdout !== "hello /secret", `${kind} with a wrong password got through`);
      }
      for (const [kind, proxy] of proxies(port)) {
        const none = await curl(["--proxy", proxy, url]);
        assert(none.stdout !== "hello /secret", `${kind} without credentials got through`);
      }
      const noAuth = await curl([
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--proxy",
        `http://127.0.0.1:${port}`,
        url,
      ]);
      assertEquals(noAuth.stdout, "407");
      // SOCKS4 has no password field, so even the right user name is refused.
      const s4 = await talk(port, encodeRequest(CMD_CONNECT, "127.0.0.1", origin.port, "user"));
      assertEquals(s4.closedByPeer, true);
      assertEquals([...s4.bytes], [0, 93, 0, 0, 0, 0, 0, 0]);
    } finally {
      await dost.stop();
      await origin.close();
    }
  },
});

Deno.test({
  name: "auto: garbage and silent clients are closed, then every protocol still works",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const port = freePort();
    const dost = await startDost(["-D", "-L", `auto://127.0.0.1:${port}?readTimeout=1s`]);
    try {
      const enc = new TextEncoder();
      // Not HTTP, not SOCKS: the HTTP handler gets it and must close (with an error status, if
      // it answers at all).
      const junk = await talk(port, enc.encode("\x16\x03\x01garbage garbage\r\n\r\n"));
      assert(junk.closedByPeer, "garbage was not closed");
      const text = new TextDecoder().decode(junk.bytes);
      assert(text === "" || /^HTTP\/1\.[01] 4\d\d /.test(text), `unexpected answer ${text}`);

      // A SOCKS4-looking request with a bad command: the SOCKS4 refusal.
      const s4 = await talk(port, new Uint8Array([4, 7, 0, 80, 127, 0, 0, 1, 0]));
      assertEquals([...s4.bytes], [0, 91, 0, 0, 0, 0, 0, 0]);
      assert(s4.closedByPeer);

      // A SOCKS5 greeting cut short: closed.
      const s5 = await talk(port, new Uint8Array([5, 200]));
      assert(s5.closedByPeer, "truncated socks5 greeting was not closed");

      // Connects and says nothing: cut at readTimeout with nothing written.
      const silent = await talk(port, new Uint8Array(0));
      assertEquals([silent.closedByPeer, silent.bytes.length], [true, 0]);
      await waitForLog(dost, "auto: first byte timed out after 1000 ms");

      for (const [kind, proxy] of proxies(port)) {
        const r = await curl(["--proxy", proxy, `http://localhost:${origin.port}/${kind}`]);
        assertEquals([r.code, r.stdout], [0, `hello /${kind}`], `${kind}: ${r.stderr}`);
      }
    } finally {
      await dost.stop();
      await origin.close();
    }
  },
});

Deno.test({
  name: "auto: sub-handler parameters are accepted, unknown ones fail at start-up",
  ...IT,
  fn: async () => {
    const r = await runDost(["-L", `auto://127.0.0.1:${freePort()}?readTimeout=2s&bogus=1`]);
    assertEquals(r.code, 1, r.stderr);
    assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
    assertStringIncludes(r.stderr, `unknown parameter "bogus"`);
    assert(!r.stderr.includes("readtimeout"), r.stderr);
  },
});

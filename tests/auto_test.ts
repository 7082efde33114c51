/**
 * The auto handler end to end: one port serving HTTP, SOCKS4/4a and SOCKS5 to real curl, with and
 * without credentials, and bad input that must leave the service serving.
 */
import { assert, assertEquals, assertStringIncludes } from "./lib/assert.ts";
import {
  curl,
  freePort,
  IT,
  runDost,
  startDost,
  startOrigin,
  talk,
  waitForLog,
} from "./lib/harness.ts";
import { CMD_CONNECT, encodeRequest } from "../src/protocol/socks4/wire.ts";

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

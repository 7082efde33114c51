/**
 * SOCKS4 / SOCKS4a handler end to end: real curl through a real dost process, raw clients for
 * the reply codes, and bad input that must leave the service serving.
 */
import { assert, assertEquals } from "./lib/assert.ts";
import {
  curl,
  freePort,
  IT,
  startDost,
  startOrigin,
  talk as talkRaw,
  waitForLog,
} from "./lib/harness.ts";
import { CMD_BIND, CMD_CONNECT, encodeRequest } from "../src/protocol/socks4/wire.ts";

/** `talk` with the reply as a plain array, which the assertions below compare. */
async function talk(port: number, data: Uint8Array, opts?: { closeWrite?: boolean }) {
  const r = await talkRaw(port, data, { safetyMs: 15_000, ...opts });
  return { bytes: [...r.bytes], closedByPeer: r.closedByPeer };
}

/** A port nothing listens on. */
const closedPort = freePort;

Deno.test({
  name: "socks4: curl socks4:// and socks4a:// reach an HTTP origin",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const p4 = freePort();
    const p4a = freePort();
    const dost = await startDost([
      "-L",
      `socks4://127.0.0.1:${p4}`,
      "-L",
      `socks4a://127.0.0.1:${p4a}`,
    ]);
    try {
      for (const port of [p4, p4a]) {
        const a = await curl([
          "--proxy",
          `socks4://127.0.0.1:${port}`,
          `http://127.0.0.1:${origin.port}/x`,
        ]);
        assertEquals([a.code, a.stdout], [0, "hello /x"], a.stderr);
        // socks4a: curl sends the name "localhost" for dost to resolve.
        const b = await curl([
          "--proxy",
          `socks4a://127.0.0.1:${port}`,
          `http://localhost:${origin.port}/y`,
        ]);
        assertEquals([b.code, b.stdout], [0, "hello /y"], b.stderr);
      }
      // A larger body proves the relay after the handshake, not just the first bytes.
      const big = await curl([
        "--proxy",
        `socks4a://127.0.0.1:${p4}`,
        `http://localhost:${origin.port}/big?n=3000000`,
      ]);
      assertEquals(big.code, 0, big.stderr);
      assertEquals(big.stdout, "a".repeat(3_000_000));
    } finally {
      await dost.stop();
      await origin.close();
    }
  },
});

Deno.test({
  name: "socks4: CONNECT to a closed port and BIND are answered 91",
  ...IT,
  fn: async () => {
    const port = freePort();
    const dost = await startDost(["-D", "-L", `socks4://127.0.0.1:${port}`]);
    try {
      const dead = closedPort();
      const r = await talk(port, encodeRequest(CMD_CONNECT, "127.0.0.1", dead));
      assertEquals(r, { bytes: [0, 91, 0, 0, 0, 0, 0, 0], closedByPeer: true });
      const r4a = await talk(port, encodeRequest(CMD_CONNECT, "localhost", dead, "someone"));
      assertEquals(r4a, { bytes: [0, 91, 0, 0, 0, 0, 0, 0], closedByPeer: true });
      const bind = await talk(port, encodeRequest(CMD_BIND, "127.0.0.1", 21));
      assertEquals(bind, { bytes: [0, 91, 0, 0, 0, 0, 0, 0], closedByPeer: true });
      await waitForLog(dost, `socks4: connect 127.0.0.1:${dead}`);
      await waitForLog(dost, "socks4: command 2 not supported");
    } finally {
      await dost.stop();
    }
  },
});

Deno.test({
  name: "socks4: with credentials the USERID is checked as a password-less user (gost rule)",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const withPass = freePort();
    const noPass = freePort();
    const dost = await startDost([
      "-D",
      "-L",
      `socks4://user:pass@127.0.0.1:${withPass}`,
      "-L",
      `socks4://user@127.0.0.1:${noPass}`,
    ]);
    try {
      const url = `http://127.0.0.1:${origin.port}/x`;
      // SOCKS4 cannot carry a password: a user with one can never pass.
      const a = await curl(["--proxy", `socks4://user@127.0.0.1:${withPass}`, url]);
      assert(a.code !== 0, `expected curl to fail, got ${a.code} ${a.stdout}`);
      const raw = await talk(
        withPass,
        encodeRequest(CMD_CONNECT, "127.0.0.1", origin.port, "user"),
      );
      assertEquals(raw, { bytes: [0, 93, 0, 0, 0, 0, 0, 0], closedByPeer: true });
      await waitForLog(dost, `USERID "user" rejected`);
      // A password-less user is matched by USERID alone.
      const b = await curl(["--proxy", `socks4://user@127.0.0.1:${noPass}`, url]);
      assertEquals([b.code, b.stdout], [0, "hello /x"], b.stderr);
      const c = await curl(["--proxy", `socks4://other@127.0.0.1:${noPass}`, url]);
      assert(c.code !== 0, `expected curl to fail for another USERID, got ${c.code}`);
      const d = await curl(["--proxy", `socks4a://127.0.0.1:${noPass}`, url]);
      assert(d.code !== 0, `expected curl to fail without USERID, got ${d.code}`);
    } finally {
      await dost.stop();
      await origin.close();
    }
  },
});

Deno.test({
  name:
    "socks4: garbage, truncated, endless USERID and silent clients are closed; service serves on",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const port = freePort();
    const dost = await startDost(["-D", "-L", `socks4://127.0.0.1:${port}?readTimeout=1s`]);
    try {
      const garbage = await talk(port, new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
      assertEquals(garbage, { bytes: [0, 91, 0, 0, 0, 0, 0, 0], closedByPeer: true });

      const truncated = await talk(port, new Uint8Array([4, 1, 0]), { closeWrite: true });
      assertEquals(truncated, { bytes: [0, 91, 0, 0, 0, 0, 0, 0], closedByPeer: true });

      // 1 MiB without a NUL: the server stops reading early and closes; the reply may be lost
      // to the reset that unread input causes, but if anything arrives it is the refusal.
      const endless = new Uint8Array(8 + (1 << 20)).fill(65);
      endless.set([4, 1, 0, 80, 127, 0, 0, 1]);
      const e = await talk(port, endless);
      assert(e.closedByPeer, "server did not close an endless USERID");
      assert(
        e.bytes.length === 0 || String(e.bytes) === "0,91,0,0,0,0,0,0",
        `unexpected reply ${e.bytes}`,
      );

      const silent = await talk(port, new Uint8Array(0));
      assertEquals(silent, { bytes: [], closedByPeer: true });

      await waitForLog(dost, "socks4: bad request: socks4: bad version 71");
      await waitForLog(dost, "socks4: bad request: socks4: truncated request header");
      await waitForLog(dost, "USERID longer than 255 bytes");
      await waitForLog(dost, "socks4 handshake timed out after 1000 ms");

      const ok = await curl([
        "--proxy",
        `socks4://127.0.0.1:${port}`,
        `http://127.0.0.1:${origin.port}/after`,
      ]);
      assertEquals([ok.code, ok.stdout], [0, "hello /after"], ok.stderr);
    } finally {
      await dost.stop();
      await origin.close();
    }
  },
});

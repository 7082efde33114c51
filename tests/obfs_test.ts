/**
 * gost's obfuscating transports `ohttp` (obfs-http) and `otls` (obfs-tls), dost ↔ dost and
 * against hand-made gost-format handshakes: proxying, byte-exact bulk, a server that speaks
 * first, and bad input.
 */
import { assert, assertEquals, assertStringIncludes } from "./lib/assert.ts";
import {
  curl,
  freePort,
  IT,
  rawExchange,
  sha256,
  startDost,
  startEcho,
  startOrigin,
  talk,
} from "./lib/harness.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A TCP server that greets first ("SSH-2.0-test\r\n") and then echoes. */
function startBanner(): { port: number; close(): void } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const c of l) {
      conns.add(c);
      (async () => {
        await c.write(enc.encode("SSH-2.0-test\r\n"));
        const buf = new Uint8Array(4096);
        for (let n; (n = await c.read(buf)) !== null;) await c.write(buf.subarray(0, n));
      })().catch(() => {}).finally(() => {
        conns.delete(c);
        try {
          c.close();
        } catch { /* closed */ }
      });
    }
  })().catch(() => {});
  return {
    port: (l.addr as Deno.NetAddr).port,
    close() {
      l.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

/** Reads from a fresh connection to `port` until `want` bytes arrived (no write first). */
async function readFirst(port: number, want: number): Promise<string> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  const t = setTimeout(() => c.close(), 5000);
  let got = "";
  try {
    const buf = new Uint8Array(1024);
    while (got.length < want) {
      const n = await c.read(buf);
      if (n === null) break;
      got += dec.decode(buf.subarray(0, n));
    }
  } catch { /* closed by the timer */ }
  clearTimeout(t);
  try {
    c.close();
  } catch { /* closed */ }
  return got;
}

for (const tr of ["ohttp", "otls"]) {
  Deno.test({
    name: `${tr}: socks5+${tr} hop: curl through it, and 10 MB byte-exact through a tcp forward`,
    ...IT,
    fn: async () => {
      const origin = startOrigin();
      const echo = startEcho();
      const [a, b, c] = [freePort(), freePort(), freePort()];
      const procs = [];
      try {
        procs.push(await startDost(["-L", `socks5+${tr}://127.0.0.1:${b}`]));
        procs.push(
          await startDost([
            "-L",
            `socks5://127.0.0.1:${a}`,
            "-L",
            `tcp://127.0.0.1:${c}/127.0.0.1:${echo.port}`,
            "-F",
            `socks5+${tr}://127.0.0.1:${b}?host=example.com`,
          ]),
        );
        const r = await curl([
          "--proxy",
          `socks5h://127.0.0.1:${a}`,
          `http://localhost:${origin.port}/obfs`,
        ]);
        assertEquals(r.stdout, "hello /obfs", r.stderr);
        const big = new Uint8Array(10 << 20);
        for (let i = 0; i < big.length; i += 65536) {
          crypto.getRandomValues(big.subarray(i, i + 65536));
        }
        const out = await talk(c, big, { closeWrite: true, safetyMs: 60_000 });
        assertEquals(out.bytes.length, big.length);
        assertEquals(await sha256(out.bytes), await sha256(big));
      } finally {
        for (const p of procs) await p.stop();
        await origin.close();
        echo.close();
      }
    },
  });

  Deno.test({
    name: `${tr}: a server that speaks first is heard without the client writing (forward+${tr})`,
    ...IT,
    fn: async () => {
      const banner = startBanner();
      const [a, b] = [freePort(), freePort()];
      const procs = [];
      try {
        procs.push(await startDost(["-L", `tcp+${tr}://127.0.0.1:${b}/127.0.0.1:${banner.port}`]));
        procs.push(
          await startDost([
            "-L",
            `tcp://127.0.0.1:${a}/127.0.0.1:1`,
            "-F",
            `forward+${tr}://127.0.0.1:${b}`,
          ]),
        );
        assertEquals(await readFirst(a, 14), "SSH-2.0-test\r\n");
        // And the conversation goes on both ways afterwards.
        const r = await talk(a, "ping", { closeWrite: true });
        assertEquals(r.text, "SSH-2.0-test\r\nping");
      } finally {
        for (const p of procs) await p.stop();
        banner.close();
      }
    },
  });
}

Deno.test({
  name: "ohttp: a gost-format upgrade request gets 101 with the RFC 6455 accept key; bad ones 400",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const b = freePort();
    const dost = await startDost(["-L", `tcp+ohttp://127.0.0.1:${b}/127.0.0.1:${echo.port}`]);
    try {
      // The request as gost's client writes it, with its first bytes right after the head.
      const req = "GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Go-http-client/1.1\r\n" +
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
        "Upgrade: websocket\r\n\r\nhello";
      const got = await exchangeUntil(b, req, "\r\n\r\nhello");
      assert(got.startsWith("HTTP/1.1 101 Switching Protocols\r\n"), got);
      assertStringIncludes(got, "Sec-Websocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n");
      assert(got.endsWith("\r\n\r\nhello"), got);
      // Not an upgrade: 400, connection closed, service still up.
      const bad = await talk(b, "POST / HTTP/1.1\r\nHost: x\r\n\r\n");
      assert(bad.text.startsWith("HTTP/1.1 400 "), bad.text);
      const garbage = await talk(b, new Uint8Array(70_000).fill(65), { closeWrite: true });
      assert(garbage.closedByPeer);
      const truncated = await talk(b, "GET / HTTP/1.1\r\nHost:", { closeWrite: true });
      assertEquals(truncated.text, "");
      const again = await exchangeUntil(b, req, "hello");
      assert(again.endsWith("hello"), again);
      assertStringIncludes(dost.logs(), "ohttp handshake failed");
    } finally {
      await dost.stop();
      echo.close();
    }
  },
});

/** Sends `data` to `port` and reads until the text received ends with `tail` (or 10 s pass). */
async function exchangeUntil(port: number, data: string, tail: string): Promise<string> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  const t = setTimeout(() => c.close(), 10_000);
  let got = "";
  try {
    await c.write(enc.encode(data));
    const buf = new Uint8Array(4096);
    while (!got.endsWith(tail)) {
      const n = await c.read(buf);
      if (n === null) break;
      got += dec.decode(buf.subarray(0, n));
    }
  } catch { /* closed by the timer */ }
  clearTimeout(t);
  try {
    c.close();
  } catch { /* closed */ }
  return got;
}

/** The records of a byte stream: [type, minor, body]. */
function records(b: Uint8Array): [number, number, Uint8Array][] {
  const out: [number, number, Uint8Array][] = [];
  for (let i = 0; i + 5 <= b.length;) {
    const len = (b[i + 3] << 8) | b[i + 4];
    out.push([b[i], b[i + 2], b.subarray(i + 5, i + 5 + len)]);
    i += 5 + len;
  }
  return out;
}

Deno.test({
  name:
    "otls: server answers a ClientHello with a 91-byte ServerHello, CCS, then handshake-typed data",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const b = freePort();
    const dost = await startDost(["-L", `tcp+otls://127.0.0.1:${b}/127.0.0.1:${echo.port}`]);
    try {
      // A minimal ClientHello by hand: version 1.2, 32-byte session id, one suite, no
      // compression, and a SessionTicket extension carrying "hello".
      const ticket = enc.encode("hello");
      const body = [
        0x03,
        0x03,
        ...new Uint8Array(32),
        32,
        ...new Uint8Array(32).fill(7),
        0,
        2,
        0xcc,
        0xa8,
        1,
        0,
        0,
        4 + ticket.length,
        0x00,
        0x23,
        0,
        ticket.length,
        ...ticket,
      ];
      const hs = [1, 0, body.length >> 8, body.length & 0xff, ...body];
      const rec = new Uint8Array([0x16, 3, 1, hs.length >> 8, hs.length & 0xff, ...hs]);
      const got = await rawExchange(b, rec, { max: 5 + 91 + 6 + 5 + 5, ms: 3000 });
      const rs = records(got);
      assertEquals(rs.length, 3, `records: ${rs.map((r) => r[0])}`);
      assertEquals([rs[0][0], rs[0][1], rs[0][2].length], [0x16, 1, 91]);
      assertEquals([...rs[0][2].subarray(39, 71)], Array(32).fill(7)); // our session id echoed
      assertEquals([rs[1][0], rs[1][1], [...rs[1][2]]], [0x14, 3, [1]]);
      assertEquals([rs[2][0], rs[2][1], dec.decode(rs[2][2])], [0x16, 3, "hello"]);
      // Garbage, a truncated hello and a non-handshake record: closed; the service goes on.
      assert((await talk(b, "GET / HTTP/1.0\r\n\r\n", { closeWrite: true })).closedByPeer);
      assertEquals((await talk(b, rec.subarray(0, 40), { closeWrite: true })).text, "");
      assertEquals((await talk(b, new Uint8Array([0x17, 3, 3, 0, 1, 0]))).text, "");
      assertEquals((await rawExchange(b, rec, { max: 112, ms: 3000 })).length, 112);
      assertStringIncludes(dost.logs(), "otls handshake failed");
    } finally {
      await dost.stop();
      echo.close();
    }
  },
});

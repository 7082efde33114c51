/**
 * gost's SOCKS5 TLS methods between dost nodes: 0x80 (TLS) and 0x82 (TLS + user/pass), UDP-TUN
 * inside TLS, `notls=true`, gost v2-style offers, and bad input after the method reply.
 */
import { assert, assertEquals, assertStringIncludes } from "./lib/assert.ts";
import {
  curl,
  freePort,
  IT,
  sha256,
  startDost,
  startEcho,
  startOrigin,
  startUdpEcho,
  talk,
  until,
  waitForLog,
} from "./lib/harness.ts";

/** Sends `bytes` and reads until `n` bytes came back or the server closed. */
async function exchange(port: number, bytes: number[], n: number): Promise<Uint8Array> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  const t = setTimeout(() => c.close(), 5000);
  const out: number[] = [];
  try {
    await c.write(Uint8Array.from(bytes));
    const buf = new Uint8Array(64);
    while (out.length < n) {
      const r = await c.read(buf);
      if (r === null) break;
      out.push(...buf.subarray(0, r));
    }
  } catch { /* closed */ }
  clearTimeout(t);
  try {
    c.close();
  } catch { /* closed */ }
  return Uint8Array.from(out);
}

Deno.test({
  name: "socks5 TLS methods: dost ↔ dost picks 0x80, carries HTTP and 8 MB byte-exact",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const echo = startEcho();
    const [a, b, c] = [freePort(), freePort(), freePort()];
    const server = await startDost(["-D", "-L", `socks5://127.0.0.1:${b}`]);
    const client = await startDost([
      "-L",
      `socks5://127.0.0.1:${a}`,
      "-L",
      `tcp://127.0.0.1:${c}/127.0.0.1:${echo.port}`,
      "-F",
      `socks5://127.0.0.1:${b}`,
    ]);
    try {
      const r = await curl([
        "--socks5-hostname",
        `127.0.0.1:${a}`,
        `http://localhost:${origin.port}/t`,
      ]);
      assertEquals(r.stdout, "hello /t", r.stderr);
      await waitForLog(server, "TLS method 0x80 negotiated");
      await waitForLog(client, "chose gost's TLS method");
      const big = crypto.getRandomValues(new Uint8Array(65536));
      const data = new Uint8Array(8 << 20);
      for (let i = 0; i < data.length; i += big.length) data.set(big, i);
      const out = await talk(c, data, { closeWrite: true, safetyMs: 60_000 });
      assertEquals(await sha256(out.bytes), await sha256(data));
    } finally {
      await client.stop();
      await server.stop();
      echo.close();
      await origin.close();
    }
  },
});

Deno.test({
  name: "socks5 TLS methods: credentials go inside TLS (0x82); a wrong password is refused",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const [a, b, x] = [freePort(), freePort(), freePort()];
    const server = await startDost(["-D", "-L", `socks5://u:p@127.0.0.1:${b}`]);
    const good = await startDost([
      "-L",
      `socks5://127.0.0.1:${a}`,
      "-F",
      `socks5://u:p@127.0.0.1:${b}`,
    ]);
    const bad = await startDost([
      "-L",
      `socks5://127.0.0.1:${x}`,
      "-F",
      `socks5://u:nope@127.0.0.1:${b}`,
    ]);
    try {
      const r = await curl([
        "--socks5-hostname",
        `127.0.0.1:${a}`,
        `http://localhost:${origin.port}/a`,
      ]);
      assertEquals(r.stdout, "hello /a", r.stderr);
      await waitForLog(server, "TLS method 0x82 negotiated");
      const f = await curl([
        "--socks5-hostname",
        `127.0.0.1:${x}`,
        `http://localhost:${origin.port}/a`,
      ]);
      assert(f.code !== 0);
      await waitForLog(server, 'authentication failed for user "u"');
      // A gost v2-style client offering 00 02 80 with credentials gets plain user/pass (0x02),
      // as from a gost v3 server.
      const reply = await exchange(b, [5, 3, 0, 2, 0x80], 2);
      assertEquals([...reply], [5, 2]);
    } finally {
      await good.stop();
      await bad.stop();
      await server.stop();
      await origin.close();
    }
  },
});

Deno.test({
  name: "socks5 TLS methods: UDP through the hop (UDP-TUN) rides inside TLS",
  ...IT,
  fn: async () => {
    const echo = startUdpEcho();
    const [b, u] = [freePort(), freePort()];
    const server = await startDost(["-D", "-L", `socks5://127.0.0.1:${b}?udp=true`]);
    const client = await startDost([
      "-L",
      `udp://127.0.0.1:${u}/127.0.0.1:${echo.port}`,
      "-F",
      `socks5://127.0.0.1:${b}?relay=tun`,
    ]);
    const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      let got = "";
      (async () => {
        const [d] = await sock.receive();
        got = new TextDecoder().decode(d);
      })().catch(() => {});
      for (let i = 0; i < 5 && !got; i++) {
        await sock.send(new TextEncoder().encode("over tls"), {
          transport: "udp",
          hostname: "127.0.0.1",
          port: u,
        });
        await until(() => got !== "", 1000);
      }
      assertEquals(got, "over tls");
      await waitForLog(server, "TLS method 0x80 negotiated");
    } finally {
      sock.close();
      await client.stop();
      await server.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "socks5 TLS methods: notls=true on the server or the client keeps the hop plain",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const [a, b, c, d] = [freePort(), freePort(), freePort(), freePort()];
    const plainServer = await startDost(["-D", "-L", `socks5://127.0.0.1:${b}?notls=true`]);
    const tlsServer = await startDost(["-D", "-L", `socks5://127.0.0.1:${d}`]);
    const c1 = await startDost(["-L", `socks5://127.0.0.1:${a}`, "-F", `socks5://127.0.0.1:${b}`]);
    const c2 = await startDost([
      "-L",
      `socks5://127.0.0.1:${c}`,
      "-F",
      `socks5://127.0.0.1:${d}?notls=true`,
    ]);
    try {
      for (const port of [a, c]) {
        const r = await curl([
          "--socks5-hostname",
          `127.0.0.1:${port}`,
          `http://localhost:${origin.port}/n`,
        ]);
        assertEquals(r.stdout, "hello /n", r.stderr);
      }
      assert(!plainServer.logs().includes("TLS method"), plainServer.logs());
      assert(!tlsServer.logs().includes("TLS method"), tlsServer.logs());
      assert(!c1.logs().includes("TLS method") && !c2.logs().includes("TLS method"));
      // Plain clients (curl) are unaffected: they never offer 0x80.
      assertEquals([...await exchange(d, [5, 1, 0], 2)], [5, 0]);
    } finally {
      for (const p of [c1, c2, plainServer, tlsServer]) await p.stop();
      await origin.close();
    }
  },
});

Deno.test({
  name:
    "socks5 TLS methods: garbage or a truncated TLS hello after 0x80 is dropped; service goes on",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const b = freePort();
    const server = await startDost(["-D", "-L", `socks5://127.0.0.1:${b}?readTimeout=3s`]);
    try {
      const r1 = await talk(
        b,
        Uint8Array.from([5, 1, 0x80, ...new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n")]),
      );
      assertEquals([...r1.bytes.subarray(0, 2)], [5, 0x80]);
      assert(r1.closedByPeer);
      const r2 = await talk(b, Uint8Array.from([5, 1, 0x80, 0x16, 3, 1, 0, 200, 1]), {
        closeWrite: true,
      });
      assert(r2.closedByPeer);
      await waitForLog(server, "socks5 handshake from");
      const ok = await curl([
        "--socks5-hostname",
        `127.0.0.1:${b}`,
        `http://localhost:${origin.port}/ok`,
      ]);
      assertEquals(ok.stdout, "hello /ok");
      assertStringIncludes(server.logs(), "socks5 connect");
    } finally {
      await server.stop();
      await origin.close();
    }
  },
});

Deno.test({
  name: "socks5 TLS methods: not stacked on a transport that already encrypts (socks5+tls)",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const [a, b] = [freePort(), freePort()];
    const server = await startDost(["-D", "-L", `socks5+tls://127.0.0.1:${b}`]);
    const client = await startDost([
      "-L",
      `socks5://127.0.0.1:${a}`,
      "-F",
      `socks5+tls://127.0.0.1:${b}`,
    ]);
    try {
      const r = await curl([
        "--socks5-hostname",
        `127.0.0.1:${a}`,
        `http://localhost:${origin.port}/s`,
      ]);
      assertEquals(r.stdout, "hello /s", r.stderr);
      await waitForLog(server, "socks5 connect");
      assert(!server.logs().includes("TLS method"), server.logs());
      assert(!client.logs().includes("TLS method"), client.logs());
    } finally {
      await client.stop();
      await server.stop();
      await origin.close();
    }
  },
});

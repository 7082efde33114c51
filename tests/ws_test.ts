/**
 * WebSocket and multiplexed transports (ws, wss, mws, mwss, mtls, mtcp; tls in the matrix too):
 * byte-exact transfers for every transport × {http, socks5}, many streams over one session,
 * sessions replaced after the server restarts, hop 2 of a chain, the handshake as gost shapes
 * it, and bad input (wrong path, garbage, a bad smux frame) that must not hurt the service.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./lib/assert.ts";
import { freePort, IT, runDost, sha256, startDost, startEcho, waitForLog } from "./lib/harness.ts";
import { echoThrough, httpTunnel, patternBytes, socks5Tunnel } from "./lib/tunnel.ts";
import { wsClient, wsOptionsFromParams } from "../src/transport/ws/handshake.ts";
import { Params } from "../src/config/params.ts";

const TRANSPORTS = ["tls", "mtls", "ws", "wss", "mws", "mwss", "mtcp"];
const MUXED = ["mws", "mwss", "mtls", "mtcp"];

/** A client dost with one route per entry: `proto://127.0.0.1:local` → `-F node`. */
async function startRoutes(routes: { local: string; node: string }[], extra: string[] = []) {
  const file = await Deno.makeTempFile({ suffix: ".json" });
  await Deno.writeTextFile(
    file,
    JSON.stringify({
      Routes: routes.map((r) => ({ ServeNodes: [r.local], ChainNodes: [r.node] })),
    }),
  );
  try {
    return await startDost(["-C", file, ...extra], { services: routes.length });
  } finally {
    await Deno.remove(file);
  }
}

function tunnel(proto: string, port: number, target: number) {
  return proto === "http" ? httpTunnel(port, target) : socks5Tunnel(port, target);
}

Deno.test({
  name: "ws: transport × {http, socks5} client → server, 10 MB sha256 through an echo",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const combos = TRANSPORTS.flatMap((t) =>
      ["http", "socks5"].map((proto) => ({ t, proto, s: freePort(), c: freePort() }))
    );
    const server = await startDost(
      combos.flatMap(({ t, proto, s }) => ["-L", `${proto}+${t}://127.0.0.1:${s}`]),
    );
    const client = await startRoutes(combos.map(({ t, proto, s, c }) => ({
      local: `${proto}://127.0.0.1:${c}`,
      node: `${proto}+${t}://127.0.0.1:${s}`,
    })));
    try {
      const data = patternBytes(10 << 20, 12345);
      const want = await sha256(data);
      for (const { t, proto, c } of combos) {
        const t0 = performance.now();
        const back = await echoThrough(await tunnel(proto, c, echo.port), data);
        const ms = performance.now() - t0;
        assertEquals(back.length, data.length, `${proto}+${t}: length`);
        assertEquals(await sha256(back), want, `${proto}+${t}: sha256`);
        console.log(`  ${proto}+${t}: 10 MB echoed in ${ms.toFixed(0)} ms`);
      }
    } finally {
      await client.stop();
      await server.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "ws: mws/mwss/mtls/mtcp carry 20 parallel streams over one session; a dead one is replaced",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const nodes = MUXED.map((t) => ({ t, s: freePort(), c: freePort() }));
    const serverArgs = [
      "-D",
      ...nodes.flatMap(({ t, s }) => ["-L", `socks5+${t}://127.0.0.1:${s}`]),
    ];
    let server = await startDost(serverArgs, { services: nodes.length });
    const client = await startRoutes(
      nodes.map(({ t, s, c }) => ({
        local: `socks5://127.0.0.1:${c}`,
        node: `socks5+${t}://127.0.0.1:${s}`,
      })),
      ["-D"],
    );
    try {
      const data = patternBytes(256 << 10, 99);
      for (const [i, { t, c }] of nodes.entries()) {
        const backs = await Promise.all(
          Array.from(
            { length: 20 },
            async () => echoThrough(await socks5Tunnel(c, echo.port), data),
          ),
        );
        for (const b of backs) assert(b.length === data.length && b.every((v, k) => v === data[k]));
        const started = server.logs().match(
          new RegExp(`\\[service-${i}\\] [0-9.:]+: mux session started \\(smux v(\\d)\\)`, "g"),
        ) ?? [];
        assertEquals(started.length, 1, `${t}: sessions started:\n${server.logs()}`);
        assertStringIncludes(started[0] ?? "", t === "mtcp" ? "smux v2" : "smux v1");
      }
      // The server restarts: every client session dies, and the next dial makes a new one.
      await server.stop();
      server = await startDost(serverArgs, { services: nodes.length });
      for (const { t, c } of nodes) {
        const back = await echoThrough(await socks5Tunnel(c, echo.port), data);
        assertEquals(back.length, data.length, `${t} after the server restarted`);
      }
    } finally {
      await client.stop();
      await server.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "ws: mwss and ws as hop 2 of a chain (over the tunnel of hop 1), repeated and parallel",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const [a, b, h1, h2, h3] = [freePort(), freePort(), freePort(), freePort(), freePort()];
    const procs = [];
    try {
      procs.push(await startDost(["-L", `socks5://127.0.0.1:${h1}`]));
      procs.push(
        await startDost(["-L", `socks5+mwss://127.0.0.1:${h2}`, "-L", `http+ws://127.0.0.1:${h3}`]),
      );
      procs.push(
        await startDost([
          "-L",
          `socks5://127.0.0.1:${a}`,
          "-F",
          `socks5://127.0.0.1:${h1}`,
          "-F",
          `socks5+mwss://127.0.0.1:${h2}`,
        ]),
      );
      procs.push(
        await startDost([
          "-L",
          `socks5://127.0.0.1:${b}`,
          "-F",
          `socks5://127.0.0.1:${h1}`,
          "-F",
          `http+ws://127.0.0.1:${h3}`,
        ]),
      );
      const data = patternBytes(1 << 20, 5);
      for (const port of [a, b]) {
        for (let i = 0; i < 2; i++) {
          const back = await echoThrough(await socks5Tunnel(port, echo.port), data);
          assert(back.length === data.length && back.every((v, k) => v === data[k]));
        }
        const backs = await Promise.all(
          Array.from(
            { length: 5 },
            async () => echoThrough(await socks5Tunnel(port, echo.port), data),
          ),
        );
        for (const bk of backs) assertEquals(bk.length, data.length);
      }
    } finally {
      for (const p of procs) await p.stop();
      echo.close();
    }
  },
});

/** Accepts one connection, records its HTTP head, answers 404. */
function startHeadCatcher(): { port: number; head: Promise<string> } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const head = (async () => {
    const c = await l.accept();
    l.close();
    let text = "";
    const buf = new Uint8Array(4096);
    while (!text.includes("\r\n\r\n")) {
      const n = await c.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    await c.write(new TextEncoder().encode("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"));
    c.close();
    return text;
  })();
  return { port: (l.addr as Deno.NetAddr).port, head };
}

Deno.test({
  name: "ws: the upgrade request carries path=, host=, header= as gost sends them",
  ...IT,
  fn: async () => {
    const catcher = startHeadCatcher();
    const a = freePort();
    const client = await startDost([
      "-L",
      `socks5://127.0.0.1:${a}`,
      "-F",
      `socks5+ws://127.0.0.1:${catcher.port}?path=/tun&host=example.test&header=X-Token:abc,User-Agent:t1`,
    ]);
    try {
      await socks5Tunnel(a, 9).then((c) => c.close(), () => {});
      const head = await catcher.head;
      assertMatch(head, /^GET \/tun HTTP\/1\.1\r\n/);
      assertStringIncludes(head, "\r\nHost: example.test\r\n");
      assertStringIncludes(head, "\r\nX-Token: abc\r\n");
      assertStringIncludes(head, "\r\nUser-Agent: t1\r\n");
      assertStringIncludes(head, "\r\nUpgrade: websocket\r\n");
      assertStringIncludes(head, "\r\nSec-WebSocket-Version: 13\r\n");
      await waitForLog(client, "ws: upgrade refused: 404 Not Found (path /tun)");
    } finally {
      await client.stop();
    }
  },
});

Deno.test({
  name: "ws: wrong path, garbage to mux listeners and a bad smux frame are logged; service goes on",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const [w, p, m, mw, ok1, ok2, ok3] = Array.from({ length: 7 }, () => freePort());
    const server = await startDost([
      "-L",
      `socks5+ws://127.0.0.1:${w}?path=/tun`,
      "-L",
      `socks5+mtcp://127.0.0.1:${m}`,
      "-L",
      `socks5+mws://127.0.0.1:${mw}`,
    ]);
    const client = await startRoutes([
      { local: `socks5://127.0.0.1:${p}`, node: `socks5+ws://127.0.0.1:${w}?path=/ws` },
      { local: `socks5://127.0.0.1:${ok1}`, node: `socks5+ws://127.0.0.1:${w}?path=/tun` },
      { local: `socks5://127.0.0.1:${ok2}`, node: `socks5+mtcp://127.0.0.1:${m}` },
      { local: `socks5://127.0.0.1:${ok3}`, node: `socks5+mws://127.0.0.1:${mw}` },
    ]);
    const data = patternBytes(100_000, 3);
    const good = async (port: number) => {
      const back = await echoThrough(await socks5Tunnel(port, echo.port), data);
      assert(back.length === data.length && back.every((v, k) => v === data[k]), `via ${port}`);
    };
    try {
      // A dost client on the wrong path: 404, named in both logs.
      let refused = false;
      await socks5Tunnel(p, echo.port).then((c) => c.close(), () => refused = true);
      assert(refused, "an upgrade on the wrong path was accepted");
      await waitForLog(
        server,
        /127\.0\.0\.1:\d+: ws upgrade failed: ws: GET \/ws: not the ws path \/tun/,
      );
      await waitForLog(client, "upgrade refused: 404 Not Found (path /ws)");
      // A raw request on another path gets gost's 404 answer.
      const raw = await Deno.connect({ hostname: "127.0.0.1", port: w });
      await raw.write(new TextEncoder().encode("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"));
      const ans = new Uint8Array(200);
      const n = await raw.read(ans);
      raw.close();
      assertMatch(new TextDecoder().decode(ans.subarray(0, n ?? 0)), /^HTTP\/1\.1 404 Not Found/);
      await good(ok1);

      // Garbage to the mtcp listener: not an smux frame.
      const g = await Deno.connect({ hostname: "127.0.0.1", port: m });
      const gport = (g.localAddr as Deno.NetAddr).port;
      await g.write(new TextEncoder().encode("GARBAGE GARBAGE GARBAGE\r\n"));
      await g.read(new Uint8Array(16)).catch(() => null);
      g.close();
      await waitForLog(
        server,
        new RegExp(`127\\.0\\.0\\.1:${gport}: mtcp session failed: mux: frame version 71`),
      );
      await good(ok2);

      // A proper WebSocket upgrade on mws, then an smux frame of an unknown command.
      const c = await Deno.connect({ hostname: "127.0.0.1", port: mw });
      const cport = (c.localAddr as Deno.NetAddr).port;
      const ws = await wsClient(
        c,
        wsOptionsFromParams(new Params({}), "client"),
        `127.0.0.1:${mw}`,
        5000,
      );
      await ws.write(new Uint8Array([1, 7, 0, 0, 3, 0, 0, 0]));
      await ws.read(new Uint8Array(16)).catch(() => null);
      ws.close();
      await waitForLog(
        server,
        new RegExp(`127\\.0\\.0\\.1:${cport}: mws session failed: mux: unknown command 0x7`),
      );
      await good(ok3);
    } finally {
      await client.stop();
      await server.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "ws: unsupported or unknown parameters are refused at start-up",
  ...IT,
  fn: async () => {
    const p = freePort();
    const r = await runDost(["-L", `ws://127.0.0.1:${p}?enableCompression=true`]);
    assertEquals(r.code, 1, r.stderr);
    assertStringIncludes(r.stderr, "permessage-deflate) is not supported yet");
    const r2 = await runDost(["-L", `mws://127.0.0.1:${p}?mux.type=yamux`]);
    assertEquals(r2.code, 1, r2.stderr);
    assertStringIncludes(r2.stderr, `unknown parameter "mux.type"`);
    const r3 = await runDost(["-L", `:${freePort()}`, "-F", `mwss://127.0.0.1:${p}?header=bad`]);
    assertEquals(r3.code, 1, r3.stderr);
    assertStringIncludes(r3.stderr, `"bad" is not Name:Value`);
  },
});

Deno.test({
  name: "ws: tcp:// forwarding through -F socks5+mwss, and a forward service on a ws listener",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const [s, a, w] = [freePort(), freePort(), freePort()];
    const procs = [];
    try {
      procs.push(
        await startDost([
          "-L",
          `socks5+mwss://127.0.0.1:${s}`,
          "-L",
          `tcp+ws://127.0.0.1:${w}/127.0.0.1:${echo.port}`,
        ]),
      );
      procs.push(
        await startDost([
          "-L",
          `tcp://127.0.0.1:${a}/127.0.0.1:${echo.port}`,
          "-F",
          `socks5+mwss://127.0.0.1:${s}`,
        ]),
      );
      const data = patternBytes(1 << 20, 11);
      const viaChain = await echoThrough(
        await Deno.connect({ hostname: "127.0.0.1", port: a }),
        data,
      );
      assertEquals(await sha256(viaChain), await sha256(data));
      // The ws listener's forward service, reached with our own ws client.
      const raw = await Deno.connect({ hostname: "127.0.0.1", port: w });
      const ws = await wsClient(
        raw,
        wsOptionsFromParams(new Params({}), "client"),
        `127.0.0.1:${w}`,
        5000,
      );
      const [, back] = await Promise.all([
        (async () => {
          for (let off = 0; off < data.length; off += 50_000) {
            await ws.write(data.subarray(off, off + 50_000));
          }
          await ws.closeWrite();
        })(),
        (async () => {
          const out = new Uint8Array(data.length);
          let got = 0;
          for (;;) {
            const n = await ws.read(out.subarray(got));
            if (n === null || got + n === out.length) {
              got += n ?? 0;
              break;
            }
            got += n;
          }
          return out.subarray(0, got);
        })(),
      ]);
      ws.close();
      assertEquals(await sha256(back), await sha256(data));
    } finally {
      for (const p of procs) await p.stop();
      echo.close();
    }
  },
});

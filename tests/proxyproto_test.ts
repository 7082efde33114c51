/**
 * PROXY protocol end to end: haproxy (`send-proxy`, `send-proxy-v2`) in front of dost services
 * with `proxyProtocol=N`. A tcp forward both accepts haproxy's header and sends its own to the
 * target, which must announce the original client; http and socks5 services log the client
 * carried by the header.
 */
import { assertEquals, assertStringIncludes } from "./lib/assert.ts";
import {
  curl,
  freePort,
  IT,
  needs,
  rawExchange,
  runDost,
  startDost,
  startOrigin,
  waitForLog,
} from "./lib/harness.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Parses the PROXY header at the start of `b` on its own (independently of dost's codec):
 * `{src, dst, length}` as `ip:port` text, or undefined while incomplete. Throws on anything
 * that is not a v1 TCP4 or v2 PROXY INET header: dost must send exactly those here.
 */
function parseHeaderForTest(
  b: Uint8Array,
): { src: string; dst: string; length: number } | undefined {
  const text = dec.decode(b.subarray(0, Math.min(b.length, 108)));
  if (text.startsWith("PROXY ")) {
    const end = text.indexOf("\r\n");
    if (end < 0) return undefined;
    const [, proto, sip, dip, sport, dport] = text.slice(0, end).split(" ");
    if (proto !== "TCP4") throw new Error(`unexpected v1 line ${JSON.stringify(text)}`);
    return { src: `${sip}:${sport}`, dst: `${dip}:${dport}`, length: end + 2 };
  }
  const sig = [13, 10, 13, 10, 0, 13, 10, 81, 85, 73, 84, 10];
  if (b.length < 16) return undefined;
  if (!sig.every((x, i) => b[i] === x)) throw new Error(`no PROXY header: ${[...b.slice(0, 16)]}`);
  const len = 16 + ((b[14] << 8) | b[15]);
  if (b.length < len) return undefined;
  if (b[12] !== 0x21 || b[13] !== 0x11) throw new Error(`unexpected v2 header ${b[12]} ${b[13]}`);
  const ip = (o: number) => [...b.subarray(o, o + 4)].join(".");
  const port = (o: number) => (b[o] << 8) | b[o + 1];
  return { src: `${ip(16)}:${port(24)}`, dst: `${ip(20)}:${port(26)}`, length: len };
}

/**
 * A target that reads the PROXY header dost sends, answers `v<version> <src> <dst>\n`, then
 * echoes everything after the header.
 */
function startReporter(): { port: number; close(): void } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const c of l) {
      conns.add(c);
      (async () => {
        let buf = new Uint8Array(0);
        const chunk = new Uint8Array(4096);
        try {
          let h: ReturnType<typeof parseHeaderForTest>;
          while (!(h = parseHeaderForTest(buf))) {
            const n = await c.read(chunk);
            if (n === null) throw new Error("closed before a PROXY header");
            const nb = new Uint8Array(buf.length + n);
            nb.set(buf);
            nb.set(chunk.subarray(0, n), buf.length);
            buf = nb;
          }
          const version = buf[0] === 0x50 ? 1 : 2;
          const rest = buf.subarray(h.length);
          await c.write(enc.encode(`v${version} ${h.src} ${h.dst}\n`));
          if (rest.length) await c.write(rest);
          for (;;) {
            const n = await c.read(chunk);
            if (n === null) break;
            await c.write(chunk.slice(0, n));
          }
          await c.closeWrite();
        } catch (e) {
          await c.write(enc.encode(`error ${(e as Error).message}\n`)).catch(() => {});
        }
        conns.delete(c);
        try {
          c.close();
        } catch { /* closed */ }
      })();
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

/** haproxy in tcp mode: one frontend per route, each to its own server line. */
async function startHaproxy(
  routes: { front: number; back: number; send: "send-proxy" | "send-proxy-v2" }[],
): Promise<{ stop(): Promise<void>; logs(): string }> {
  const dir = await Deno.makeTempDir({ prefix: "dost-haproxy-" });
  const cfg = [
    "global",
    "  maxconn 200",
    "defaults",
    "  mode tcp",
    "  timeout connect 5s",
    "  timeout client 30s",
    "  timeout server 30s",
    ...routes.flatMap((r, i) => [
      `frontend f${i}`,
      `  bind 127.0.0.1:${r.front}`,
      `  default_backend b${i}`,
      `backend b${i}`,
      `  server s${i} 127.0.0.1:${r.back} ${r.send}`,
    ]),
  ].join("\n") + "\n";
  const file = `${dir}/haproxy.cfg`;
  await Deno.writeTextFile(file, cfg);
  const child = new Deno.Command("haproxy", {
    args: ["-db", "-f", file],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const drain = async (s: ReadableStream<Uint8Array>) => {
    for await (const b of s) text += dec.decode(b);
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]).catch(() => {});
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    await drained;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  // Ready when every frontend accepts connections.
  try {
    for (const r of routes) {
      for (let i = 0;; i++) {
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port: r.front })).close();
          break;
        } catch (e) {
          if (i >= 200) throw new Error(`haproxy not listening on ${r.front}: ${e}\n${text}`);
          await new Promise((res) => setTimeout(res, 25));
        }
      }
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { stop, logs: () => text };
}

/** Connects to `port`, sends `msg`, half-closes, returns [our local port, everything read]. */
async function exchange(port: number, msg: string): Promise<[number, string]> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const local = (c.localAddr as Deno.NetAddr).port;
    await c.write(enc.encode(msg));
    await c.closeWrite();
    let out = "";
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await c.read(buf);
      if (n === null) break;
      out += dec.decode(buf.subarray(0, n));
    }
    return [local, out];
  } finally {
    try {
      c.close();
    } catch { /* closed */ }
  }
}

Deno.test({
  name: "proxyproto: haproxy send-proxy/-v2 → dost tcp forward → target sees the client",
  ...IT,
  ...needs("haproxy"),
  fn: async () => {
    const reporter = startReporter();
    const [d1, d2, d3, h1, h2] = [freePort(), freePort(), freePort(), freePort(), freePort()];
    const target = `127.0.0.1:${reporter.port}`;
    // Each forward accepts haproxy's header (either version) and sends its own of version N.
    const dost = await startDost([
      "-D",
      "-L",
      `tcp://127.0.0.1:${d1}/${target}?proxyProtocol=1`,
      "-L",
      `tcp://127.0.0.1:${d2}/${target}?proxyProtocol=2`,
      "-L",
      `tcp://127.0.0.1:${d3}/${target}?proxyProtocol=1&readTimeout=1s`,
    ]);
    let haproxy: Awaited<ReturnType<typeof startHaproxy>> | undefined;
    try {
      haproxy = await startHaproxy([
        { front: h1, back: d1, send: "send-proxy" },
        { front: h2, back: d2, send: "send-proxy-v2" },
      ]);
      for (const [front, version] of [[h1, 1], [h2, 2]]) {
        for (let i = 0; i < 2; i++) {
          const [clientPort, out] = await exchange(front, `ping ${i}`);
          // The header dost sent carries the client as haproxy saw it and haproxy's frontend
          // as the destination; the payload follows the header untouched.
          assertEquals(
            out,
            `v${version} 127.0.0.1:${clientPort} 127.0.0.1:${front}\nping ${i}`,
            dost.logs(),
          );
          await waitForLog(dost, `client 127.0.0.1:${clientPort} → 127.0.0.1:${front}`);
        }
      }
      // A client without a header (straight to dost): the socket's addresses are announced.
      const [clientPort, out] = await exchange(d1, "direct");
      assertEquals(out, `v1 127.0.0.1:${clientPort} 127.0.0.1:${d1}\ndirect`);

      // A client that waits for the server to speak first (SMTP-like) is served without a
      // header once the header deadline (readTimeout) passes: the target's greeting arrives.
      const c = await Deno.connect({ hostname: "127.0.0.1", port: d3 });
      try {
        const buf = new Uint8Array(256);
        let line = "";
        while (!line.endsWith("\n")) {
          const n = await c.read(buf);
          if (n === null) break;
          line += dec.decode(buf.subarray(0, n));
        }
        const port = (c.localAddr as Deno.NetAddr).port;
        assertEquals(line, `v1 127.0.0.1:${port} 127.0.0.1:${d3}\n`);
      } finally {
        c.close();
      }
      await waitForLog(dost, "serving it as a client without PROXY header");
    } finally {
      await haproxy?.stop();
      await dost.stop();
      reporter.close();
    }
  },
});

Deno.test({
  name: "proxyproto: http and socks5 services behind haproxy see the client from the header",
  ...IT,
  ...needs("haproxy", "curl"),
  fn: async () => {
    const origin = startOrigin();
    const [dh, ds, hh, hs] = [freePort(), freePort(), freePort(), freePort()];
    const dost = await startDost([
      "-D",
      "-L",
      `http://127.0.0.1:${dh}?proxyProtocol=1`,
      "-L",
      `socks5://127.0.0.1:${ds}?proxyProtocol=1`,
    ]);
    let haproxy: Awaited<ReturnType<typeof startHaproxy>> | undefined;
    try {
      haproxy = await startHaproxy([
        { front: hh, back: dh, send: "send-proxy" },
        { front: hs, back: ds, send: "send-proxy-v2" },
      ]);
      const url = `http://127.0.0.1:${origin.port}/pp`;
      const target = `127.0.0.1:${origin.port}`;

      // HTTP CONNECT through haproxy (v1 header): dost logs curl's own address.
      const p1 = freePort();
      const r1 = await curl(["-p", "-x", `http://127.0.0.1:${hh}`, "--local-port", `${p1}`, url]);
      assertEquals(r1.stdout, "hello /pp", r1.stderr);
      await waitForLog(dost, `http CONNECT 127.0.0.1:${p1} → ${target}`);
      await waitForLog(dost, `client 127.0.0.1:${p1} → 127.0.0.1:${hh}`);

      // SOCKS5 through haproxy (v2 header).
      const p2 = freePort();
      const r2 = await curl(["-x", `socks5h://127.0.0.1:${hs}`, "--local-port", `${p2}`, url]);
      assertEquals(r2.stdout, "hello /pp", r2.stderr);
      await waitForLog(dost, `socks5 connect 127.0.0.1:${p2} → ${target}`);

      // Without a header (straight to dost) the connection passes unchanged.
      const r3 = await curl(["-x", `http://127.0.0.1:${dh}`, url]);
      assertEquals(r3.stdout, "hello /pp", r3.stderr);
      const r4 = await curl(["-x", `socks5h://127.0.0.1:${ds}`, url]);
      assertEquals(r4.stdout, "hello /pp", r4.stderr);

      // A malformed header closes the connection with a debug line; the service keeps serving.
      const bad = await rawExchange(dh, "PROXY TCP4 1.2.3.4 nonsense\r\nGET / HTTP/1.1\r\n\r\n");
      assertEquals(bad.length, 0);
      await waitForLog(dost, `rejected: PROXY v1: malformed line "PROXY TCP4 1.2.3.4 nonsense"`);
      const r5 = await curl(["-p", "-x", `http://127.0.0.1:${hh}`, url]);
      assertEquals(r5.stdout, "hello /pp", r5.stderr);
    } finally {
      await haproxy?.stop();
      await dost.stop();
      await origin.close();
    }
  },
});

Deno.test({
  name: "proxyproto: proxyProtocol out of range fails at start-up",
  ...IT,
  fn: async () => {
    const r = await runDost(["-L", `http://127.0.0.1:${freePort()}?proxyProtocol=3`]);
    assertEquals(r.code, 1, r.stderr);
    assertStringIncludes(r.stderr, "proxyProtocol");
  },
});

Deno.test({
  name: "proxyproto: tls and ws listeners read haproxy's header before their own handshake",
  ...IT,
  ...needs("haproxy", "curl"),
  fn: async () => {
    const origin = startOrigin();
    const [dt, dw, ht, hw, c] = [freePort(), freePort(), freePort(), freePort(), freePort()];
    const dost = await startDost([
      "-D",
      "-L",
      `http+tls://127.0.0.1:${dt}?proxyProtocol=2`,
      "-L",
      `socks5+ws://127.0.0.1:${dw}?proxyProtocol=1`,
    ]);
    // A dost client whose ws hop goes through haproxy.
    const client = await startDost([
      "-L",
      `socks5://127.0.0.1:${c}`,
      "-F",
      `socks5+ws://127.0.0.1:${hw}`,
    ]);
    let haproxy: Awaited<ReturnType<typeof startHaproxy>> | undefined;
    try {
      haproxy = await startHaproxy([
        { front: ht, back: dt, send: "send-proxy-v2" },
        { front: hw, back: dw, send: "send-proxy" },
      ]);
      const url = `http://127.0.0.1:${origin.port}/pp`;
      const target = `127.0.0.1:${origin.port}`;

      // HTTPS proxy behind haproxy: the v2 header precedes curl's ClientHello.
      const p1 = freePort();
      const r1 = await curl([
        "-p",
        "--proxy",
        `https://127.0.0.1:${ht}`,
        "--proxy-insecure",
        "--local-port",
        `${p1}`,
        url,
      ]);
      assertEquals(r1.stdout, "hello /pp", r1.stderr);
      await waitForLog(dost, `client 127.0.0.1:${p1} → 127.0.0.1:${ht}`);
      await waitForLog(dost, `http CONNECT 127.0.0.1:${p1} → ${target}`);

      // WebSocket behind haproxy: the v1 header precedes the HTTP upgrade.
      const r2 = await curl(["-x", `socks5h://127.0.0.1:${c}`, url]);
      assertEquals(r2.stdout, "hello /pp", r2.stderr);
      await waitForLog(dost, `→ 127.0.0.1:${hw}`);

      // Straight to the tls listener, without a header: served as before.
      const r3 = await curl(["-p", "--proxy", `https://127.0.0.1:${dt}`, "--proxy-insecure", url]);
      assertEquals(r3.stdout, "hello /pp", r3.stderr);

      // A malformed header: the connection is dropped with a line; the listener goes on.
      const bad = await rawExchange(dt, "PROXY TCP4 1.2.3.4 nonsense\r\n");
      assertEquals(bad.length, 0);
      await waitForLog(dost, `malformed line "PROXY TCP4 1.2.3.4 nonsense"`);
      const r4 = await curl(["-p", "--proxy", `https://127.0.0.1:${ht}`, "--proxy-insecure", url]);
      assertEquals(r4.stdout, "hello /pp", r4.stderr);
    } finally {
      await haproxy?.stop();
      await client.stop();
      await dost.stop();
      await origin.close();
    }
  },
});

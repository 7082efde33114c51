/**
 * gost's relay protocol end to end: dost relay servers (`-L relay://…`) reached through dost
 * relay connectors (`-F relay://…`) by curl, raw TCP clients and UDP clients.
 */
import { assert, assertEquals, assertStringIncludes } from "./lib/assert.ts";
import {
  curl,
  freePort,
  IT,
  runDost,
  sha256,
  startDost,
  startEcho,
  startOrigin,
  startUdpEcho,
  waitForLog,
} from "./lib/harness.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Sends `data` while reading, half-closes, and returns all bytes read until the peer closes. */
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
      if (total === out.length) break; // more than sent: the comparison fails
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

/** Reads from `c` until `want` bytes arrived, the peer closes, or `ms` pass. */
async function readN(c: Deno.Conn, want: number, ms = 5000): Promise<Uint8Array> {
  const out = new Uint8Array(want);
  let total = 0;
  const t = setTimeout(() => {
    try {
      c.close();
    } catch { /* closed */ }
  }, ms);
  try {
    while (total < want) {
      const n = await c.read(out.subarray(total));
      if (n === null) break;
      total += n;
    }
  } catch { /* closed by the timer */ }
  clearTimeout(t);
  return out.subarray(0, total);
}

/**
 * A server-speaks-first TCP server (like SSH): writes a banner on accept, then answers each
 * line with "got: <line>".
 */
function startBannerServer(banner: string): { port: number; close(): void } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const c of l) {
      conns.add(c);
      (async () => {
        try {
          await c.write(enc.encode(banner));
          const buf = new Uint8Array(4096);
          for (;;) {
            const n = await c.read(buf);
            if (n === null) break;
            await c.write(enc.encode(`got: ${dec.decode(buf.subarray(0, n))}`));
          }
        } catch { /* gone */ }
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

Deno.test({
  name: "relay: curl through socks5 → relay (user/pass, deferred and nodelay) → origin",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const [a, a2, a3, b] = [freePort(), freePort(), freePort(), freePort()];
    const procs = [];
    try {
      const server = await startDost(["-L", `relay://u:p@127.0.0.1:${b}`]);
      procs.push(server);
      procs.push(
        await startDost(["-L", `socks5://127.0.0.1:${a}`, "-F", `relay://u:p@127.0.0.1:${b}`]),
      );
      procs.push(
        await startDost([
          "-L",
          `socks5://127.0.0.1:${a2}`,
          "-F",
          `relay://u:p@127.0.0.1:${b}?nodelay=true`,
        ]),
      );
      const bad = await startDost([
        "-L",
        `socks5://127.0.0.1:${a3}`,
        "-F",
        `relay://u:wrong@127.0.0.1:${b}?nodelay=true`,
      ]);
      procs.push(bad);
      for (const port of [a, a2]) {
        const r = await curl([
          "--proxy",
          `socks5h://127.0.0.1:${port}`,
          `http://localhost:${origin.port}/x`,
        ]);
        assertEquals(r.stdout, "hello /x", r.stderr);
      }
      // With nodelay the refusal fails the dial: the SOCKS5 client gets "not allowed" (2).
      const r = await curl([
        "--proxy",
        `socks5h://127.0.0.1:${a3}`,
        `http://localhost:${origin.port}/x`,
      ]);
      assertStringIncludes(r.stderr, "(2)");
      assertStringIncludes(bad.logs(), "relay CONNECT localhost:");
      assertStringIncludes(bad.logs(), ": unauthorized");
      await waitForLog(server, 'relay: authentication failed for user "u"');
    } finally {
      for (const p of procs) await p.stop();
      await origin.close();
    }
  },
});

Deno.test({
  name: "relay: bad credentials with the deferred header: the request fails, the hop logs why",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const [a, b] = [freePort(), freePort()];
    const procs = [];
    try {
      procs.push(await startDost(["-L", `relay://u:p@127.0.0.1:${b}`]));
      const front = await startDost([
        "-L",
        `socks5://127.0.0.1:${a}`,
        "-F",
        `relay://u:wrong@127.0.0.1:${b}`,
      ]);
      procs.push(front);
      const r = await curl([
        "--proxy",
        `socks5h://127.0.0.1:${a}`,
        `http://localhost:${origin.port}/x`,
      ]);
      assert(r.code !== 0 && r.stdout === "", `curl must fail: ${r.code} ${r.stdout}`);
      await waitForLog(front, /relay CONNECT localhost:\d+: unauthorized/);
    } finally {
      for (const p of procs) await p.stop();
      await origin.close();
    }
  },
});

Deno.test({
  name: "relay: 20 MB byte-exact through a relay hop (tcp:// → relay → echo)",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const [a, b] = [freePort(), freePort()];
    const procs = [];
    try {
      procs.push(await startDost(["-L", `relay://127.0.0.1:${b}`]));
      procs.push(
        await startDost([
          "-L",
          `tcp://127.0.0.1:${a}/127.0.0.1:${echo.port}`,
          "-F",
          `relay://127.0.0.1:${b}`,
        ]),
      );
      const data = new Uint8Array(20 << 20);
      for (let off = 0; off < data.length; off += 65536) {
        crypto.getRandomValues(data.subarray(off, off + 65536));
      }
      const back = await echoThrough(a, data);
      assertEquals(back.length, data.length);
      assertEquals(await sha256(back), await sha256(data));
    } finally {
      for (const p of procs) await p.stop();
      echo.close();
    }
  },
});

Deno.test({
  name:
    "relay: fixed target from the command line (-L relay://:B/echo) ignores the client's address",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const [a, b] = [freePort(), freePort()];
    const unused = freePort(); // nothing listens here: reaching it would fail
    const procs = [];
    try {
      procs.push(await startDost(["-L", `relay://127.0.0.1:${b}/127.0.0.1:${echo.port}`]));
      procs.push(
        await startDost([
          "-L",
          `tcp://127.0.0.1:${a}/127.0.0.1:${unused}`,
          "-F",
          `relay://127.0.0.1:${b}`,
        ]),
      );
      assertEquals(dec.decode(await echoThrough(a, enc.encode("ping"))), "ping");
    } finally {
      for (const p of procs) await p.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "relay: UDP forward through a relay hop (udp:// → relay → UDP echo), content-exact",
  ...IT,
  fn: async () => {
    const echo = startUdpEcho();
    const [a, b] = [freePort(), freePort()];
    const procs = [];
    const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      const server = await startDost(["-D", "-L", `relay://u:p@127.0.0.1:${b}`]);
      procs.push(server);
      procs.push(
        await startDost([
          "-L",
          `udp://127.0.0.1:${a}/127.0.0.1:${echo.port}`,
          "-F",
          `relay://u:p@127.0.0.1:${b}`,
        ]),
      );
      const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: a };
      for (const size of [1, 100, 1400, 8000, 3, 60000]) {
        const msg = new Uint8Array(size);
        crypto.getRandomValues(msg);
        await sock.send(msg, to);
        const got = await Promise.race([
          sock.receive().then(([d]) => d),
          new Promise<null>((r) => setTimeout(() => r(null), 5000)),
        ]);
        assert(got !== null, `no echo for a ${size}-byte datagram`);
        assertEquals(got.length, size);
        assertEquals(await sha256(got), await sha256(msg));
      }
      await waitForLog(server, /relay UDP connect 127\.0\.0\.1:\d+ → 127\.0\.0\.1:\d+/);
    } finally {
      sock.close();
      for (const p of procs) await p.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "relay: middle hops (socks5 → relay → socks5 → origin; UDP through relay → relay)",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const echo = startUdpEcho();
    const [a, u, b, c, d] = [freePort(), freePort(), freePort(), freePort(), freePort()];
    const procs = [];
    const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      procs.push(await startDost(["-L", `relay://u:p@127.0.0.1:${b}`]));
      procs.push(await startDost(["-L", `socks5://127.0.0.1:${c}`]));
      procs.push(await startDost(["-L", `relay://127.0.0.1:${d}`]));
      procs.push(
        await startDost([
          "-L",
          `socks5://127.0.0.1:${a}`,
          "-F",
          `relay://u:p@127.0.0.1:${b}`,
          "-F",
          `socks5://127.0.0.1:${c}`,
        ]),
      );
      procs.push(
        await startDost([
          "-L",
          `udp://127.0.0.1:${u}/127.0.0.1:${echo.port}`,
          "-F",
          `relay://u:p@127.0.0.1:${b}`,
          "-F",
          `relay://127.0.0.1:${d}`,
        ]),
      );
      const r = await curl([
        "--proxy",
        `socks5h://127.0.0.1:${a}`,
        `http://localhost:${origin.port}/mid`,
      ]);
      assertEquals(r.stdout, "hello /mid", r.stderr);
      const msg = enc.encode("through two relay hops");
      await sock.send(msg, { transport: "udp", hostname: "127.0.0.1", port: u });
      const got = await Promise.race([
        sock.receive().then(([x]) => x),
        new Promise<null>((res) => setTimeout(() => res(null), 5000)),
      ]);
      assert(got !== null, "no UDP echo through two relay hops");
      assertEquals(dec.decode(got), "through two relay hops");
    } finally {
      sock.close();
      for (const p of procs) await p.stop();
      await origin.close();
      echo.close();
    }
  },
});

Deno.test({
  name: "relay: a server-speaks-first target sends its banner before the client writes",
  ...IT,
  fn: async () => {
    const banner = startBannerServer("SSH-2.0-test\r\n");
    const procs = [];
    try {
      // Default (deferred header) on both sides, then nodelay on both, then mixed.
      const variants = [["", ""], ["?nodelay=true", "?nodelay=true"], ["", "?nodelay=true"], [
        "?nodelay=true",
        "",
      ]];
      for (const [serverQ, clientQ] of variants) {
        const [a, b] = [freePort(), freePort()];
        procs.push(await startDost(["-L", `relay://127.0.0.1:${b}${serverQ}`]));
        procs.push(
          await startDost([
            "-L",
            `tcp://127.0.0.1:${a}/127.0.0.1:${banner.port}`,
            "-F",
            `relay://127.0.0.1:${b}${clientQ}`,
          ]),
        );
        const c = await Deno.connect({ hostname: "127.0.0.1", port: a });
        try {
          const got = dec.decode(await readN(c, 14));
          assertEquals(got, "SSH-2.0-test\r\n", `server${serverQ} client${clientQ}`);
          await c.write(enc.encode("hi\n"));
          assertEquals(dec.decode(await readN(c, 7)), "got: hi");
        } finally {
          try {
            c.close();
          } catch { /* closed by readN's timer */ }
        }
      }
    } finally {
      for (const p of procs) await p.stop();
      banner.close();
    }
  },
});

/** Builds a relay request by hand: VER, CMD, features. */
function request(cmd: number, features: Uint8Array[]): Uint8Array {
  const flen = features.reduce((s, f) => s + f.length, 0);
  const out = new Uint8Array(4 + flen);
  out.set([1, cmd, flen >> 8, flen & 0xff]);
  let off = 4;
  for (const f of features) {
    out.set(f, off);
    off += f.length;
  }
  return out;
}

function addrFeature(port: number): Uint8Array {
  return new Uint8Array([2, 0, 7, 1, 127, 0, 0, 1, port >> 8, port & 0xff]);
}

/** Sends raw bytes to the relay port and collects everything until the server closes. */
async function raw(port: number, bytes: Uint8Array, closeWrite = false): Promise<number[]> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  const t = setTimeout(() => {
    try {
      c.close();
    } catch { /* closed */ }
  }, 5000);
  const out: number[] = [];
  try {
    const w = (async () => {
      for (let off = 0; off < bytes.length;) off += await c.write(bytes.subarray(off));
      if (closeWrite) await c.closeWrite();
    })().catch(() => {});
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await c.read(buf);
      if (n === null) break;
      out.push(...buf.subarray(0, n));
    }
    await w;
  } catch { /* reset: the server closed with unread input */ }
  clearTimeout(t);
  try {
    c.close();
  } catch { /* closed */ }
  return out;
}

Deno.test({
  name:
    "relay: exact wire bytes; garbage, truncated and oversized headers get an error, service keeps serving",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const b = freePort();
    const server = await startDost(["-D", "-L", `relay://127.0.0.1:${b}?readTimeout=2s`]);
    try {
      // A v3 CONNECT with the first payload glued on; gost v2's CMD 0x00 works the same.
      for (const cmd of [0x01, 0x00]) {
        const req = request(cmd, [addrFeature(echo.port)]);
        const both = new Uint8Array([...req, ...enc.encode("ping")]);
        const got = await raw(b, both, true);
        assertEquals(got, [1, 0, 0, 0, ...enc.encode("ping")]);
      }
      // Not relay at all (bad version) → BAD REQUEST (status 1).
      assertEquals(await raw(b, enc.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n")), [1, 1, 0, 0]);
      // A feature that runs past the list → 1.
      assertEquals(await raw(b, request(1, [new Uint8Array([2, 0, 40, 1, 127, 0])])), [1, 1, 0, 0]);
      // An address feature with an unknown type → 1.
      assertEquals(await raw(b, request(1, [new Uint8Array([2, 0, 7, 9, 1, 2, 3, 4, 0, 80])])), [
        1,
        1,
        0,
        0,
      ]);
      // No target → 1; unknown command → 1; BIND (disabled) → FORBIDDEN (3).
      assertEquals(await raw(b, request(1, [])), [1, 1, 0, 0]);
      assertEquals(await raw(b, request(5, [addrFeature(echo.port)])), [1, 1, 0, 0]);
      assertEquals(await raw(b, request(2, [addrFeature(echo.port)])), [1, 3, 0, 0]);
      // Oversized: 65535 bytes of features made of one huge garbage feature → 1.
      const big = new Uint8Array(4 + 65535);
      big.set([1, 1, 0xff, 0xff, 2, 0xff, 0xff]);
      assertEquals(await raw(b, big), [1, 1, 0, 0]);
      // Truncated (the header announces more than arrives before EOF) → closed, no answer.
      assertEquals(await raw(b, new Uint8Array([1, 1, 0, 20, 2, 0]), true), []);
      // Stalled mid-header: closed after readTimeout.
      assertEquals(await raw(b, new Uint8Array([1, 1, 0, 20])), []);
      // A target nobody listens on → NETWORK UNREACHABLE (7).
      assertEquals(await raw(b, request(1, [addrFeature(freePort())]), true), [1, 7, 0, 0]);
      await waitForLog(server, "relay: bad version 0x47");
      // Still serving.
      const got = await raw(
        b,
        new Uint8Array([...request(1, [addrFeature(echo.port)]), ...enc.encode("again")]),
        true,
      );
      assertEquals(got, [1, 0, 0, 0, ...enc.encode("again")]);
    } finally {
      await server.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "relay: unsupported settings fail at start-up with one clear line",
  ...IT,
  fn: async () => {
    const r = await runDost(["-L", `relay://127.0.0.1:${freePort()}?bind=true`]);
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, "bind=true (remote forwarding over relay) is not supported yet");
  },
});

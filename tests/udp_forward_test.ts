/**
 * UDP port forwarding (`udp://:P/target`) end to end through real dost processes: per-client
 * sessions, idle ttl, real DNS (dig → dnsmasq), and UDP through a SOCKS5 hop (dost, dante).
 */
import { assert, assertEquals, assertStringIncludes } from "./lib/assert.ts";
import {
  freeDualPort,
  freePort,
  freeUdpPort,
  IT,
  needs,
  startDost,
  startUdpEcho,
  until,
  waitForLog,
} from "./lib/harness.ts";
import { startDante } from "./lib/peers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A UDP client socket that collects every datagram it receives. */
class UdpClient {
  readonly sock: Deno.DatagramConn;
  readonly got: Uint8Array[] = [];
  private readonly loop: Promise<void>;
  /** `host`: the loopback address to bind and to send to (127.0.0.1 or ::1). */
  constructor(private readonly host = "127.0.0.1") {
    const sock = this.sock = Deno.listenDatagram({ transport: "udp", hostname: host, port: 0 });
    this.loop = (async () => {
      const buf = new Uint8Array(65536);
      for (;;) {
        const [d] = await sock.receive(buf);
        this.got.push(d.slice());
      }
    })().catch(() => {});
  }
  send(port: number, data: Uint8Array | string): Promise<number> {
    const b = typeof data === "string" ? enc.encode(data) : data;
    return this.sock.send(b, { transport: "udp", hostname: this.host, port });
  }
  texts(): string[] {
    return this.got.map((d) => dec.decode(d));
  }
  async close(): Promise<void> {
    try {
      this.sock.close();
    } catch { /* closed */ }
    await this.loop;
  }
}

/**
 * Sends `count` datagrams `<prefix>-<i>` to `port` in windows of `window` (resending what a
 * window lost, since UDP may drop) and checks every one came back exactly, and nothing foreign
 * did. Datagram i is padded to i % `spread` extra bytes.
 */
async function echoMany(
  c: UdpClient,
  port: number,
  prefix: string,
  count: number,
  window = 16,
  spread = 300,
) {
  const want = Array.from(
    { length: count },
    (_, i) => `${prefix}-${i}-${"x".repeat((i * 37) % spread)}`,
  );
  for (let i = 0; i < count; i += window) {
    const win = want.slice(i, i + window);
    for (let attempt = 0; attempt < 4; attempt++) {
      const have = new Set(c.texts());
      const missing = win.filter((w) => !have.has(w));
      if (missing.length === 0) break;
      for (const m of missing) await c.send(port, m);
      await until(() => {
        const h = new Set(c.texts());
        return win.every((w) => h.has(w));
      }, 1500);
    }
  }
  const got = new Set(c.texts());
  for (const w of want) assert(got.has(w), `${prefix}: no echo of "${w.slice(0, 20)}…"`);
  for (const g of got) assert(g.startsWith(`${prefix}-`), `${prefix}: foreign datagram "${g}"`);
}

/** One datagram round trip (with resends); returns the reply text. */
async function roundTrip(c: UdpClient, port: number, msg: string): Promise<string> {
  const before = c.got.length;
  for (let attempt = 0; attempt < 4; attempt++) {
    await c.send(port, msg);
    if (await until(() => c.got.length > before, 1500)) return dec.decode(c.got[before]);
  }
  throw new Error(`no reply to "${msg}" on port ${port}`);
}

// Both socket back ends: FFI sockets (--allow-ffi, the default) and Deno's UDP API (without it).
for (const noFfi of [false, true]) {
  Deno.test({
    name: `udp forward: two concurrent clients each get exactly their own echoes (${
      noFfi ? "Deno UDP API" : "FFI sockets"
    })`,
    ...IT,
    fn: async () => {
      const echo = startUdpEcho();
      const port = freeUdpPort();
      const dost = await startDost(["-L", `udp://127.0.0.1:${port}/127.0.0.1:${echo.port}`], {
        noFfi,
      });
      const a = new UdpClient();
      const b = new UdpClient();
      try {
        await Promise.all([echoMany(a, port, "alice", 300), echoMany(b, port, "bob", 300)]);
        // Full-size and empty datagrams pass whole (no stream splitting, no 512-byte buffer).
        const big = new Uint8Array(60_000);
        crypto.getRandomValues(big);
        const before = a.got.length;
        for (let i = 0; i < 4 && a.got.length === before; i++) {
          await a.send(port, big);
          await until(() => a.got.length > before, 1500);
        }
        assertEquals(a.got[before], big);
      } finally {
        await a.close();
        await b.close();
        await dost.stop();
        echo.close();
      }
    },
  });
}

Deno.test({
  name: "udp forward: bursts of 64 datagrams of 0–3000 B come back whole (batched sendmmsg path)",
  ...IT,
  fn: async () => {
    const echo = startUdpEcho();
    const port = freeUdpPort();
    const dost = await startDost(["-L", `udp://127.0.0.1:${port}/127.0.0.1:${echo.port}`]);
    const a = new UdpClient();
    const b = new UdpClient();
    try {
      // Two clients at once: one outbox flush carries datagrams of several sockets; sizes above
      // the outbox slot (2 KiB) are sent directly, in between batched ones.
      await Promise.all([
        echoMany(a, port, "carol", 640, 64, 3000),
        echoMany(b, port, "dave", 640, 64, 3000),
      ]);
    } finally {
      await a.close();
      await b.close();
      await dost.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "udp forward: a session closes after the idle ttl; the next datagram opens a new one",
  ...IT,
  fn: async () => {
    const echo = startUdpEcho();
    const port = freeUdpPort();
    const dost = await startDost([
      "-D",
      "-L",
      `udp://127.0.0.1:${port}/127.0.0.1:${echo.port}?ttl=1s`,
    ]);
    const c = new UdpClient();
    try {
      assertEquals(await roundTrip(c, port, "one"), "one");
      const client = `127.0.0.1:${(c.sock.addr as Deno.NetAddr).port}`;
      await waitForLog(dost, new RegExp(`udp session ${client}: idle for 1000 ms \\(ttl\\)`));
      await waitForLog(dost, new RegExp(`udp session ${client} -> 127.0.0.1:\\d+ closed`));
      assertEquals(await roundTrip(c, port, "two"), "two");
      await waitForLog(
        dost,
        /udp session .* -> [^\n]*\n(.|\n)*udp session .* -> 127.0.0.1:\d+ \(via/,
      );
      const opened = dost.logs().match(new RegExp(`udp session ${client} -> \\S+ \\(via`, "g"));
      assertEquals(opened?.length, 2, dost.logs());
    } finally {
      await c.close();
      await dost.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "udp forward: keepalive=false closes the session after the first reply (gost v3 mode)",
  ...IT,
  fn: async () => {
    const echo = startUdpEcho();
    const port = freeUdpPort();
    const dost = await startDost([
      "-D",
      "-L",
      `udp://127.0.0.1:${port}/127.0.0.1:${echo.port}?keepalive=false`,
    ]);
    const c = new UdpClient();
    try {
      assertEquals(await roundTrip(c, port, "q1"), "q1");
      await waitForLog(dost, /closed: 1 datagrams out, 1 back/);
      assertEquals(await roundTrip(c, port, "q2"), "q2");
    } finally {
      await c.close();
      await dost.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "udp forward: dig through udp:// to dnsmasq",
  ...IT,
  ...needs("dnsmasq", "dig"),
  fn: async () => {
    const dnsPort = freeDualPort();
    const pidFile = await Deno.makeTempFile({ prefix: "dost-dnsmasq-" });
    const dnsmasq = new Deno.Command("dnsmasq", {
      args: [
        "-k",
        "-C",
        "/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        `--port=${dnsPort}`,
        `--pid-file=${pidFile}`,
        "--address=/name.test/127.0.0.42",
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const port = freeUdpPort();
    const dost = await startDost(["-L", `udp://127.0.0.1:${port}/127.0.0.1:${dnsPort}`]);
    const dig = async (p: number, name: string) => {
      const out = await new Deno.Command("dig", {
        args: [`@127.0.0.1`, "-p", String(p), name, "A", "+short", "+tries=3", "+time=1"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      return dec.decode(out.stdout).trim();
    };
    try {
      // dnsmasq is up once it answers directly.
      let direct = "";
      for (let i = 0; i < 50 && direct !== "127.0.0.42"; i++) {
        direct = await dig(dnsPort, "name.test");
        if (direct !== "127.0.0.42") await new Promise((r) => setTimeout(r, 100));
      }
      assertEquals(direct, "127.0.0.42", "dnsmasq did not come up");
      assertEquals(await dig(port, "name.test"), "127.0.0.42");
      assertEquals(await dig(port, "a.b.name.test"), "127.0.0.42");
    } finally {
      await dost.stop();
      try {
        dnsmasq.kill("SIGTERM");
      } catch { /* gone */ }
      await dnsmasq.status;
      await Deno.remove(pidFile).catch(() => {});
    }
  },
});

Deno.test({
  name: "udp forward: through a dost SOCKS5 hop (UDP ASSOCIATE, udp=true)",
  ...IT,
  fn: async () => {
    const echo = startUdpEcho();
    const s = freePort();
    const port = freeUdpPort();
    const server = await startDost(["-D", "-L", `socks5://127.0.0.1:${s}?udp=true`]);
    let client;
    const a = new UdpClient();
    const b = new UdpClient();
    try {
      client = await startDost([
        "-D",
        "-L",
        `udp://127.0.0.1:${port}/127.0.0.1:${echo.port}`,
        "-F",
        `socks5://127.0.0.1:${s}`,
      ]);
      try {
        await Promise.all([echoMany(a, port, "a", 100), echoMany(b, port, "b", 100)]);
      } catch (e) {
        console.log("SERVER", server.logs(), "CLIENT", client.logs());
        throw e;
      }
      // Each session is its own association on the server.
      await waitForLog(server, /udp associate [^\n]*relay on(.|\n)*udp associate [^\n]*relay on/);
    } finally {
      await a.close();
      await b.close();
      await client?.stop();
      await server.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "udp forward: multi-hop chains use UDP-TUN; refusals and relay=udp fail cleanly",
  ...IT,
  fn: async () => {
    const echo = startUdpEcho();
    const [s1, s2] = [freePort(), freePort()];
    const [p1, p2, p3, p4] = [freeUdpPort(), freeUdpPort(), freeUdpPort(), freeUdpPort()];
    const server = await startDost([
      "-D",
      "-L",
      `socks5://127.0.0.1:${s1}`, // UDP not enabled
      "-L",
      `socks5://127.0.0.1:${s2}?udp=true`,
    ]);
    const clients = [];
    const c = new UdpClient();
    const to = `127.0.0.1:${echo.port}`;
    try {
      // A node that refuses UDP: the session fails with the server's reply, the service stays.
      const refused = await startDost([
        "-L",
        `udp://127.0.0.1:${p1}/${to}`,
        "-F",
        `socks5://127.0.0.1:${s1}`,
      ]);
      clients.push(refused);
      await c.send(p1, "refused?");
      await waitForLog(refused, /udp forward to [^\n]*hop 1 [^\n]*UDP ASSOCIATE[^\n]*not allowed/);
      // Two hops: the last node is behind the first, so UDP travels in UDP-TUN frames.
      const twoHops = await startDost([
        "-L",
        `udp://127.0.0.1:${p2}/${to}`,
        "-F",
        `socks5://127.0.0.1:${s1}`,
        "-F",
        `socks5://127.0.0.1:${s2}`,
      ]);
      clients.push(twoHops);
      await echoMany(c, p2, "tun2", 50);
      await waitForLog(server, /udp-tun [^\n]*relaying on/);
      // relay=udp insists on a standard UDP ASSOCIATE, impossible behind another hop.
      const forced = await startDost([
        "-L",
        `udp://127.0.0.1:${p3}/${to}`,
        "-F",
        `socks5://127.0.0.1:${s1}`,
        "-F",
        `socks5://127.0.0.1:${s2}?relay=udp`,
      ]);
      clients.push(forced);
      await c.send(p3, "two hops?");
      await waitForLog(forced, /hop 2 \(socks5:[^\n]*relay=udp: standard UDP ASSOCIATE needs/);
      // relay=tun on a first hop: gost's default UDP path.
      const tun = await startDost([
        "-L",
        `udp://127.0.0.1:${p4}/${to}`,
        "-F",
        `socks5://127.0.0.1:${s2}?relay=tun`,
      ]);
      clients.push(tun);
      const d = new UdpClient();
      try {
        await echoMany(d, p4, "tun1", 50);
      } finally {
        await d.close();
      }
    } finally {
      await c.close();
      for (const p of clients) await p.stop();
      await server.stop();
      echo.close();
    }
  },
});

/** A UDP echo that prefixes its replies with `tag:` (to tell targets apart). */
function startTaggedEcho(tag: string): { port: number; close(): void } {
  const u = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  (async () => {
    for (;;) {
      const [data, from] = await u.receive();
      await u.send(new Uint8Array([...enc.encode(`${tag}:`), ...data]), from);
    }
  })().catch(() => {});
  return { port: (u.addr as Deno.NetAddr).port, close: () => u.close() };
}

Deno.test({
  name: "udp forward: sessions rotate over several targets (round robin per session)",
  ...IT,
  fn: async () => {
    const e1 = startTaggedEcho("e1");
    const e2 = startTaggedEcho("e2");
    const port = freeUdpPort();
    const dost = await startDost([
      "-L",
      `udp://127.0.0.1:${port}/127.0.0.1:${e1.port},127.0.0.1:${e2.port}`,
    ]);
    const cs = [new UdpClient(), new UdpClient(), new UdpClient(), new UdpClient()];
    try {
      const tags = [];
      for (const [i, c] of cs.entries()) {
        // Two datagrams per client: a session keeps its target.
        const r1 = await roundTrip(c, port, `c${i}a`);
        const r2 = await roundTrip(c, port, `c${i}b`);
        assertEquals(r1.split(":")[0], r2.split(":")[0]);
        assertEquals(r1.split(":")[1], `c${i}a`);
        tags.push(r1.split(":")[0]);
      }
      assertEquals(tags.sort(), ["e1", "e1", "e2", "e2"]);
    } finally {
      for (const c of cs) await c.close();
      await dost.stop();
      e1.close();
      e2.close();
    }
  },
});

Deno.test({
  name: "udp forward: through dante (standard UDP ASSOCIATE)",
  ...IT,
  ...needs("danted"),
  fn: async () => {
    const echo = startUdpEcho();
    const dante = await startDante();
    const port = freeUdpPort();
    let client;
    const c = new UdpClient();
    try {
      client = await startDost([
        "-L",
        `udp://127.0.0.1:${port}/127.0.0.1:${echo.port}`,
        "-F",
        `socks5://127.0.0.1:${dante.port}`,
      ]);
      await echoMany(c, port, "dante", 100);
    } finally {
      await c.close();
      await client?.stop();
      await dante.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "udp forward: truncating buffer, unreachable target and floods do not break the service",
  ...IT,
  fn: async () => {
    const echo = startUdpEcho();
    const [p1, p2] = [freeUdpPort(), freeUdpPort()];
    const dost = await startDost([
      "-L",
      `udp://127.0.0.1:${p1}/127.0.0.1:${echo.port}?readBufferSize=1024`,
      "-L",
      `udp://127.0.0.1:${p2}/no-such-host.invalid:53`,
    ]);
    const c = new UdpClient();
    try {
      // Longer than readBufferSize: truncated like gost does, not fatal.
      const long = new Uint8Array(4000).fill(65);
      assertEquals(await roundTrip(c, p1, dec.decode(long)), "A".repeat(1024));
      // A target that does not resolve: a warning per session, the service stays.
      await c.send(p2, "x");
      await waitForLog(dost, /udp forward to no-such-host\.invalid:53: /);
      // Many one-datagram clients at once: each is a session; all still answered.
      const many = Array.from({ length: 40 }, () => new UdpClient());
      try {
        const replies = await Promise.all(many.map((m, i) => roundTrip(m, p1, `m${i}`)));
        assertEquals(replies, many.map((_, i) => `m${i}`));
      } finally {
        for (const m of many) await m.close();
      }
      assertEquals(await roundTrip(c, p1, "still here"), "still here");
      assertStringIncludes(dost.logs(), "listening on");
    } finally {
      await c.close();
      await dost.stop();
      echo.close();
    }
  },
});

/**
 * A minimal SOCKS5 server in this process that grants UDP ASSOCIATE with an unspecified relay
 * address (0.0.0.0: "use my address") and answers each datagram with malformed ones first (bad
 * address type, too short, a fragment) and then a well-formed `ok:<payload>` reply.
 */
function startMalformedRelay(): { port: number; close(): void } {
  const tcp = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const relay = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const rp = (relay.addr as Deno.NetAddr).port;
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const c of tcp) {
      conns.add(c);
      (async () => {
        const b = new Uint8Array(512);
        await c.read(b); // greeting
        await c.write(new Uint8Array([5, 0]));
        await c.read(b); // UDP ASSOCIATE request
        await c.write(new Uint8Array([5, 0, 0, 1, 0, 0, 0, 0, rp >> 8, rp & 255]));
        while ((await c.read(b)) !== null) { /* hold the association */ }
      })().catch(() => {}).finally(() => conns.delete(c));
    }
  })().catch(() => {});
  (async () => {
    for (;;) {
      const [d, from] = await relay.receive();
      const header = d.subarray(0, 10); // RSV RSV FRAG ATYP(1) IPv4 PORT: the target
      const data = d.subarray(10);
      await relay.send(new Uint8Array([0, 0, 0, 9, 1, 2, 3]), from); // unknown ATYP
      await relay.send(new Uint8Array([0, 0]), from); // too short
      const frag = new Uint8Array([...header, ...enc.encode("fragment")]);
      frag[2] = 1;
      await relay.send(frag, from);
      await relay.send(new Uint8Array([...header, ...enc.encode("ok:"), ...data]), from);
    }
  })().catch(() => {});
  return {
    port: (tcp.addr as Deno.NetAddr).port,
    close() {
      tcp.close();
      relay.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

Deno.test({
  name: "udp forward: malformed datagrams from a SOCKS5 relay are dropped, good ones pass",
  ...IT,
  fn: async () => {
    const fake = startMalformedRelay();
    const port = freeUdpPort();
    const dost = await startDost([
      "-L",
      `udp://127.0.0.1:${port}/127.0.0.1:9`,
      "-F",
      `socks5://127.0.0.1:${fake.port}?relay=udp`,
    ]);
    const c = new UdpClient();
    try {
      assertEquals(await roundTrip(c, port, "ping"), "ok:ping");
      assertEquals(await roundTrip(c, port, "pong"), "ok:pong");
      await new Promise((r) => setTimeout(r, 100));
      assertEquals(c.texts(), ["ok:ping", "ok:pong"]);
    } finally {
      await c.close();
      await dost.stop();
      fake.close();
    }
  },
});

/** Whether this host has IPv6 loopback (containers sometimes do not). */
function haveIPv6(): boolean {
  try {
    Deno.listenDatagram({ transport: "udp", hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "udp forward: an IPv6 listener relays to an IPv4 target",
  ...IT,
  ignore: !haveIPv6(),
  fn: async () => {
    const echo = startUdpEcho();
    const probe = Deno.listenDatagram({ transport: "udp", hostname: "::1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const dost = await startDost(["-D", "-L", `udp://[::1]:${port}/127.0.0.1:${echo.port}`]);
    const c = new UdpClient("::1");
    try {
      assertEquals(await roundTrip(c, port, "six"), "six");
      await waitForLog(dost, /udp session \[::1\]:\d+ -> 127\.0\.0\.1:\d+/);
    } finally {
      await c.close();
      await dost.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "udp forward: an IPv4 listener relays to an IPv6 target (both socket back ends)",
  ...IT,
  ignore: !haveIPv6(),
  fn: async () => {
    // A one-shot IPv6 echo that replies with its input reversed-tagged, to prove the path.
    const echo6 = Deno.listenDatagram({ transport: "udp", hostname: "::1", port: 0 });
    const echoPort = (echo6.addr as Deno.NetAddr).port;
    const loop = (async () => {
      const buf = new Uint8Array(65536);
      for (;;) {
        const [d, from] = await echo6.receive(buf);
        await echo6.send(enc.encode(`v6:${dec.decode(d)}`), from);
      }
    })().catch(() => {});
    const c = new UdpClient();
    try {
      for (const noFfi of [false, true]) {
        const port = freeUdpPort();
        const dost = await startDost(["-L", `udp://127.0.0.1:${port}/[::1]:${echoPort}`], {
          noFfi,
        });
        try {
          assertEquals(await roundTrip(c, port, `hello-${noFfi}`), `v6:hello-${noFfi}`);
        } finally {
          await dost.stop();
        }
      }
    } finally {
      await c.close();
      echo6.close();
      await loop;
    }
  },
});

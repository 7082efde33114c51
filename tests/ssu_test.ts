/**
 * Shadowsocks UDP (`ssu`): shadowsocks-libev's ss-tunnel (-u) → dost ssu server, dost ssu client →
 * ss-server -u, and dost ↔ dost, each with content-exact UDP echoes; bad packets are dropped
 * silently while good ones keep flowing.
 */
import { assert, assertEquals } from "./lib/assert.ts";
import {
  freePort,
  freeUdpPort,
  IT,
  needs,
  rawExchange,
  runDost,
  startDost,
  startUdpEcho,
  until,
} from "./lib/harness.ts";
import { startDnsmasq, startPeer } from "./lib/peers.ts";

const PW = "udp pass";
const AEAD = ["aes-128-gcm", "aes-256-gcm", "chacha20-ietf-poly1305"];

/**
 * Sends `count` distinct datagrams (sizes 1..1400) to 127.0.0.1:`port` in windows of 8, resending
 * what got lost, and checks every echo came back exactly.
 */
async function echoes(port: number, count: number): Promise<void> {
  const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const got = new Set<string>();
  const loop = (async () => {
    for (;;) {
      const [d] = await sock.receive();
      got.add(new TextDecoder().decode(d));
    }
  })().catch(() => {});
  const want = Array.from({ length: count }, (_, i) => `dgram-${i}-` + "z".repeat((i * 97) % 1390));
  try {
    for (let i = 0; i < count; i += 8) {
      const win = want.slice(i, i + 8);
      for (let attempt = 0; attempt < 5 && !win.every((w) => got.has(w)); attempt++) {
        for (const w of win.filter((w) => !got.has(w))) {
          await sock.send(new TextEncoder().encode(w), {
            transport: "udp",
            hostname: "127.0.0.1",
            port,
          });
        }
        await until(() => win.every((w) => got.has(w)), 1500);
      }
    }
    for (const w of want) assert(got.has(w), `no echo of ${w.slice(0, 16)}…`);
  } finally {
    sock.close();
    await loop;
  }
}

for (const m of AEAD) {
  Deno.test({
    name: `ssu ${m}: ss-tunnel -u (shadowsocks-libev) → dost ssu → UDP echo`,
    ...IT,
    ...needs("ss-tunnel"),
    fn: async () => {
      const echo = startUdpEcho();
      const s = freeUdpPort(), tcp = freePort();
      const dost = await startDost([
        "-L",
        `ssu://${m}:${encodeURIComponent(PW)}@127.0.0.1:${s}`,
      ]);
      // ss-tunnel also opens TCP on its local port: wait on that.
      const tunnel = await startPeer("ss-tunnel", [
        "-s",
        "127.0.0.1",
        "-p",
        String(s),
        "-b",
        "127.0.0.1",
        "-l",
        String(tcp),
        "-L",
        `127.0.0.1:${echo.port}`,
        "-k",
        PW,
        "-m",
        m,
        "-u",
      ], tcp);
      try {
        await echoes(tcp, 60);
      } finally {
        await tunnel.stop();
        await dost.stop();
        echo.close();
      }
    },
  });

  Deno.test({
    name: `ssu ${m}: dost udp:// -F ssu → ss-server -u (shadowsocks-libev) → UDP echo`,
    ...IT,
    ...needs("ss-server"),
    fn: async () => {
      const echo = startUdpEcho();
      const s = freePort(), p = freeUdpPort();
      const server = await startPeer("ss-server", [
        "-s",
        "127.0.0.1",
        "-p",
        String(s),
        "-k",
        PW,
        "-m",
        m,
        "-u",
      ], s);
      const dost = await startDost([
        "-L",
        `udp://127.0.0.1:${p}/127.0.0.1:${echo.port}`,
        "-F",
        `ssu://${m}:${encodeURIComponent(PW)}@127.0.0.1:${s}`,
      ]);
      try {
        await echoes(p, 60);
      } finally {
        await dost.stop();
        await server.stop();
        echo.close();
      }
    },
  });
}

Deno.test({
  name: "ssu: dost ↔ dost; garbage and wrong-key packets are dropped silently",
  ...IT,
  fn: async () => {
    const echo = startUdpEcho();
    const s = freeUdpPort(), p = freeUdpPort();
    const server = await startDost([
      "-L",
      `ssu://aes-256-gcm:${encodeURIComponent(PW)}@127.0.0.1:${s}`,
      "-D",
    ]);
    const client = await startDost([
      "-L",
      `udp://127.0.0.1:${p}/127.0.0.1:${echo.port}`,
      "-F",
      `ssu://aes-256-gcm:${encodeURIComponent(PW)}@127.0.0.1:${s}`,
    ]);
    const probe = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      await echoes(p, 100);
      // Garbage and a too-short packet straight at the server: no reply, a debug line.
      for (const g of [new Uint8Array(300).fill(9), new Uint8Array(5)]) {
        await probe.send(g, { transport: "udp", hostname: "127.0.0.1", port: s });
      }
      let replied = false;
      probe.receive().then(() => replied = true).catch(() => {});
      assert(await until(() => server.logs().includes("dropped a packet"), 5000), server.logs());
      await echoes(p, 20);
      assertEquals(replied, false);
    } finally {
      probe.close();
      await client.stop();
      await server.stop();
      echo.close();
    }
  },
});

for (
  const m of ["2022-blake3-aes-128-gcm", "2022-blake3-aes-256-gcm", "2022-blake3-chacha20-poly1305"]
) {
  Deno.test({
    name: `ssu ${m}: dost ↔ dost sessions; a replayed packet is dropped`,
    ...IT,
    fn: async () => {
      const size = m.includes("128") ? 16 : 32;
      const psk = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(size))));
      const auth = `${m}:${encodeURIComponent(psk)}`;
      const echo = startUdpEcho();
      const s = freeUdpPort(), p = freeUdpPort();
      // A recorder between client and server, to replay a captured client packet.
      const mid = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
      const midPort = (mid.addr as Deno.NetAddr).port;
      let captured: Uint8Array | undefined;
      let clientAddr: Deno.Addr | undefined;
      const pipe = (async () => {
        for (;;) {
          const [d, from] = await mid.receive();
          if ((from as Deno.NetAddr).port === s) {
            if (clientAddr) await mid.send(d, clientAddr);
          } else {
            clientAddr = from;
            captured ??= d.slice();
            await mid.send(d, { transport: "udp", hostname: "127.0.0.1", port: s });
          }
        }
      })().catch(() => {});
      const server = await startDost(["-D", "-L", `ssu://${auth}@127.0.0.1:${s}`]);
      const client = await startDost([
        "-L",
        `udp://127.0.0.1:${p}/127.0.0.1:${echo.port}`,
        "-F",
        `ssu://${auth}@127.0.0.1:${midPort}`,
      ]);
      try {
        await echoes(p, 60);
        assert(captured, "no packet went through the recorder");
        await mid.send(captured, { transport: "udp", hostname: "127.0.0.1", port: s });
        assert(await until(() => server.logs().includes("replayed packet"), 5000), server.logs());
        await echoes(p, 10);
      } finally {
        mid.close();
        await pipe;
        await client.stop();
        await server.stop();
        echo.close();
      }
    },
  });
}

Deno.test({
  name: "ssu: 2022 multi-user keys and 2022 over a stream transport fail at start-up with one line",
  ...IT,
  fn: async () => {
    const key = btoa(String.fromCharCode(...new Uint8Array(16)));
    const r1 = await runDost([
      "-L",
      `ssu://2022-blake3-aes-128-gcm:${
        encodeURIComponent(`${key}:${key}`)
      }@127.0.0.1:${freeUdpPort()}`,
    ]);
    assertEquals(r1.code, 1);
    assert(/multi-user keys .* not supported yet/.test(r1.stderr), r1.stderr);
    const r2 = await runDost([
      "-L",
      `ssu+tcp://2022-blake3-aes-128-gcm:${encodeURIComponent(key)}@127.0.0.1:${freePort()}`,
    ]);
    assertEquals(r2.code, 1);
    assert(/runs over UDP only/.test(r2.stderr), r2.stderr);
  },
});

Deno.test({
  name:
    "ssu over stream transports (tcp, tls, ws): UDP-TUN frames in an ss stream; garbage gets no answer",
  ...IT,
  fn: async () => {
    const echo = startUdpEcho();
    const auth = `aes-128-gcm:${encodeURIComponent(PW)}`;
    const routes = ["tcp", "tls", "ws"].map((t) => ({ t, s: freePort(), p: freeUdpPort() }));
    const server = await startDost([
      "-D",
      ...routes.flatMap(({ t, s }) => ["-L", `ssu+${t}://${auth}@127.0.0.1:${s}`]),
    ]);
    // One client per route: -F nodes given together would form one chain.
    const clients = await Promise.all(routes.map(({ t, s, p }) =>
      startDost([
        "-L",
        `udp://127.0.0.1:${p}/127.0.0.1:${echo.port}`,
        "-F",
        `ssu+${t}://${auth}@127.0.0.1:${s}`,
      ])
    ));
    try {
      for (const { p } of routes) await echoes(p, 60);
      // Garbage on the stream port: read and dropped, never answered; service goes on.
      const tcp = routes[0];
      const back = await rawExchange(tcp.s, "x".repeat(300));
      assertEquals(back.length, 0);
      assert(await until(() => server.logs().includes("ssu: bad client"), 5000), server.logs());
      await echoes(tcp.p, 20);
    } finally {
      await Promise.all(clients.map((c) => c.stop()));
      await server.stop();
      echo.close();
    }
  },
});

Deno.test({
  name:
    "ssu: dig through ss-tunnel -u → dost ssu, and through dost -F ssu → ss-server -u (dnsmasq)",
  ...IT,
  ...needs("ss-tunnel", "ss-server", "dig", "dnsmasq"),
  fn: async () => {
    const m = "aes-256-gcm";
    const dns = await startDnsmasq(["--host-record=ssu.test,10.7.7.7", "--local=/test/"]);
    const dig = async (port: number) => {
      const out = await new Deno.Command("dig", {
        args: ["@127.0.0.1", "-p", String(port), "+short", "+tries=2", "+time=2", "ssu.test"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      return new TextDecoder().decode(out.stdout).trim();
    };
    const s1 = freeUdpPort(), t1 = freePort();
    const s2 = freePort(), p2 = freeUdpPort();
    // Two processes: -F nodes would apply to every service of one.
    const dosts = [
      await startDost(["-L", `ssu://${m}:${encodeURIComponent(PW)}@127.0.0.1:${s1}`]),
      await startDost([
        "-L",
        `udp://127.0.0.1:${p2}/127.0.0.1:${dns.port}`,
        "-F",
        `ssu://${m}:${encodeURIComponent(PW)}@127.0.0.1:${s2}`,
      ]),
    ];
    const peers = [
      await startPeer("ss-tunnel", [
        ...["-s", "127.0.0.1", "-p", String(s1), "-b", "127.0.0.1", "-l", String(t1)],
        ...["-L", `127.0.0.1:${dns.port}`, "-k", PW, "-m", m, "-u"],
      ], t1),
      await startPeer(
        "ss-server",
        ["-s", "127.0.0.1", "-p", String(s2), "-k", PW, "-m", m, "-u"],
        s2,
      ),
    ];
    try {
      assertEquals(await dig(t1), "10.7.7.7"); // ss-tunnel → dost ssu server → dnsmasq
      assertEquals(await dig(p2), "10.7.7.7"); // dost ssu client → ss-server → dnsmasq
    } finally {
      for (const p of peers) await p.stop();
      for (const d of dosts) await d.stop();
      await dns.stop();
    }
  },
});

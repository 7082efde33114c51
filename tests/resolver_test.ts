/**
 * Hosts and resolver end to end: a local dnsmasq is the DNS upstream (over UDP, TCP, and behind
 * a DoT forwarder and a DoH server run by this test), dost serves SOCKS5/HTTP, and curl asks for
 * names only those upstreams (or the hosts file) know.
 */
import { assert, assertEquals, assertStringIncludes } from "./lib/assert.ts";
import {
  curl,
  freeDualPort,
  freePort,
  IT,
  needs,
  startDost,
  startOrigin,
  startUdpEcho,
  until,
  waitForLog,
} from "./lib/harness.ts";
import { startDnsmasq as dnsmasq } from "./lib/peers.ts";

const dec = new TextDecoder();

/** dnsmasq answering name.test (A 127.0.0.1, AAAA ::1, TTL 60), logging every query. */
function startDnsmasq() {
  return dnsmasq(["--address=/name.test/127.0.0.1", "--address=/name.test/::1"]);
}

async function waitDnsmasq(d: { logs(): string }): Promise<void> {
  assert(await until(() => d.logs().includes("started"), 5000), `dnsmasq not up:\n${d.logs()}`);
}

/** How many A queries for name.test dnsmasq has seen. */
function aQueries(d: { logs(): string }): number {
  return d.logs().match(/query\[A\] name\.test/g)?.length ?? 0;
}

/** A self-signed certificate for 127.0.0.1 made by openssl in a temp dir. */
async function makeCert(): Promise<{ dir: string; cert: string; key: string }> {
  const dir = await Deno.makeTempDir();
  const r = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=dns.test",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      `${dir}/key.pem`,
      "-out",
      `${dir}/cert.pem`,
    ],
    stdout: "null",
    stderr: "null",
  }).output();
  assert(r.success, "openssl failed");
  return {
    dir,
    cert: await Deno.readTextFile(`${dir}/cert.pem`),
    key: await Deno.readTextFile(`${dir}/key.pem`),
  };
}

async function readFull(c: Deno.Conn, n: number): Promise<Uint8Array | null> {
  const b = new Uint8Array(n);
  for (let off = 0; off < n;) {
    const r = await c.read(b.subarray(off));
    if (r === null) return null;
    off += r;
  }
  return b;
}

/** Asks dnsmasq over TCP (length-prefixed), returning the bare reply. */
async function askTcp(port: number, msg: Uint8Array): Promise<Uint8Array> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const out = new Uint8Array(2 + msg.length);
    new DataView(out.buffer).setUint16(0, msg.length);
    out.set(msg, 2);
    await c.write(out);
    const len = await readFull(c, 2);
    if (!len) throw new Error("dnsmasq closed");
    const body = await readFull(c, (len[0] << 8) | len[1]);
    if (!body) throw new Error("dnsmasq closed");
    return body;
  } finally {
    c.close();
  }
}

/** A DoT server: TLS, length-prefixed messages relayed to dnsmasq over TCP. */
function startDoT(tls: { cert: string; key: string }, upstream: number) {
  const l = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert: tls.cert, key: tls.key });
  (async () => {
    for await (const c of l) {
      (async () => {
        try {
          const len = await readFull(c, 2);
          if (!len) return;
          const q = await readFull(c, (len[0] << 8) | len[1]);
          if (!q) return;
          const a = await askTcp(upstream, q);
          const out = new Uint8Array(2 + a.length);
          new DataView(out.buffer).setUint16(0, a.length);
          out.set(a, 2);
          await c.write(out);
        } catch {
          /* client went away */
        } finally {
          try {
            c.close();
          } catch { /* closed */ }
        }
      })();
    }
  })().catch(() => {});
  return { port: (l.addr as Deno.NetAddr).port, close: () => l.close() };
}

/** A DoH server (RFC 8484 POST) relaying to dnsmasq over UDP. */
function startDoH(tls: { cert: string; key: string }, upstream: number) {
  const ac = new AbortController();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: tls.cert,
    key: tls.key,
    signal: ac.signal,
    onListen: () => {},
  }, async (req) => {
    const url = new URL(req.url);
    if (url.pathname !== "/dns-query" || req.method !== "POST") {
      return new Response("no", { status: 404 });
    }
    if (req.headers.get("content-type") !== "application/dns-message") {
      return new Response("bad type", { status: 415 });
    }
    const q = new Uint8Array(await req.arrayBuffer());
    const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      await sock.send(q, { transport: "udp", hostname: "127.0.0.1", port: upstream });
      const [a] = await sock.receive();
      return new Response(a as BodyInit, {
        headers: { "content-type": "application/dns-message" },
      });
    } finally {
      sock.close();
    }
  });
  return {
    port: server.addr.port,
    async close() {
      ac.abort();
      await server.finished;
    },
  };
}

/** curl through dost's SOCKS5 with remote name resolution (socks5h). */
function viaSocks(socksPort: number, url: string) {
  return curl(["--proxy", `socks5h://127.0.0.1:${socksPort}`, url]);
}

const PEERS = needs("dnsmasq", "curl", "openssl");

Deno.test({
  name: "resolver: udp:// and tcp:// upstreams resolve socks5h targets; answers are cached",
  ...IT,
  ...PEERS,
  async fn() {
    const dns = await startDnsmasq();
    const origin = startOrigin();
    const su = freePort();
    const st = freePort();
    let dost;
    try {
      await waitDnsmasq(dns);
      dost = await startDost([
        "-D",
        "-L",
        `socks5://127.0.0.1:${su}?dns=udp://127.0.0.1:${dns.port}`,
        // v2 syntax `addr/proto`; prefer=ipv6 tries ::1 first (refused: the origin is IPv4)
        // and then 127.0.0.1.
        "-L",
        `socks5://127.0.0.1:${st}?dns=127.0.0.1:${dns.port}/tcp&prefer=ipv6`,
      ]);
      const r = await viaSocks(su, `http://name.test:${origin.port}/x`);
      assertEquals(r.stdout, "hello /x", r.stderr);
      assertEquals(aQueries(dns), 1);
      await waitForLog(dost, `via udp://127.0.0.1:${dns.port}: [127.0.0.1]`);
      // The second lookup is answered from the cache (TTL 60 s): dnsmasq sees nothing new.
      const r2 = await viaSocks(su, `http://name.test:${origin.port}/y`);
      assertEquals(r2.stdout, "hello /y", r2.stderr);
      assertEquals(aQueries(dns), 1);
      await waitForLog(dost, "resolver: name.test A (cached)");

      const r3 = await viaSocks(st, `http://name.test:${origin.port}/tcp`);
      assertEquals(r3.stdout, "hello /tcp", r3.stderr);
      await waitForLog(dost, `name.test AAAA via tcp://127.0.0.1:${dns.port}: [::1]`);
      assertEquals(aQueries(dns), 2);

      // A name the upstream does not know is a clean SOCKS failure, not a system lookup.
      const bad = await viaSocks(su, `http://nothing.test:${origin.port}/`);
      assert(bad.code !== 0, "unknown name must fail");
    } finally {
      await dost?.stop();
      await origin.close();
      await dns.stop();
    }
  },
});

Deno.test({
  name: "resolver: DoT (tls://) and DoH (https://) upstreams with self-signed certificates",
  ...IT,
  ...PEERS,
  async fn() {
    const dns = await startDnsmasq();
    const origin = startOrigin();
    const tls = await makeCert();
    const dot = startDoT(tls, dns.port);
    const doh = startDoH(tls, dns.port);
    const s1 = freePort();
    const s2 = freePort();
    let dost;
    try {
      await waitDnsmasq(dns);
      dost = await startDost([
        "-D",
        "-L",
        `socks5://127.0.0.1:${s1}?resolver=tls://127.0.0.1:${dot.port}`,
        "-L",
        // A dead first upstream: the resolver falls back to the next one.
        `socks5://127.0.0.1:${s2}?resolver=tcp://127.0.0.1:${freePort()},https://127.0.0.1:${doh.port}/dns-query`,
      ]);
      const r = await viaSocks(s1, `http://name.test:${origin.port}/dot`);
      assertEquals(r.stdout, "hello /dot", r.stderr);
      await waitForLog(dost, `name.test A via tls://127.0.0.1:${dot.port}: [127.0.0.1]`);
      const r2 = await viaSocks(s2, `http://name.test:${origin.port}/doh`);
      assertEquals(r2.stdout, "hello /doh", r2.stderr);
      await waitForLog(
        dost,
        `name.test A via https://127.0.0.1:${doh.port}/dns-query: [127.0.0.1]`,
      );
      assertEquals(aQueries(dns), 2);
    } finally {
      await dost?.stop();
      dot.close();
      await doh.close();
      await origin.close();
      await dns.stop();
      await Deno.remove(tls.dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "hosts: file mapping for socks5h and HTTP proxy, live reload, corrupt edit kept out",
  ...IT,
  ...needs("curl"),
  async fn() {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/hosts`;
    await Deno.writeTextFile(path, "reload 1s\n# test hosts\n127.0.0.1 my.host alias.host\n");
    const origin = startOrigin();
    const sp = freePort();
    const hp = freePort();
    const ip = freePort();
    const s4 = freePort();
    let dost;
    try {
      dost = await startDost([
        "-D",
        "-L",
        `socks5://127.0.0.1:${sp}?hosts=${path}`,
        "-L",
        `http://127.0.0.1:${hp}?hosts=${path}`,
        "-L",
        // gost v3 inline form.
        `http://127.0.0.1:${ip}?hosts=inline.host:127.0.0.1`,
        "-L",
        `socks4://127.0.0.1:${s4}?hosts=${path}`,
      ]);
      const r0 = await curl(["--socks4a", `127.0.0.1:${s4}`, `http://my.host:${origin.port}/4a`]);
      assertEquals(r0.stdout, "hello /4a", r0.stderr);
      const r = await viaSocks(sp, `http://my.host:${origin.port}/a`);
      assertEquals(r.stdout, "hello /a", r.stderr);
      const r2 = await curl(["-x", `http://127.0.0.1:${hp}`, `http://alias.host:${origin.port}/b`]);
      assertEquals(r2.stdout, "hello /b", r2.stderr);
      const r3 = await curl([
        "-x",
        `http://127.0.0.1:${ip}`,
        `http://inline.host:${origin.port}/c`,
      ]);
      assertEquals(r3.stdout, "hello /c", r3.stderr);

      // A corrupt edit is refused (logged once) and the old mapping stays.
      await Deno.writeTextFile(path, "reload 1s\nthis is not a hosts line\n");
      await waitForLog(dost, "keeping the previous data", 8000);
      const r4 = await viaSocks(sp, `http://my.host:${origin.port}/d`);
      assertEquals(r4.stdout, "hello /d", r4.stderr);

      // A good edit replaces the table within the reload period.
      await Deno.writeTextFile(path, "reload 1s\n127.0.0.1 new.host\n");
      await waitForLog(dost, `reloaded ${path}`, 8000);
      const r5 = await viaSocks(sp, `http://new.host:${origin.port}/e`);
      assertEquals(r5.stdout, "hello /e", r5.stderr);
      const r6 = await curl(["-x", `http://127.0.0.1:${hp}`, `http://new.host:${origin.port}/f`]);
      assertEquals(r6.stdout, "hello /f", r6.stderr);
      const gone = await viaSocks(sp, `http://my.host:${origin.port}/g`);
      assert(gone.code !== 0, `my.host must no longer resolve: ${gone.stdout}`);
      assertStringIncludes(dost.logs(), "hosts: new.host → 127.0.0.1");
    } finally {
      await dost?.stop();
      await origin.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "hosts: UDP forwarding resolves its target through hosts",
  ...IT,
  async fn() {
    const echo = startUdpEcho();
    const port = freeDualPort();
    let dost;
    const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      dost = await startDost([
        "-D",
        "-L",
        `udp://127.0.0.1:${port}/echo.host:${echo.port}?hosts=echo.host:127.0.0.1`,
      ]);
      const got = (async () => {
        const [d] = await sock.receive();
        return dec.decode(d);
      })();
      await sock.send(new TextEncoder().encode("ping"), {
        transport: "udp",
        hostname: "127.0.0.1",
        port,
      });
      const t = setTimeout(() => sock.close(), 5000);
      assertEquals(await got, "ping");
      clearTimeout(t);
      await waitForLog(dost, "hosts: echo.host → 127.0.0.1");
    } finally {
      try {
        sock.close();
      } catch { /* closed */ }
      await dost?.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "resolver/hosts: bad values fail at start-up",
  ...IT,
  async fn() {
    const { runDost } = await import("./lib/harness.ts");
    for (
      const [param, msg] of [
        ["dns=quic://127.0.0.1", "unknown protocol"],
        ["prefer=ipv5", "prefer"],
        ["hosts=/nonexistent/hosts", "hosts file"],
        ["hosts=x.test:notanip", "hostname:ip"],
      ]
    ) {
      const r = await runDost(["-L", `socks5://127.0.0.1:${freePort()}?${param}`]);
      assert(r.code !== 0, `${param} must fail`);
      assertStringIncludes(r.stderr, msg);
    }
  },
});

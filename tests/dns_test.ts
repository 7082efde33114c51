/**
 * The DNS proxy (`dns://`) end to end: dig asks dost, dost asks a local dnsmasq (directly over
 * UDP/TCP, over DoT through a dost TLS forward, through a SOCKS5 chain) or a fake upstream made
 * here (always truncated over UDP, complete over TCP). dnsmasq's `--log-queries` output tells
 * which queries reached it, dost's debug log which were cache hits.
 */
import { assert, assertEquals, assertStringIncludes } from "./lib/assert.ts";
import {
  freeDualPort,
  freePort,
  IT,
  needs,
  runDost,
  startDost,
  waitForLog,
} from "./lib/harness.ts";
import { startDnsmasq as dnsmasq } from "./lib/peers.ts";
// @ts-types="npm:@types/dns-packet@5.6.5"
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { connect as tlsConnect } from "node:tls";

const dec = new TextDecoder();
const opts = { ...IT, ...needs("dig", "dnsmasq") };

/** dnsmasq with a few names (TTL 60), logging every query it gets. */
function startDnsmasq() {
  return dnsmasq([
    "--address=/name.test/127.0.0.9",
    "--host-record=rec.test,10.1.2.3,fd00::3",
    "--host-record=chain.test,10.4.4.4",
    "--host-record=dot.test,10.5.5.5",
    "--local=/test/",
  ]);
}

/** How many queries for `name` (of `type`) dnsmasq has seen. */
function seen(d: { logs(): string }, name: string, type = "A"): number {
  return d.logs().split("\n").filter((l) => l.includes(`query[${type}] ${name} `)).length;
}

/** Runs dig and returns its output. */
async function dig(port: number, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("dig", {
    args: [`@127.0.0.1`, "-p", String(port), "+time=3", "+tries=1", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return dec.decode(out.stdout) + dec.decode(out.stderr);
}

/** The answers of `dig +short`, as a sorted list. */
async function short(port: number, ...args: string[]): Promise<string[]> {
  return (await dig(port, "+short", ...args)).trim().split("\n").filter((l) => l).sort();
}

Deno.test("dns proxy: UDP and TCP, cache, hosts, bypass, bad input", opts, async () => {
  const d = await startDnsmasq();
  const port = freeDualPort();
  const white = freeDualPort();
  const up = `127.0.0.1:${d.port}`;
  const q = "hosts=h.test:1.1.1.1,h.test:fd00::1&bypass=blocked.test";
  const dost = await startDost([
    "-D",
    "-L",
    `dns://127.0.0.1:${port}/udp://${up}?${q}`,
    "-L",
    `dns://127.0.0.1:${port}/tcp://${up}?mode=tcp&${q}`,
    "-L",
    `dns://127.0.0.1:${white}/udp://${up}?bypass=~rec.test`,
  ]);
  try {
    // UDP client, UDP upstream.
    assertEquals(await short(port, "name.test"), ["127.0.0.9"]);
    assertEquals(seen(d, "name.test"), 1);
    await waitForLog(
      dost,
      "dns: name.test A via udp://" + up + ": NOERROR, 1 answer, cached for 60s",
    );
    // The same question again: from the cache, dnsmasq is not asked.
    const again = await dig(port, "name.test");
    assertStringIncludes(again, "status: NOERROR");
    assert(/name\.test\.\s+(\d+)\s+IN\s+A\s+127\.0\.0\.9/.test(again), again);
    await waitForLog(dost, /dns: name\.test A: cache hit \(ttl \d+s\)/);
    assertEquals(seen(d, "name.test"), 1);
    // Case differs: still a hit, and the reply's question is spelled as asked.
    const mixed = await dig(port, "NaMe.TeSt");
    assert(/^;NaMe\.TeSt\.\s+IN\s+A$/m.test(mixed), mixed);
    assert(/NaMe\.TeSt\.\s+\d+\s+IN\s+A\s+127\.0\.0\.9/.test(mixed), mixed);
    assertEquals(seen(d, "name.test"), 1);

    // TCP client (mode=tcp service on the same port), TCP upstream, both families.
    assertEquals(await short(port, "+tcp", "rec.test"), ["10.1.2.3"]);
    assertEquals(await short(port, "+tcp", "rec.test", "AAAA"), ["fd00::3"]);
    await waitForLog(dost, `dns: rec.test AAAA via tcp://${up}: NOERROR, 1 answer`);
    // An unknown name: NXDOMAIN passes through (and is cached).
    assertStringIncludes(await dig(port, "nope.test"), "status: NXDOMAIN");

    // hosts= answers A and AAAA itself.
    assertEquals(await short(port, "h.test"), ["1.1.1.1"]);
    assertEquals(await short(port, "+tcp", "h.test", "AAAA"), ["fd00::1"]);
    const hostsReply = await dig(port, "h.test");
    assert(/h\.test\.\s+3600\s+IN\s+A\s+1\.1\.1\.1/.test(hostsReply), hostsReply);
    assertEquals(seen(d, "h.test") + seen(d, "h.test", "AAAA"), 0);
    await waitForLog(dost, "dns: h.test A: hosts → 1.1.1.1");

    // A bypassed name gets gost's empty NOERROR reply, and is never asked upstream.
    const blocked = await dig(port, "blocked.test");
    assertStringIncludes(blocked, "status: NOERROR");
    assertStringIncludes(blocked, "ANSWER: 0");
    assertEquals(seen(d, "blocked.test"), 0);
    await waitForLog(dost, "dns: blocked.test A: bypassed, empty reply");

    // Garbage datagrams: logged and dropped.
    const u = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    await u.send(new TextEncoder().encode("hello, not dns"), {
      transport: "udp",
      hostname: "127.0.0.1",
      port,
    });
    await u.send(new Uint8Array(3), { transport: "udp", hostname: "127.0.0.1", port });
    u.close();
    await waitForLog(dost, /malformed query \(14 bytes\)/);
    await waitForLog(dost, /malformed query \(3 bytes\): 3 bytes is shorter than a DNS header/);

    // A TCP stream that ends inside the length prefix.
    const c1 = await Deno.connect({ hostname: "127.0.0.1", port });
    await c1.write(new Uint8Array([0x00]));
    await c1.closeWrite();
    assertEquals(await c1.read(new Uint8Array(16)), null);
    c1.close();
    await waitForLog(dost, "stream ended inside a message's 2-byte length prefix; closing");

    // A TCP message longer than the buffer: the connection is closed without reading it.
    const c2 = await Deno.connect({ hostname: "127.0.0.1", port });
    await c2.write(new Uint8Array([0xea, 0x60, 1, 2, 3, 4]));
    assertEquals(await c2.read(new Uint8Array(16)), null);
    c2.close();
    await waitForLog(dost, "message of 60000 bytes is larger than the read buffer");

    // A whitelist bypass (~): only the listed names are asked upstream; the upstream itself is
    // not a client target, so the bypass does not refuse the proxy's own queries.
    assertEquals(await short(white, "rec.test"), ["10.1.2.3"]);
    assertStringIncludes(await dig(white, "other.test"), "ANSWER: 0");
    assertEquals(seen(d, "other.test"), 0);

    // Still serving both.
    assertEquals(await short(port, "rec.test"), ["10.1.2.3"]);
    assertEquals(await short(port, "+tcp", "name.test"), ["127.0.0.9"]);
  } finally {
    await dost.stop();
    await d.stop();
  }
});

/** A fake upstream: over UDP every reply is truncated (TC, no answers); over TCP it is whole. */
function startTruncatingUpstream(): { port: number; tcpQueries(): number; close(): void } {
  const port = freeDualPort();
  const udp = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port });
  const tcp = Deno.listen({ hostname: "127.0.0.1", port });
  let tcpQueries = 0;
  const reply = (query: Uint8Array, truncated: boolean): Uint8Array => {
    const q = dnsPacket.decode(Buffer.from(query));
    const b = dnsPacket.encode({
      type: "response",
      id: q.id,
      flags: (truncated ? dnsPacket.TRUNCATED_RESPONSE : 0) | dnsPacket.RECURSION_DESIRED,
      questions: q.questions,
      answers: truncated
        ? []
        : [{ type: "A", name: q.questions![0].name, ttl: 30, class: "IN", data: "10.9.9.9" }],
    });
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  };
  (async () => {
    try {
      for (;;) {
        const [m, from] = await udp.receive();
        await udp.send(reply(m, true), from);
      }
    } catch { /* closed */ }
  })();
  (async () => {
    try {
      for await (const c of tcp) {
        (async () => {
          try {
            const len = new Uint8Array(2);
            let got = 0;
            while (got < 2) got += (await c.read(len.subarray(got))) ?? 2;
            const n = (len[0] << 8) | len[1];
            const m = new Uint8Array(n);
            for (let off = 0; off < n;) off += (await c.read(m.subarray(off))) ?? n;
            tcpQueries++;
            const r = reply(m, false);
            const out = new Uint8Array(2 + r.length);
            new DataView(out.buffer).setUint16(0, r.length);
            out.set(r, 2);
            await c.write(out);
          } catch {
            /* client gone */
          } finally {
            c.close();
          }
        })();
      }
    } catch { /* closed */ }
  })();
  return {
    port,
    tcpQueries: () => tcpQueries,
    close() {
      udp.close();
      tcp.close();
    },
  };
}

Deno.test("dns proxy: a truncated UDP upstream reply is asked again over TCP", opts, async () => {
  const fake = startTruncatingUpstream();
  const port = freeDualPort();
  // UDP only: had the truncated reply reached dig, its own TCP retry would find nobody.
  const dost = await startDost(["-D", "-L", `dns://127.0.0.1:${port}/127.0.0.1:${fake.port}`]);
  try {
    const out = await dig(port, "big.test");
    assertStringIncludes(out, "status: NOERROR");
    assert(/big\.test\.\s+\d+\s+IN\s+A\s+10\.9\.9\.9/.test(out), out);
    assert(!out.includes("Truncated"), out);
    assertEquals(fake.tcpQueries(), 1);
    await waitForLog(
      dost,
      `truncated reply from udp://127.0.0.1:${fake.port}, asking again over TCP`,
    );
  } finally {
    await dost.stop();
    fake.close();
  }
});

Deno.test("dns proxy: DoT upstream (dost TLS forward in front of dnsmasq)", opts, async () => {
  const d = await startDnsmasq();
  const tlsPort = freePort();
  const port = freeDualPort();
  const tls = await startDost(["-L", `tcp+tls://127.0.0.1:${tlsPort}/127.0.0.1:${d.port}`]);
  const dost = await startDost(["-D", "-L", `dns://127.0.0.1:${port}/tls://127.0.0.1:${tlsPort}`]);
  try {
    assertEquals(await short(port, "dot.test"), ["10.5.5.5"]);
    assertEquals(seen(d, "dot.test"), 1);
    await waitForLog(dost, `dns: dot.test A via tls://127.0.0.1:${tlsPort}: NOERROR, 1 answer`);
  } finally {
    await dost.stop();
    await tls.stop();
    await d.stop();
  }
});

Deno.test("dns proxy: upstreams through a SOCKS5 chain (TCP and UDP)", opts, async () => {
  const d = await startDnsmasq();
  const socksPort = freeDualPort();
  const tcpPort = freeDualPort();
  const udpPort = freeDualPort();
  const socks = await startDost(["-D", "-L", `socks5://127.0.0.1:${socksPort}?udp=true`]);
  const dost = await startDost([
    "-D",
    "-L",
    `dns://127.0.0.1:${tcpPort}/tcp://127.0.0.1:${d.port}`,
    "-L",
    `dns://127.0.0.1:${udpPort}/udp://127.0.0.1:${d.port}`,
    "-F",
    `socks5://127.0.0.1:${socksPort}`,
  ]);
  try {
    assertEquals(await short(tcpPort, "chain.test"), ["10.4.4.4"]);
    await waitForLog(socks, `→ 127.0.0.1:${d.port}`);
    assert(!socks.logs().includes("udp associate"));
    assertEquals(await short(udpPort, "rec.test"), ["10.1.2.3"]);
    await waitForLog(socks, "association ended");
    assertStringIncludes(socks.logs(), "1 datagrams out, 1 back");
    assertEquals(seen(d, "chain.test") + seen(d, "rec.test"), 2);
    await waitForLog(dost, `dns: rec.test A via udp://127.0.0.1:${d.port}: NOERROR, 1 answer`);
  } finally {
    await dost.stop();
    await socks.stop();
    await d.stop();
  }
});

/** A self-signed certificate for 127.0.0.1 made by openssl. */
async function makeCert(): Promise<{ cert: string; key: string }> {
  const dir = await Deno.makeTempDir();
  try {
    const r = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=doh.test",
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
      cert: await Deno.readTextFile(`${dir}/cert.pem`),
      key: await Deno.readTextFile(`${dir}/key.pem`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A DoH server (RFC 8484 POST) relaying to dnsmasq over UDP; counts its requests. */
function startDoH(tls: { cert: string; key: string }, upstream: number) {
  const ac = new AbortController();
  let requests = 0;
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
    requests++;
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
    requests: () => requests,
    async close() {
      ac.abort();
      await server.finished;
    },
  };
}

Deno.test(
  "dns proxy: DoT clients (mode=tls) and a DoH upstream",
  { ...IT, ...needs("dig", "dnsmasq", "openssl") },
  async () => {
    const d = await startDnsmasq();
    const doh = startDoH(await makeCert(), d.port);
    const port = freePort();
    // No cert=: the listener's self-signed certificate (dig +tls does not verify by default).
    const dost = await startDost([
      "-D",
      "-L",
      `dns://127.0.0.1:${port}/https://127.0.0.1:${doh.port}/dns-query?mode=tls`,
    ]);
    try {
      assertEquals(await short(port, "+tls", "rec.test"), ["10.1.2.3"]);
      assertEquals(await short(port, "+tls", "rec.test", "AAAA"), ["fd00::3"]);
      assertEquals(doh.requests(), 2);
      await waitForLog(
        dost,
        `dns: rec.test AAAA via https://127.0.0.1:${doh.port}/dns-query: NOERROR, 1 answer`,
      );
      // Cached: the DoH server is not asked again.
      assertEquals(await short(port, "+tls", "rec.test"), ["10.1.2.3"]);
      assertEquals(doh.requests(), 2);
    } finally {
      await dost.stop();
      await doh.close();
      await d.stop();
    }
  },
);

Deno.test("dns proxy: bad settings fail at start-up with one line", IT, async () => {
  const port = freePort();
  for (
    const [url, msg] of [
      [`dns://127.0.0.1:${port}/1.1.1.1?mode=quic`, `"quic" is not a dns listener mode`],
      [
        `dns://127.0.0.1:${port}/1.1.1.1?clientIP=nope`,
        `parameter "clientIP": "nope" is not an IP address`,
      ],
      [`dns://127.0.0.1:${port}/ftp://1.1.1.1`, `unknown protocol "ftp"`],
    ]
  ) {
    const r = await runDost(["-L", url]);
    assertEquals(r.code, 1, r.stderr);
    assertStringIncludes(r.stderr, msg);
  }
});

Deno.test({
  name: "dns proxy: mode=udp,tcp answers dig and kdig +tcp on one port",
  ...opts,
  ignore: opts.ignore || needs("kdig").ignore,
  fn: async () => {
    const d = await startDnsmasq();
    const port = freeDualPort();
    const dost = await startDost([
      "-L",
      `dns://127.0.0.1:${port}/udp://127.0.0.1:${d.port}?mode=udp,tcp`,
    ]);
    try {
      assertEquals(await short(port, "dot.test"), ["10.5.5.5"]);
      const out = await new Deno.Command("kdig", {
        args: [
          "@127.0.0.1",
          "-p",
          String(port),
          "+tcp",
          "+short",
          "+timeout=3",
          "+retry=0",
          "rec.test",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = dec.decode(out.stdout).trim();
      assertEquals(text, "10.1.2.3", `kdig +tcp: ${dec.decode(out.stderr)}`);
    } finally {
      await dost.stop();
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "dns proxy: mode=https (DoH) answers dig/kdig +https (HTTP/2) and curl (HTTP/1.1 GET, POST)",
  ...opts,
  ignore: opts.ignore || needs("kdig", "curl").ignore,
  fn: async () => {
    const d = await startDnsmasq();
    const port = freePort();
    const dost = await startDost([
      "-D",
      "-L",
      `dns://127.0.0.1:${port}/udp://127.0.0.1:${d.port}?mode=https`,
    ]);
    const run = async (cmd: string, args: string[], input?: Uint8Array) => {
      const child = new Deno.Command(cmd, {
        args,
        stdin: input ? "piped" : "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      if (input) {
        const w = child.stdin.getWriter();
        await w.write(input);
        await w.close();
      }
      const out = await child.output();
      return { out: out.stdout, text: dec.decode(out.stdout).trim(), err: dec.decode(out.stderr) };
    };
    const answers = (b: Uint8Array) =>
      (dnsPacket.decode(Buffer.from(b)).answers ?? []).map((a) =>
        String((a as { data?: unknown }).data)
      );
    const query = (name: string) =>
      new Uint8Array(dnsPacket.encode({
        type: "query",
        id: 7,
        flags: dnsPacket.RECURSION_DESIRED,
        questions: [{ type: "A", name }],
      }));
    const url = `https://127.0.0.1:${port}/dns-query`;
    try {
      // HTTP/2 by ALPN.
      const dg = await run("dig", [
        "+https",
        "-p",
        String(port),
        "@127.0.0.1",
        "+short",
        "+tries=1",
        "rec.test",
      ]);
      assertEquals(dg.text, "10.1.2.3", dg.err);
      const kd = await run("kdig", [
        "@127.0.0.1",
        "-p",
        String(port),
        "+https",
        "+short",
        "+timeout=3",
        "+retry=0",
        "dot.test",
      ]);
      assertEquals(kd.text, "10.5.5.5", kd.err);
      // HTTP/1.1: GET with ?dns=base64url, POST application/dns-message.
      const b64 = btoa(String.fromCharCode(...query("chain.test"))).replace(/\+/g, "-")
        .replace(/\//g, "_").replace(/=+$/, "");
      const get = await run("curl", ["-sk", "--http1.1", `${url}?dns=${b64}`]);
      assertEquals(answers(get.out), ["10.4.4.4"], get.err);
      const post = await run("curl", [
        "-sk",
        "--http1.1",
        "-H",
        "Content-Type: application/dns-message",
        "--data-binary",
        "@-",
        url,
      ], query("name.test"));
      assertEquals(answers(post.out), ["127.0.0.9"], post.err);
      // Refused without reaching the handler: no query, wrong media type, wrong method.
      const codes = [];
      for (
        const args of [[url], ["-X", "POST", "-H", "Content-Type: text/plain", "-d", "x", url], [
          "-X",
          "PUT",
          url,
        ]]
      ) {
        codes.push(
          (await run("curl", [
            "-sk",
            "--http1.1",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            ...args,
          ])).text,
        );
      }
      assertEquals(codes, ["400", "415", "405"]);
      const code = async (args: string[], input?: Uint8Array) =>
        (await run(
          "curl",
          ["-sk", "--http1.1", "-o", "/dev/null", "-w", "%{http_code}", ...args],
          input,
        ))
          .text;
      const dnsPost = ["-H", "Content-Type: application/dns-message", "--data-binary"];
      // Not a DNS message: the handler drops it, so the request gets 502.
      assertEquals(await code([...dnsPost, "xyz", url]), "502");
      // Oversized (a 70,000-byte body): 413.
      assertEquals(await code([...dnsPost, "@-", url], new Uint8Array(70_000)), "413");
      // A request cut off inside its headers: dropped, the service goes on.
      await new Promise<void>((resolve, reject) => {
        const cut = tlsConnect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
          cut.end("POST /dns-query HTTP/1.1\r\nHost: x\r\nContent-Le", () => resolve());
        });
        cut.on("error", reject);
      });
      await waitForLog(dost, /DoH over HTTP\/1\.1: request head truncated/);
      // Garbage instead of TLS: logged, and the service goes on.
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      await c.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
      await c.closeWrite();
      while ((await c.read(new Uint8Array(512))) !== null) { /* drain */ }
      c.close();
      const again = await run("curl", ["-sk", "--http2", `${url}?dns=${b64}`]);
      assertEquals(answers(again.out), ["10.4.4.4"], again.err);
    } finally {
      await dost.stop();
      await d.stop();
    }
  },
});

/**
 * HTTP proxy handler end to end: real curl (plain forwarding, CONNECT, HTTPS through CONNECT,
 * Basic auth) and raw sockets (exact CONNECT replies, pipelining, keep-alive after 407,
 * WebSocket upgrade, probe resistance, bad input) against a dost process. Loopback only.
 */
import { assert, assertEquals, assertStringIncludes } from "./lib/assert.ts";
import {
  curl,
  freePort,
  IT,
  needs,
  rawExchange,
  runDost,
  sha256,
  startDost,
  startEcho,
  startOrigin,
  talk,
  waitForLog,
} from "./lib/harness.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const CONNECT_OK = "HTTP/1.1 200 Connection established\r\nProxy-Agent: gost/3.0\r\n\r\n";

/** A client conn that reads whole HTTP responses (Content-Length framed) one at a time. */
class RawClient {
  private buf = new Uint8Array(0);
  /** Cuts the connection if a test hangs, so a failure cannot stall the suite. */
  private readonly safety: ReturnType<typeof setTimeout>;
  private constructor(readonly c: Deno.Conn) {
    this.safety = setTimeout(() => this.close(), 10_000);
  }
  static async open(port: number): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }
  async send(s: string | Uint8Array): Promise<void> {
    const b = typeof s === "string" ? enc.encode(s) : s;
    for (let off = 0; off < b.length;) off += await this.c.write(b.subarray(off));
  }
  private async more(): Promise<void> {
    const tmp = new Uint8Array(65536);
    const n = await this.c.read(tmp);
    if (n === null) throw new Error("connection closed by dost");
    const nb = new Uint8Array(this.buf.length + n);
    nb.set(this.buf);
    nb.set(tmp.subarray(0, n), this.buf.length);
    this.buf = nb;
  }
  /** Reads exactly n bytes. */
  async take(n: number): Promise<Uint8Array> {
    while (this.buf.length < n) await this.more();
    const out = this.buf.slice(0, n);
    this.buf = this.buf.slice(n);
    return out;
  }
  /** Reads one response: head text and body (by Content-Length, unless `noBody`). */
  async response(noBody = false): Promise<{ head: string; body: string }> {
    let end: number;
    while ((end = dec.decode(this.buf).indexOf("\r\n\r\n")) < 0) await this.more();
    const head = dec.decode(await this.take(end + 4));
    const m = /\r\ncontent-length: *(\d+)/i.exec(head);
    const body = m && !noBody ? dec.decode(await this.take(Number(m[1]))) : "";
    return { head, body };
  }
  /** True when the server closes (EOF or reset) within `ms`. */
  async closedWithin(ms: number): Promise<boolean> {
    const t = setTimeout(() => this.close(), ms);
    try {
      const n = await this.c.read(new Uint8Array(1024));
      return n === null;
    } catch {
      return true;
    } finally {
      clearTimeout(t);
    }
  }
  close(): void {
    clearTimeout(this.safety);
    try {
      this.c.close();
    } catch { /* closed */ }
  }
}

/** A WebSocket echo origin (Deno.serve) on 127.0.0.1. */
function startWsOrigin(): { port: number; close(): Promise<void> } {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    (req) => {
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.onmessage = (e) => socket.send(`echo:${e.data}`);
      return response;
    },
  );
  return {
    port: server.addr.port,
    async close() {
      ac.abort();
      await server.finished;
    },
  };
}

Deno.test({
  name: "http: forwarding with curl: GET, POST, chunked upload, 1 MiB, keep-alive, headers, 502",
  ...IT,
  ...needs("curl"),
  fn: async () => {
    const origin = startOrigin();
    const port = freePort();
    const dost = await startDost(["-D", "-L", `http://127.0.0.1:${port}`]);
    const proxy = ["--proxy", `http://127.0.0.1:${port}`];
    const o = `http://127.0.0.1:${origin.port}`;
    const tmp = await Deno.makeTempDir();
    try {
      const get = await curl([...proxy, `${o}/x`]);
      assertEquals([get.code, get.stdout], [0, "hello /x"], get.stderr);

      const post = await curl([...proxy, "-d", "some form data", `${o}/post`]);
      assertEquals([post.code, post.stdout], [0, "some form data"], post.stderr);

      const upload = new Uint8Array(300_000);
      for (let i = 0; i < upload.length; i += 65536) {
        crypto.getRandomValues(upload.subarray(i, i + 65536));
      }
      await Deno.writeFile(`${tmp}/up.bin`, upload);
      const chunked = await curl([
        ...proxy,
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        `@${tmp}/up.bin`,
        "-o",
        `${tmp}/echoed.bin`,
        `${o}/upload`,
      ]);
      assertEquals(chunked.code, 0, chunked.stderr);
      assertEquals(await sha256(await Deno.readFile(`${tmp}/echoed.bin`)), await sha256(upload));

      const big = await curl([...proxy, "-o", `${tmp}/big.bin`, `${o}/big`]);
      assertEquals(big.code, 0, big.stderr);
      const got = await Deno.readFile(`${tmp}/big.bin`);
      assertEquals(got.length, 1 << 20);
      assertEquals(await sha256(got), await sha256(new Uint8Array(1 << 20).fill(97)));

      // One curl, three URLs: one client connection carries all three requests.
      const ka = await curl([...proxy, `${o}/k1`, `${o}/k2`, `${o}/k3`]);
      assertEquals([ka.code, ka.stdout], [0, "hello /k1hello /k2hello /k3"], ka.stderr);
      const clients = new Set(
        [...dost.logs().matchAll(/\[service-0\/([\d.:]+)\] http GET \S+ → \S+\/k\d/g)].map((m) =>
          m[1]
        ),
      );
      assertEquals(clients.size, 1, dost.logs());

      // Proxy credentials and hop-by-hop fields never reach the origin.
      const hdr = await curl([
        ...proxy,
        "--proxy-user",
        "someone:secret",
        "-H",
        "Proxy-Connection: keep-alive",
        "-H",
        "Gost-Record: all",
        `${o}/headers`,
      ]);
      assertEquals(hdr.code, 0, hdr.stderr);
      const seen = JSON.parse(hdr.stdout) as Record<string, string>;
      assertEquals(seen["host"], `127.0.0.1:${origin.port}`);
      for (const h of ["proxy-authorization", "proxy-connection", "gost-record", "connection"]) {
        assert(!(h in seen), `${h} reached the origin: ${hdr.stdout}`);
      }

      const closed = freePort();
      const bad = await curl([
        ...proxy,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        `http://127.0.0.1:${closed}/`,
      ]);
      assertEquals(bad.stdout, "502");
    } finally {
      await dost.stop();
      await origin.close();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "http: raw clients: CONNECT replies, pipelining, HTTP/1.0, host switch, 400, WebSocket",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const echo = startEcho();
    const ws = startWsOrigin();
    const port = freePort();
    const agentPort = freePort();
    const dost = await startDost([
      "-D",
      "-L",
      `http://127.0.0.1:${port}`,
      "-L",
      `http://127.0.0.1:${agentPort}?proxyAgent=dost-test/1`,
    ]);
    const o = `127.0.0.1:${origin.port}`;
    try {
      // Exact 200 reply; bytes pipelined right after the CONNECT head reach the target.
      const tun = await talk(
        port,
        `CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\nping`,
        { closeWrite: true },
      );
      assertEquals(tun.text, `${CONNECT_OK}ping`);
      const agent = await rawExchange(
        agentPort,
        `CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\n\r\n`,
        { max: 64 },
      );
      assertEquals(
        dec.decode(agent),
        "HTTP/1.1 200 Connection established\r\nProxy-Agent: dost-test/1\r\n\r\n",
      );

      // A closed port: 502 with Proxy-Agent, then close.
      const refused = await talk(port, `CONNECT 127.0.0.1:${freePort()} HTTP/1.1\r\n\r\n`);
      assert(refused.closedByPeer);
      assert(refused.text.startsWith("HTTP/1.1 502 Bad Gateway\r\n"), refused.text);
      assertStringIncludes(refused.text, "\r\nProxy-Agent: gost/3.0\r\n");

      // Two pipelined requests to different host names (so a redial), the last one closing.
      const piped = await talk(
        port,
        `GET http://${o}/p1 HTTP/1.1\r\nHost: x\r\n\r\n` +
          `GET http://localhost:${origin.port}/p2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
      assert(piped.closedByPeer);
      assertEquals(piped.text.match(/HTTP\/1\.1 200 /g)?.length, 2, piped.text);
      assert(/hello \/p1HTTP\/1\.1 200 [\s\S]*hello \/p2$/.test(piped.text), piped.text);
      assertStringIncludes(piped.text.split("hello /p1")[1].toLowerCase(), "connection: close");

      // HTTP/1.0 without keep-alive: one response, then close.
      const old = await talk(port, `GET http://${o}/old HTTP/1.0\r\n\r\n`);
      assert(old.closedByPeer);
      assert(old.text.endsWith("\r\n\r\nhello /old"), old.text);

      // HEAD: no body even though the response has a length; the connection stays usable.
      const rc = await RawClient.open(port);
      try {
        await rc.send(`HEAD http://${o}/h HTTP/1.1\r\nHost: x\r\n\r\n`);
        const head = await rc.response(true);
        assert(head.head.startsWith("HTTP/1.1 200 "), head.head);
        await rc.send(`GET http://${o}/after-head HTTP/1.1\r\nHost: x\r\n\r\n`);
        const after = await rc.response();
        assertEquals(after.body.slice(0, 17), "hello /after-head");
      } finally {
        rc.close();
      }

      // Origin-form (not a proxy request) and non-http schemes: 400.
      for (const line of [`GET /x HTTP/1.1\r\nHost: ${o}`, `GET ftp://${o}/ HTTP/1.1`]) {
        const r = await talk(port, `${line}\r\n\r\n`);
        assert(r.text.startsWith("HTTP/1.1 400 Bad Request\r\n"), r.text);
        assert(r.closedByPeer);
      }

      // WebSocket: the 101 is passed on and the connection becomes a raw relay.
      const wc = await RawClient.open(port);
      try {
        await wc.send(
          `GET http://127.0.0.1:${ws.port}/ws HTTP/1.1\r\nHost: 127.0.0.1:${ws.port}\r\n` +
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" +
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        );
        const up = await wc.response();
        assert(up.head.startsWith("HTTP/1.1 101 "), up.head);
        assertStringIncludes(up.head.toLowerCase(), "upgrade: websocket");
        assertStringIncludes(up.head, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        const payload = enc.encode("hi there");
        const mask = [1, 2, 3, 4];
        await wc.send(
          Uint8Array.from([
            0x81,
            0x80 | payload.length,
            ...mask,
            ...payload.map((b, i) => b ^ mask[i % 4]),
          ]),
        );
        const frameHead = await wc.take(2);
        assertEquals([frameHead[0], frameHead[1]], [0x81, 13]);
        assertEquals(dec.decode(await wc.take(13)), "echo:hi there");
      } finally {
        wc.close();
      }
    } finally {
      await dost.stop();
      await origin.close();
      await ws.close();
      echo.close();
    }
  },
});

/**
 * An origin that answers each connection's first request with `ok<n>` (Content-Length framed,
 * with `Connection: close` only for `/close`) and then closes: a kept upstream connection goes
 * stale under dost.
 */
function startOneShotOrigin(): { port: number; accepted: () => number; close(): void } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let n = 0;
  (async () => {
    for await (const c of l) {
      const id = ++n;
      (async () => {
        const buf = new Uint8Array(4096);
        let head = "";
        while (!head.includes("\r\n\r\n")) {
          const r = await c.read(buf);
          if (r === null) break;
          head += dec.decode(buf.subarray(0, r));
        }
        const close = head.includes("/close ") ? "Connection: close\r\n" : "";
        await c.write(enc.encode(`HTTP/1.1 200 OK\r\n${close}Content-Length: 3\r\n\r\nok${id}`));
      })().catch(() => {}).finally(() => c.close());
    }
  })().catch(() => {});
  return { port: (l.addr as Deno.NetAddr).port, accepted: () => n, close: () => l.close() };
}

Deno.test({
  name: "http: stale kept upstream is redialled; an early final response ends the upload",
  ...IT,
  ...needs("curl"),
  fn: async () => {
    const oneShot = startOneShotOrigin();
    const ac = new AbortController();
    // Refuses uploads without reading them, so no 100 Continue is ever sent.
    const strict = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
      () => new Response("too big", { status: 413 }),
    );
    const tmp = await Deno.makeTempDir();
    const port = freePort();
    const dost = await startDost(["-D", "-L", `http://127.0.0.1:${port}`]);
    try {
      const rc = await RawClient.open(port);
      try {
        const req = `GET http://127.0.0.1:${oneShot.port}/ HTTP/1.1\r\nHost: x\r\n\r\n`;
        await rc.send(req);
        assertEquals((await rc.response()).body, "ok1");
        await waitForLog(dost.logs, `http GET`);
        await rc.send(req);
        assertEquals((await rc.response()).body, "ok2");
        assertEquals(oneShot.accepted(), 2);
        // The server says close: dost passes that on and ends the client connection too.
        await rc.send(`GET http://127.0.0.1:${oneShot.port}/close HTTP/1.1\r\nHost: x\r\n\r\n`);
        const last = await rc.response();
        assertEquals(last.body, "ok3");
        assertStringIncludes(last.head, "\r\nConnection: close\r\n");
        assert(await rc.closedWithin(5000), "client connection left open after Connection: close");
      } finally {
        rc.close();
      }
      await waitForLog(dost.logs, "went stale");

      const upload = new Uint8Array(2 << 20);
      await Deno.writeFile(`${tmp}/up.bin`, upload);
      const r = await curl([
        "-w",
        " %{http_code}",
        "--proxy",
        `http://127.0.0.1:${port}`,
        "--data-binary",
        `@${tmp}/up.bin`,
        `http://127.0.0.1:${strict.addr.port}/upload`,
      ]);
      assertEquals(r.stdout, "too big 413", r.stderr);
    } finally {
      await dost.stop();
      oneShot.close();
      ac.abort();
      await strict.finished;
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "http: HTTPS origin through CONNECT (curl -k), and --proxytunnel for plain http",
  ...IT,
  ...needs("curl", "openssl"),
  fn: async () => {
    const tmp = await Deno.makeTempDir();
    const gen = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-days",
        "1",
        "-keyout",
        `${tmp}/k.pem`,
        "-out",
        `${tmp}/c.pem`,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert(gen.success, dec.decode(gen.stderr));
    const ac = new AbortController();
    const tls = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      cert: await Deno.readTextFile(`${tmp}/c.pem`),
      key: await Deno.readTextFile(`${tmp}/k.pem`),
      signal: ac.signal,
      onListen: () => {},
    }, (req) => new Response(`secure ${new URL(req.url).pathname}`));
    const origin = startOrigin();
    const port = freePort();
    const dost = await startDost(["-L", `http://127.0.0.1:${port}`]);
    try {
      const proxy = ["--proxy", `http://127.0.0.1:${port}`];
      const r = await curl(["-k", ...proxy, `https://127.0.0.1:${tls.addr.port}/x`]);
      assertEquals([r.code, r.stdout], [0, "secure /x"], r.stderr);
      const verified = await curl([
        "--cacert",
        `${tmp}/c.pem`,
        ...proxy,
        `https://localhost:${tls.addr.port}/named`,
      ]);
      assertEquals([verified.code, verified.stdout], [0, "secure /named"], verified.stderr);
      const p = await curl(["-p", ...proxy, `http://127.0.0.1:${origin.port}/tunnelled`]);
      assertEquals([p.code, p.stdout], [0, "hello /tunnelled"], p.stderr);
    } finally {
      await dost.stop();
      ac.abort();
      await tls.finished;
      await origin.close();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "http: Basic auth: good, bad and no credentials, URL credentials, retry after 407",
  ...IT,
  ...needs("curl"),
  fn: async () => {
    const origin = startOrigin();
    const port = freePort();
    const encPort = freePort();
    const dost = await startDost([
      "-D",
      "-L",
      `http://user:pass@127.0.0.1:${port}`,
      "-L",
      `http://a%40b:p%3Ass@127.0.0.1:${encPort}?authBasicRealm=dost-test`,
    ]);
    const url = `http://127.0.0.1:${origin.port}/secret`;
    const code = ["-o", "/dev/null", "-w", "%{http_code}"];
    try {
      const ok = await curl([
        "--proxy",
        `http://127.0.0.1:${port}`,
        "--proxy-user",
        "user:pass",
        url,
      ]);
      assertEquals([ok.code, ok.stdout], [0, "hello /secret"], ok.stderr);
      const inUrl = await curl(["--proxy", `http://user:pass@127.0.0.1:${port}`, url]);
      assertEquals([inUrl.code, inUrl.stdout], [0, "hello /secret"], inUrl.stderr);
      // curl first asks without credentials, then retries on the same connection after the 407.
      const anyauth = await curl([
        "--proxy-anyauth",
        "--proxy-user",
        "user:pass",
        "--proxy",
        `http://127.0.0.1:${port}`,
        url,
      ]);
      assertEquals([anyauth.code, anyauth.stdout], [0, "hello /secret"], anyauth.stderr);
      const tunnel = await curl(["-p", "--proxy", `http://user:pass@127.0.0.1:${port}`, url]);
      assertEquals([tunnel.code, tunnel.stdout], [0, "hello /secret"], tunnel.stderr);

      // Wrong password: 407 with the challenge (headers dumped to stdout by -D -).
      const bad = await curl([
        "-D",
        "-",
        ...code,
        "--proxy",
        `http://127.0.0.1:${port}`,
        "--proxy-user",
        "user:wrong",
        url,
      ]);
      assert(bad.stdout.startsWith("HTTP/1.1 407 Proxy Authentication Required\r\n"), bad.stdout);
      assertStringIncludes(bad.stdout, 'Proxy-Authenticate: Basic realm="gost"\r\n');
      assertStringIncludes(bad.stdout, "Proxy-Agent: gost/3.0\r\n");
      assert(bad.stdout.endsWith("407"), bad.stdout);
      const none = await curl([...code, "--proxy", `http://127.0.0.1:${port}`, url]);
      assertEquals(none.stdout, "407");
      const noneConnect = await curl(["-p", ...code, "--proxy", `http://127.0.0.1:${port}`, url]);
      assertEquals(noneConnect.code, 56, noneConnect.stderr); // curl: CONNECT refused (407)

      // Percent-encoded credentials (user "a@b", password "p:ss") and a custom realm.
      const encOk = await curl(["--proxy", `http://a%40b:p%3Ass@127.0.0.1:${encPort}`, url]);
      assertEquals([encOk.code, encOk.stdout], [0, "hello /secret"], encOk.stderr);
      const realm = await curl(["-D", "-", ...code, "--proxy", `http://127.0.0.1:${encPort}`, url]);
      assertStringIncludes(realm.stdout, 'Proxy-Authenticate: Basic realm="dost-test"\r\n');

      // The connection survives a 407: the retry with credentials goes over the same socket.
      const rc = await RawClient.open(port);
      try {
        const req = `GET ${url} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n`;
        await rc.send(`${req}\r\n`);
        const challenge = await rc.response();
        assert(challenge.head.startsWith("HTTP/1.1 407 "), challenge.head);
        assert(!/connection: close/i.test(challenge.head), challenge.head);
        await rc.send(`${req}Proxy-Authorization: Basic ${btoa("user:pass")}\r\n\r\n`);
        const res = await rc.response();
        assert(res.head.startsWith("HTTP/1.1 200 "), res.head);
        assertEquals(res.body, "hello /secret");
      } finally {
        rc.close();
      }
      await waitForLog(dost.logs, `authentication failed for user "user"`);
    } finally {
      await dost.stop();
      await origin.close();
    }
  },
});

Deno.test({
  name: "http: probe resistance: code, web, host, file decoys; knock shows the real 407",
  ...IT,
  ...needs("curl"),
  fn: async () => {
    const origin = startOrigin();
    const echo = startEcho();
    const tmp = await Deno.makeTempDir();
    const page = "<html><body>nothing to see</body></html>\n";
    await Deno.writeTextFile(`${tmp}/decoy.html`, page);
    const [code, web, host, file, knock] = [0, 1, 2, 3, 4].map(() => freePort());
    const at = (p: number) => `http://u:p@127.0.0.1:${p}`;
    const dost = await startDost([
      "-L",
      `${at(code)}?probe_resist=code:404`,
      "-L",
      `${at(web)}?probeResist=web:127.0.0.1:${origin.port}/decoy`,
      "-L",
      `${at(host)}?probe_resist=host:127.0.0.1:${echo.port}`,
      "-L",
      `${at(file)}?probe_resist=file:${tmp}/decoy.html`,
      "-L",
      `${at(knock)}?probe_resist=code:404&knock=knock.test`,
    ]);
    const url = `http://127.0.0.1:${origin.port}/real`;
    const status = ["-o", "/dev/null", "-w", "%{http_code}"];
    const via = (p: number) => ["--proxy", `http://127.0.0.1:${p}`];
    try {
      const c404 = await curl([...status, ...via(code), url]);
      assertEquals(c404.stdout, "404");
      const authed = await curl([...via(code), "--proxy-user", "u:p", url]);
      assertEquals([authed.code, authed.stdout], [0, "hello /real"], authed.stderr);

      const w = await curl(["-w", " %{http_code}", ...via(web), url]);
      assertEquals(w.stdout, "hello /decoy 200", w.stderr);

      // The raw client connection is piped to the echo server, the bytes already read included.
      const probe = `GET http://example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\nafter-head`;
      const h = await talk(host, probe, { closeWrite: true });
      assertEquals(h.text, probe);

      const f = await curl(["-D", "-", ...via(file), url]);
      assert(f.stdout.startsWith("HTTP/1.1 200 OK\r\n"), f.stdout);
      assertStringIncludes(f.stdout, "Content-Type: text/html\r\n");
      assert(f.stdout.endsWith(`\r\n\r\n${page}`), f.stdout);
      assert(!f.stdout.includes("Proxy-"), f.stdout);

      const k = await curl([...status, ...via(knock), "http://knock.test/"]);
      assertEquals(k.stdout, "407");
      const kc = await curl(["-p", "-D", "-", ...status, ...via(knock), "http://KNOCK.test:8443/"]);
      assertStringIncludes(kc.stdout, "HTTP/1.1 407 ");
      const other = await curl([...status, ...via(knock), url]);
      assertEquals(other.stdout, "404");
    } finally {
      await dost.stop();
      await origin.close();
      echo.close();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "http: garbage, truncated, oversized and silent clients are closed; service keeps serving",
  ...IT,
  ...needs("curl"),
  fn: async () => {
    const origin = startOrigin();
    const port = freePort();
    const echo = startEcho();
    const dost = await startDost(["-D", "-L", `http://127.0.0.1:${port}?readTimeout=1s`]);
    try {
      // A TLS ClientHello: refused at its first byte, without waiting for a line end.
      const hello = Uint8Array.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 3, 3]);
      const tlsJunk = await talk(port, hello, { safetyMs: 5000 });
      assert(tlsJunk.closedByPeer, "TLS bytes were not closed");
      assert(tlsJunk.text.startsWith("HTTP/1.1 400 Bad Request\r\n"), tlsJunk.text);

      const random = crypto.getRandomValues(new Uint8Array(8192));
      random[0] = 0xff;
      const bin = await talk(port, random, { safetyMs: 5000 });
      assert(bin.closedByPeer, "binary junk was not closed");
      assert(bin.text === "" || bin.text.startsWith("HTTP/1.1 400 "), bin.text);

      const cut = await talk(
        port,
        `GET http://127.0.0.1:${origin.port}/x HTTP/1.1\r\nHost: x\r\nAcc`,
        { closeWrite: true, safetyMs: 5000 },
      );
      assert(cut.closedByPeer, "truncated head was not closed");
      assert(cut.text === "" || cut.text.startsWith("HTTP/1.1 400 "), cut.text);

      const huge = await talk(
        port,
        `GET http://127.0.0.1:${origin.port}/x HTTP/1.1\r\nX-Big: ${"a".repeat(1 << 20)}\r\n\r\n`,
        { safetyMs: 8000 },
      );
      assert(huge.closedByPeer, "1 MiB header was not closed");
      assert(huge.text.startsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n"), huge.text);

      // Says nothing: cut at readTimeout (1 s), nothing written.
      const silent = await talk(port, "", { safetyMs: 8000 });
      assertEquals([silent.closedByPeer, silent.text], [true, ""]);
      await waitForLog(dost.logs, "http handshake timed out after 1000 ms");

      // A bad body after a good head: chunked framing broken.
      const badBody = await talk(
        port,
        `POST http://127.0.0.1:${echo.port}/p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n` +
          "zz\r\nnot hex\r\n",
        { safetyMs: 5000 },
      );
      assert(badBody.closedByPeer, "broken chunked body was not closed");

      const ok = await curl([
        "--proxy",
        `http://127.0.0.1:${port}`,
        `http://127.0.0.1:${origin.port}/ok`,
      ]);
      assertEquals([ok.code, ok.stdout], [0, "hello /ok"], ok.stderr);
    } finally {
      await dost.stop();
      await origin.close();
      echo.close();
    }
  },
});

Deno.test({
  name: "http: invalid probe_resist and udp=true fail at start-up with one line",
  ...IT,
  fn: async () => {
    const bad = await runDost(["-L", `http://u:p@127.0.0.1:${freePort()}?probe_resist=bogus:1`]);
    assertEquals(bad.code, 1, bad.stderr);
    assertStringIncludes(bad.stderr, `parameter "probeResist": unknown type "bogus"`);
    const udp = await runDost(["-L", `http://127.0.0.1:${freePort()}?udp=true`]);
    assertEquals(udp.code, 1, udp.stderr);
    assertStringIncludes(udp.stderr, "http handler: udp=true (UDP over HTTP) is not supported yet");
    assertEquals(udp.stderr.trim().split("\n").length, 1, udp.stderr);
  },
});

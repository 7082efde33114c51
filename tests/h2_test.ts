/**
 * HTTP/2: the `http2` proxy (served to a node:http2 client — this machine's curl 7.88 has no
 * --proxy-http2 — and used by dost's own `-F http2://`), and the `h2`/`h2c` tunnel transports:
 * curl through socks5+h2/h2c, a byte-exact 20 MB transfer, 20 parallel tunnels on one HTTP/2
 * connection, h2 as hop 2 of a chain, and bad input (garbage, a truncated preface, wrong
 * method, an unreachable target) that must not hurt the service.
 */
import * as http2 from "node:http2";
import * as tls from "node:tls";
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
  waitForLog,
} from "./lib/harness.ts";
import { echoThrough, patternBytes, socks5Tunnel } from "./lib/tunnel.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** An HTTP/2 client session to 127.0.0.1:port (TLS with ALPN h2, or h2c). */
async function h2Session(port: number, secure: boolean): Promise<http2.ClientHttp2Session> {
  let socket: unknown;
  if (secure) {
    const s = tls.connect({
      host: "127.0.0.1",
      port,
      ALPNProtocols: ["h2"],
      rejectUnauthorized: false,
    });
    await new Promise<void>((res, rej) => {
      s.once("secureConnect", () => res());
      s.once("error", rej);
    });
    assertEquals(s.alpnProtocol, "h2", "ALPN");
    socket = s;
  }
  const url = `${secure ? "https" : "http"}://127.0.0.1:${port}`;
  const sess = http2.connect(url, socket ? { createConnection: () => socket as never } : {});
  sess.on("error", () => {});
  await new Promise<void>((res, rej) => {
    sess.once("remoteSettings", () => res());
    sess.once("error", rej);
  });
  return sess;
}

/** Sends a request with `body`; resolves with the status, headers and the whole response body. */
function exchange(
  sess: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: Uint8Array,
): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: Uint8Array }> {
  return new Promise((resolve, reject) => {
    const req = sess.request(headers, { endStream: false });
    let h: http2.IncomingHttpHeaders = {};
    const chunks: Uint8Array[] = [];
    req.on("response", (x) => h = x);
    req.on("data", (d: Uint8Array) => chunks.push(d));
    req.on("error", reject);
    req.on("close", () => {
      const all = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
      let o = 0;
      for (const c of chunks) {
        all.set(c, o);
        o += c.length;
      }
      resolve({ status: Number(h[":status"]), headers: h, body: all });
    });
    if (body) req.write(body);
    req.end();
  });
}

const basic = (u: string, p: string) => `Basic ${btoa(`${u}:${p}`)}`;

Deno.test({
  name:
    "h2: -L http2:// serves CONNECT, plain GET, 407, 503 to node:http2 and curl (HTTP/1.1); bad input",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const origin = startOrigin();
    const port = freePort();
    const dost = await startDost(["-D", "-L", `http2://u:p@127.0.0.1:${port}`]);
    try {
      const sess = await h2Session(port, true);
      const auth = basic("u", "p");
      // CONNECT tunnels, several on one session.
      const rs = await Promise.all([1, 2, 3].map((i) =>
        exchange(sess, {
          ":method": "CONNECT",
          ":authority": `127.0.0.1:${echo.port}`,
          "proxy-authorization": auth,
        }, enc.encode(`ping ${i}`))
      ));
      rs.forEach((r, i) => {
        assertEquals(r.status, 200);
        assertEquals(dec.decode(r.body), `ping ${i + 1}`);
      });
      // A plain request is forwarded.
      const g = await exchange(sess, {
        ":method": "GET",
        ":scheme": "http",
        ":authority": `127.0.0.1:${origin.port}`,
        ":path": "/x",
        "proxy-authorization": auth,
      });
      assertEquals(g.status, 200);
      assertEquals(dec.decode(g.body), "hello /x");
      const post = await exchange(sess, {
        ":method": "POST",
        ":scheme": "http",
        ":authority": `127.0.0.1:${origin.port}`,
        ":path": "/echo",
        "proxy-authorization": auth,
      }, enc.encode("posted body"));
      assertEquals(dec.decode(post.body), "posted body");
      // No credentials: 407 with the challenge; wrong ones too.
      const noAuth = await exchange(sess, {
        ":method": "CONNECT",
        ":authority": `127.0.0.1:${echo.port}`,
      });
      assertEquals(noAuth.status, 407);
      assertEquals(noAuth.headers["proxy-authenticate"], 'Basic realm="gost"');
      const badAuth = await exchange(sess, {
        ":method": "CONNECT",
        ":authority": `127.0.0.1:${echo.port}`,
        "proxy-authorization": basic("u", "x"),
      });
      assertEquals(badAuth.status, 407);
      // Unreachable target: 503, as gost answers.
      const refused = await exchange(sess, {
        ":method": "CONNECT",
        ":authority": `127.0.0.1:${freePort()}`,
        "proxy-authorization": auth,
      });
      assertEquals(refused.status, 503);
      // Malformed authority: 400.
      const bad = await exchange(sess, {
        ":method": "CONNECT",
        ":authority": "example.com:99999",
        "proxy-authorization": auth,
      });
      assertEquals(bad.status, 400);
      sess.close();

      // curl 7.88 has no --proxy-http2: over TLS without h2 by ALPN it speaks HTTP/1.1, which
      // the listener hands to the HTTP proxy (as gost's Go server falls back to).
      const proxy = ["-x", `https://127.0.0.1:${port}`, "--proxy-insecure"];
      const url = `http://127.0.0.1:${origin.port}/c`;
      assertEquals((await curl([...proxy, "-U", "u:p", url])).stdout, "hello /c");
      assertEquals((await curl([...proxy, "-U", "u:p", "-p", url])).stdout, "hello /c");
      const denied = await curl([...proxy, "-o", "/dev/null", "-w", "%{http_code}", url]);
      assertEquals(denied.stdout, "407");

      // Garbage (not TLS), then a TLS client that sends a truncated preface and goes away.
      await rawExchange(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", { ms: 2000 });
      const t = tls.connect({
        host: "127.0.0.1",
        port,
        ALPNProtocols: ["h2"],
        rejectUnauthorized: false,
      });
      await new Promise((r) => t.once("secureConnect", r));
      t.write("PRI * HTTP/2.0\r\n");
      await new Promise((r) => setTimeout(r, 100));
      t.destroy();
      await waitForLog(dost, /tls handshake failed|http2 session failed/);
      await waitForLog(dost, /http2 session failed: .*preface/);
      // The service still serves.
      const again = await h2Session(port, true);
      const ok = await exchange(again, {
        ":method": "CONNECT",
        ":authority": `127.0.0.1:${echo.port}`,
        "proxy-authorization": auth,
      }, enc.encode("still here"));
      assertEquals(dec.decode(ok.body), "still here");
      again.close();
    } catch (e) {
      console.error(dost.logs());
      throw e;
    } finally {
      await dost.stop();
      echo.close();
      await origin.close();
    }
  },
});

Deno.test({
  name: "h2: dost -F http2:// reaches the origin through one HTTP/2 connection; 407 and 503",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const echo = startEcho();
    const [b, a, bad] = [freePort(), freePort(), freePort()];
    const server = await startDost(["-D", "-L", `http2://u:p@127.0.0.1:${b}`]);
    const file = await routesFile([
      { local: `socks5://127.0.0.1:${a}`, node: `http2://u:p@127.0.0.1:${b}` },
      { local: `socks5://127.0.0.1:${bad}`, node: `http2://u:wrong@127.0.0.1:${b}` },
    ]);
    const client = await startDost(["-C", file], { services: 2 }).finally(() => Deno.remove(file));
    try {
      const r = await curl(["-x", `socks5h://127.0.0.1:${a}`, `http://127.0.0.1:${origin.port}/a`]);
      assertEquals(r.stdout, "hello /a", r.stderr);
      const data = patternBytes(128 << 10, 7);
      const backs = await Promise.all(
        Array.from({ length: 20 }, async () => echoThrough(await socks5Tunnel(a, echo.port), data)),
      );
      for (const x of backs) assertEquals(await sha256(x), await sha256(data));
      const sessions = server.logs().match(/http2 session started/g) ?? [];
      assertEquals(sessions.length, 1, server.logs());
      // Wrong credentials: the SOCKS5 client is refused (0x02, not allowed).
      const denied = await curl([
        "-x",
        `socks5h://127.0.0.1:${bad}`,
        `http://127.0.0.1:${origin.port}/`,
      ]);
      assert(denied.code !== 0, "wrong credentials must fail");
      assertStringIncludes(server.logs(), 'authentication failed for user "u"');
      // An unreachable target: the node answers 503, the SOCKS5 client gets "host unreachable".
      const gone = await curl([
        "-x",
        `socks5h://127.0.0.1:${a}`,
        `http://127.0.0.1:${freePort()}/`,
      ]);
      assert(gone.code !== 0);
      await waitForLog(client, "proxy answered 503");
    } finally {
      await client.stop();
      await server.stop();
      await origin.close();
      echo.close();
    }
  },
});

/** A gost v2 JSON config with one route per entry (each its own chain). */
async function routesFile(routes: { local: string; node: string }[]): Promise<string> {
  const file = await Deno.makeTempFile({ suffix: ".json" });
  await Deno.writeTextFile(
    file,
    JSON.stringify({
      Routes: routes.map((r) => ({ ServeNodes: [r.local], ChainNodes: [r.node] })),
    }),
  );
  return file;
}

Deno.test({
  name: "h2: socks5+h2 / socks5+h2c: curl, a 20 MB sha256 echo, 20 tunnels on one connection",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const echo = startEcho();
    const [s1, s2, c1, c2, f1, f2] = Array.from({ length: 6 }, freePort);
    const server = await startDost([
      "-D",
      "-L",
      `socks5+h2://127.0.0.1:${s1}`,
      "-L",
      `socks5+h2c://127.0.0.1:${s2}?path=/tun`,
    ]);
    const file = await routesFile([
      { local: `socks5://127.0.0.1:${c1}`, node: `socks5+h2://127.0.0.1:${s1}` },
      { local: `socks5://127.0.0.1:${c2}`, node: `socks5+h2c://127.0.0.1:${s2}?path=/tun` },
      {
        local: `tcp://127.0.0.1:${f1}/127.0.0.1:${echo.port}`,
        node: `socks5+h2://127.0.0.1:${s1}`,
      },
      {
        local: `tcp://127.0.0.1:${f2}/127.0.0.1:${echo.port}`,
        node: `socks5+h2c://127.0.0.1:${s2}?path=/tun`,
      },
    ]);
    const client = await startDost(["-D", "-C", file], { services: 4 })
      .finally(() => Deno.remove(file));
    try {
      for (const c of [c1, c2]) {
        const r = await curl([
          "-x",
          `socks5h://127.0.0.1:${c}`,
          `http://127.0.0.1:${origin.port}/q`,
        ]);
        assertEquals(r.stdout, "hello /q", r.stderr);
      }
      const big = patternBytes(20 << 20, 4242);
      const want = await sha256(big);
      for (const f of [f1, f2]) {
        const back = await echoThrough(await Deno.connect({ hostname: "127.0.0.1", port: f }), big);
        assertEquals(back.length, big.length);
        assertEquals(await sha256(back), want);
      }
      const small = patternBytes(64 << 10, 3);
      for (const c of [c1, c2]) {
        const backs = await Promise.all(
          Array.from(
            { length: 20 },
            async () => echoThrough(await socks5Tunnel(c, echo.port), small),
          ),
        );
        for (const x of backs) assertEquals(x.length, small.length);
      }
      // One HTTP/2 connection per client node (two routes use each server) carried everything,
      // the 20 parallel tunnels included.
      for (const [svc, t] of [[0, "h2"], [1, "h2c"]]) {
        const re = new RegExp(`\\[service-${svc}\\] [0-9.:]+: ${t} session started`, "g");
        assertEquals(server.logs().match(re)?.length, 2, `${t} sessions:\n${server.logs()}`);
      }
    } finally {
      await client.stop();
      await server.stop();
      await origin.close();
      echo.close();
    }
  },
});

Deno.test({
  name: "h2: h2 as hop 2 of a chain (HTTP/2 over the tunnel of hop 1), repeated and parallel",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const [hop1, hop2, a] = [freePort(), freePort(), freePort()];
    const server = await startDost([
      "-D",
      "-L",
      `socks5://127.0.0.1:${hop1}`,
      "-L",
      `socks5+h2://127.0.0.1:${hop2}`,
    ]);
    const client = await startDost([
      "-D",
      "-L",
      `socks5://127.0.0.1:${a}`,
      "-F",
      `socks5://127.0.0.1:${hop1}`,
      "-F",
      `socks5+h2://127.0.0.1:${hop2}`,
    ]);
    try {
      const data = patternBytes(1 << 20, 11);
      for (let i = 0; i < 3; i++) {
        const back = await echoThrough(await socks5Tunnel(a, echo.port), data);
        assertEquals(await sha256(back), await sha256(data));
      }
      const backs = await Promise.all(
        Array.from({ length: 8 }, async () => echoThrough(await socks5Tunnel(a, echo.port), data)),
      );
      for (const x of backs) assertEquals(x.length, data.length);
    } catch (e) {
      console.error(`client:\n${client.logs()}\nserver:\n${server.logs()}`);
      throw e;
    } finally {
      await client.stop();
      await server.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "h2: bad input to h2c/h2 listeners (garbage, truncated preface, wrong method or path)",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const [p1, p2, p3] = [freePort(), freePort(), freePort()];
    const server = await startDost([
      "-D",
      "-L",
      `tcp+h2c://127.0.0.1:${p1}/127.0.0.1:${echo.port}`,
      "-L",
      `tcp+h2c://127.0.0.1:${p2}/127.0.0.1:${echo.port}?path=/p`,
      "-L",
      `tcp+h2://127.0.0.1:${p3}/127.0.0.1:${echo.port}`,
    ]);
    try {
      // Garbage and a truncated preface on cleartext; garbage on TLS.
      await rawExchange(p1, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", { ms: 2000 });
      await rawExchange(p1, "PRI * HTTP/2.0\r\n\r\nSM", { ms: 500, closeWrite: true });
      await rawExchange(p3, "\x16\x03\x01garbage", { ms: 2000, closeWrite: true });
      await waitForLog(server, /h2c session failed: .*preface/);
      await waitForLog(server, /h2 session failed: /);
      // Wrong method without a path: 405; wrong path: 400.
      const s1 = await h2Session(p1, false);
      const r1 = await exchange(s1, { ":method": "GET", ":path": "/" });
      assertEquals(r1.status, 405);
      const s2 = await h2Session(p2, false);
      const r2 = await exchange(s2, { ":method": "GET", ":path": "/other" });
      assertEquals(r2.status, 400);
      // Good clients on the same sessions afterwards.
      const ok1 = await exchange(
        s1,
        { ":method": "CONNECT", ":authority": "x:1" },
        enc.encode("a"),
      );
      assertEquals([ok1.status, dec.decode(ok1.body)], [200, "a"]);
      const ok2 = await exchange(s2, { ":method": "GET", ":path": "/p" }, enc.encode("b"));
      assertEquals([ok2.status, dec.decode(ok2.body)], [200, "b"]);
      s1.close();
      s2.close();
      const s3 = await h2Session(p3, true);
      const ok3 = await exchange(
        s3,
        { ":method": "CONNECT", ":authority": "x:1" },
        enc.encode("c"),
      );
      assertEquals([ok3.status, dec.decode(ok3.body)], [200, "c"]);
      s3.close();
    } finally {
      await server.stop();
      echo.close();
    }
  },
});

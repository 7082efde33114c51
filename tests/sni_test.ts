/**
 * The SNI proxy (`-L sni://…`) end to end: curl's TLS connections routed by server name to two
 * local TLS origins (certificates made by openssl at test time), the plain-HTTP fallback, and
 * garbage. The origins listen on 127.0.0.1 and 127.0.0.2 on one free port; `host=:PORT` sets the
 * upstream port (gost v2's rule) and `hosts=` maps the names.
 */
import { assert, assertEquals, assertStringIncludes } from "./lib/assert.ts";
import {
  curl,
  freePort,
  IT,
  needs,
  runDost,
  startDost,
  startOrigin,
  talk,
  waitForLog,
} from "./lib/harness.ts";

/** Makes a self-signed certificate for `name` in `dir`; returns its cert and key paths. */
async function makeCert(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = `${dir}/${name}.crt`;
  const key = `${dir}/${name}.key`;
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "1",
      "-subj",
      `/CN=${name}`,
      "-addext",
      `subjectAltName=DNS:${name}`,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`openssl: ${new TextDecoder().decode(out.stderr)}`);
  return { cert, key };
}

/** An HTTPS origin answering `<label> <path>`. */
async function tlsOrigin(
  hostname: string,
  port: number,
  label: string,
  c: { cert: string; key: string },
) {
  const ac = new AbortController();
  const server = Deno.serve({
    hostname,
    port,
    signal: ac.signal,
    onListen: () => {},
    cert: await Deno.readTextFile(c.cert),
    key: await Deno.readTextFile(c.key),
  }, (req) => new Response(`${label} ${new URL(req.url).pathname}`));
  return {
    async close() {
      ac.abort();
      await server.finished;
    },
  };
}

Deno.test({
  name: "sni: TLS routed by server name to two origins (verified certs), bypass by name, no SNI",
  ...IT,
  ...needs("openssl", "curl"),
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const up = freePort(); // both origins: 127.0.0.1:up and 127.0.0.2:up
    const s = freePort();
    const ca = await makeCert(dir, "a.test");
    const cb = await makeCert(dir, "b.test");
    const oa = await tlsOrigin("127.0.0.1", up, "A", ca);
    const ob = await tlsOrigin("127.0.0.2", up, "B", cb);
    const dost = await startDost([
      "-D",
      "-L",
      `sni://127.0.0.1:${s}?host=:${up}&hosts=a.test:127.0.0.1,b.test:127.0.0.2,` +
      `blocked.test:127.0.0.1&bypass=blocked.test`,
    ]);
    try {
      // curl verifies each origin's certificate against the name: the TLS session is end to
      // end, and its Finished messages cover the ClientHello, so the replay was byte-exact.
      for (const [name, c, label] of [["a.test", ca, "A"], ["b.test", cb, "B"]] as const) {
        const r = await curl([
          "--cacert",
          c.cert,
          "--resolve",
          `${name}:${s}:127.0.0.1`,
          `https://${name}:${s}/p/${name}`,
        ]);
        assertEquals(r.stdout, `${label} /p/${name}`, r.stderr);
      }
      await waitForLog(dost, `→ a.test:${up}`);
      // The bypass names the SNI host: refused (closed) without dialing.
      const blocked = await curl([
        "-k",
        "--resolve",
        `blocked.test:${s}:127.0.0.1`,
        `https://blocked.test:${s}/`,
      ]);
      assert(blocked.code !== 0, "a bypassed name must not get through");
      await waitForLog(dost, "blocked.test:" + up + ": refused by bypass");
      // An IP literal sends no SNI: nothing to route by.
      const noSni = await curl(["-k", `https://127.0.0.1:${s}/`]);
      assert(noSni.code !== 0, "a ClientHello without a server name must be refused");
      await waitForLog(dost, "ClientHello without a server name");
    } finally {
      await dost.stop();
      await oa.close();
      await ob.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "sni: plain HTTP falls back to Host-header routing; garbage gets an error; still serving",
  ...IT,
  ...needs("curl"),
  fn: async () => {
    const origin = startOrigin();
    const s = freePort();
    const dost = await startDost([
      "-D",
      "-L",
      `sni://127.0.0.1:${s}?hosts=plain.test:127.0.0.1&readTimeout=2s`,
    ]);
    try {
      const get = () =>
        curl(["-H", `Host: plain.test:${origin.port}`, `http://127.0.0.1:${s}/hello`]);
      let r = await get();
      assertEquals(r.stdout, "hello /hello", r.stderr);
      // Two requests on one connection (keep-alive), and a POST body.
      r = await curl([
        "-H",
        `Host: plain.test:${origin.port}`,
        `http://127.0.0.1:${s}/one`,
        "--next",
        "-H",
        `Host: plain.test:${origin.port}`,
        "--data-binary",
        "posted body",
        `http://127.0.0.1:${s}/two`,
      ]);
      assertEquals(r.stdout, "hello /oneposted body", r.stderr);
      // Not HTTP and not TLS → 400.
      const junk = await talk(s, "\x01\x02\x03 garbage\r\n\r\n");
      assertStringIncludes(junk.text, "HTTP/1.1 400");
      // No Host header → 400.
      const noHost = await talk(s, "GET / HTTP/1.0\r\n\r\n");
      assertStringIncludes(noHost.text, "HTTP/1.1 400");
      // CONNECT is the http handler's job → 405.
      const connect = await talk(s, "CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n");
      assertStringIncludes(connect.text, "HTTP/1.1 405");
      // A broken TLS record (oversized) and a truncated ClientHello: closed without an answer.
      const bad = await talk(s, new Uint8Array([0x16, 3, 1, 0xff, 0xff, 1, 2, 3]));
      assertEquals(bad.bytes.length, 0);
      assert(bad.closedByPeer);
      const cut = await talk(s, new Uint8Array([0x16, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3]), {
        closeWrite: true,
      });
      assertEquals(cut.bytes.length, 0);
      // A stalled ClientHello is cut after readTimeout.
      const stalled = await talk(s, new Uint8Array([0x16, 3, 1, 0, 200]), { safetyMs: 8000 });
      assert(stalled.closedByPeer, "a stalled ClientHello must be closed by the proxy");
      await waitForLog(dost, "tls: bad record length 65535");
      r = await get();
      assertEquals(r.stdout, "hello /hello", r.stderr);
    } finally {
      await dost.stop();
      await origin.close();
    }
  },
});

Deno.test({
  name: "sni: settings it cannot honour fail at start-up with one clear line",
  ...IT,
  fn: async () => {
    let r = await runDost(["-L", `sni://127.0.0.1:${freePort()}?host=example.com`]);
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, `parameter "host": "example.com": only a port is used`);
    r = await runDost(["-L", `sni://u:p@127.0.0.1:${freePort()}`]);
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, "sni handler: authentication is not supported");
  },
});

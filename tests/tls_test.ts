/**
 * TLS transport (`tls`): curl as an HTTPS-proxy client, certificates from files or generated,
 * client-certificate auth (`ca=` on the listener), verification on the dialer (`secure=true`),
 * TLS as hop 2 of a chain, and a truncated handshake that must not hurt the service.
 */
import { assert, assertEquals, assertStringIncludes } from "./lib/assert.ts";
import {
  curl,
  freePort,
  IT,
  needs,
  runDost,
  startDost,
  startEcho,
  startOrigin,
  waitForLog,
} from "./lib/harness.ts";
import { echoThrough, makePKI, patternBytes, socks5Tunnel } from "./lib/tunnel.ts";

Deno.test({
  name: "tls: curl --proxy https:// --proxy-insecure to http+tls with a generated certificate",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const p = freePort();
    const dost = await startDost(["-L", `http+tls://127.0.0.1:${p}`]);
    try {
      const r = await curl([
        "--proxy",
        `https://127.0.0.1:${p}`,
        "--proxy-insecure",
        `http://127.0.0.1:${origin.port}/gen`,
      ]);
      assertEquals(r.stdout, "hello /gen", r.stderr);
      // Without --proxy-insecure curl must refuse the self-signed certificate.
      const strict = await curl([
        "--proxy",
        `https://127.0.0.1:${p}`,
        `http://127.0.0.1:${origin.port}/`,
      ]);
      assert(strict.code !== 0, "curl accepted a self-signed proxy certificate");
    } finally {
      await dost.stop();
      await origin.close();
    }
  },
});

Deno.test({
  name: "tls: cert=/key= from openssl, curl --proxy-cacert; mTLS with ca= (dost and curl)",
  ...IT,
  ...needs("openssl"),
  fn: async () => {
    const pki = await makePKI();
    const origin = startOrigin();
    const [p, m, a, b] = [freePort(), freePort(), freePort(), freePort()];
    const procs = [];
    try {
      const server = await startDost([
        "-L",
        `http+tls://127.0.0.1:${p}?cert=${pki.serverCert}&key=${pki.serverKey}`,
        "-L",
        `http+tls://127.0.0.1:${m}?cert=${pki.serverCert}&key=${pki.serverKey}&ca=${pki.ca}`,
      ]);
      procs.push(server);
      const url = `http://127.0.0.1:${origin.port}/x`;
      const r = await curl(["--proxy", `https://localhost:${p}`, "--proxy-cacert", pki.ca, url]);
      assertEquals(r.stdout, "hello /x", r.stderr);

      // mTLS: curl with the client certificate passes, without it is refused.
      const withCert = await curl([
        "--proxy",
        `https://localhost:${m}`,
        "--proxy-cacert",
        pki.ca,
        "--proxy-cert",
        pki.clientCert,
        "--proxy-key",
        pki.clientKey,
        url,
      ]);
      assertEquals(withCert.stdout, "hello /x", withCert.stderr);
      const noCert = await curl([
        "--proxy",
        `https://localhost:${m}`,
        "--proxy-cacert",
        pki.ca,
        url,
      ]);
      assert(noCert.code !== 0 && noCert.stdout === "", "a client without a certificate passed");

      // dost as the client: with cert=/key= on the node it passes, without it does not.
      procs.push(
        await startDost([
          "-L",
          `http://127.0.0.1:${a}`,
          "-F",
          `http+tls://127.0.0.1:${m}?cert=${pki.clientCert}&key=${pki.clientKey}`,
        ]),
      );
      const bare = await startDost([
        "-L",
        `http://127.0.0.1:${b}`,
        "-F",
        `http+tls://127.0.0.1:${m}`,
      ]);
      procs.push(bare);
      const viaCert = await curl(["--proxy", `http://127.0.0.1:${a}`, url]);
      assertEquals(viaCert.stdout, "hello /x", viaCert.stderr);
      const viaBare = await curl(["--proxy", `http://127.0.0.1:${b}`, url]);
      assert(viaBare.stdout !== "hello /x", "dost without a client certificate got through");
      await waitForLog(server, /tls handshake failed: .*certificate/);
    } finally {
      for (const d of procs) await d.stop();
      await origin.close();
      await pki.remove();
    }
  },
});

Deno.test({
  name: "tls: secure=true verifies the server (ca= passes, the system roots refuse a test CA)",
  ...IT,
  ...needs("openssl"),
  fn: async () => {
    const pki = await makePKI();
    const echo = startEcho();
    const [p, a, b, c] = [freePort(), freePort(), freePort(), freePort()];
    const procs = [];
    try {
      procs.push(
        await startDost([
          "-L",
          `socks5+tls://127.0.0.1:${p}?cert=${pki.serverCert}&key=${pki.serverKey}`,
        ]),
      );
      procs.push(
        await startDost([
          "-L",
          `socks5://127.0.0.1:${a}`,
          "-F",
          `socks5+tls://127.0.0.1:${p}?secure=true&ca=${pki.ca}`,
        ]),
      );
      const noCA = await startDost([
        "-L",
        `socks5://127.0.0.1:${b}`,
        "-F",
        `socks5+tls://127.0.0.1:${p}?secure=true`,
      ]);
      procs.push(noCA);
      // A name the certificate does not carry fails verification too.
      procs.push(
        await startDost([
          "-L",
          `socks5://127.0.0.1:${c}`,
          "-F",
          `socks5+tls://127.0.0.1:${p}?secure=true&ca=${pki.ca}&serverName=other.test`,
        ]),
      );
      const data = patternBytes(100_000);
      const back = await echoThrough(await socks5Tunnel(a, echo.port), data);
      assertEquals(back.length, data.length);
      assert(back.every((v, i) => v === data[i]), "echo differs");
      for (const port of [b, c]) {
        let failed = false;
        try {
          await echoThrough(await socks5Tunnel(port, echo.port), data);
        } catch {
          failed = true;
        }
        assert(failed, `port ${port}: an unverifiable server was accepted`);
      }
      await waitForLog(noCA, /hop 1 \(socks5\+tls:.*(certificate|UnknownIssuer)/i);
    } finally {
      for (const d of procs) await d.stop();
      echo.close();
      await pki.remove();
    }
  },
});

Deno.test({
  name: "tls: as hop 2 of a chain (-F socks5://hop1 -F socks5+tls://hop2), 4 MB byte-exact",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const [a, h1, h2] = [freePort(), freePort(), freePort()];
    const procs = [];
    try {
      procs.push(await startDost(["-L", `socks5://127.0.0.1:${h1}`]));
      procs.push(await startDost(["-L", `socks5+tls://127.0.0.1:${h2}`]));
      procs.push(
        await startDost([
          "-L",
          `socks5://127.0.0.1:${a}`,
          "-F",
          `socks5://127.0.0.1:${h1}`,
          "-F",
          `socks5+tls://127.0.0.1:${h2}`,
        ]),
      );
      const data = patternBytes(4 << 20, 7);
      for (let i = 0; i < 2; i++) {
        const back = await echoThrough(await socks5Tunnel(a, echo.port), data);
        assertEquals(back.length, data.length);
        assert(back.every((v, k) => v === data[k]), "echo differs");
      }
    } finally {
      for (const d of procs) await d.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "tls: a truncated handshake is logged with the peer address; the next client is served",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const p = freePort();
    const dost = await startDost(["-L", `http+tls://127.0.0.1:${p}`]);
    try {
      // The first 60 bytes of a TLS 1.2 ClientHello record (it announces 512), then EOF.
      const c = await Deno.connect({ hostname: "127.0.0.1", port: p });
      const hello = new Uint8Array(60);
      hello.set([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
      await c.write(hello);
      await c.closeWrite();
      const local = (c.localAddr as Deno.NetAddr).port;
      await c.read(new Uint8Array(16)).catch(() => null);
      c.close();
      await waitForLog(dost, new RegExp(`127\\.0\\.0\\.1:${local}: tls handshake failed`));
      // Plain garbage (not TLS at all) as well.
      const g = await Deno.connect({ hostname: "127.0.0.1", port: p });
      await g.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
      await g.read(new Uint8Array(64)).catch(() => null);
      g.close();
      const r = await curl([
        "--proxy",
        `https://127.0.0.1:${p}`,
        "--proxy-insecure",
        `http://127.0.0.1:${origin.port}/after`,
      ]);
      assertEquals(r.stdout, "hello /after", r.stderr);
    } finally {
      await dost.stop();
      await origin.close();
    }
  },
});

Deno.test({
  name: "tls: parameters no module reads are refused at start-up; cert without key too",
  ...IT,
  fn: async () => {
    const p = freePort();
    const r = await runDost(["-L", `tls://127.0.0.1:${p}?mptcp=true`]);
    assertEquals(r.code, 1, r.stderr);
    assertStringIncludes(r.stderr, `unknown parameter "mptcp"`);
    const r2 = await runDost(["-L", `tls://127.0.0.1:${p}?cert=/nonexistent.pem`]);
    assertEquals(r2.code, 1, r2.stderr);
    assertStringIncludes(r2.stderr, "cert= and key= go together");
    const r3 = await runDost(["-L", `tls://127.0.0.1:${p}?cert=/nonexistent.pem&key=/x.key`]);
    assertEquals(r3.code, 1, r3.stderr);
    assertStringIncludes(r3.stderr, "/nonexistent.pem");
  },
});

/**
 * Bypass, permissions and admission end to end: real curl through dost HTTP and SOCKS5
 * services, admission from 127.0.0.2 vs 127.0.0.1, hop bypass with a dead upstream, and live
 * reload of a bypass file (including a corrupt edit that must keep the previous rules).
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
  startUdpEcho,
  talk,
  waitForLog,
} from "./lib/harness.ts";

const NEEDS = needs("curl");

/** An HTTP GET through an HTTP proxy: the status code ("000" when there was no answer). */
async function viaHttp(proxy: number, url: string, extra: string[] = []): Promise<string> {
  const r = await curl([
    ...extra,
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    "-x",
    `http://127.0.0.1:${proxy}`,
    url,
  ]);
  return r.stdout;
}

/** An HTTP GET through a SOCKS5 proxy (`h`: the proxy resolves the name): the body or "ERR …". */
async function viaSocks(proxy: number, url: string, h = false, extra: string[] = []) {
  const r = await curl([
    ...extra,
    h ? "--socks5-hostname" : "--socks5",
    `127.0.0.1:${proxy}`,
    url,
  ]);
  return r.code === 0 ? r.stdout : `ERR ${r.code} ${r.stderr.trim()}`;
}

Deno.test({
  name: "access: service bypass (inline, CIDR, reversed, glob) and permissions",
  ...IT,
  ...NEEDS,
  async fn() {
    const o1 = startOrigin();
    const o2 = startOrigin();
    const p = Array.from({ length: 6 }, freePort);
    const dost = await startDost([
      "-L",
      `http://127.0.0.1:${p[0]}?bypass=127.0.0.1`,
      "-L",
      `socks5://127.0.0.1:${p[1]}?bypass=127.0.0.0/8`,
      "-L",
      `http://127.0.0.1:${p[2]}?bypass=~127.0.0.1`,
      "-L",
      `socks5://127.0.0.1:${p[3]}?bypass=*host`,
      "-L",
      `http://127.0.0.1:${p[4]}?whitelist=tcp:*:${o1.port}`,
      "-L",
      `socks5://127.0.0.1:${p[5]}?blacklist=tcp:127.0.0.*:${o2.port}`,
      "-D",
    ]);
    try {
      const ip1 = `http://127.0.0.1:${o1.port}/x`;
      const name1 = `http://localhost:${o1.port}/x`;
      // bypass=127.0.0.1: the IP target is refused (403, also for CONNECT), the name passes.
      assertEquals(await viaHttp(p[0], ip1), "403");
      const tunnel = await curl(["-p", "-x", `http://127.0.0.1:${p[0]}`, ip1]);
      assertStringIncludes(tunnel.stderr, "CONNECT tunnel failed, response 403");
      assertEquals(await viaHttp(p[0], name1), "200");
      // bypass=127.0.0.0/8 on SOCKS5: reply 0x02 for an IP in the block; a name is no IP.
      assertStringIncludes(await viaSocks(p[1], ip1), "ERR 97");
      assertStringIncludes(await viaSocks(p[1], ip1), "(2)");
      assertEquals(await viaSocks(p[1], name1, true), "hello /x");
      // Reversed: only the listed target is allowed.
      assertEquals(await viaHttp(p[2], ip1), "200");
      assertEquals(await viaHttp(p[2], name1), "403");
      // Glob on the host name.
      assertStringIncludes(await viaSocks(p[3], name1, true), "ERR 97");
      assertEquals(await viaSocks(p[3], ip1), "hello /x");
      // Permissions: whitelist of one port; blacklist of another.
      assertEquals(await viaHttp(p[4], ip1), "200");
      assertEquals(await viaHttp(p[4], `http://127.0.0.1:${o2.port}/`), "403");
      assertEquals(await viaSocks(p[5], ip1), "hello /x");
      assertStringIncludes(await viaSocks(p[5], `http://127.0.0.1:${o2.port}/`), "ERR 97");
      await waitForLog(dost, "refused by permissions");
      await waitForLog(dost, "refused by bypass");
    } finally {
      await dost.stop();
      await o1.close();
      await o2.close();
    }
  },
});

Deno.test({
  name: "access: admission by client address (127.0.0.2 vs 127.0.0.1)",
  ...IT,
  ...NEEDS,
  async fn() {
    const o = startOrigin();
    const [deny2, only1] = [freePort(), freePort()];
    const dost = await startDost([
      "-L",
      `http://127.0.0.1:${deny2}?admission=127.0.0.2`,
      "-L",
      `socks5://127.0.0.1:${only1}?admission=~127.0.0.1/32`,
      "-D",
    ]);
    try {
      const url = `http://127.0.0.1:${o.port}/a`;
      const from2 = ["--interface", "127.0.0.2"];
      assertEquals(await viaHttp(deny2, url), "200");
      assertEquals(await viaHttp(deny2, url, from2), "000");
      assertEquals(await viaSocks(only1, url), "hello /a");
      assertStringIncludes(await viaSocks(only1, url, false, from2), "ERR");
      await waitForLog(dost, /admission: 127\.0\.0\.2:\d+ refused/);
    } finally {
      await dost.stop();
      await o.close();
    }
  },
});

Deno.test({
  name: "access: hop bypass dials matching targets directly, past a dead upstream",
  ...IT,
  ...NEEDS,
  async fn() {
    const o = startOrigin();
    const port = freePort();
    const dead = freePort(); // nothing listens there: the chain cannot work
    const dost = await startDost([
      "-L",
      `socks5://127.0.0.1:${port}`,
      "-F",
      `socks5://127.0.0.1:${dead}?bypass=127.0.0.1`,
    ]);
    try {
      assertEquals(await viaSocks(port, `http://127.0.0.1:${o.port}/d`), "hello /d");
      assertStringIncludes(await viaSocks(port, `http://localhost:${o.port}/d`, true), "ERR");
    } finally {
      await dost.stop();
      await o.close();
    }
  },
});

Deno.test({
  name: "access: bypass file reloads live; a corrupt edit keeps the previous rules",
  ...IT,
  ...NEEDS,
  async fn() {
    const o = startOrigin();
    const dir = await Deno.makeTempDir();
    const file = `${dir}/bypass.txt`;
    await Deno.writeTextFile(file, "# test rules\nreload 1s\n127.0.0.1\n");
    const port = freePort();
    const dost = await startDost(["-L", `http://127.0.0.1:${port}?bypass=${file}`]);
    try {
      const ip = `http://127.0.0.1:${o.port}/`;
      const name = `http://localhost:${o.port}/`;
      assertEquals(await viaHttp(port, ip), "403");
      assertEquals(await viaHttp(port, name), "200");
      // Flip to whitelist mode by directive: now only 127.0.0.1 passes.
      await Deno.writeTextFile(file, "reload 1s\nreverse true\n127.0.0.1\n");
      let flipped = false;
      for (const end = Date.now() + 10_000; !flipped && Date.now() < end;) {
        flipped = (await viaHttp(port, ip)) === "200";
        if (!flipped) await new Promise((r) => setTimeout(r, 200));
      }
      assert(flipped, "the edit took effect");
      assertEquals(await viaHttp(port, name), "403");
      // A corrupt edit: logged once, the rules stay.
      await Deno.writeTextFile(file, "reload 1s\n127.0.0.0/99\n");
      await waitForLog(
        dost,
        /invalid CIDR "127\.0\.0\.0\/99" \(keeping the previous data\)/,
        10_000,
      );
      assertEquals(await viaHttp(port, ip), "200");
      assertEquals(await viaHttp(port, name), "403");
    } finally {
      await dost.stop();
      await o.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "access: invalid bypass, admission and permissions fail at start-up",
  ...IT,
  async fn() {
    for (
      const [param, msg] of [
        ["bypass=10.0.0.0/33", 'invalid CIDR "10.0.0.0/33"'],
        ["admission=example.com", "not an IP address"],
        ["whitelist=tcp:*:http", "invalid port"],
      ]
    ) {
      const r = await runDost(["-L", `http://127.0.0.1:${freePort()}?${param}`]);
      assertEquals(r.code, 1, r.stderr);
      assertStringIncludes(r.stderr, msg);
    }
  },
});

Deno.test({
  name: "access: permissions cover SOCKS5 BIND (rtcp) and relayed UDP datagrams (udp)",
  ...IT,
  fn: async () => {
    const allowed = startUdpEcho();
    const denied = startUdpEcho();
    const port = freePort();
    const dost = await startDost([
      "-D",
      "-L",
      `socks5://127.0.0.1:${port}?bind=true&udp=true&blacklist=rtcp:*:*%20udp:*:${denied.port}`,
    ]);
    const enc = (host: number[], p: number) => [1, ...host, p >> 8, p & 255];
    try {
      // BIND asks to listen: the blacklist's rtcp rule refuses it with 0x02.
      const bind = await talk(port, new Uint8Array([5, 1, 0, 5, 2, 0, ...enc([127, 0, 0, 1], 0)]));
      assertEquals([...bind.bytes.subarray(0, 4)], [5, 0, 5, 2]);
      // UDP ASSOCIATE: datagrams to the denied echo are dropped, to the allowed one relayed.
      const ctl = await Deno.connect({ hostname: "127.0.0.1", port });
      await ctl.write(new Uint8Array([5, 1, 0, 5, 3, 0, ...enc([0, 0, 0, 0], 0)]));
      const rep = new Uint8Array(12);
      let got = 0;
      while (got < 12) got += (await ctl.read(rep.subarray(got)))!;
      const relayPort = (rep[10] << 8) | rep[11];
      const u = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
      const relay: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: relayPort };
      const dgram = (p: number, text: string) =>
        new Uint8Array([0, 0, 0, ...enc([127, 0, 0, 1], p), ...new TextEncoder().encode(text)]);
      await u.send(dgram(denied.port, "no"), relay);
      await u.send(dgram(allowed.port, "yes"), relay);
      const [back] = await u.receive();
      assertEquals(new TextDecoder().decode(back.subarray(10)), "yes");
      await waitForLog(dost, `not allowed`);
      u.close();
      ctl.close();
    } finally {
      await dost.stop();
      allowed.close();
      denied.close();
    }
  },
});

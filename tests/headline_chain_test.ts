/**
 * Issue 7's headline chain, all dost on loopback: -L :A -F socks5+wss://h2 -F http2://h3
 * -F relay+tls://h4, carrying HTTP and 200 MB byte-exact both ways.
 */
import { assertEquals } from "./lib/assert.ts";
import {
  curl,
  freePort,
  IT,
  sha256,
  startDost,
  startEcho,
  startOrigin,
  talk,
} from "./lib/harness.ts";

Deno.test({
  name: "headline chain: socks5+wss → http2 → relay+tls, curl and 200 MB byte-exact",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const echo = startEcho();
    const [a, f, h2, h3, h4] = [freePort(), freePort(), freePort(), freePort(), freePort()];
    const procs = [];
    try {
      procs.push(await startDost(["-L", `socks5+wss://127.0.0.1:${h2}`]));
      procs.push(await startDost(["-L", `http2://127.0.0.1:${h3}`]));
      procs.push(await startDost(["-L", `relay+tls://127.0.0.1:${h4}`]));
      procs.push(
        await startDost([
          "-L",
          `127.0.0.1:${a}`,
          "-L",
          `tcp://127.0.0.1:${f}/127.0.0.1:${echo.port}`,
          "-F",
          `socks5+wss://127.0.0.1:${h2}`,
          "-F",
          `http2://127.0.0.1:${h3}`,
          "-F",
          `relay+tls://127.0.0.1:${h4}`,
        ]),
      );
      for (const proxy of [`http://127.0.0.1:${a}`, `socks5h://127.0.0.1:${a}`]) {
        const r = await curl(["--proxy", proxy, `http://localhost:${origin.port}/head`]);
        assertEquals(r.stdout, "hello /head", `${proxy}: ${r.stderr}`);
      }
      const block = new Uint8Array(1 << 20);
      for (let i = 0; i < block.length; i += 65536) {
        crypto.getRandomValues(block.subarray(i, i + 65536));
      }
      const data = new Uint8Array(200 << 20);
      for (let i = 0; i < data.length; i += block.length) data.set(block, i);
      data[12345] ^= 0xff; // not purely periodic
      const out = await talk(f, data, { closeWrite: true, safetyMs: 240_000 });
      assertEquals(out.bytes.length, data.length);
      assertEquals(await sha256(out.bytes), await sha256(data));
    } finally {
      for (const p of procs) await p.stop();
      echo.close();
      await origin.close();
    }
  },
});

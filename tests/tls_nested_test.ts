/**
 * TLS over TLS: a chain of two socks5+tls hops, where hop 2's TLS runs inside hop 1's TLS
 * (gost's SOCKS5 TLS method). A half-close must carry the data through and the echo back.
 */
import { assertEquals } from "./lib/assert.ts";
import { freePort, IT, startDost, startEcho } from "./lib/harness.ts";
import { echoThrough, patternBytes, socks5Tunnel } from "./lib/tunnel.ts";

Deno.test({
  name: "tls over tls: echo with half-close through socks5+tls → socks5+tls",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const [a, h1, h2] = [freePort(), freePort(), freePort()];
    const procs = [];
    try {
      procs.push(await startDost(["-L", `socks5+tls://127.0.0.1:${h1}`]));
      procs.push(await startDost(["-L", `socks5+tls://127.0.0.1:${h2}`]));
      procs.push(
        await startDost([
          "-L",
          `socks5://127.0.0.1:${a}`,
          "-F",
          `socks5+tls://127.0.0.1:${h1}`,
          "-F",
          `socks5+tls://127.0.0.1:${h2}`,
        ]),
      );
      for (const size of [1000, 100000, 4 << 20]) {
        const data = patternBytes(size, 7);
        const back = await echoThrough(await socks5Tunnel(a, echo.port), data);
        assertEquals(back.length, data.length, `size ${size}`);
        assertEquals(back, data, `size ${size}: bytes`);
      }
    } finally {
      for (const d of procs) await d.stop();
      echo.close();
    }
  },
});

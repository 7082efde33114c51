/**
 * Live reload of a gost v3 config: a file change adds a service, removes another and changes a
 * chain while a long transfer on an untouched service goes on byte-exact; SIGHUP reloads; a bad
 * file is rejected and the running services stay.
 */
import { assert, assertEquals, assertStringIncludes } from "./lib/assert.ts";
import {
  curl,
  freePort,
  IT,
  sha256,
  startDost,
  startEcho,
  startOrigin,
  waitForLog,
} from "./lib/harness.ts";

/** The config: `fwd` (tcp forward to the echo, untouched), `old` (http), `px` (http via chain). */
function config(p: Record<string, number>, v: 1 | 2): string {
  const hop = v === 1 ? p.hop1 : p.hop2;
  const third = v === 1
    ? `- name: old\n  addr: 127.0.0.1:${p.old}\n  handler: {type: http}\n  listener: {type: tcp}\n`
    : `- name: new\n  addr: 127.0.0.1:${p.new}\n  handler: {type: http}\n  listener: {type: tcp}\n`;
  return `services:
- name: fwd
  addr: 127.0.0.1:${p.fwd}
  handler: {type: tcp}
  listener: {type: tcp}
  forwarder:
    nodes:
    - {name: echo, addr: 127.0.0.1:${p.echo}}
- name: px
  addr: 127.0.0.1:${p.px}
  handler: {type: http, chain: up}
  listener: {type: tcp}
${third}chains:
- name: up
  hops:
  - name: h
    nodes:
    - name: n
      addr: 127.0.0.1:${hop}
      connector: {type: socks5}
      dialer: {type: tcp}
`;
}

/** Streams `data` through 127.0.0.1:port in paced chunks; resolves with what came back. */
async function slowEcho(port: number, data: Uint8Array, chunk: number, pauseMs: number) {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  const got: Uint8Array[] = [];
  const reader = (async () => {
    const buf = new Uint8Array(65536);
    for (let n; (n = await c.read(buf)) !== null;) got.push(buf.slice(0, n));
  })();
  for (let off = 0; off < data.length; off += chunk) {
    const part = data.subarray(off, Math.min(data.length, off + chunk));
    for (let w = 0; w < part.length;) w += await c.write(part.subarray(w));
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  await c.closeWrite();
  await reader;
  c.close();
  const out = new Uint8Array(got.reduce((s, b) => s + b.length, 0));
  let o = 0;
  for (const b of got) {
    out.set(b, o);
    o += b.length;
  }
  return out;
}

Deno.test({
  name: "reload: file change adds, removes and re-chains services; an untouched transfer goes on",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const origin = startOrigin();
    const p: Record<string, number> = {
      echo: echo.port,
      fwd: freePort(),
      px: freePort(),
      old: freePort(),
      new: freePort(),
      hop1: freePort(),
      hop2: freePort(),
    };
    const dir = await Deno.makeTempDir({ prefix: "dost-reload-" });
    const file = `${dir}/gost.yaml`;
    await Deno.writeTextFile(file, config(p, 1));
    const hop1 = await startDost(["-D", "-L", `socks5://127.0.0.1:${p.hop1}`]);
    const hop2 = await startDost(["-D", "-L", `socks5://127.0.0.1:${p.hop2}`]);
    const dost = await startDost(["-C", file], { services: 3 });
    const url = `http://127.0.0.1:${origin.port}/r`;
    try {
      assertEquals((await curl(["-x", `http://127.0.0.1:${p.px}`, url])).stdout, "hello /r");
      assert(hop1.logs().includes("socks5 connect"), "the chain uses hop 1 first");
      assertEquals((await curl(["-x", `http://127.0.0.1:${p.old}`, url])).stdout, "hello /r");

      // A 16 MB transfer through the untouched service, paced so it spans the reload.
      const big = new Uint8Array(16 << 20);
      for (let i = 0; i < big.length; i += 65536) {
        crypto.getRandomValues(big.subarray(i, i + 65536));
      }
      const transfer = slowEcho(p.fwd, big, 256 << 10, 40);
      await new Promise((r) => setTimeout(r, 300));
      await Deno.writeTextFile(file, config(p, 2));
      await waitForLog(dost, "config file changed: reloaded", 10_000);
      assertStringIncludes(dost.logs(), "started px, new; stopped px, old; unchanged fwd");
      const back = await transfer;
      assertEquals(back.length, big.length);
      assertEquals(await sha256(back), await sha256(big));

      // The new service answers, the removed one is gone, the chain now goes through hop 2.
      assertEquals((await curl(["-x", `http://127.0.0.1:${p.new}`, url])).stdout, "hello /r");
      const gone = await curl(["-x", `http://127.0.0.1:${p.old}`, url]);
      assert(gone.code !== 0, "the removed service no longer listens");
      assertEquals((await curl(["-x", `http://127.0.0.1:${p.px}`, url])).stdout, "hello /r");
      assert(hop2.logs().includes("socks5 connect"), "the changed chain uses hop 2");

      // A broken file is rejected with its errors; everything keeps serving.
      await Deno.writeTextFile(
        file,
        config(p, 2).replace("handler: {type: tcp}", "handler: {type: nope}"),
      );
      await waitForLog(dost, "rejected, the running services stay as they are", 10_000);
      assertStringIncludes(dost.logs(), "services[0].handler.type");
      assertEquals((await curl(["-x", `http://127.0.0.1:${p.new}`, url])).stdout, "hello /r");

      // SIGHUP reloads too (the file is good again: only what differs from the running set).
      await Deno.writeTextFile(file, config(p, 2));
      await waitForLog(dost, /config file changed: reloaded .*unchanged fwd, px, new/, 10_000);
      dost.child.kill("SIGHUP");
      await waitForLog(dost, /SIGHUP: reloaded .*started none; stopped none/, 10_000);
    } finally {
      await dost.stop();
      await hop1.stop();
      await hop2.stop();
      echo.close();
      await origin.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "reload: SIGHUP without a config file says so and keeps serving",
  ...IT,
  fn: async () => {
    const port = freePort();
    const dost = await startDost(["-L", `http://127.0.0.1:${port}`]);
    try {
      dost.child.kill("SIGHUP");
      await waitForLog(dost, "SIGHUP: no config file to reload");
      const origin = startOrigin();
      const r = await curl(["-x", `http://127.0.0.1:${port}`, `http://127.0.0.1:${origin.port}/`]);
      await origin.close();
      assertEquals(r.stdout, "hello /");
    } finally {
      await dost.stop();
    }
  },
});

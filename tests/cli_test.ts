/** The command line: help, version, errors as one `dost: …` line with exit code 1, -O output. */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./lib/assert.ts";
import { freePort, IT, runDost, startDost, startEcho } from "./lib/harness.ts";

Deno.test({
  name: "cli: no arguments prints help and exits 0; -h too",
  ...IT,
  fn: async () => {
    const r = await runDost([]);
    assertEquals(r.code, 0);
    assertStringIncludes(r.stdout, "Usage: dost");
    const h = await runDost(["-h"]);
    assertEquals(h.code, 0);
    assertStringIncludes(h.stdout, "-L value");
  },
});

Deno.test({
  name: "cli: -V prints dost <version> (deno <ver> <os>/<arch>)",
  ...IT,
  fn: async () => {
    const r = await runDost(["-V"]);
    assertEquals(r.code, 0);
    assertMatch(r.stdout.trim(), /^dost \d+\.\d+\.\d+ \(deno \d+\.\d+\.\d+ \w+\/\w+\)$/);
  },
});

const ERRORS: [string[], string][] = [
  [["-X"], "dost: flag provided but not defined: -X"],
  [["-L"], "dost: flag needs an argument: -L"],
  [["-L", "socks5://:99999"], `dost: -L "socks5://:99999": port out of range`],
  [["-L", "socks5://host"], `dost: -L "socks5://host": missing port`],
  [["-L", "nosuch://:1080"], `dost: -L "nosuch://:1080": unknown scheme "nosuch"`],
  [["-L", "socks5+nosuch://:1080"], `dost: -L "socks5+nosuch://:1080": unknown transport "nosuch"`],
  [
    ["-L", "tcp+kcp://:1080/x:1"],
    `dost: -L "tcp+kcp://:1080/x:1": listener "kcp" is not supported yet`,
  ],
  [["-L", "tcp://127.0.0.1:0/127.0.0.1:1?bogus=1"], `unknown parameter "bogus"`],
  [["-L", "tcp://127.0.0.1:0/127.0.0.1:1?timeout=soon"], `parameter "timeout": invalid duration`],
  [["-M", "1", "-L", ":1"], "dost: -M 1: SO_MARK is not supported yet"],
  [["-I", "eth0", "-L", ":1"], "dost: -I eth0: binding to an interface is not supported yet"],
  [["-O", "toml", "-L", ":1"], `dost: invalid value "toml" for -O`],
  [["-F", "socks5://127.0.0.1:1"], "dost: -F needs at least one -L service"],
];

for (const [args, want] of ERRORS) {
  Deno.test({
    name: `cli: ${args.join(" ")} → exit 1 with one line`,
    ...IT,
    fn: async () => {
      const r = await runDost(args);
      assertEquals(r.code, 1, r.stderr);
      const lines = r.stderr.trim().split("\n");
      assertEquals(lines.length, 1, r.stderr);
      assertStringIncludes(lines[0], want);
      assert(lines[0].startsWith("dost: "), lines[0]);
    },
  });
}

Deno.test({
  name: "cli: a port already in use is a start-up error",
  ...IT,
  fn: async () => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    try {
      const r = await runDost(["-L", `tcp://127.0.0.1:${port}/127.0.0.1:1`]);
      assertEquals(r.code, 1);
      assertStringIncludes(r.stderr, "already in use");
    } finally {
      l.close();
    }
  },
});

Deno.test({
  name: "cli: -O yaml / -O json print the gost v3 model built from -L/-F",
  ...IT,
  fn: async () => {
    const args = [
      "-L",
      "http://user:pass@:8080?probe_resist=code:404",
      "-F",
      "socks5://1.2.3.4:1080",
    ];
    const y = await runDost([...args, "-O", "yaml"]);
    assertEquals(y.code, 0, y.stderr);
    assertStringIncludes(y.stdout, "name: service-0");
    assertStringIncludes(y.stdout, "chain: chain-0");
    const j = await runDost([...args, "-O", "json"]);
    assertEquals(j.code, 0, j.stderr);
    const cfg = JSON.parse(j.stdout);
    assertEquals(cfg.services[0].handler.type, "http");
    assertEquals(cfg.services[0].handler.auth, { username: "user", password: "pass" });
    assertEquals(cfg.services[0].listener.type, "tcp");
    assertEquals(cfg.chains[0].hops[0].nodes[0].addr, "1.2.3.4:1080");
    assertEquals(cfg.chains[0].hops[0].nodes[0].connector.type, "socks5");
    assertEquals(cfg.chains[0].hops[0].nodes[0].dialer.type, "tcp");
  },
});

Deno.test({
  name: "cli: SIGTERM stops accepting but lets an open relay finish, then exits 0",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const port = freePort();
    const dost = await startDost(["-L", `tcp://127.0.0.1:${port}/127.0.0.1:${echo.port}`]);
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      await c.write(new TextEncoder().encode("before"));
      const buf = new Uint8Array(64);
      const n1 = await c.read(buf);
      assertEquals(new TextDecoder().decode(buf.subarray(0, n1!)), "before");
      dost.child.kill("SIGTERM");
      // The listener closes promptly; the open tunnel keeps working during the grace period.
      for (let i = 0; i < 100; i++) {
        try {
          const probe = await Deno.connect({ hostname: "127.0.0.1", port });
          probe.close();
          await new Promise((r) => setTimeout(r, 20));
        } catch {
          break;
        }
      }
      await c.write(new TextEncoder().encode("after"));
      const n2 = await c.read(buf);
      assertEquals(new TextDecoder().decode(buf.subarray(0, n2!)), "after");
      c.close();
      const st = await dost.status;
      assertEquals(st.code, 0);
      assertStringIncludes(dost.logs(), "SIGTERM: shutting down");
    } finally {
      await dost.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "cli: -P serves memory and connection counts at /debug/vars",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const port = freePort();
    const pport = freePort();
    const dost = await startDost([
      "-P",
      `127.0.0.1:${pport}`,
      "-L",
      `tcp://127.0.0.1:${port}/127.0.0.1:${echo.port}`,
    ]);
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      await c.write(new Uint8Array([1]));
      await c.read(new Uint8Array(1));
      const vars = await (await fetch(`http://127.0.0.1:${pport}/debug/vars`)).json();
      assert(vars.memory.rss > 0, JSON.stringify(vars));
      assertEquals(vars.services, [{ name: "service-0", connections: 1 }]);
      c.close();
      assertEquals((await fetch(`http://127.0.0.1:${pport}/nope`)).status, 404);
    } finally {
      await dost.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "cli: a plain proxy runs under --allow-net alone (no module needs more at load time)",
  ...IT,
  fn: async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "main.ts", "-V"],
      cwd: new URL("../", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, err);
    assertMatch(new TextDecoder().decode(out.stdout), /^dost /);
  },
});

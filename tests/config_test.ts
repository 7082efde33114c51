/**
 * `-C`: gost v2 JSON configs load as they are (routes, chains, retries); bad files fail clearly.
 * gost v3 files: tests/config_v3_test.ts.
 */
import { assert, assertEquals, assertStringIncludes } from "./lib/assert.ts";
import { curl, freePort, IT, runDost, startDost, startOrigin, waitForLog } from "./lib/harness.ts";

Deno.test({
  name: "config: gost v2 JSON with ServeNodes, Routes and a chain serves every route",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const [upstream, http, socks, fwd, ignored] = [
      freePort(),
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ];
    const dir = await Deno.makeTempDir();
    const file = `${dir}/gost.json`;
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        Debug: true,
        Retries: 1,
        ServeNodes: [`http://127.0.0.1:${http}`],
        Routes: [
          {
            Retries: 2,
            ServeNodes: [`socks5://127.0.0.1:${socks}`],
            ChainNodes: [`socks5://u:p@127.0.0.1:${upstream}`],
          },
          { ServeNodes: [`tcp://127.0.0.1:${fwd}/127.0.0.1:${origin.port}`] },
        ],
      }),
    );
    const up = await startDost(["-D", "-L", `socks5://u:p@127.0.0.1:${upstream}`]);
    // The file wins over -L, as in gost v2: the -L service is not started.
    const dost = await startDost(["-C", file, "-L", `http://127.0.0.1:${ignored}`], {
      services: 3,
    });
    try {
      const a = await curl([
        "--proxy",
        `http://127.0.0.1:${http}`,
        `http://127.0.0.1:${origin.port}/a`,
      ]);
      assertEquals(a.stdout, "hello /a", a.stderr);
      const b = await curl([
        "--proxy",
        `socks5h://127.0.0.1:${socks}`,
        `http://localhost:${origin.port}/b`,
      ]);
      assertEquals(b.stdout, "hello /b", b.stderr);
      await waitForLog(up, `→ localhost:${origin.port}`); // the route's chain was used
      const c = await curl([`http://127.0.0.1:${fwd}/c`]);
      assertEquals(c.stdout, "hello /c", c.stderr);
      const d = await curl([
        "--proxy",
        `http://127.0.0.1:${ignored}`,
        `http://127.0.0.1:${origin.port}/`,
      ]);
      assert(d.code !== 0, "the -L service must not run when -C is given");
      assertStringIncludes(dost.logs(), "debug"); // Debug: true
    } finally {
      await dost.stop();
      await up.stop();
      await origin.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "config: -O yaml shows a v2 file as the gost v3 model (one chain per route)",
  ...IT,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const file = `${dir}/gost.json`;
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        Routes: [
          { ServeNodes: [":1080"], ChainNodes: ["socks5://10.0.0.1:1080"] },
          { ServeNodes: [":8080"], ChainNodes: ["http://10.0.0.2:3128"], Retries: 3 },
        ],
      }),
    );
    try {
      const r = await runDost(["-C", file, "-O", "json"]);
      assertEquals(r.code, 0, r.stderr);
      const cfg = JSON.parse(r.stdout);
      assertEquals(cfg.services.map((s: { name: string }) => s.name), ["service-0", "service-1"]);
      assertEquals(cfg.services[0].handler.chain, "chain-0");
      assertEquals(cfg.services[1].handler.chain, "chain-1");
      assertEquals(cfg.services[1].handler.retries, 3);
      assertEquals(cfg.chains[1].hops[0].nodes[0].addr, "10.0.0.2:3128");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const BAD: [string, string, string][] = [
  ["unknown key", JSON.stringify({ ServeNodes: [":1"], Nope: 1 }), `unknown key "Nope"`],
  [
    "route key",
    JSON.stringify({ Routes: [{ ServeNodes: [":1"], X: 1 }] }),
    `Routes[0]: unknown key "X"`,
  ],
  ["mark", JSON.stringify({ ServeNodes: [":1"], Mark: 5 }), "Mark (SO_MARK) is not supported yet"],
  ["syntax", `{"ServeNodes": [`, "invalid JSON"],
  ["bad URL", JSON.stringify({ ServeNodes: ["socks5://:99999"] }), "port out of range"],
  [
    "v2 and v3 keys mixed",
    JSON.stringify({ ServeNodes: [":1"], services: [] }),
    `unknown key "services"`,
  ],
];

for (const [what, text, want] of BAD) {
  Deno.test({
    name: `config: bad file (${what}) → exit 1 with one line`,
    ...IT,
    fn: async () => {
      const dir = await Deno.makeTempDir();
      try {
        await Deno.writeTextFile(`${dir}/c.json`, text);
        const r = await runDost(["-C", `${dir}/c.json`]);
        assertEquals(r.code, 1, r.stderr);
        assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
        assertStringIncludes(r.stderr, want);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: "config: a missing file → exit 1 naming it",
  ...IT,
  fn: async () => {
    const r = await runDost(["-C", "/nonexistent/gost.json"]);
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, `dost: -C "/nonexistent/gost.json": `);
  },
});

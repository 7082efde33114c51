/**
 * `-C` with gost v3 YAML/JSON files: the examples and gost-documented shapes serve real
 * traffic (curl through every service), `-O` prints what loads back identically, bad files fail
 * with one line naming the file and the path inside it, and files are found without `-C`.
 */
import { assert, assertEquals, assertStringIncludes } from "./lib/assert.ts";
import {
  curl,
  DOST_V8_FLAGS,
  type DostProcess,
  freePort,
  IT,
  needs,
  runDost,
  startDost,
  startOrigin,
  until,
  waitForLog,
} from "./lib/harness.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/**
 * The text of an example file with every `127.0.0.1:<port>` moved to a free port (the same
 * example port always gets the same free port); `fixed` pins some (e.g. the origin).
 */
async function templated(
  example: string,
  fixed: Record<number, number> = {},
): Promise<{ text: string; port: (p: number) => number }> {
  const text = await Deno.readTextFile(`${ROOT}examples/${example}`);
  const map = new Map<number, number>(Object.entries(fixed).map(([k, v]) => [Number(k), v]));
  const port = (p: number) => {
    if (!map.has(p)) map.set(p, freePort());
    return map.get(p)!;
  };
  return {
    text: text.replace(/127\.0\.0\.1:(\d+)/g, (_, p) => `127.0.0.1:${port(Number(p))}`),
    port,
  };
}

async function withDir<T>(f: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir();
  try {
    return await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "config v3: examples/gost.yaml serves every service (auth, bypass, hosts, limits, chain)",
  ...IT,
  ...needs("curl"),
  fn: () =>
    withDir(async (dir) => {
      const origin = startOrigin();
      const { text, port } = await templated("gost.yaml", { 8000: origin.port });
      await Deno.writeTextFile(`${dir}/gost.yaml`, text);
      const dost = await startDost(["-D", "-C", `${dir}/gost.yaml`], { services: 5 });
      try {
        assertStringIncludes(dost.logs(), `config loaded from ${dir}/gost.yaml`);
        const http = `http://127.0.0.1:${port(8080)}`;
        // The users of the named auther, and a name from the named hosts.
        const a = await curl(["-x", http, "-U", "bob:pw1", `http://web.test:${origin.port}/a`]);
        assertEquals(a.stdout, "hello /a", a.stderr);
        const a2 = await curl([
          "-x",
          http,
          "-U",
          "carol:pw2",
          `http://www.web.test:${origin.port}/a2`,
        ]);
        assertEquals(a2.stdout, "hello /a2", a2.stderr);
        const noAuth = await curl([
          "-x",
          http,
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          `http://web.test:${origin.port}/`,
        ]);
        assertEquals(noAuth.stdout, "407");
        // The named bypass refuses private networks and *.blocked.test.
        for (const target of ["http://10.1.2.3/", "http://x.blocked.test/"]) {
          const r = await curl([
            "-x",
            http,
            "-U",
            "bob:pw1",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            target,
          ]);
          assertEquals(r.stdout, "403", `${target}: ${r.stderr}`);
        }
        // SOCKS5 through the two-hop chain: the first hop (socks5 with a user), then the
        // top-level hop "second" (http).
        const b = await curl([
          "-x",
          `socks5h://alice:s3cret@127.0.0.1:${port(1080)}`,
          `http://localhost:${origin.port}/b`,
        ]);
        assertEquals(b.stdout, "hello /b", b.stderr);
        await waitForLog(dost, new RegExp(`\\[hop-http[^\\]]*\\].*localhost:${origin.port}`));
        const wrong = await curl([
          "-x",
          `socks5h://alice:nope@127.0.0.1:${port(1080)}`,
          `http://localhost:${origin.port}/`,
        ]);
        assert(wrong.code !== 0, "a wrong password must be refused");
        // The hop services themselves, and the forward.
        const c = await curl([
          "-x",
          `socks5h://hop:hop-pass@127.0.0.1:${port(1090)}`,
          `http://localhost:${origin.port}/c`,
        ]);
        assertEquals(c.stdout, "hello /c", c.stderr);
        const d = await curl([
          "-x",
          `http://127.0.0.1:${port(8090)}`,
          `http://127.0.0.1:${origin.port}/d`,
        ]);
        assertEquals(d.stdout, "hello /d", d.stderr);
        const e = await curl([`http://127.0.0.1:${port(2222)}/e`]);
        assertEquals(e.stdout, "hello /e", e.stderr);
      } finally {
        await dost.stop();
        await origin.close();
      }
    }),
});

Deno.test({
  name: "config v2: examples/gost-v2.json serves every route (proxies, forward, chained route)",
  ...IT,
  ...needs("curl"),
  fn: () =>
    withDir(async (dir) => {
      const origin = startOrigin();
      const { text, port } = await templated("gost-v2.json", { 8000: origin.port });
      await Deno.writeTextFile(`${dir}/gost.json`, text);
      const dost = await startDost(["-D", "-C", `${dir}/gost.json`], { services: 6 });
      try {
        const o = `http://localhost:${origin.port}`;
        const cases: [string[], string][] = [
          [["-x", `http://127.0.0.1:${port(8080)}`, `${o}/a`], "hello /a"],
          [["-x", `socks5h://127.0.0.1:${port(1080)}`, `${o}/b`], "hello /b"],
          [[`http://127.0.0.1:${port(2222)}/c`], "hello /c"],
          [["-x", `socks5h://127.0.0.1:${port(1081)}`, `${o}/d`], "hello /d"],
          [["-x", `http://127.0.0.1:${port(8081)}`, `${o}/e`], "hello /e"],
          [["-x", `socks5h://user:pass@127.0.0.1:${port(1090)}`, `${o}/f`], "hello /f"],
        ];
        for (const [args, want] of cases) {
          const r = await curl(args);
          assertEquals(r.stdout, want, `${args.join(" ")}: ${r.stderr}`);
        }
        // The third route's bypass (a v2 parameter, now a named bypass) still refuses.
        const r = await curl([
          "-x",
          `socks5h://user:pass@127.0.0.1:${port(1090)}`,
          "http://10.0.0.1/",
        ]);
        assertStringIncludes(r.stderr, "(2)");
      } finally {
        await dost.stop();
        await origin.close();
      }
    }),
});

/** gost's documented shape (gost.run "configuration"): a chain reaching two other dost processes. */
Deno.test({
  name: "config v3: a chain with two hops reaches a second and third dost (YAML and JSON)",
  ...IT,
  ...needs("curl"),
  fn: () =>
    withDir(async (dir) => {
      const origin = startOrigin();
      const [front, mid, last] = [freePort(), freePort(), freePort()];
      const procs: DostProcess[] = [];
      try {
        procs.push(await startDost(["-D", "-L", `http://127.0.0.1:${last}`]));
        procs.push(await startDost(["-D", "-L", `socks5://u:p@127.0.0.1:${mid}`]));
        const cfg = {
          services: [{
            name: "service-0",
            addr: `127.0.0.1:${front}`,
            handler: { type: "auto", chain: "chain-0" },
            listener: { type: "tcp" },
          }],
          chains: [{
            name: "chain-0",
            hops: [
              {
                name: "hop-0",
                nodes: [{
                  name: "node-0",
                  addr: `127.0.0.1:${mid}`,
                  connector: { type: "socks5", auth: { username: "u", password: "p" } },
                  dialer: { type: "tcp" },
                }],
              },
              {
                name: "hop-1",
                // Targets by the origin's IP leave the chain before this hop.
                bypass: "skip-last",
                nodes: [{
                  name: "node-0",
                  addr: `127.0.0.1:${last}`,
                  connector: { type: "http" },
                  dialer: { type: "tcp" },
                }],
              },
            ],
          }],
          bypasses: [{ name: "skip-last", matchers: ["127.0.0.1"] }],
        };
        for (const [file, body] of [["c.json", JSON.stringify(cfg)], ["c.yml", toYamlish(cfg)]]) {
          await Deno.writeTextFile(`${dir}/${file}`, body);
          const dost = await startDost(["-C", `${dir}/${file}`], { services: 1 });
          try {
            for (const proxy of [`http://127.0.0.1:${front}`, `socks5h://127.0.0.1:${front}`]) {
              const path = `/${file}-${proxy.slice(0, 4)}`;
              const r = await curl(["-x", proxy, `http://localhost:${origin.port}${path}`]);
              assertEquals(r.stdout, `hello ${path}`, r.stderr);
              await waitForLog(procs[0], `localhost:${origin.port}`);
              await waitForLog(procs[1], `127.0.0.1:${last}`);
            }
            const r = await curl([
              "-x",
              `http://127.0.0.1:${front}`,
              `http://127.0.0.1:${origin.port}/bp`,
            ]);
            assertEquals(r.stdout, "hello /bp", r.stderr);
            await waitForLog(procs[1], `→ 127.0.0.1:${origin.port}`); // the middle dials the target
          } finally {
            await dost.stop();
          }
        }
      } finally {
        for (const p of procs) await p.stop();
        await origin.close();
      }
    }),
});

/** A tiny YAML writer for the test's plain objects (keeps the test independent of dost's). */
function toYamlish(v: unknown, indent = ""): string {
  if (Array.isArray(v)) {
    return v.map((x) => `${indent}- ${toYamlish(x, indent + "  ").trimStart()}`).join("\n");
  }
  if (typeof v === "object" && v !== null) {
    return Object.entries(v).map(([k, x]) =>
      typeof x === "object" && x !== null
        ? `${indent}${k}:\n${toYamlish(x, indent + "  ")}`
        : `${indent}${k}: ${JSON.stringify(x)}`
    ).join("\n");
  }
  return JSON.stringify(v);
}

/** `-O` twice: print, load the output with -C, print again. */
async function roundTrip(args: string[], format: "yaml" | "json", dir: string) {
  const first = await runDost([...args, "-O", format]);
  assertEquals(first.code, 0, first.stderr);
  const file = `${dir}/printed.${format}`;
  await Deno.writeTextFile(file, first.stdout);
  const second = await runDost(["-C", file, "-O", format]);
  assertEquals(second.code, 0, second.stderr);
  assertEquals(second.stdout, first.stdout, `${args.join(" ")} -O ${format}`);
  return first.stdout;
}

Deno.test({
  name:
    "config: -O yaml / -O json round trip (CLI with authers, limiters, bypass, peer files; v2; v3)",
  ...IT,
  fn: () =>
    withDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/secrets`, "alice s3cret\n");
      await Deno.writeTextFile(`${dir}/peer`, "strategy round\npeer socks5://127.0.0.1:1081\n");
      const clis = [
        ["-L", ":8080"],
        [
          "-L",
          `http://u:p@:8080?secrets=${dir}/secrets&auther.reload=10&limiter.in=1MB&limiter.conn.out=100KB&climiter=5&rlimiter=2.5&bypass=~10.0.0.0/8,.example.com&admission=127.0.0.1&knock=k.test&hosts=a.test:127.0.0.1&resolver=udp://127.0.0.1:53&prefer=ipv4`,
          "-L",
          "tcp://:2222-2223/10.0.0.1:22,10.0.0.2:22?strategy=fifo&max_fails=2",
          "-F",
          `socks5://a:b@10.0.1.1:1080?bypass=1.2.3.4&peer=${dir}/peer`,
          "-F",
          "http://10.0.2.1:3128,10.0.2.2:3128?strategy=random",
        ],
        ["-L", "rtcp://:2222/127.0.0.1:22", "-F", "socks5://10.0.0.1:1080?ip=10.0.0.2,10.0.0.3"],
        [
          "-D",
          "-L",
          "socks5://:1080?udp=true&auther.http=http://127.0.0.1:1/users&auther.http.timeout=3s",
        ],
      ];
      for (const args of clis) {
        for (const f of ["yaml", "json"] as const) await roundTrip(args, f, dir);
      }
      const v3 = await templated("gost.yaml");
      await Deno.writeTextFile(`${dir}/gost.yaml`, v3.text);
      await Deno.writeTextFile(`${dir}/gost-v2.json`, (await templated("gost-v2.json")).text);
      for (const f of ["yaml", "json"] as const) {
        const out = await roundTrip(["-C", `${dir}/gost.yaml`], f, dir);
        assertStringIncludes(out, "bandwidth"); // the named limiter survives
        await roundTrip(["-C", `${dir}/gost-v2.json`], f, dir);
      }
      // The CLI's named objects are printed as gost prints them.
      const j = JSON.parse((await runDost([...clis[1], "-O", "json"])).stdout);
      assertEquals(j.services[0].limiter, "limiter-0");
      assertEquals(j.limiters[0], { name: "limiter-0", limits: ["$ 1MB 0", "$$ 0 100KB"] });
      assertEquals(j.climiters[0].limits, ["$ 5"]);
      assertEquals(j.rlimiters[0].limits, ["$ 2.5"]);
      assertEquals(j.services[0].handler.auther, "auther-0");
      assertEquals(j.authers[0], {
        name: "auther-0",
        reload: "10s",
        file: { path: `${dir}/secrets` },
      });
      assertEquals(j.services[0].bypass, "bypass-1");
      assertEquals(j.bypasses[1], {
        name: "bypass-1",
        whitelist: true,
        matchers: ["10.0.0.0/8", ".example.com"],
      });
      assertEquals(j.chains[0].hops[0].bypass, "bypass-0");
      assertEquals(j.hosts[0], {
        name: "hosts-0",
        mappings: [{ ip: "127.0.0.1", hostname: "a.test" }],
      });
      assertEquals(j.resolvers[0].nameservers, [{ addr: "udp://127.0.0.1:53", prefer: "ipv4" }]);
      assertEquals([j.services[0].hosts, j.services[0].resolver], ["hosts-0", "resolver-0"]);
      assertEquals(j.chains[0].hops[0].metadata, { peer: `${dir}/peer` });
      assertEquals(j.services.length, 3); // the port range made two forward services
    }),
});

Deno.test({
  name: "config v3: -C takes inline JSON, as gost does",
  ...IT,
  fn: async () => {
    const cfg = { services: [{ name: "inline", addr: ":1080", handler: { type: "socks5" } }] };
    const r = await runDost(["-C", JSON.stringify(cfg), "-O", "json"]);
    assertEquals(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assertEquals(out.services[0].name, "inline");
    assertEquals(out.services[0].listener, { type: "tcp" });
    const bad = await runDost(["-C", '{"services": [{"name": "x", "adr": ":1"}]}']);
    assertEquals(bad.code, 1);
    assertStringIncludes(bad.stderr, "dost: -C {…}: services[0].adr: unknown key");
  },
});

Deno.test({
  name: "config v3: the README's example loads",
  ...IT,
  fn: () =>
    withDir(async (dir) => {
      const readme = await Deno.readTextFile(`${ROOT}README.md`);
      const section = readme.slice(readme.indexOf("## Configuration files"));
      const yaml = /```yaml\n([\s\S]*?)```/.exec(section)![1];
      await Deno.writeTextFile(`${dir}/readme.yaml`, yaml);
      const r = await runDost(["-C", `${dir}/readme.yaml`, "-O", "json"]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(JSON.parse(r.stdout).services.length, 2);
    }),
});

/** A bad file → exit 1 and exactly one `dost: …` line containing `want`. */
const BAD: [string, string, string][] = [
  ["yaml syntax", "services:\n  - name: a\n    addr: [\n", "bad.yaml:4:1 invalid YAML"],
  ["tab indentation", "services:\n\t- name: a\n", "invalid YAML"],
  [
    "unknown handler",
    "services:\n- name: a\n  addr: 127.0.0.1:1\n  handler: {type: nope}\n",
    'services[0].handler.type: unknown handler "nope"',
  ],
  [
    "unsupported listener",
    "services:\n- name: a\n  addr: 127.0.0.1:1\n  listener: {type: vsock}\n",
    'services[0].listener.type: listener "vsock" is not supported yet',
  ],
  [
    "port clash",
    "services:\n- {name: a, addr: ':18081'}\n- {name: b, addr: '127.0.0.1:18081'}\n",
    "services[1].addr: port 18081 is also used by services[0]",
  ],
  [
    "undefined chain",
    "services:\n- name: a\n  addr: 127.0.0.1:1\n  handler: {type: http, chain: nochain}\n",
    'services[0].handler.chain: chain "nochain" is not defined',
  ],
  [
    "undefined bypass",
    "services:\n- {name: a, addr: '127.0.0.1:1', bypass: nobypass}\n",
    'services[0].bypass: bypass "nobypass" is not defined',
  ],
  [
    "undefined auther",
    "services:\n- name: a\n  addr: 127.0.0.1:1\n  handler: {type: http, authers: [x]}\n",
    'services[0].handler.authers[0]: auther "x" is not defined',
  ],
  [
    "undefined hop",
    "services:\n- {name: a, addr: '127.0.0.1:1', handler: {type: http, chain: c}}\nchains:\n- name: c\n  hops:\n  - name: elsewhere\n",
    'chains[0].hops[0].nodes: no nodes, and no top-level hop is named "elsewhere"',
  ],
  [
    "unknown key",
    "services:\n- name: a\n  addr: 127.0.0.1:1\n  handler:\n    type: http\n    metdata: {}\n",
    "services[0].handler.metdata: unknown key",
  ],
  [
    "unknown top-level key (JSON)",
    '{"services": [{"name": "a", "addr": "127.0.0.1:1"}], "servces": []}',
    "servces: unknown key",
  ],
  [
    "api",
    "services:\n- {name: a, addr: '127.0.0.1:1'}\napi: {addr: ':18080'}\n",
    "api: the Web API (api) is not supported yet",
  ],
  [
    "node TLS",
    "services:\n- {name: a, addr: '127.0.0.1:1'}\nchains:\n- name: c\n  hops:\n  - name: h\n    nodes:\n    - {name: n, addr: '1.2.3.4:1', tls: {secure: true}}\n",
    "chains[0].hops[0].nodes[0].tls: node TLS is not supported yet",
  ],
  [
    "bad limit",
    "services:\n- {name: a, addr: '127.0.0.1:1', limiter: l}\nlimiters:\n- {name: l, limits: ['$ lots']}\n",
    "limiters[0].limits[0]:",
  ],
  [
    "duration without unit",
    "services:\n- name: a\n  addr: 127.0.0.1:1\n  handler: {type: tcp}\n  forwarder:\n    selector: {strategy: round, failTimeout: 30}\n    nodes: [{name: t, addr: '127.0.0.1:2'}]\n",
    "services[0].forwarder.selector.failTimeout: want a duration",
  ],
  [
    "log format",
    "services:\n- {name: a, addr: '127.0.0.1:1'}\nlog: {format: json}\n",
    'log.format: format "json" is not supported yet',
  ],
  ["not a map", "- a\n- b\n", "want a map of gost v3 sections"],
  [
    "duplicate name",
    "services:\n- {name: a, addr: '127.0.0.1:1'}\n- {name: a, addr: '127.0.0.1:2'}\n",
    'services[1].name: "a" is defined twice',
  ],
];

for (const [what, text, want] of BAD) {
  Deno.test({
    name: `config v3: bad file (${what}) → exit 1 with one line naming the path`,
    ...IT,
    fn: () =>
      withDir(async (dir) => {
        const file = `${dir}/bad.yaml`;
        await Deno.writeTextFile(file, text);
        const r = await runDost(["-C", file]);
        assertEquals(r.code, 1, r.stderr);
        assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
        assertStringIncludes(r.stderr, `dost: ${file}`);
        assertStringIncludes(r.stderr, want);
      }),
  });
}

Deno.test({
  name: "config v3: a problem found while building names the file and service",
  ...IT,
  fn: () =>
    withDir(async (dir) => {
      const file = `${dir}/c.yaml`;
      await Deno.writeTextFile(
        file,
        "services:\n- name: a\n  addr: 127.0.0.1:" + freePort() +
          "\n  handler:\n    type: http\n    metadata: {bogus: 1}\n",
      );
      const r = await runDost(["-C", file]);
      assertEquals(r.code, 1, r.stderr);
      assertStringIncludes(r.stderr, `dost: ${file}: services[0]: unknown parameter "bogus"`);
    }),
});

/** Runs dost with no arguments in `cwd` with HOME=`home`; resolves when it is listening. */
function startIn(cwd: string, home: string, args: string[] = []) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-net", ...DOST_V8_FLAGS, `${ROOT}main.ts`, ...args],
    cwd,
    env: { HOME: home },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let text = "";
  const dec = new TextDecoder();
  const pump = (async () => {
    for await (const c of child.stderr) text += dec.decode(c);
  })();
  const out = child.stdout.text();
  return {
    logs: () => text,
    /** Waits for the process to exit by itself; its stdout. */
    async exited() {
      const st = await child.status;
      await pump;
      return { code: st.code, stdout: await out };
    },
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
      await child.status;
      await pump;
      return await out;
    },
  };
}

Deno.test({
  name: "config: without -C and -L, gost.yaml in . is found first, else $HOME/.dost/dost.yml",
  ...IT,
  ...needs("curl"),
  fn: () =>
    withDir(async (dir) => {
      const origin = startOrigin();
      const [cwd, home] = [`${dir}/work`, `${dir}/home`];
      await Deno.mkdir(`${home}/.dost`, { recursive: true });
      await Deno.mkdir(cwd);
      const p1 = freePort();
      const p2 = freePort();
      const svc = (p: number) =>
        `services:\n- {name: s, addr: '127.0.0.1:${p}', handler: {type: http}}\n`;
      try {
        // $HOME/.dost/dost.yml when the working directory has none.
        await Deno.writeTextFile(`${home}/.dost/dost.yml`, svc(p1));
        let d = await startIn(cwd, home);
        try {
          assert(await until(() => d.logs().includes("listening on"), 15_000), d.logs());
          assertStringIncludes(d.logs(), `config loaded from ${home}/.dost/dost.yml`);
          const r = await curl([
            "-x",
            `http://127.0.0.1:${p1}`,
            `http://127.0.0.1:${origin.port}/1`,
          ]);
          assertEquals(r.stdout, "hello /1", r.stderr);
        } finally {
          await d.stop();
        }
        // The working directory's gost.yaml comes first.
        await Deno.writeTextFile(`${cwd}/gost.yaml`, svc(p2));
        d = await startIn(cwd, home);
        try {
          assert(await until(() => d.logs().includes("listening on"), 15_000), d.logs());
          assertStringIncludes(d.logs(), `config loaded from ${cwd}/gost.yaml`);
          const r = await curl([
            "-x",
            `http://127.0.0.1:${p2}`,
            `http://127.0.0.1:${origin.port}/2`,
          ]);
          assertEquals(r.stdout, "hello /2", r.stderr);
        } finally {
          await d.stop();
        }
        // With -L the files are not used.
        const p3 = freePort();
        d = await startIn(cwd, home, ["-L", `http://127.0.0.1:${p3}`]);
        try {
          assert(await until(() => d.logs().includes("listening on"), 15_000), d.logs());
          assert(!d.logs().includes("config loaded"), d.logs());
        } finally {
          await d.stop();
        }
        // Nothing found and no arguments: the help, as before.
        await Deno.remove(`${home}/.dost/dost.yml`);
        await Deno.remove(`${cwd}/gost.yaml`);
        const help = await (await startIn(cwd, home)).exited();
        assertEquals(help.code, 0);
        assertStringIncludes(help.stdout, "-L");
      } finally {
        await origin.close();
      }
    }),
});

Deno.test({
  name: "config v3: log.level applies; -L/-F run next to the file's services",
  ...IT,
  ...needs("curl"),
  fn: () =>
    withDir(async (dir) => {
      const origin = startOrigin();
      const [a, b] = [freePort(), freePort()];
      const file = `${dir}/c.yaml`;
      await Deno.writeTextFile(
        file,
        `services:\n- {name: service-0, addr: '127.0.0.1:${a}', handler: {type: http}}\nlog: {level: debug}\n`,
      );
      const dost = await startDost(["-C", file, "-L", `socks5://127.0.0.1:${b}`], { services: 2 });
      try {
        const r1 = await curl(["-x", `http://127.0.0.1:${a}`, `http://127.0.0.1:${origin.port}/a`]);
        assertEquals(r1.stdout, "hello /a", r1.stderr);
        const r2 = await curl([
          "-x",
          `socks5h://127.0.0.1:${b}`,
          `http://127.0.0.1:${origin.port}/b`,
        ]);
        assertEquals(r2.stdout, "hello /b", r2.stderr);
        assertStringIncludes(dost.logs(), "[service-1]"); // the -L service, numbered after the file's
        assert(/ debug /.test(dost.logs()), "log.level: debug must show debug lines");
      } finally {
        await dost.stop();
        await origin.close();
      }
      const quiet = `${dir}/q.yaml`;
      await Deno.writeTextFile(
        quiet,
        `services:\n- {name: s, addr: '127.0.0.1:${freePort()}', handler: {type: http}}\nlog: {level: error}\n`,
      );
      const q = await runDost(["-C", quiet, "-O", "yaml"]);
      assertEquals(q.code, 0, q.stderr);
      assertEquals(q.stderr, ""); // level error: not even the "config loaded" info line
    }),
});

Deno.test({
  name: "config v3: listener.tls and dialer.tls reach the TLS transport (verified certificate)",
  ...IT,
  ...needs("curl", "openssl"),
  fn: () =>
    withDir(async (dir) => {
      const { makePKI } = await import("./lib/tunnel.ts");
      const [pki, other] = [await makePKI(), await makePKI()];
      const origin = startOrigin();
      const config = (ca: string, front: number, tls: number) =>
        `services:
- name: front
  addr: 127.0.0.1:${front}
  handler: {type: http, chain: over-tls}
- name: socks5-over-tls
  addr: 127.0.0.1:${tls}
  handler: {type: socks5}
  listener:
    type: tls
    tls: {certFile: ${pki.serverCert}, keyFile: ${pki.serverKey}}
chains:
- name: over-tls
  selector: {strategy: fifo, maxFails: 1, failTimeout: 10s}
  hops:
  - name: hop-0
    nodes:
    - name: node-0
      addr: 127.0.0.1:${tls}
      connector: {type: socks5}
      dialer:
        type: tls
        tls: {caFile: ${ca}, secure: true, serverName: localhost}
`;
      try {
        for (const [ca, ok] of [[pki.ca, true], [other.ca, false]] as const) {
          const [front, tls] = [freePort(), freePort()];
          await Deno.writeTextFile(`${dir}/tls.yaml`, config(ca, front, tls));
          const dost = await startDost(["-D", "-C", `${dir}/tls.yaml`], { services: 2 });
          try {
            const r = await curl([
              "-x",
              `http://127.0.0.1:${front}`,
              `http://127.0.0.1:${origin.port}/t`,
            ]);
            if (ok) {
              assertEquals(r.stdout, "hello /t", r.stderr);
              await waitForLog(
                dost,
                new RegExp(`\\[socks5-over-tls[^\\]]*\\].*127\\.0\\.0\\.1:${origin.port}`),
              );
            } else {
              // secure: true with another CA: the certificate is refused, so is the request.
              assert(r.stdout !== "hello /t", "a certificate from another CA must be refused");
            }
          } finally {
            await dost.stop();
          }
        }
      } finally {
        await origin.close();
        await pki.remove();
        await other.remove();
      }
    }),
});

import "../modules.ts";
import { assert, assertEquals } from "../../tests/lib/assert.ts";
import { buildConfigFromCLI } from "./cli.ts";
import { parseConfigText } from "./load.ts";
import { formatConfig } from "./output.ts";
import { configFromV3 } from "./v3.ts";

const load = (text: string) => configFromV3(parseConfigText(text, "t.yaml"), "t.yaml");
const problems = (text: string) => load(text).issues.map((i) => `${i.path}: ${i.message}`);

Deno.test("v3: keys are case-insensitive on input and printed with gost's spelling", () => {
  const { config, issues } = load(
    "Services:\n- Name: a\n  ADDR: ':1'\n  Handler: {Type: tcp}\n  forwarder:\n" +
      "    selector: {Strategy: fifo, MAXFAILS: '2', failtimeout: 1m30s}\n" +
      "    nodes: [{name: t, addr: '10.0.0.1:80'}]\n",
  );
  assertEquals(issues, []);
  const s = config.services![0];
  assertEquals(s.forwarder?.selector, { strategy: "fifo", maxFails: 2, failTimeout: "1m30s" });
  assertEquals(s.listener, { type: "tcp" }); // gost's default listener
  assert(formatConfig(config, "yaml").includes("maxFails: 2"));
});

Deno.test("v3: durations as Go strings or nanoseconds (gost -O json), never unitless", () => {
  const ok = load(
    "services: []\nauthers:\n- {name: a, reload: 30000000000, http: {url: 'http://x/', timeout: 1.5s}}\n",
  );
  assertEquals(ok.issues, []);
  assertEquals(ok.config.authers![0].reload, "30s");
  assertEquals(ok.config.authers![0].http?.timeout, "1.5s");
  assertEquals(problems("authers:\n- {name: a, reload: 30}\n").length, 1);
  assertEquals(problems("authers:\n- {name: a, reload: '30'}\n").length, 1);
});

Deno.test("v3: lists accept a comma string (viper), scalars are weakly typed", () => {
  const { config, issues } = load(
    "bypasses:\n- {name: b, matchers: '10.0.0.0/8, .x.test'}\nauthers:\n- name: a\n  auths: [{username: u, password: 123456}]\n",
  );
  assertEquals(issues, []);
  assertEquals(config.bypasses![0].matchers, ["10.0.0.0/8", ".x.test"]);
  assertEquals(config.authers![0].auths![0].password, "123456");
});

Deno.test("v3: every problem is reported with its path", () => {
  const p = problems(
    "services:\n- name: a\n  addr: ':80'\n  sockopts: {mark: 1}\n  limiter: nolim\n  handler: {type: socks5, auther: x, chain: c}\n" +
      "- {name: b, addr: '0.0.0.0:80'}\n- {name: c, addr: '127.0.0.1:80', listener: {type: udp}}\n" +
      "chains:\n- name: c\n  hops:\n  - name: h\n    nodes:\n    - {name: n, addr: 'x', connector: {type: nope}}\n" +
      "hosts:\n- {name: h, mappings: [{ip: nope, hostname: a}]}\nresolvers:\n- {name: r, nameservers: []}\n" +
      "recorders: []\n",
  );
  assertEquals(p, [
    "services[0].sockopts: sockopts (needs the FFI socket layer) is not supported yet",
    "recorders: recorders is not supported yet",
    'chains[0].hops[0].nodes[0].addr: missing port in address "x"',
    'chains[0].hops[0].nodes[0].connector.type: unknown connector "nope"',
    'services[0].handler.auther: auther "x" is not defined',
    'services[0].limiter: limiter "nolim" is not defined',
    "services[1].addr: port 80 is also used by services[0]",
    'hosts[0].mappings[0].ip: "nope" is not an IP address',
    "resolvers[0].nameservers: no nameservers",
  ]);
});

Deno.test("v3: rtcp/rudp services do not clash with local ports; udp and tcp do not either", () => {
  assertEquals(
    problems(
      "services:\n- {name: a, addr: ':80'}\n- {name: b, addr: ':80', listener: {type: udp}, handler: {type: udp}}\n" +
        "- {name: c, addr: ':80', listener: {type: rtcp, chain: c}, handler: {type: rtcp}}\n" +
        "chains:\n- name: c\n  hops:\n  - name: h\n    nodes: [{name: n, addr: '1.2.3.4:1080'}]\n",
    ),
    [],
  );
});

Deno.test("v3: -O output of CLI configs loads back to the same text (yaml and json)", () => {
  const cfg = buildConfigFromCLI(
    [
      "http://u:p@:8080?limiter.in=1MB&climiter=3&bypass=10.0.0.0/8&proxyAgent=x",
      "tcp://:2222/10.0.0.1:22,10.0.0.2:22?strategy=random",
    ],
    ["socks5://1.2.3.4:1080?bypass=~5.6.7.8", "http://a:1,b:2"],
  );
  for (const f of ["yaml", "json"] as const) {
    const text = formatConfig(cfg, f);
    const again = load(text);
    assertEquals(again.issues, []);
    assertEquals(formatConfig(again.config, f), text);
  }
});

Deno.test("v3: YAML anchors and merge keys; forward nodes without names get target-N", () => {
  const { config, issues } = load(
    "x-node: &n {connector: {type: socks5}, dialer: {type: tcp}}\n" +
      "services:\n- name: a\n  addr: ':1'\n  handler: {type: tcp}\n" +
      "  forwarder: {nodes: [{addr: '10.0.0.1:80'}]}\n",
  );
  // An unknown top-level key stays an error even when it only holds an anchor.
  assertEquals(issues.map((i) => i.path), ["x-node"]);
  assertEquals(config.services![0].forwarder?.nodes[0].name, "target-0");
  const merged = load(
    "chains:\n- name: c\n  hops:\n  - name: h\n    nodes:\n" +
      "    - &base {name: a, addr: '1.2.3.4:1080', connector: {type: socks5}}\n" +
      "    - <<: *base\n      name: b\n      addr: '1.2.3.5:1080'\n",
  );
  assertEquals(merged.issues, []);
  assertEquals(merged.config.chains![0].hops[0].nodes[1].connector.type, "socks5");
});

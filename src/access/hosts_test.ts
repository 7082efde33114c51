import { assert, assertEquals, assertThrows } from "../../tests/lib/assert.ts";
import { buildHosts, Hosts, parseHostsFile, parseInlineHosts } from "./hosts.ts";

Deno.test("hosts file: ip name aliases, comments, reload, IPv6, several IPs per name", () => {
  const t = parseHostsFile(
    "# comment\n\nreload 10s\n127.0.0.1 a.test alias.test # trailing\n::1\ta.test\n10.0.0.2 B.Test.\n",
  );
  assertEquals(t.reload, 10_000);
  assertEquals(t.map.get("a.test"), ["127.0.0.1", "::1"]);
  assertEquals(t.map.get("alias.test"), ["127.0.0.1"]);
  assertEquals(t.map.get("b.test"), ["10.0.0.2"]);
});

Deno.test("hosts file: malformed lines are errors (so a corrupt edit keeps the old table)", () => {
  assertThrows(() => parseHostsFile("not-an-ip host"), Error, "line 1");
  assertThrows(() => parseHostsFile("127.0.0.1"), Error, "no host name");
  assertThrows(() => parseHostsFile("reload soon"), Error, "reload");
});

Deno.test("hosts inline: name:ip list, IPv6 after the first colon, bad entries rejected", () => {
  const m = parseInlineHosts("a.test:127.0.0.1, b.test:::1,c.test:[::2]");
  assertEquals(m.get("a.test"), ["127.0.0.1"]);
  assertEquals(m.get("b.test"), ["::1"]);
  assertEquals(m.get("c.test"), ["::2"]);
  assertThrows(() => parseInlineHosts("a.test:nope"), Error, "hostname:ip");
  assertThrows(() => parseInlineHosts("justaname:"), Error, "hostname:ip");
});

Deno.test("hosts lookup: case-insensitive, trailing dot, .domain wildcard", () => {
  const h = new Hosts(parseInlineHosts("exact.test:1.2.3.4,.wild.test:5.6.7.8"));
  assertEquals(h.lookup("EXACT.test."), ["1.2.3.4"]);
  assertEquals(h.lookup("a.b.wild.test"), ["5.6.7.8"]);
  assertEquals(h.lookup("other.test"), undefined);
  assertEquals(h.lookup("wild.test"), undefined);
});

Deno.test("hosts file: reload keeps old data on a corrupt edit, applies a good one", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/hosts`;
  try {
    await Deno.writeTextFile(path, "127.0.0.1 my.host\n");
    const h = buildHosts(path);
    try {
      assertEquals(h.lookup("my.host"), ["127.0.0.1"]);
      await Deno.writeTextFile(path, "garbage line here\n");
      await Deno.utime(path, new Date(), new Date(Date.now() + 5000));
      // deno-lint-ignore no-explicit-any
      await (h as any).watcher.check();
      assertEquals(h.lookup("my.host"), ["127.0.0.1"]);
      await Deno.writeTextFile(path, "127.0.0.2 my.host\n");
      await Deno.utime(path, new Date(), new Date(Date.now() + 10000));
      // deno-lint-ignore no-explicit-any
      await (h as any).watcher.check();
      assertEquals(h.lookup("my.host"), ["127.0.0.2"]);
    } finally {
      h.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("buildHosts: a missing file without a colon is a config error", () => {
  assertThrows(() => buildHosts("/nonexistent/hosts"), Error, "hosts file");
  assert(buildHosts("x.test:127.0.0.1").lookup("x.test"));
});

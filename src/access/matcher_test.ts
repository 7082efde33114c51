import { assert, assertEquals, assertThrows } from "../../tests/lib/assert.ts";
import { AddressMatcher, parsePortRange, parseRulesFile } from "./matcher.ts";

Deno.test("matcher: IPs, CIDRs, IP ranges", () => {
  const m = new AddressMatcher(["10.1.2.3", "192.168.0.0/16", "fd00::/8", "1.1.1.1-1.1.1.9"]);
  assert(m.match("10.1.2.3"));
  assert(m.match("10.1.2.3:443"));
  assert(!m.match("10.1.2.4"));
  assert(m.match("192.168.44.5:80"));
  assert(!m.match("192.169.0.1"));
  assert(m.match("[fd12::1]:53"));
  assert(m.match("::ffff:192.168.1.1"), "IPv4-mapped IPv6 is the IPv4 address");
  assert(m.match("1.1.1.5"));
  assert(!m.match("1.1.1.10"));
  assert(!m.match("example.com"));
});

Deno.test("matcher: host names, .domain, wildcards, ports", () => {
  const m = new AddressMatcher([
    "exact.org",
    ".example.com",
    "*.glob.net",
    "svc?.io",
    "ports.test:8000-9000",
    "*.p.test:443",
  ]);
  assert(m.match("exact.org:80"));
  assert(m.match("EXACT.org"), "case-insensitive");
  assert(!m.match("a.exact.org"), "a plain name matches only itself");
  assert(m.match("example.com"), ".domain matches the apex");
  assert(m.match("a.b.example.com:1"));
  assert(!m.match("badexample.com"));
  assert(m.match("x.glob.net"));
  assert(m.match("x.y.glob.net"), "* spans dots");
  assert(!m.match("glob.net"), "*. needs a label");
  assert(m.match("svc1.io"));
  assert(!m.match("svc12.io"));
  assert(m.match("ports.test:8080"));
  assert(!m.match("ports.test:80"));
  assert(m.match("a.p.test:443"));
  assert(!m.match("a.p.test:80"));
});

Deno.test("matcher: malformed patterns are errors", () => {
  for (const bad of ["10.0.0.0/33", "300.1.1.1/8", "1.1.1.1-nope", "a.com:99999", "x[.com"]) {
    assertThrows(() => new AddressMatcher([bad]), Error);
  }
  assertThrows(() => new AddressMatcher(["example.com"], true), Error, "not an IP");
  assertEquals(parsePortRange("*"), { min: 0, max: 65535 });
  assertEquals(parsePortRange("9000-8000"), { min: 8000, max: 9000 });
});

Deno.test("matcher: rules files", () => {
  const rf = parseRulesFile("# c\nreload 2s\nreverse true\n10.0.0.0/8 # net\n\n*.a.com extra\n");
  assertEquals(rf, { patterns: ["10.0.0.0/8", "*.a.com"], reload: 2000, reverse: true });
  assertThrows(() => parseRulesFile("reload soon"), Error, "reload");
});

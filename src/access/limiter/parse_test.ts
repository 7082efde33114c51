import { assert, assertEquals, assertThrows } from "../../../tests/lib/assert.ts";
import { parseLimitLine, parseSize, ScopeTable } from "./parse.ts";

Deno.test("parseSize: gost's base-2 units, both KB and KiB spellings", () => {
  assertEquals(parseSize("512KB"), 512 * 1024);
  assertEquals(parseSize("1MB"), 1 << 20);
  assertEquals(parseSize("10MiB"), 10 << 20);
  assertEquals(parseSize("1GB"), 1 << 30);
  assertEquals(parseSize("100B"), 100);
  assertEquals(parseSize("1.5KB"), 1536);
  assertEquals(parseSize("1MB512KB"), (1 << 20) + (512 << 10));
  assertEquals(parseSize("0"), 0);
  assertEquals(parseSize("4096"), 4096);
  assertEquals(parseSize("-1MB"), -(1 << 20));
});

Deno.test("parseSize: unknown units and garbage throw", () => {
  for (const bad of ["1mb", "1kB", "1Mb", "MB", "", "1 MB", "x1MB", "1MBx", ".KB"]) {
    assertThrows(() => parseSize(bad), Error, undefined);
  }
});

Deno.test("parseLimitLine: comments, tabs, blank lines", () => {
  assertEquals(parseLimitLine("  # only a comment"), undefined);
  assertEquals(parseLimitLine(""), undefined);
  assertEquals(parseLimitLine("$\t100MB   200MB # svc"), {
    scope: "$",
    values: ["100MB", "200MB"],
  });
  assertThrows(() => parseLimitLine("$$"), Error, "no value");
});

Deno.test("ScopeTable: $, $$, exact IP beats CIDR, most specific CIDR wins", () => {
  const t = ScopeTable.parse([
    "$ 1",
    "$$ 2",
    "192.168.1.1 3",
    "192.168.0.0/16 4",
    "192.168.1.0/24 5",
    "::1 6",
    "fd00::/8 7",
  ], (v) => Number(v[0]));
  assertEquals(t.global, 1);
  assertEquals(t.client, 2);
  assertEquals(t.lookupAddress("192.168.1.1")?.value, 3);
  assertEquals(t.lookupAddress("192.168.1.9")?.value, 5);
  assertEquals(t.lookupAddress("192.168.7.9")?.value, 4);
  assertEquals(t.lookupAddress("::ffff:192.168.7.9")?.value, 4);
  assertEquals(t.lookupAddress("10.0.0.1"), undefined);
  assertEquals(t.lookupAddress("0:0::1")?.value, 6);
  assertEquals(t.lookupAddress("fd12::5")?.value, 7);
  assert(t.hasAddressEntries);
  assertThrows(() => ScopeTable.parse(["example.com 1"], () => 1), Error, "invalid limit scope");
  assertThrows(() => ScopeTable.parse(["10.0.0.0/33 1"], () => 1), Error, "invalid limit scope");
});

import { assertEquals, assertThrows } from "../../tests/lib/assert.ts";
import { Params, parseDuration } from "./params.ts";

Deno.test("params: typed accessors, aliases, case-insensitive keys", () => {
  const p = new Params({
    UDP: "true",
    Retries: "3",
    ttl: "1m30s",
    ips: "a, b,,c",
    probe_resist: "x",
  });
  assertEquals(p.bool("udp"), true);
  assertEquals(p.int("retries", 0), 3);
  assertEquals(p.duration("ttl", 0), 90_000);
  assertEquals(p.list("ips"), ["a", "b", "c"]);
  assertEquals(p.str(["probeResist", "probe_resist"]), "x");
  assertEquals(p.unconsumed(), []);
});

Deno.test("params: unconsumed keys are reported", () => {
  const p = new Params({ udp: "1", bogus: "2" }, `-L "x"`);
  p.bool("udp");
  assertThrows(() => p.assertAllConsumed(), Error, `-L "x": unknown parameter "bogus"`);
});

Deno.test("params: invalid values fail with the key", () => {
  const p = new Params({ udp: "maybe", n: "x", d: "5 parsecs" });
  assertThrows(() => p.bool("udp"), Error, `parameter "udp": invalid boolean`);
  assertThrows(() => p.int("n", 0), Error, `parameter "n": invalid integer`);
  assertThrows(() => p.duration("d", 0), Error, `parameter "d": invalid duration`);
  assertThrows(() => new Params({ n: "500" }).int("n", 0, 0, 100), Error, "out of range");
});

Deno.test("durations: Go syntax and bare seconds", () => {
  assertEquals(parseDuration("5s"), 5000);
  assertEquals(parseDuration("300ms"), 300);
  assertEquals(parseDuration("1h"), 3_600_000);
  assertEquals(parseDuration("1.5s"), 1500);
  assertEquals(parseDuration("10"), 10_000);
  assertEquals(parseDuration("2m3s"), 123_000);
  assertEquals(parseDuration("s"), undefined);
  assertEquals(parseDuration(""), undefined);
});

import { assert } from "../../tests/lib/assert.ts";
import { admissionFromParam } from "./admission.ts";
import { ConfigError } from "../core/errors.ts";
import { assertThrows } from "../../tests/lib/assert.ts";

Deno.test("admission: blacklist by default, ~ admits only the matches", () => {
  const deny = admissionFromParam("127.0.0.2,10.0.0.0/8");
  assert(!deny.admit("127.0.0.2") && !deny.admit("10.3.3.3:5555"));
  assert(deny.admit("127.0.0.1"));
  const only = admissionFromParam("~127.0.0.1");
  assert(only.admit("127.0.0.1") && !only.admit("127.0.0.2"));
  assert(only.admit("::ffff:127.0.0.1"), "IPv4-mapped peers are their IPv4 address");
  assertThrows(() => admissionFromParam("example.com"), ConfigError, "not an IP");
});

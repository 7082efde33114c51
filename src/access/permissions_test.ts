import { assert, assertThrows } from "../../tests/lib/assert.ts";
import { parsePermissions, permissionsFromParams } from "./permissions.ts";

Deno.test("permissions: whitelist then blacklist", () => {
  const p = permissionsFromParams("tcp:*:80,443,8000-9000 udp:*.example.com:53", "tcp:bad.*:*")!;
  assert(p.allows("tcp", "a.org:80"));
  assert(p.allows("tcp", "a.org:8500"));
  assert(!p.allows("tcp", "a.org:22"));
  assert(!p.allows("tcp", "bad.org:80"), "blacklisted host");
  assert(p.allows("udp", "ns.example.com:53"));
  assert(!p.allows("udp", "ns.example.org:53"));
  assert(!p.allows("rtcp", "a.org:80"));
  assert(p.allows("tcp", "a.org"), "a bare host means port 80");
  const any = permissionsFromParams(undefined, "*:*:25")!;
  assert(any.allows("udp", "x:53") && !any.allows("rtcp", "x:25"));
});

Deno.test("permissions: malformed rules are errors", () => {
  for (const bad of ["tcp:*", "tcp:*:http", "tcp::80", "connect:*:80", "tcp:*:70000"]) {
    assertThrows(() => parsePermissions(bad), Error);
  }
});

import { assert, assertEquals, assertThrows } from "../../tests/lib/assert.ts";
import { AutherGroup, checkTable, StaticAuther } from "./auth.ts";
import { parseSecrets } from "./auth_file.ts";

Deno.test("parseSecrets: users, empty passwords, comments, tabs, reload directive", () => {
  const f = parseSecrets("# c\n\nreload 10s\r\nalice  pw\n\tbob\t x \ncarol\n");
  assertEquals([...f.users], [["alice", "pw"], ["bob", "x"], ["carol", ""]]);
  assertEquals(f.reload, 10_000);
});

Deno.test("parseSecrets: refuses ambiguous lines, binary data, bad reload", () => {
  assertThrows(() => parseSecrets("a b c\n"), Error, "line 1");
  assertThrows(() => parseSecrets("ok pw\n\0\x01"), Error, "not a text file");
  assertThrows(() => parseSecrets("reload soon\n"), Error, "invalid reload");
});

Deno.test("checkTable: gost semantics (empty password accepts any), unknown users fail", () => {
  const t = new Map([["a", "pw"], ["b", ""]]);
  assert(checkTable(t, "a", "pw"));
  assert(!checkTable(t, "a", "pw2"));
  assert(!checkTable(t, "a", ""));
  assert(checkTable(t, "b", "anything"));
  assert(!checkTable(t, "c", ""));
  assert(!checkTable(new Map(), "", ""));
});

Deno.test("AutherGroup: any member may accept", async () => {
  const g = new AutherGroup([new StaticAuther([["a", "1"]]), new StaticAuther([["b", "2"]])]);
  assert(await g.verify("a", "1"));
  assert(await g.verify("b", "2"));
  assert(!(await g.verify("a", "2")));
});

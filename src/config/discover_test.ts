import { assertEquals } from "../../tests/lib/assert.ts";
import { configCandidates, discoverConfig } from "./discover.ts";

Deno.test("discover: working dir, /etc, $HOME; gost names then dost names, json/yaml/yml", () => {
  const c = configCandidates("/work", "/home/u");
  assertEquals(c.slice(0, 6), [
    "/work/gost.json",
    "/work/gost.yaml",
    "/work/gost.yml",
    "/work/dost.json",
    "/work/dost.yaml",
    "/work/dost.yml",
  ]);
  assertEquals(c.indexOf("/work/dost.yml") < c.indexOf("/etc/gost/gost.json"), true);
  assertEquals(c.indexOf("/etc/dost/dost.yaml") < c.indexOf("/home/u/.gost/gost.yaml"), true);
  assertEquals(c.length, 5 * 6);
  assertEquals(configCandidates("/work/", undefined).length, 3 * 6);
});

Deno.test("discover: the first existing candidate wins; none → undefined", () => {
  const have = new Set(["/work/dost.yml", "/home/u/.gost/gost.yaml"]);
  assertEquals(discoverConfig("/work", "/home/u", (p) => have.has(p)), "/work/dost.yml");
  assertEquals(discoverConfig("/x", "/home/u", (p) => have.has(p)), "/home/u/.gost/gost.yaml");
  assertEquals(discoverConfig("/work", undefined, (p) => have.has(p)), "/work/dost.yml");
  assertEquals(discoverConfig("/x", undefined, () => false), undefined);
});

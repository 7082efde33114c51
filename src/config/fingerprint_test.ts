import { assertEquals } from "../../tests/lib/assert.ts";
import { diffConfigs, serviceFingerprint } from "./fingerprint.ts";
import type { Config } from "./model.ts";

const base = (): Config => ({
  services: [
    {
      name: "a",
      addr: ":1",
      handler: { type: "socks5", chain: "c1", auther: "users" },
      listener: { type: "tcp" },
      bypass: "b1",
    },
    { name: "b", addr: ":2", handler: { type: "http" }, listener: { type: "tcp" } },
    {
      name: "c",
      addr: ":3",
      handler: { type: "http", chain: "c2" },
      listener: { type: "tcp" },
    },
  ],
  chains: [
    {
      name: "c1",
      hops: [{
        name: "h0",
        nodes: [{
          name: "n0",
          addr: "127.0.0.1:9",
          connector: { type: "socks5" },
          dialer: { type: "tcp" },
        }],
      }],
    },
    { name: "c2", hops: [{ name: "shared", nodes: [] }] },
  ],
  hops: [{
    name: "shared",
    nodes: [{
      name: "n1",
      addr: "127.0.0.1:8",
      connector: { type: "http" },
      dialer: { type: "tcp" },
    }],
  }],
  authers: [{ name: "users", auths: [{ username: "u", password: "p" }] }],
  bypasses: [{ name: "b1", matchers: ["*.example.com"] }],
});

Deno.test("fingerprint: key order does not count, a referenced object does", () => {
  const a = base();
  const b = base();
  const svc = b.services![0];
  b.services![0] = {
    bypass: svc.bypass,
    listener: svc.listener,
    handler: svc.handler,
    addr: svc.addr,
    name: svc.name,
  };
  assertEquals(serviceFingerprint(a, "a"), serviceFingerprint(b, "a"));
  b.bypasses![0].matchers = ["*.example.org"];
  assertEquals(serviceFingerprint(a, "a") === serviceFingerprint(b, "a"), false);
  assertEquals(serviceFingerprint(a, "b"), serviceFingerprint(b, "b"));
  assertEquals(serviceFingerprint(a, "zz"), undefined);
});

Deno.test("fingerprint: a changed chain, auther or top-level hop changes only its users", () => {
  const before = base();
  const after = base();
  after.chains![0].hops[0].nodes[0].addr = "127.0.0.1:10";
  assertEquals(diffConfigs(before, after), {
    kept: ["b", "c"],
    changed: ["a"],
    added: [],
    removed: [],
  });
  const after2 = base();
  after2.hops![0].nodes[0].addr = "127.0.0.1:11"; // reached through chain c2's named hop
  assertEquals(diffConfigs(before, after2).changed, ["c"]);
  const after3 = base();
  after3.authers![0].auths = [{ username: "u", password: "q" }];
  assertEquals(diffConfigs(before, after3).changed, ["a"]);
});

Deno.test("fingerprint: added and removed services; metadata is not a reference", () => {
  const before = base();
  const after = base();
  after.services = after.services!.filter((s) => s.name !== "b");
  after.services.push({
    name: "d",
    addr: ":4",
    handler: { type: "http" },
    listener: { type: "tcp" },
    metadata: { bypass: "b1" },
  });
  assertEquals(diffConfigs(before, after), {
    kept: ["a", "c"],
    changed: [],
    added: ["d"],
    removed: ["b"],
  });
  const again = base();
  again.services!.push({
    name: "d",
    addr: ":4",
    handler: { type: "http" },
    listener: { type: "tcp" },
    metadata: { bypass: "b1" },
  });
  const changedBypass = base();
  changedBypass.services!.push(again.services![3]);
  changedBypass.bypasses![0].matchers = ["x"];
  // d names b1 only inside metadata (a parameter value), so b1's change does not touch d.
  assertEquals(diffConfigs(again, changedBypass).changed, ["a"]);
});

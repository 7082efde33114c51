import { assert, assertEquals } from "../../tests/lib/assert.ts";
import { NamedObjects } from "./named.ts";

Deno.test("named: bypasses combine (any contains), whitelist reverses, names are built once", () => {
  const n = new NamedObjects({
    bypasses: [
      { name: "a", matchers: ["10.0.0.0/8"] },
      { name: "b", whitelist: true, matchers: [".ok.test"] },
    ],
  });
  const both = n.bypass(["a", "b"], "here")!;
  assert(both.contains("tcp", "10.1.1.1:80"));
  assert(both.contains("tcp", "example.com:80")); // not in b's whitelist
  assert(!both.contains("tcp", "www.ok.test:80"));
  assertEquals(n.bypass([], "here"), undefined);
  let err = "";
  try {
    n.bypass(["zzz"], "svc");
  } catch (e) {
    err = (e as Error).message;
  }
  assertEquals(err, 'svc: bypass "zzz" is not defined');
  n.close();
});

Deno.test("named: admissions, hosts mappings with aliases, limiters shared by name", () => {
  const n = new NamedObjects({
    admissions: [{ name: "local", whitelist: true, matchers: ["127.0.0.0/8"] }],
    hosts: [{ name: "h", mappings: [{ ip: "10.0.0.1", hostname: "a.test", aliases: ["b.test"] }] }],
    limiters: [{ name: "l", limits: ["$ 1MB"] }],
    climiters: [{ name: "c", limits: ["$ 2"] }],
  });
  const adm = n.admission(["local"], "x")!;
  assert(adm.admit("127.0.0.5"));
  assert(!adm.admit("192.0.2.1"));
  const h = n.hosts("h", "x");
  assertEquals(h.lookup("B.test"), ["10.0.0.1"]);
  assertEquals(n.traffic("l", "x"), n.traffic("l", "y"));
  const c = n.conns("c", "x");
  const r1 = c.acquire("127.0.0.1");
  const r2 = n.conns("c", "y").acquire("127.0.0.2");
  assert(r1 && r2);
  assertEquals(c.acquire("127.0.0.3"), undefined); // one `$ 2` budget for both users
  n.close();
});

Deno.test("named: a resolver needs one prefer/ttl/timeout for all its nameservers", () => {
  const n = new NamedObjects({
    resolvers: [
      { name: "ok", nameservers: [{ addr: "udp://127.0.0.1:53", prefer: "ipv6", ttl: "30s" }] },
      {
        name: "mixed",
        nameservers: [{ addr: "127.0.0.1:53", timeout: "1s" }, { addr: "127.0.0.2:53" }],
      },
    ],
  });
  assertEquals(n.resolver("ok", "x").prefer, "ipv6");
  let err = "";
  try {
    n.resolver("mixed", "x");
  } catch (e) {
    err = (e as Error).message;
  }
  assert(err.includes("different timeout per nameserver is not supported yet"), err);
});

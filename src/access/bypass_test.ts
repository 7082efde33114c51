import { assert } from "../../tests/lib/assert.ts";
import { bypassFromParam } from "./bypass.ts";

Deno.test("bypass: inline list and reversed mode", () => {
  const b = bypassFromParam("127.0.0.1,.example.com");
  assert(b.contains("tcp", "127.0.0.1:80"));
  assert(b.contains("tcp", "www.example.com:443"));
  assert(!b.contains("tcp", "localhost:80"));
  const w = bypassFromParam("~127.0.0.0/8");
  assert(w.whitelist);
  assert(!w.contains("tcp", "127.9.9.9:80"));
  assert(w.contains("tcp", "10.0.0.1:80"));
});

Deno.test("bypass: file source with directives; a corrupt edit keeps the rules", async () => {
  const f = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(f, "reverse true\n10.0.0.0/8\n");
    const b = bypassFromParam(f);
    assert(b.whitelist);
    assert(b.contains("tcp", "1.2.3.4:80") && !b.contains("tcp", "10.1.1.1:80"));
    const w = (b as unknown as { source: { watcher: { check(): Promise<void> } } }).source
      .watcher;
    await Deno.writeTextFile(f, "10.0.0.0/99\n");
    await Deno.utime(f, new Date(), new Date(Date.now() + 5000));
    await w.check();
    assert(b.whitelist && !b.contains("tcp", "10.1.1.1:80"), "old rules kept");
    await Deno.writeTextFile(f, "1.2.3.4\n");
    await Deno.utime(f, new Date(), new Date(Date.now() + 10000));
    await w.check();
    assert(!b.whitelist && b.contains("tcp", "1.2.3.4:80") && !b.contains("tcp", "10.1.1.1:80"));
    b.close();
  } finally {
    await Deno.remove(f);
  }
});

import { assertEquals } from "../../../tests/lib/assert.ts";
import { Nonce } from "./stream.ts";
import { aeadSubkey, evpBytesToKey } from "./cipher.ts";

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("ss nonce: little-endian counter carries across bytes", () => {
  const n = new Nonce();
  for (let i = 0; i < 256; i++) n.next();
  assertEquals(hex(n.bytes), "000100000000000000000000");
  for (let i = 0; i < 65536 - 256; i++) n.next();
  assertEquals(hex(n.bytes), "000001000000000000000000");
  n.bytes.fill(255);
  n.next();
  assertEquals(hex(n.bytes), "000000000000000000000000");
});

Deno.test("ss keys: EVP_BytesToKey(MD5) and HKDF-SHA1 subkey", () => {
  // MD5("foobar") = 3858f62230ac3c915f300c664312c63f; the second block is MD5(D1 ‖ "foobar").
  assertEquals(hex(evpBytesToKey("foobar", 16)), "3858f62230ac3c915f300c664312c63f");
  assertEquals(hex(evpBytesToKey("foobar", 32)).slice(0, 32), "3858f62230ac3c915f300c664312c63f");
  assertEquals(aeadSubkey(new Uint8Array(16), new Uint8Array(16)).length, 16);
});

Deno.test("ss keys: the OpenSSL HKDF agrees with node:crypto's (RFC 5869 A.4 too)", async () => {
  const { libcrypto, OsslHkdfSha1 } = await import("../../../ffi/libcrypto.ts");
  if (!libcrypto()) return; // no FFI here: aeadSubkey uses node:crypto, tested above
  const { hkdfSync } = await import("node:crypto");
  const ikm = new Uint8Array(11).fill(0x0b);
  const salt = Uint8Array.from({ length: 13 }, (_, i) => i);
  const info = Uint8Array.from({ length: 10 }, (_, i) => 0xf0 + i);
  assertEquals(
    hex(new OsslHkdfSha1(info).derive(ikm, salt, new Uint8Array(42))),
    "085a01ea1b10f36933068b56efa5ad81a4f14b822f5b091568a9cdd4f155fda2c22e422478d305f3f896",
  );
  const ss = new TextEncoder().encode("ss-subkey");
  const h = new OsslHkdfSha1(ss);
  for (const n of [16, 32]) {
    for (let i = 0; i < 20; i++) {
      const key = crypto.getRandomValues(new Uint8Array(n));
      const s = crypto.getRandomValues(new Uint8Array(i % 2 ? n : 70));
      assertEquals(
        hex(h.derive(key, s, new Uint8Array(n))),
        hex(new Uint8Array(hkdfSync("sha1", key, s, ss, n))),
      );
    }
  }
});

Deno.test("ss stream: reads gather whole buffered chunks, resume a split one, and keep order", async () => {
  const { SsStreamConn } = await import("./stream.ts");
  const { ssCipher } = await import("./cipher.ts");
  const cipher = ssCipher("aes-128-gcm", "pw", "test");
  // One writer's output, captured; then replayed to a reader in pieces of odd sizes.
  const wire: Uint8Array[] = [];
  const sink = {
    localAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
    remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 2 },
    read: () => Promise.resolve(null),
    write: (p: Uint8Array) => (wire.push(p.slice()), Promise.resolve(p.length)),
    closeWrite: () => Promise.resolve(),
    close: () => {},
  };
  const w = new SsStreamConn(sink, cipher);
  const sent: number[] = [];
  let seed = 7;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) >>> 0) % n;
  for (let i = 0; i < 40; i++) {
    const p = Uint8Array.from({ length: [1, 100, 16383, 16384, 50_000, 3][i % 6] }, () => rnd(256));
    sent.push(...p);
    await w.write(p);
  }
  const all = new Uint8Array(wire.reduce((n, b) => n + b.length, 0));
  wire.reduce((at, b) => (all.set(b, at), at + b.length), 0);
  let at = 0;
  const src = {
    ...sink,
    read: (p: Uint8Array) => {
      if (at === all.length) return Promise.resolve(null);
      const n = Math.min(p.length, all.length - at, 1 + rnd(40_000));
      p.set(all.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
  };
  const r = new SsStreamConn(src, cipher);
  const got: number[] = [];
  for (let i = 0;; i++) {
    const buf = new Uint8Array([7, 512, 16383, 65536, 300_000][i % 5]);
    const n = await r.read(buf);
    if (n === null) break;
    got.push(...buf.subarray(0, n));
  }
  assertEquals(got.length, sent.length);
  assertEquals(hex(Uint8Array.from(got)) === hex(Uint8Array.from(sent)), true);
});

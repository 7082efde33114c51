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

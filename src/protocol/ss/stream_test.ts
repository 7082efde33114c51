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

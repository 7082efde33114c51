import { assertEquals } from "../../../tests/lib/assert.ts";
import { blake3 } from "@noble/hashes/blake3";
import { sessionSubkey } from "./ss2022.ts";

const b64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const tob64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));

// Vectors published with another SIP022 implementation (urban-spork's AEAD2022TestCase).
Deno.test("ss2022: session subkey = BLAKE3 derive_key(psk ‖ salt), published vector", () => {
  const key = b64("Lc3tTx0BY6ZJ/fCwOx3JvF0I/anhwJBO5p2+FA5Vce4=");
  const salt = b64("3oFO0VyLyGI4nFN0M9P+62vPND/L6v8IingaPJWTbJA=");
  assertEquals(tob64(sessionSubkey(key, salt)), "EdNE+4U8dVnHT0+poAFDK2bdlwfrHT61sUNr9WYPh+E=");
});

Deno.test("ss2022: BLAKE3 derive_key with a SIP022 context, published vector", () => {
  const out = blake3(
    new TextEncoder().encode("Personal search-enabled assistant for programmers"),
    {
      context: new TextEncoder().encode("shadowsocks 2022 identity subkey"),
      dkLen: 32,
    },
  );
  assertEquals(tob64(out), "nb91ZIjdNzFcPmGRS3Lg7m+muVqat549+RSDluyVN4c=");
});

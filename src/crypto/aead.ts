/**
 * AEAD ciphers for Shadowsocks, from the fastest backend this process has, chosen once:
 * OpenSSL 3 through FFI (ffi/libcrypto.ts), else node:crypto. Both take 12-byte nonces and
 * append/verify a 16-byte tag. `DOST_AEAD_BACKEND=node` forces the fallback (tests, bench).
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { libcrypto, OsslAead } from "../../ffi/libcrypto.ts";

/** The AEADs Shadowsocks uses (SIP004 and SIP022 TCP). */
export type AeadAlgo = "aes-128-gcm" | "aes-256-gcm" | "chacha20-poly1305";

/** One direction of an AEAD with a fixed key. */
export interface Aead {
  /** Encrypts `plain` into `out`: ciphertext (plain.length bytes) then the 16-byte tag. */
  seal(nonce: Uint8Array, plain: Uint8Array, out: Uint8Array): void;
  /** Verifies and decrypts `sealed` (ciphertext then tag) into `out`; false if it fails. */
  open(nonce: Uint8Array, sealed: Uint8Array, out: Uint8Array): boolean;
  /** Switches to another key of the same size (Shadowsocks UDP: a subkey per packet). */
  rekey(key: Uint8Array): void;
  /** Releases native state early (also released when garbage-collected). */
  free(): void;
}

export type AeadBackend = "openssl" | "node";

export const TAG_SIZE = 16;

let chosen: AeadBackend | undefined;

/** The backend in use: OpenSSL when FFI and libcrypto.so.3 are there, else node:crypto. */
export function aeadBackend(): AeadBackend {
  if (chosen) return chosen;
  let forced: string | undefined;
  try {
    forced = Deno.env.get("DOST_AEAD_BACKEND");
  } catch { /* no --allow-env: no override */ }
  chosen = forced === "node" ? "node" : libcrypto() ? "openssl" : "node";
  return chosen;
}

/** node:crypto: a cipher object per call (slow for AES: ~175 MB/s here), but always there. */
class NodeAead implements Aead {
  private readonly name: string;
  constructor(algo: AeadAlgo, private key: Uint8Array) {
    this.name = algo;
  }
  rekey(key: Uint8Array): void {
    this.key = key;
  }
  seal(nonce: Uint8Array, plain: Uint8Array, out: Uint8Array): void {
    // deno-lint-ignore no-explicit-any
    const c = createCipheriv(this.name as any, this.key, nonce, { authTagLength: TAG_SIZE } as any);
    const a = c.update(plain);
    const b = c.final();
    out.set(a, 0);
    out.set(b, a.length);
    out.set(c.getAuthTag(), plain.length);
  }
  open(nonce: Uint8Array, sealed: Uint8Array, out: Uint8Array): boolean {
    const n = sealed.length - TAG_SIZE;
    if (n < 0) return false;
    // deno-lint-ignore no-explicit-any
    const d = createDecipheriv(
      this.name as any,
      this.key,
      nonce,
      { authTagLength: TAG_SIZE } as any,
    );
    // deno-lint-ignore no-explicit-any
    (d as any).setAuthTag(sealed.subarray(n));
    try {
      const a = d.update(sealed.subarray(0, n));
      const b = d.final();
      out.set(a, 0);
      out.set(b, a.length);
      return true;
    } catch {
      return false;
    }
  }
  free(): void {}
}

/** A new AEAD direction (`encrypt` true to seal, false to open) on `key`. */
export function newAead(
  algo: AeadAlgo,
  key: Uint8Array,
  encrypt: boolean,
  backend: AeadBackend = aeadBackend(),
): Aead {
  return backend === "openssl" ? new OsslAead(algo, key, encrypt) : new NodeAead(algo, key);
}

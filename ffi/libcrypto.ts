/**
 * OpenSSL 3's libcrypto through Deno FFI: AEAD seal/open on reused EVP contexts. It is the fast
 * AEAD route for Shadowsocks — aes-128-gcm ran ~24× faster than node:crypto in one process (see
 * shared/docs/deno-notes.md) because node:crypto builds a cipher object per chunk and Deno's
 * WebCrypto awaits per call. `libcrypto()` is null without `--allow-ffi` or libcrypto.so.3;
 * src/crypto/aead.ts then falls back to node:crypto.
 */

const SYMBOLS = {
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer" },
  EVP_CIPHER_CTX_free: { parameters: ["pointer"], result: "void" },
  EVP_aes_128_gcm: { parameters: [], result: "pointer" },
  EVP_aes_256_gcm: { parameters: [], result: "pointer" },
  EVP_chacha20_poly1305: { parameters: [], result: "pointer" },
  EVP_CipherInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  EVP_CipherUpdate: { parameters: ["pointer", "buffer", "buffer", "buffer", "i32"], result: "i32" },
  EVP_CipherFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_CIPHER_CTX_ctrl: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
  EVP_MAC_fetch: { parameters: ["pointer", "buffer", "pointer"], result: "pointer" },
  EVP_MAC_CTX_new: { parameters: ["pointer"], result: "pointer" },
  EVP_MAC_init: { parameters: ["pointer", "buffer", "usize", "buffer"], result: "i32" },
  EVP_MAC_update: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  EVP_MAC_final: { parameters: ["pointer", "buffer", "buffer", "usize"], result: "i32" },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

const EVP_CTRL_AEAD_GET_TAG = 0x10;
const EVP_CTRL_AEAD_SET_TAG = 0x11;
const TAG = 16;

let loaded: Lib | null | undefined;
/** Why libcrypto() is null (for the start-up debug line). */
export let libcryptoUnavailableReason = "";

/** libcrypto, loaded once; null without --allow-ffi (checked without prompting) or the library. */
export function libcrypto(): Lib | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
      libcryptoUnavailableReason = "--allow-ffi not granted";
      return null;
    }
    const names = Deno.build.os === "darwin" ? ["libcrypto.3.dylib"] : ["libcrypto.so.3"];
    for (const n of names) {
      try {
        loaded = Deno.dlopen(n, SYMBOLS).symbols;
        break;
      } catch (e) {
        libcryptoUnavailableReason = `${n}: ${e instanceof Error ? e.message : String(e)}`;
      }
    }
  } catch (e) {
    libcryptoUnavailableReason = e instanceof Error ? e.message : String(e);
  }
  return loaded;
}

/** AEAD algorithms libcrypto provides here. */
export type OsslAlgo = "aes-128-gcm" | "aes-256-gcm" | "chacha20-poly1305";

const freeCtx = new FinalizationRegistry<Deno.PointerValue>((p) => {
  if (p) libcrypto()?.EVP_CIPHER_CTX_free(p);
});

/**
 * One direction of an AEAD with a fixed key: a reused EVP context (encrypting or decrypting),
 * re-initialised with each 12-byte nonce. Not safe for interleaved use by two callers.
 */
export class OsslAead {
  private ctx: Deno.PointerValue;
  private readonly outl = new Int32Array(1);
  private readonly tag = new Uint8Array(TAG);
  /** A key set by rekey(), applied with the next nonce in the same init call. */
  private nextKey: Uint8Array | null = null;

  constructor(algo: OsslAlgo, key: Uint8Array, encrypt: boolean) {
    const lib = libcrypto();
    if (!lib) throw new Error(`libcrypto is not available (${libcryptoUnavailableReason})`);
    const cipher = algo === "aes-128-gcm"
      ? lib.EVP_aes_128_gcm()
      : algo === "aes-256-gcm"
      ? lib.EVP_aes_256_gcm()
      : lib.EVP_chacha20_poly1305();
    const ctx = lib.EVP_CIPHER_CTX_new();
    if (!ctx) throw new Error("EVP_CIPHER_CTX_new failed");
    if (lib.EVP_CipherInit_ex(ctx, cipher, null, key, null, encrypt ? 1 : 0) !== 1) {
      lib.EVP_CIPHER_CTX_free(ctx);
      throw new Error(`EVP_CipherInit_ex(${algo}) failed`);
    }
    this.ctx = ctx;
    freeCtx.register(this, ctx, this);
  }

  /** Encrypts `plain` into `out` (plain.length + 16 bytes: ciphertext then tag). */
  seal(nonce: Uint8Array, plain: Uint8Array, out: Uint8Array): void {
    const lib = libcrypto()!, ctx = this.ctx, n = plain.length;
    const key = this.nextKey;
    this.nextKey = null;
    if (
      lib.EVP_CipherInit_ex(ctx, null, null, key, nonce, -1) !== 1 ||
      (n > 0 && lib.EVP_CipherUpdate(ctx, out, this.outl, plain, n) !== 1) ||
      lib.EVP_CipherFinal_ex(ctx, this.tag, this.outl) !== 1 ||
      lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG, this.tag) !== 1
    ) throw new Error("AEAD seal failed");
    out.set(this.tag, n);
  }

  /** Decrypts `sealed` (ciphertext then 16-byte tag) into `out`; false when it does not verify. */
  open(nonce: Uint8Array, sealed: Uint8Array, out: Uint8Array): boolean {
    const lib = libcrypto()!, ctx = this.ctx, n = sealed.length - TAG;
    if (n < 0) return false;
    this.tag.set(sealed.subarray(n));
    const key = this.nextKey;
    this.nextKey = null;
    if (lib.EVP_CipherInit_ex(ctx, null, null, key, nonce, -1) !== 1) return false;
    if (lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG, this.tag) !== 1) return false;
    if (n > 0 && lib.EVP_CipherUpdate(ctx, out, this.outl, sealed.subarray(0, n), n) !== 1) {
      return false;
    }
    return lib.EVP_CipherFinal_ex(ctx, this.tag, this.outl) === 1;
  }

  /**
   * Switches to another key of the same size (per-packet subkeys reuse one context). The key
   * is installed together with the next nonce: one init call per packet instead of two. The
   * caller keeps `key` unchanged until then.
   */
  rekey(key: Uint8Array): void {
    this.nextKey = key;
  }

  /** Frees the context now (it is also freed when garbage-collected). */
  free(): void {
    if (!this.ctx) return;
    freeCtx.unregister(this);
    libcrypto()!.EVP_CIPHER_CTX_free(this.ctx);
    this.ctx = null;
  }
}

/**
 * HKDF-SHA1 (RFC 5869) on one reused EVP_MAC(HMAC-SHA1) context: Shadowsocks derives a subkey
 * for every UDP packet, and node's hkdfSync (like OpenSSL's one-shot HMAC) looks the digest up on
 * each call, ~7 µs; re-keying a fetched context costs ~0.7 µs per HMAC, ~2.2 µs per derivation.
 */
export class OsslHkdfSha1 {
  private readonly lib: Lib;
  private readonly ctx: Deno.PointerValue;
  private readonly prk = new Uint8Array(20);
  private readonly t = new Uint8Array(20);
  private readonly outl = new BigUint64Array(1);
  private readonly block: Uint8Array;
  /** Kept alive: the params point into them. */
  private readonly strings: Uint8Array[];
  private readonly params = new Uint8Array(80);
  private first = true;

  constructor(private readonly info: Uint8Array) {
    const lib = libcrypto();
    if (!lib) throw new Error(`libcrypto is not available (${libcryptoUnavailableReason})`);
    this.lib = lib;
    const enc = new TextEncoder();
    const mac = lib.EVP_MAC_fetch(null, enc.encode("HMAC\0"), null);
    const ctx = mac ? lib.EVP_MAC_CTX_new(mac) : null;
    if (!ctx) throw new Error("EVP_MAC HMAC is not available");
    this.ctx = ctx;
    // OSSL_PARAM[] { {"digest", UTF8_STRING, "SHA1", 4}, {NULL} }: 40-byte entries.
    const name = enc.encode("digest\0"), value = enc.encode("SHA1\0");
    this.strings = [name, value];
    const v = new DataView(this.params.buffer);
    v.setBigUint64(0, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(name))), true);
    v.setUint32(8, 4, true); // OSSL_PARAM_UTF8_STRING
    v.setBigUint64(16, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(value))), true);
    v.setBigUint64(24, 4n, true);
    v.setBigUint64(32, 0xffffffffffffffffn, true); // OSSL_PARAM_UNMODIFIED
    this.block = new Uint8Array(20 + info.length + 1);
  }

  private hmac(key: Uint8Array, msg: Uint8Array, out: Uint8Array): void {
    const lib = this.lib;
    // The digest is set once; later inits only change the key.
    const ok =
      lib.EVP_MAC_init(this.ctx, key, BigInt(key.length), this.first ? this.params : null) === 1 &&
      lib.EVP_MAC_update(this.ctx, msg, BigInt(msg.length)) === 1 &&
      lib.EVP_MAC_final(this.ctx, out, this.outl, 20n) === 1;
    if (!ok) throw new Error("HMAC-SHA1 failed");
    this.first = false;
  }

  /** HKDF-SHA1(ikm, salt, info) → `out` (its length, at most 255 × 20 bytes). */
  derive(ikm: Uint8Array, salt: Uint8Array, out: Uint8Array): Uint8Array {
    this.hmac(salt, ikm, this.prk);
    let prev = 0;
    for (let i = 1, at = 0; at < out.length; i++) {
      this.block.set(this.t.subarray(0, prev), 0);
      this.block.set(this.info, prev);
      this.block[prev + this.info.length] = i;
      this.hmac(this.prk, this.block.subarray(0, prev + this.info.length + 1), this.t);
      prev = 20;
      const n = Math.min(20, out.length - at);
      out.set(this.t.subarray(0, n), at);
      at += n;
    }
    return out;
  }
}

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
    if (
      lib.EVP_CipherInit_ex(ctx, null, null, null, nonce, -1) !== 1 ||
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
    if (lib.EVP_CipherInit_ex(ctx, null, null, null, nonce, -1) !== 1) return false;
    if (lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG, this.tag) !== 1) return false;
    if (n > 0 && lib.EVP_CipherUpdate(ctx, out, this.outl, sealed.subarray(0, n), n) !== 1) {
      return false;
    }
    return lib.EVP_CipherFinal_ex(ctx, this.tag, this.outl) === 1;
  }

  /** Switches to another key of the same size (per-packet subkeys reuse one context). */
  rekey(key: Uint8Array): void {
    if (libcrypto()!.EVP_CipherInit_ex(this.ctx, null, null, key, null, -1) !== 1) {
      throw new Error("EVP_CipherInit_ex (rekey) failed");
    }
  }

  /** Frees the context now (it is also freed when garbage-collected). */
  free(): void {
    if (!this.ctx) return;
    freeCtx.unregister(this);
    libcrypto()!.EVP_CIPHER_CTX_free(this.ctx);
    this.ctx = null;
  }
}

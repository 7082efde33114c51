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
  SHA1_Transform: { parameters: ["buffer", "buffer"], result: "void" },
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
 * HKDF-SHA1 (RFC 5869) on OpenSSL's SHA-1 block function: Shadowsocks derives a subkey for every
 * UDP packet. The EVP routes (node's hkdfSync, EVP_MAC, even the one-shot `SHA1()`, which fetches
 * its digest per call in OpenSSL 3.0) cost 0.5–0.7 µs per hash; `SHA1_Transform` costs ~0.06 µs
 * per 64-byte block through FFI, so HMAC's padding is done here and a derivation of a 16-byte
 * subkey is 8 block calls: ~0.9 µs in all, against ~2.7 µs on EVP_MAC.
 */
export class OsslHkdfSha1 {
  private readonly lib: Lib;
  /** A SHA_CTX: only h0..h4 (native-endian u32) matter to SHA1_Transform. */
  private readonly ctx = new Uint8Array(96);
  private readonly h = new Uint32Array(this.ctx.buffer, 0, 5);
  private readonly blk = new Uint8Array(64);
  private readonly blkView = new DataView(this.blk.buffer);
  private readonly pad = new Uint8Array(64);
  private readonly pad32 = new Uint32Array(this.pad.buffer);
  private readonly keyBlock = new Uint8Array(64);
  private readonly key32 = new Uint32Array(this.keyBlock.buffer);
  private readonly inner = new Uint8Array(20);
  private readonly keyHash = new Uint8Array(20);
  private readonly prk = new Uint8Array(20);
  private readonly t = new Uint8Array(20);
  private readonly msg: Uint8Array;

  constructor(private readonly info: Uint8Array) {
    const lib = libcrypto();
    if (!lib) throw new Error(`libcrypto is not available (${libcryptoUnavailableReason})`);
    this.lib = lib;
    this.msg = new Uint8Array(20 + info.length + 1);
  }

  /**
   * SHA-1 of `prefix` (one whole block, or none) followed by `data[0, len)`, into `out`.
   * Written with index loops: subarray views cost more than the hashing here.
   */
  private sha1(prefix: Uint8Array | null, data: Uint8Array, len: number, out: Uint8Array): void {
    const lib = this.lib, ctx = this.ctx, h = this.h, blk = this.blk;
    h[0] = 0x67452301, h[1] = 0xefcdab89, h[2] = 0x98badcfe, h[3] = 0x10325476, h[4] = 0xc3d2e1f0;
    if (prefix) lib.SHA1_Transform(ctx, prefix);
    let at = 0;
    for (; len - at >= 64; at += 64) lib.SHA1_Transform(ctx, data.subarray(at, at + 64));
    const rest = len - at;
    for (let i = 0; i < rest; i++) blk[i] = data[at + i];
    blk[rest] = 0x80;
    for (let i = rest + 1; i < 64; i++) blk[i] = 0;
    if (rest >= 56) { // no room for the length: one more block
      lib.SHA1_Transform(ctx, blk);
      blk.fill(0);
    }
    const bits = ((prefix ? 64 : 0) + len) * 8;
    this.blkView.setUint32(56, Math.floor(bits / 0x100000000));
    this.blkView.setUint32(60, bits >>> 0);
    lib.SHA1_Transform(ctx, blk);
    for (let i = 0, j = 0; i < 5; i++, j += 4) {
      const w = h[i];
      out[j] = w >>> 24, out[j + 1] = w >>> 16, out[j + 2] = w >>> 8, out[j + 3] = w;
    }
  }

  /** HMAC-SHA1(key, msg[0, len)) → `out` (20 bytes). */
  private hmac(key: Uint8Array, msg: Uint8Array, len: number, out: Uint8Array): void {
    if (key.length > 64) {
      this.sha1(null, key, key.length, this.keyHash);
      key = this.keyHash;
    }
    // The key zero-padded to a block, then XORed a word at a time into each pad.
    const kb = this.keyBlock, k32 = this.key32, p32 = this.pad32, n = key.length;
    for (let i = 0; i < n; i++) kb[i] = key[i];
    kb.fill(0, n);
    for (let i = 0; i < 16; i++) p32[i] = k32[i] ^ 0x36363636;
    this.sha1(this.pad, msg, len, this.inner);
    for (let i = 0; i < 16; i++) p32[i] = k32[i] ^ 0x5c5c5c5c;
    this.sha1(this.pad, this.inner, 20, out);
  }

  /** HKDF-SHA1(ikm, salt, info) → `out` (its length, at most 255 × 20 bytes). */
  derive(ikm: Uint8Array, salt: Uint8Array, out: Uint8Array): Uint8Array {
    this.hmac(salt, ikm, ikm.length, this.prk);
    const msg = this.msg, info = this.info, t = this.t;
    let prev = 0;
    for (let i = 1, at = 0; at < out.length; i++) {
      for (let j = 0; j < prev; j++) msg[j] = t[j];
      for (let j = 0; j < info.length; j++) msg[prev + j] = info[j];
      msg[prev + info.length] = i;
      this.hmac(this.prk, msg, prev + info.length + 1, t);
      prev = 20;
      const n = Math.min(20, out.length - at);
      for (let j = 0; j < n; j++) out[at + j] = t[j];
      at += n;
    }
    return out;
  }
}

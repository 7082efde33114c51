/**
 * OpenSSL 3's libssl through Deno FFI: the TLS engine of src/transport/tls/openssl.ts, driven
 * over memory BIOs so it runs over any Conn. libcrypto symbols (PEM, X509, ERR) are resolved
 * through the same handle: dlsym searches libssl's dependencies too. `libssl()` is null without
 * `--allow-ffi` or libssl.so.3; callers then keep node:tls.
 *
 * Every call is synchronous on the JS thread, so OpenSSL's per-thread error queue is the JS
 * thread's and no two calls on one SSL object ever overlap.
 */

const SYMBOLS = {
  TLS_client_method: { parameters: [], result: "pointer" },
  TLS_server_method: { parameters: [], result: "pointer" },
  SSL_CTX_new: { parameters: ["pointer"], result: "pointer" },
  SSL_CTX_free: { parameters: ["pointer"], result: "void" },
  SSL_CTX_ctrl: { parameters: ["pointer", "i32", "i64", "pointer"], result: "i64" },
  SSL_CTX_set_options: { parameters: ["pointer", "u64"], result: "u64" },
  SSL_CTX_set_ciphersuites: { parameters: ["pointer", "buffer"], result: "i32" },
  SSL_CTX_set_verify: { parameters: ["pointer", "i32", "pointer"], result: "void" },
  SSL_CTX_get_cert_store: { parameters: ["pointer"], result: "pointer" },
  SSL_CTX_set_default_verify_paths: { parameters: ["pointer"], result: "i32" },
  SSL_CTX_use_certificate: { parameters: ["pointer", "pointer"], result: "i32" },
  SSL_CTX_use_PrivateKey: { parameters: ["pointer", "pointer"], result: "i32" },
  SSL_CTX_check_private_key: { parameters: ["pointer"], result: "i32" },
  SSL_CTX_add_client_CA: { parameters: ["pointer", "pointer"], result: "i32" },
  SSL_CTX_set_session_id_context: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  SSL_CTX_set_alpn_select_cb: { parameters: ["pointer", "function", "pointer"], result: "void" },
  SSL_set_alpn_protos: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  SSL_get0_alpn_selected: { parameters: ["pointer", "buffer", "buffer"], result: "void" },
  SSL_new: { parameters: ["pointer"], result: "pointer" },
  SSL_free: { parameters: ["pointer"], result: "void" },
  SSL_set_bio: { parameters: ["pointer", "pointer", "pointer"], result: "void" },
  SSL_set0_rbio: { parameters: ["pointer", "pointer"], result: "void" },
  SSL_set_connect_state: { parameters: ["pointer"], result: "void" },
  SSL_set_accept_state: { parameters: ["pointer"], result: "void" },
  SSL_set_verify: { parameters: ["pointer", "i32", "pointer"], result: "void" },
  SSL_set1_host: { parameters: ["pointer", "buffer"], result: "i32" },
  SSL_get0_param: { parameters: ["pointer"], result: "pointer" },
  /** SSL_ctrl with a string argument (SSL_set_tlsext_host_name = cmd 55). */
  SSL_ctrl_str: {
    name: "SSL_ctrl",
    parameters: ["pointer", "i32", "i64", "buffer"],
    result: "i64",
  },
  SSL_do_handshake: { parameters: ["pointer"], result: "i32" },
  SSL_read: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  SSL_write: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  SSL_shutdown: { parameters: ["pointer"], result: "i32" },
  SSL_get_error: { parameters: ["pointer", "i32"], result: "i32" },
  SSL_has_pending: { parameters: ["pointer"], result: "i32" },
  SSL_get_verify_result: { parameters: ["pointer"], result: "i64" },
  SSL_get_version: { parameters: ["pointer"], result: "pointer" },
  SSL_get_current_cipher: { parameters: ["pointer"], result: "pointer" },
  SSL_CIPHER_get_name: { parameters: ["pointer"], result: "pointer" },
  // libcrypto
  BIO_s_mem: { parameters: [], result: "pointer" },
  BIO_new: { parameters: ["pointer"], result: "pointer" },
  BIO_new_mem_buf: { parameters: ["buffer", "i32"], result: "pointer" },
  BIO_free: { parameters: ["pointer"], result: "i32" },
  BIO_read: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  BIO_write: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  BIO_ctrl: { parameters: ["pointer", "i32", "i64", "pointer"], result: "i64" },
  BIO_ctrl_pending: { parameters: ["pointer"], result: "usize" },
  /** BIO_new_bio_pair(&b1, size1, &b2, size2): out-pointers as 8-byte buffers. */
  BIO_new_bio_pair: { parameters: ["buffer", "usize", "buffer", "usize"], result: "i32" },
  BIO_nread0: { parameters: ["pointer", "buffer"], result: "i32" },
  BIO_nread: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  PEM_read_bio_X509: {
    parameters: ["pointer", "pointer", "pointer", "pointer"],
    result: "pointer",
  },
  PEM_read_bio_PrivateKey: {
    parameters: ["pointer", "pointer", "pointer", "pointer"],
    result: "pointer",
  },
  X509_free: { parameters: ["pointer"], result: "void" },
  EVP_PKEY_free: { parameters: ["pointer"], result: "void" },
  X509_STORE_add_cert: { parameters: ["pointer", "pointer"], result: "i32" },
  X509_VERIFY_PARAM_set1_ip_asc: { parameters: ["pointer", "buffer"], result: "i32" },
  X509_verify_cert_error_string: { parameters: ["i64"], result: "pointer" },
  ERR_get_error: { parameters: [], result: "u64" },
  ERR_clear_error: { parameters: [], result: "void" },
  ERR_error_string_n: { parameters: ["u64", "buffer", "usize"], result: "void" },
} as const;

/** The loaded libssl (and libcrypto) symbols. */
export type Libssl = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

// Constants from OpenSSL 3's headers (ssl.h, bio.h).
export const SSL_ERROR_SSL = 1;
export const SSL_ERROR_WANT_READ = 2;
export const SSL_ERROR_WANT_WRITE = 3;
export const SSL_ERROR_SYSCALL = 5;
export const SSL_ERROR_ZERO_RETURN = 6;
export const SSL_VERIFY_NONE = 0;
export const SSL_VERIFY_PEER = 1;
export const SSL_VERIFY_FAIL_IF_NO_PEER_CERT = 2;
export const SSL_CTRL_MODE = 33;
export const SSL_CTRL_SET_READ_AHEAD = 41;
export const SSL_CTRL_CHAIN_CERT = 89;
export const SSL_CTRL_SET_TLSEXT_HOSTNAME = 55;
export const SSL_CTRL_SET_MIN_PROTO_VERSION = 123;
export const TLS1_2_VERSION = 0x0303;
export const SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER = 2;
export const SSL_OP_NO_RENEGOTIATION = 1n << 30n;
export const BIO_C_SET_BUF_MEM_EOF_RETURN = 130;
export const SSL_TLSEXT_ERR_OK = 0;
export const SSL_TLSEXT_ERR_NOACK = 3;

let loaded: Libssl | null | undefined;
/** Why libssl() returned null (for a debug line). */
export let libsslUnavailableReason = "";

/**
 * libssl, loaded on first use; null when `--allow-ffi` is not granted (checked without
 * prompting) or libssl.so.3 does not load. Decided once per process.
 */
export function libssl(): Libssl | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
      libsslUnavailableReason = "--allow-ffi not granted";
      return null;
    }
    const name = Deno.build.os === "darwin" ? "libssl.3.dylib" : "libssl.so.3";
    try {
      loaded = Deno.dlopen(name, SYMBOLS).symbols;
    } catch (e) {
      libsslUnavailableReason = `${name}: ${e instanceof Error ? e.message : String(e)}`;
    }
  } catch (e) {
    libsslUnavailableReason = e instanceof Error ? e.message : String(e);
  }
  return loaded;
}

/** A NUL-terminated C string from a pointer OpenSSL owns ("" for NULL). */
export function cString(p: Deno.PointerValue): string {
  return p ? Deno.UnsafePointerView.getCString(p) : "";
}

/** A NUL-terminated copy of `s` for `buffer` parameters. */
export function cStr(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(s + "\0");
}

/**
 * Drains OpenSSL's error queue into one line (reasons joined with "; "), "" when it is empty.
 * Codes are dropped: "error:0A000086:SSL routines::certificate verify failed" becomes
 * "certificate verify failed".
 */
export function drainErrors(lib: Libssl): string {
  const buf = new Uint8Array(256);
  const out: string[] = [];
  for (let i = 0; i < 16; i++) {
    const e = lib.ERR_get_error();
    if (!e) break;
    lib.ERR_error_string_n(e, buf, 256n);
    const s = new TextDecoder().decode(buf.subarray(0, buf.indexOf(0)));
    const reason = s.split(":").slice(4).join(":") || s;
    if (!out.includes(reason)) out.push(reason);
  }
  lib.ERR_clear_error();
  return out.join("; ");
}

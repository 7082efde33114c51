/**
 * Shadowsocks methods and keys: which AEAD each method uses, the master key (SIP004:
 * OpenSSL's EVP_BytesToKey with MD5 from the password, or a raw `key`; SIP022: the base64 PSK),
 * and the per-session subkey (SIP004: HKDF-SHA1 with info "ss-subkey"; SIP022: BLAKE3
 * derive_key, see ss2022.ts).
 */
import { createHash, hkdfSync } from "node:crypto";
import { ConfigError } from "../../core/errors.ts";
import { type AeadAlgo, aeadBackend } from "../../crypto/aead.ts";
import { OsslHkdfSha1 } from "../../../ffi/libcrypto.ts";

/** What a method is made of. */
export interface Method {
  /** Canonical name. */
  name: string;
  /** "aead" = SIP004, "2022" = SIP022, "none" = no encryption (testing). */
  kind: "aead" | "2022" | "none";
  algo?: AeadAlgo;
  keySize: number;
  /** Salt size (= key size for every AEAD method). */
  saltSize: number;
}

const METHODS: Method[] = [
  { name: "aes-128-gcm", kind: "aead", algo: "aes-128-gcm", keySize: 16, saltSize: 16 },
  { name: "aes-256-gcm", kind: "aead", algo: "aes-256-gcm", keySize: 32, saltSize: 32 },
  {
    name: "chacha20-ietf-poly1305",
    kind: "aead",
    algo: "chacha20-poly1305",
    keySize: 32,
    saltSize: 32,
  },
  {
    name: "2022-blake3-aes-128-gcm",
    kind: "2022",
    algo: "aes-128-gcm",
    keySize: 16,
    saltSize: 16,
  },
  {
    name: "2022-blake3-aes-256-gcm",
    kind: "2022",
    algo: "aes-256-gcm",
    keySize: 32,
    saltSize: 32,
  },
  {
    name: "2022-blake3-chacha20-poly1305",
    kind: "2022",
    algo: "chacha20-poly1305",
    keySize: 32,
    saltSize: 32,
  },
  { name: "none", kind: "none", keySize: 0, saltSize: 0 },
];

/** Other spellings gost and shadowsocks clients accept. */
const ALIASES: Record<string, string> = {
  "aead_aes_128_gcm": "aes-128-gcm",
  "aead_aes_256_gcm": "aes-256-gcm",
  "aead_chacha20_poly1305": "chacha20-ietf-poly1305",
  "chacha20-poly1305": "chacha20-ietf-poly1305",
  "plain": "none",
  "dummy": "none",
};

/** Stream ciphers of gost v2 (shadowsocks-go): recognised so the error can say so. */
const STREAM =
  /^(aes-(128|192|256)-(cfb|ctr)|des-cfb|bf-cfb|cast5-cfb|rc4-md5(-6)?|chacha20(-ietf)?|salsa20|camellia-.*)$/;

/** Finds a method by name (case-insensitive). */
export function lookupMethod(name: string, where: string): Method {
  const n = name.toLowerCase();
  const m = METHODS.find((x) => x.name === (ALIASES[n] ?? n));
  if (m) return m;
  if (STREAM.test(n)) {
    throw new ConfigError(
      `${where}: shadowsocks stream cipher "${name}" is not supported (gost v3 dropped them too; ` +
        "use aes-128-gcm, aes-256-gcm or chacha20-ietf-poly1305)",
    );
  }
  throw new ConfigError(
    `${where}: unknown shadowsocks method "${name}" (want one of ${
      METHODS.map((x) => x.name).join(", ")
    })`,
  );
}

/** OpenSSL's EVP_BytesToKey(MD5, no salt, 1 round): the SIP004 master key from a password. */
export function evpBytesToKey(password: string, size: number): Uint8Array {
  const pw = new TextEncoder().encode(password);
  const out = new Uint8Array(size);
  let prev = new Uint8Array(0), at = 0;
  while (at < size) {
    const h = createHash("md5");
    h.update(prev);
    h.update(pw);
    prev = new Uint8Array(h.digest());
    out.set(prev.subarray(0, Math.min(prev.length, size - at)), at);
    at += prev.length;
  }
  return out;
}

const SUBKEY_INFO = new TextEncoder().encode("ss-subkey");

/** HKDF on OpenSSL's SHA-1 when FFI is there (~8× node's hkdfSync: UDP derives one per packet). */
let fastHkdf: OsslHkdfSha1 | null | undefined;

/** SIP004 session subkey: HKDF-SHA1(master key, salt, "ss-subkey"), into `out` if given. */
export function aeadSubkey(
  key: Uint8Array,
  salt: Uint8Array,
  out: Uint8Array = new Uint8Array(key.length),
): Uint8Array {
  if (fastHkdf === undefined) {
    fastHkdf = aeadBackend() === "openssl" ? new OsslHkdfSha1(SUBKEY_INFO) : null;
  }
  if (fastHkdf) return fastHkdf.derive(key, salt, out);
  out.set(new Uint8Array(hkdfSync("sha1", key, salt, SUBKEY_INFO, key.length)));
  return out;
}

/** Decodes a SIP022 PSK (standard or URL-safe base64) of exactly `size` bytes. */
export function decodePSK(b64: string, size: number, where: string): Uint8Array {
  let raw: string;
  try {
    raw = atob(b64.replace(/-/g, "+").replace(/_/g, "/"));
  } catch {
    throw new ConfigError(`${where}: the 2022 key must be base64 (got "${b64.slice(0, 12)}…")`);
  }
  if (raw.length !== size) {
    throw new ConfigError(
      `${where}: the 2022 key must be ${size} bytes base64-encoded (got ${raw.length}); ` +
        `make one with: openssl rand -base64 ${size}`,
    );
  }
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

/** A method with its master key(s), ready for sessions. */
export interface SsCipher {
  method: Method;
  /** SIP004 master key, or the SIP022 user PSK (the last of a `:` list). */
  key: Uint8Array;
  /** SIP023 identity PSKs before the user PSK (client side of a multi-user server). */
  identityKeys: Uint8Array[];
}

/**
 * The cipher of `method:password`. SIP004 derives the key from the password (or takes `key`,
 * raw bytes as a string, as gost's `key` parameter); SIP022 takes base64 PSKs, `:`-separated.
 */
export function ssCipher(
  method: string,
  password: string,
  where: string,
  rawKey?: string,
): SsCipher {
  const m = lookupMethod(method, where);
  if (m.kind === "none") return { method: m, key: new Uint8Array(0), identityKeys: [] };
  if (m.kind === "2022") {
    const psks = password.split(":").map((p) => decodePSK(p, m.keySize, where));
    return { method: m, key: psks[psks.length - 1], identityKeys: psks.slice(0, -1) };
  }
  if (rawKey !== undefined) {
    const k = new TextEncoder().encode(rawKey);
    if (k.length !== m.keySize) {
      throw new ConfigError(`${where}: key must be ${m.keySize} bytes for ${m.name}`);
    }
    return { method: m, key: k, identityKeys: [] };
  }
  if (password === "") throw new ConfigError(`${where}: shadowsocks needs a password`);
  return { method: m, key: evpBytesToKey(password, m.keySize), identityKeys: [] };
}

/**
 * TLS settings from node parameters, with gost's names (`cert`/`certFile`/`tls.certFile`,
 * `key`/`keyFile`/`tls.keyFile`, `ca`/`caFile`/`tls.caFile`, `secure`/`tls.secure`,
 * `serverName`/`tls.serverName`), and the server certificate gost falls back to: `cert.pem` and
 * `key.pem` in the working directory, else a self-signed one generated at start-up.
 */
import type { Params } from "../../config/params.ts";
import { ConfigError, errMsg } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { selfSignedCert } from "./selfsigned.ts";

/** What a TLS server needs. */
export interface ServerTLS {
  /** PEM certificate chain and key. */
  cert: string;
  key: string;
  /** PEM CA bundle: when set, clients must present a certificate it signed (mTLS). */
  ca?: string;
}

/** What a TLS client needs. */
export interface ClientTLS {
  /** Verify the server's certificate (gost clients do not unless `secure=true`). */
  secure: boolean;
  /** SNI and the name verified; default: the node's host when it is a name. */
  serverName?: string;
  /** Extra CA certificates (PEM) for verification. */
  ca?: string;
  /** Client certificate and key (PEM) for servers that ask for one. */
  cert?: string;
  key?: string;
  /** ALPN protocols to offer, in order of preference (the OpenSSL engine). */
  alpn?: string[];
}

const CERT_KEYS = ["tls.certFile", "certFile", "cert"];
const KEY_KEYS = ["tls.keyFile", "keyFile", "key"];
const CA_KEYS = ["tls.caFile", "caFile", "ca"];

/** Whether reading `path` is allowed, asked without an interactive permission prompt. */
function mayRead(path: string): boolean {
  try {
    return Deno.permissions.querySync({ name: "read", path }).state === "granted";
  } catch {
    return false;
  }
}

function readPem(p: Params, file: string, what: string): string {
  try {
    if (!mayRead(file)) throw new Deno.errors.NotCapable(`no read permission for ${file}`);
    return Deno.readTextFileSync(file);
  } catch (e) {
    const where = p.where ? `${p.where}: ` : "";
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      throw new ConfigError(`${where}reading the ${what} file ${file} needs --allow-read`);
    }
    throw new ConfigError(`${where}${what} file ${file}: ${errMsg(e)}`);
  }
}

/** Reads `cert`/`key`/`ca` (file names) of a listener; see the module comment for defaults. */
export async function serverTLSFromParams(p: Params, log: Logger): Promise<ServerTLS> {
  const certFile = p.str(CERT_KEYS);
  const keyFile = p.str(KEY_KEYS);
  const caFile = p.str(CA_KEYS);
  const ca = caFile ? readPem(p, caFile, "CA") : undefined;
  if (certFile || keyFile) {
    if (!certFile || !keyFile) {
      throw new ConfigError(`${p.where ? p.where + ": " : ""}cert= and key= go together`);
    }
    return { cert: readPem(p, certFile, "certificate"), key: readPem(p, keyFile, "key"), ca };
  }
  const local = readDefaultPair();
  if (local) {
    log.debug("tls: using cert.pem and key.pem from the working directory");
    return { ...local, ca };
  }
  return { ...(await selfSignedCert()), ca };
}

/** `cert.pem` + `key.pem` in the working directory, if both are there and readable. */
function readDefaultPair(): { cert: string; key: string } | undefined {
  if (!mayRead("cert.pem") || !mayRead("key.pem")) return undefined;
  try {
    return { cert: Deno.readTextFileSync("cert.pem"), key: Deno.readTextFileSync("key.pem") };
  } catch {
    // Absent or not readable (no --allow-read): gost then generates one too.
    return undefined;
  }
}

/** Reads a dialer's `secure`, `serverName`, `ca`, `cert`, `key`. */
export function clientTLSFromParams(p: Params): ClientTLS {
  const secure = p.bool(["tls.secure", "secure"], false);
  const serverName = p.str(["tls.serverName", "serverName"]) || undefined;
  const caFile = p.str(CA_KEYS);
  const certFile = p.str(CERT_KEYS);
  const keyFile = p.str(KEY_KEYS);
  if (!!certFile !== !!keyFile) {
    throw new ConfigError(`${p.where ? p.where + ": " : ""}cert= and key= go together`);
  }
  return {
    secure,
    serverName,
    ca: caFile ? readPem(p, caFile, "CA") : undefined,
    cert: certFile ? readPem(p, certFile, "certificate") : undefined,
    key: keyFile ? readPem(p, keyFile, "key") : undefined,
  };
}

/**
 * Reads the certificate parameters now (so unknown ones are caught at start-up) and loads or
 * generates the certificate on first use: for protocols that only sometimes need TLS (SOCKS5's
 * gost methods 0x80/0x82), so services that never negotiate it do not pay for it.
 */
export function lazyServerTLS(p: Params, log: Logger): () => Promise<ServerTLS> {
  const certFile = p.str(CERT_KEYS);
  const keyFile = p.str(KEY_KEYS);
  const caFile = p.str(CA_KEYS);
  if (!!certFile !== !!keyFile) {
    throw new ConfigError(`${p.where ? p.where + ": " : ""}cert= and key= go together`);
  }
  const fixed = certFile
    ? { cert: readPem(p, certFile, "certificate"), key: readPem(p, keyFile!, "key") }
    : undefined;
  const ca = caFile ? readPem(p, caFile, "CA") : undefined;
  let made: Promise<ServerTLS> | undefined;
  return () =>
    made ??= (async () => {
      if (fixed) return { ...fixed, ca };
      const local = readDefaultPair();
      if (local) {
        log.debug("tls: using cert.pem and key.pem from the working directory");
        return { ...local, ca };
      }
      return { ...(await selfSignedCert()), ca };
    })();
}

/**
 * DNS upstreams ("nameservers") and how a query reaches them. Specs follow both gost dialects:
 * v3 URLs (`udp://1.1.1.1:53`, `tcp://…`, `tls://1.1.1.1:853`, `https://host/dns-query`) and v2
 * `addr/proto` (`1.1.1.1:53/tcp`, `1.1.1.1:853/tls`); a bare `ip[:port]` is UDP.
 */
import { ConfigError } from "../../core/errors.ts";
import { joinHostPort, splitHostPort } from "../../core/conn.ts";
import { UdpExchanger } from "./udp.ts";
import { TcpExchanger } from "./tcp.ts";
import { TlsExchanger } from "./tls.ts";
import { HttpsExchanger } from "./https.ts";

/** Sends one DNS message to an upstream and returns its reply. */
export interface Exchanger {
  /** The upstream as `proto://addr`, for logs. */
  readonly name: string;
  /** Exchanges one message; rejects after `timeoutMs` (or on any transport error). */
  exchange(query: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
}

const DEFAULT_PORTS: Record<string, number> = { udp: 53, tcp: 53, tls: 853 };

/** Parses one upstream spec; throws ConfigError naming it when unusable. */
export function parseNameserver(spec: string): Exchanger {
  const s = spec.trim();
  const bad = (why: string): never => {
    throw new ConfigError(`nameserver "${spec}": ${why}`);
  };
  let proto = "udp";
  let addr = s;
  const m = /^([a-z0-9-]+):\/\//i.exec(s);
  if (m) {
    proto = m[1].toLowerCase();
    if (proto === "https" || proto === "doh") {
      return new HttpsExchanger(new URL("https://" + s.slice(m[0].length)));
    }
    addr = s.slice(m[0].length).replace(/\/+$/, "");
  } else {
    const slash = s.lastIndexOf("/");
    if (slash >= 0) {
      proto = s.slice(slash + 1).toLowerCase();
      addr = s.slice(0, slash);
    }
    if (proto === "https") return new HttpsExchanger(new URL("https://" + addr));
  }
  if (proto === "dot") proto = "tls";
  if (proto.endsWith("-chain")) bad("nameservers reached through the chain are not supported yet");
  if (!(proto in DEFAULT_PORTS)) bad(`unknown protocol "${proto}" (udp, tcp, tls, https)`);
  if (addr === "") bad("missing address");
  let host: string, port: number;
  try {
    // An address without a port (`1.1.1.1`, `[::1]`, `::1`) gets the protocol's default.
    if (
      /^\[[^\]]*\]$/.test(addr) || (addr.split(":").length === 1) ||
      addr.split(":").length > 2 && !addr.startsWith("[")
    ) {
      host = addr.replace(/^\[|\]$/g, "");
      port = DEFAULT_PORTS[proto];
    } else {
      ({ host, port } = splitHostPort(addr));
    }
  } catch {
    return bad("invalid address");
  }
  if (!host || !(port > 0 && port < 65536)) bad("invalid address");
  const hp = joinHostPort(host, port);
  switch (proto) {
    case "tcp":
      return new TcpExchanger(host, port, `tcp://${hp}`);
    case "tls":
      return new TlsExchanger(host, port, `tls://${hp}`);
    default:
      return new UdpExchanger(host, port, `udp://${hp}`);
  }
}

/** Runs `f` with an abort after `ms`; `onTimeout` tears down whatever `f` is blocked on. */
export function withTimeout<T>(
  what: string,
  ms: number,
  f: () => Promise<T>,
  onTimeout: () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const t = setTimeout(() => {
      if (done) return;
      done = true;
      onTimeout();
      reject(new Error(`${what}: timed out after ${ms} ms`));
    }, ms);
    f().then((v) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      resolve(v);
    }, (e) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      reject(e);
    });
  });
}

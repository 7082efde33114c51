/**
 * Host name → IP for UDP relaying (SOCKS5 UDP, UDP forwarding). A datagram socket can only send to an IP, so names in SOCKS
 * UDP headers are resolved here: IP literals pass through, `localhost` maps to 127.0.0.1
 * without DNS, and other names go through the system resolver (getaddrinfo via node:dns, so
 * /etc/hosts is honoured exactly as for TCP dials) with a small cache
 * that also remembers failures briefly, so a client spraying datagrams at a bad name does not
 * turn into a DNS flood.
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { DialError, errMsg } from "./errors.ts";
import { ipVersion, normalizeIP } from "./ip.ts";

/** How long a successful lookup is reused. */
const TTL_MS = 60_000;
/** How long a failed lookup is remembered. */
const NEGATIVE_TTL_MS = 10_000;
/** Entries kept at most (oldest dropped first). */
const MAX_ENTRIES = 1024;

/** A caching resolver for UDP targets. */
export class HostResolver {
  private readonly cache = new Map<string, { ip: Promise<string>; expires: number }>();

  /**
   * `names`: the service's hosts/resolver (consulted first, with its own cache); names it leaves
   * to the system go through getaddrinfo here.
   */
  constructor(private readonly names?: NameLookup) {}

  /** Resolves `host` to an IP literal; throws DialError("unreachable") when it has no address. */
  resolve(host: string): Promise<string> {
    if (ipVersion(host) !== 0) return Promise.resolve(normalizeIP(host));
    if (this.names) return this.viaNames(host, this.names);
    return this.system(host);
  }

  private async viaNames(host: string, names: NameLookup): Promise<string> {
    const ips = await names.lookup(host);
    return ips?.length ? ips[0] : this.system(host);
  }

  private system(host: string): Promise<string> {
    const name = host.toLowerCase().replace(/\.$/, "");
    if (name === "localhost" || name.endsWith(".localhost")) return Promise.resolve("127.0.0.1");
    const now = Date.now();
    const hit = this.cache.get(name);
    if (hit && hit.expires > now) return hit.ip;
    const entry = { ip: lookup(name), expires: now + TTL_MS };
    // Failures are kept only briefly; the rejection is observed by whoever awaits the entry.
    entry.ip.catch(() => entry.expires = Date.now() + NEGATIVE_TTL_MS);
    this.cache.delete(name);
    this.cache.set(name, entry);
    if (this.cache.size > MAX_ENTRIES) {
      this.cache.delete(this.cache.keys().next().value!);
    }
    return entry.ip;
  }
}

async function lookup(name: string): Promise<string> {
  try {
    return normalizeIP((await dnsLookup(name)).address);
  } catch (e) {
    throw new DialError(`resolve ${name}: ${errMsg(e)}`, "unreachable");
  }
}

/**
 * A service's configured name resolution (hosts, then the DNS resolver): the addresses of a host
 * in dialing order, or null to leave the name to the system resolver. Throws DialError when the
 * host has no address.
 */
export interface NameLookup {
  lookup(host: string): Promise<string[] | null>;
}

/**
 * Name resolution for dials: hosts first, then the `dns=`/`resolver=` upstreams (gost's
 * Resolver), with `prefer=ipv4|ipv6` ordering and a TTL-respecting cache.
 *
 * The resolver asks A and AAAA in parallel; for each, upstreams are tried in order (per-upstream
 * timeout) and the first one answering with addresses wins. Answers are cached for the smallest
 * record TTL (capped), or for the `ttl` option when set (gost: negative disables the cache); empty
 * answers and failures are cached briefly so a bad name cannot turn into a query flood.
 */
import { lookup as sysLookup } from "node:dns/promises";
import type { Params } from "../config/params.ts";
import { ConfigError, DialError, errMsg } from "../core/errors.ts";
import { ipVersion, normalizeIP } from "../core/ip.ts";
import type { Logger } from "../core/logger.ts";
import type { NameLookup } from "../core/resolve.ts";
import { type Exchanger, parseNameserver } from "./dns/exchanger.ts";
import { decodeAnswer, encodeQuery, type QType, randomId } from "./dns/msg.ts";
import { buildHosts, type HostMapper } from "./hosts.ts";

/** Address family preference. */
export type Prefer = "ipv4" | "ipv6";

/** Per-upstream query timeout (gost's default resolver timeout). */
export const DEFAULT_RESOLVER_TIMEOUT = 5_000;
/** Longest time an answer is kept, whatever its TTL. */
const MAX_TTL_MS = 3_600_000;
/** How long empty answers and failures are kept. */
const NEGATIVE_TTL_MS = 5_000;
/** Cache entries kept at most (oldest dropped first). */
const MAX_ENTRIES = 4096;

/** Resolver options. */
export interface ResolverOptions {
  servers: Exchanger[];
  /** Cache lifetime override in ms: 0 = the records' TTL, < 0 = no cache. */
  ttl?: number;
  /** Per-upstream timeout in ms. */
  timeout?: number;
  log?: Logger;
}

interface Entry {
  ips: Promise<string[]>;
  expires: number;
}

/** Resolves names through DNS upstreams with a cache. */
export class Resolver {
  private readonly cache = new Map<string, Entry>();
  private readonly ttl: number;
  private readonly timeout: number;

  constructor(private readonly o: ResolverOptions) {
    if (!o.servers.length) throw new ConfigError("resolver: no nameservers");
    this.ttl = o.ttl ?? 0;
    this.timeout = o.timeout ?? DEFAULT_RESOLVER_TIMEOUT;
  }

  /** Upstream names, for logs. */
  get servers(): string[] {
    return this.o.servers.map((s) => s.name);
  }

  /**
   * All addresses of `host`, ordered by `prefer` (IPv4 first by default); throws
   * DialError("unreachable") when it has none.
   */
  async resolve(host: string, prefer?: Prefer): Promise<string[]> {
    const name = host.toLowerCase().replace(/\.$/, "");
    const [a, aaaa] = await Promise.all([
      this.cached(name, "A").catch((e) => e as Error),
      this.cached(name, "AAAA").catch((e) => e as Error),
    ]);
    const v4 = Array.isArray(a) ? a : [];
    const v6 = Array.isArray(aaaa) ? aaaa : [];
    const ips = prefer === "ipv6" ? [...v6, ...v4] : [...v4, ...v6];
    if (!ips.length) {
      const why = [a, aaaa].find((x) => x instanceof Error) as Error | undefined;
      throw new DialError(`resolve ${name}: ${why ? why.message : "no address"}`, "unreachable");
    }
    return ips;
  }

  private cached(name: string, type: QType): Promise<string[]> {
    const key = `${name}/${type}`;
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && hit.expires > now) {
      this.o.log?.debug(`resolver: ${name} ${type} (cached)`);
      return hit.ips;
    }
    const p = this.query(name, type);
    if (this.ttl < 0) return p.then((r) => r.ips);
    // Until it settles the entry is shared by concurrent lookups of the same name.
    const entry: Entry = { ips: p.then((r) => r.ips), expires: now + MAX_TTL_MS };
    p.then((r) => {
      const life = r.ips.length
        ? (this.ttl > 0 ? this.ttl : Math.min(r.ttl * 1000, MAX_TTL_MS))
        : NEGATIVE_TTL_MS;
      entry.expires = Date.now() + (this.ttl > 0 ? Math.min(life, this.ttl) : life);
    }, () => entry.expires = Date.now() + NEGATIVE_TTL_MS);
    this.cache.delete(key);
    this.cache.set(key, entry);
    if (this.cache.size > MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    return entry.ips;
  }

  /** Asks the upstreams in order; the first answering with addresses wins. */
  private async query(name: string, type: QType): Promise<{ ips: string[]; ttl: number }> {
    let lastErr: Error | undefined;
    let empty = false;
    for (const ns of this.o.servers) {
      try {
        const id = randomId();
        const reply = await ns.exchange(encodeQuery(name, type, id), this.timeout);
        const ans = decodeAnswer(reply, type);
        if (ans.id !== id) throw new Error("reply ID does not match the query");
        if (ans.rcode !== "NOERROR" && ans.rcode !== "NXDOMAIN") throw new Error(ans.rcode);
        this.o.log?.debug(`resolver: ${name} ${type} via ${ns.name}: [${ans.ips.join(", ")}]`);
        if (ans.ips.length) return ans;
        empty = true;
      } catch (e) {
        lastErr = new Error(`${type} via ${ns.name}: ${errMsg(e)}`);
        this.o.log?.debug(`resolver: ${name} ${lastErr.message}`);
      }
    }
    if (empty || !lastErr) return { ips: [], ttl: 0 };
    throw lastErr;
  }
}

/** Orders `ips` by family preference (stable within a family). */
export function orderByPrefer(ips: string[], prefer?: Prefer): string[] {
  if (!prefer) return ips;
  const want = prefer === "ipv6" ? 6 : 4;
  return [
    ...ips.filter((ip) => ipVersion(ip) === want),
    ...ips.filter((ip) => ipVersion(ip) !== want),
  ];
}

/**
 * The whole pipeline a service dials through: IP literals as they are, then hosts, then the
 * resolver; without a resolver, names not in hosts are left to the system (null), unless a
 * `prefer` is set, which needs the address list (getaddrinfo, all families).
 */
export class NameResolution implements NameLookup {
  constructor(
    private readonly o: { hosts?: HostMapper; resolver?: Resolver; prefer?: Prefer; log?: Logger },
  ) {}

  /** The hosts table alone (the DNS proxy answers A/AAAA from it without resolving). */
  get hosts(): HostMapper | undefined {
    return this.o.hosts;
  }

  async lookup(host: string): Promise<string[] | null> {
    if (ipVersion(host) !== 0) return [normalizeIP(host)];
    const mapped = this.o.hosts?.lookup(host);
    if (mapped?.length) {
      this.o.log?.debug(`hosts: ${host} → ${mapped.join(", ")}`);
      return orderByPrefer(mapped, this.o.prefer);
    }
    // RFC 6761: localhost names never go to upstream DNS; the system answers them.
    const lower = host.toLowerCase().replace(/\.$/, "");
    const local = lower === "localhost" || lower.endsWith(".localhost");
    if (this.o.resolver && !local) return await this.o.resolver.resolve(host, this.o.prefer);
    if (!this.o.prefer) return null;
    try {
      const all = await sysLookup(host, { all: true });
      return orderByPrefer(all.map((a) => normalizeIP(a.address)), this.o.prefer);
    } catch (e) {
      throw new DialError(`resolve ${host}: ${errMsg(e)}`, "unreachable");
    }
  }

  close(): void {
    this.o.hosts?.close();
  }
}

/** The pieces of a service's name resolution, each optional. */
export interface NameResolutionParts {
  hosts?: HostMapper;
  resolver?: Resolver;
  prefer?: Prefer;
}

/**
 * Reads `hosts`, `dns`/`resolver` and `prefer` from a service's params;
 * undefined when none is set (dials then go to the system resolver exactly as before).
 */
export function nameResolutionFromParams(params: Params, log?: Logger): NameResolution | undefined {
  const parts = nameResolutionParts(params, log);
  return parts && new NameResolution({ ...parts, log });
}

/** nameResolutionFromParams, as its pieces (to combine with named hosts and resolvers). */
export function nameResolutionParts(
  params: Params,
  log?: Logger,
): NameResolutionParts | undefined {
  const hostsValue = params.str("hosts");
  const dnsValue = params.str(["resolver", "dns"]);
  const preferValue = params.str("prefer");
  if (!hostsValue && !dnsValue && !preferValue) return undefined;
  let prefer: Prefer | undefined;
  if (preferValue) {
    const p = preferValue.trim().toLowerCase();
    if (p !== "ipv4" && p !== "ipv6") {
      throw new ConfigError(
        `${params.where}: parameter "prefer": expected ipv4 or ipv6, got "${preferValue}"`,
      );
    }
    prefer = p;
  }
  let resolver: Resolver | undefined;
  if (dnsValue) {
    let isFile = false;
    try {
      isFile = Deno.statSync(dnsValue).isFile;
    } catch { /* not a file: an upstream list */ }
    if (isFile) {
      throw new ConfigError(
        `${params.where}: parameter "dns": resolver files are not supported yet (use an inline list)`,
      );
    }
    const servers = dnsValue.split(",").map((s) => s.trim()).filter(Boolean).map((s) => {
      try {
        return parseNameserver(s);
      } catch (e) {
        throw new ConfigError(`${params.where}: ${errMsg(e)}`);
      }
    });
    // No `ttl=` here: on the CLI it is the UDP session idle time (gost v2/v3), and gost sets a
    // resolver TTL override only in config files; answers live for their records' TTL.
    resolver = new Resolver({ servers, log });
  }
  let hosts: HostMapper | undefined;
  if (hostsValue) {
    try {
      hosts = buildHosts(hostsValue, log);
    } catch (e) {
      throw new ConfigError(`${params.where}: ${errMsg(e)}`);
    }
  }
  return { hosts, resolver, prefer };
}

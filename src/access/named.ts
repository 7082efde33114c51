/**
 * gost v3 named objects (`bypasses`, `admissions`, `hosts`, `resolvers`, `limiters`,
 * `climiters`, `rlimiters`), built on the same implementations as the node parameters
 * (`bypass=`, `admission=`, `hosts=`, `dns=`, `limiter.*`, `climiter=`, `rlimiter=`). Each name
 * is built once and shared by every service or hop referring to it, as in gost (a `$` limit of a
 * named limiter is one bucket for all of its services).
 */
import type {
  Config,
  HostsConfig,
  LimiterConfig,
  MatcherConfig,
  ResolverConfig,
} from "../config/model.ts";
import { parseDuration } from "../config/params.ts";
import { ConfigError, errMsg } from "../core/errors.ts";
import { Logger } from "../core/logger.ts";
import { type Admission, LocalAdmission } from "./admission.ts";
import { type Bypass, LocalBypass } from "./bypass.ts";
import { parseNameserver } from "./dns/exchanger.ts";
import { type HostMapper, Hosts, parseHostsFile } from "./hosts.ts";
import { ConnLimiter } from "./limiter/conn.ts";
import { RateLimiter } from "./limiter/rate.ts";
import { TrafficLimiter } from "./limiter/traffic.ts";
import { MatcherSource } from "./matcher.ts";
import { type Prefer, Resolver } from "./resolver.ts";
import { ipVersion, normalizeIP } from "../core/ip.ts";

/**
 * A bypass made of several: a target any member contains is bypassed. close() closes only the
 * `owned` members: named ones are shared and closed by NamedObjects.close().
 */
export class BypassGroup implements Bypass {
  constructor(readonly members: Bypass[], private readonly owned: Bypass[] = []) {}
  contains(network: string, addr: string): boolean {
    return this.members.some((b) => b.contains(network, addr));
  }
  close(): void {
    for (const b of this.owned) b.close();
  }
}

/** An admission made of several: a client any member refuses is refused (see BypassGroup). */
export class AdmissionGroup implements Admission {
  constructor(readonly members: Admission[], private readonly owned: Admission[] = []) {}
  admit(host: string): boolean {
    return this.members.every((a) => a.admit(host));
  }
  close(): void {
    for (const a of this.owned) a.close();
  }
}

/** Several host tables: the first one knowing a name answers. */
class HostsGroup implements HostMapper {
  constructor(private readonly members: HostMapper[]) {}
  lookup(host: string): string[] | undefined {
    for (const m of this.members) {
      const hit = m.lookup(host);
      if (hit?.length) return hit;
    }
    return undefined;
  }
  close(): void {
    for (const m of this.members) m.close();
  }
}

/** A config duration (already checked by the loader) in ms; 0 when absent. */
function ms(v: string | undefined): number {
  return v ? parseDuration(v) ?? 0 : 0;
}

function requireFile(path: string): void {
  try {
    if (!Deno.statSync(path).isFile) throw new Error("not a file");
  } catch (e) {
    throw new Error(`file "${path}": ${errMsg(e)}`);
  }
}

/** A resolver with the address preference its nameservers ask for. */
export interface NamedResolver {
  resolver: Resolver;
  prefer?: Prefer;
}

/** Builds the named objects of one config on demand, once per name. */
export class NamedObjects {
  private readonly built = new Map<string, unknown>();
  private readonly closers: (() => void)[] = [];

  constructor(private readonly cfg: Config) {}

  private once<T>(
    kind: string,
    list: { name: string }[] | undefined,
    name: string,
    where: string,
    make: (c: any, log: Logger) => T,
  ): T {
    const key = `${kind}/${name}`;
    if (this.built.has(key)) return this.built.get(key) as T;
    const c = list?.find((x) => x.name === name);
    if (!c) throw new ConfigError(`${where}: ${kind} "${name}" is not defined`);
    let v: T;
    try {
      v = make(c, new Logger(`${kind} ${name}`));
    } catch (e) {
      throw new ConfigError(`${where}: ${kind} "${name}": ${errMsg(e).replace(/^: /, "")}`);
    }
    this.built.set(key, v);
    return v;
  }

  private matchers(c: MatcherConfig, ipOnly: boolean, log: Logger): MatcherSource {
    const rev = c.whitelist || c.reverse ? "~" : "";
    if (c.file?.path) requireFile(c.file.path);
    const src = new MatcherSource(rev + (c.file?.path ?? ""), {
      ipOnly,
      log,
      patterns: c.matchers ?? [],
      reload: ms(c.reload),
    });
    this.closers.push(() => src.close());
    return src;
  }

  /** The bypass of `names` (undefined when empty). */
  bypass(names: string[], where: string): Bypass | undefined {
    const list = names.map((n) =>
      this.once(
        "bypass",
        this.cfg.bypasses,
        n,
        where,
        (c: MatcherConfig, log) => new LocalBypass(this.matchers(c, false, log), log),
      )
    );
    return list.length ? new BypassGroup(list) : undefined;
  }

  /** The admission of `names` (undefined when empty). */
  admission(names: string[], where: string): Admission | undefined {
    const list = names.map((n) =>
      this.once(
        "admission",
        this.cfg.admissions,
        n,
        where,
        (c: MatcherConfig, log) => new LocalAdmission(this.matchers(c, true, log)),
      )
    );
    return list.length ? new AdmissionGroup(list) : undefined;
  }

  /** The host table `name`: its mappings, then its file (reloaded live). */
  hosts(name: string, where: string): HostMapper {
    return this.once("hosts", this.cfg.hosts, name, where, (c: HostsConfig, log) => {
      const map = new Map<string, string[]>();
      for (const m of c.mappings ?? []) {
        if (ipVersion(m.ip) === 0) throw new Error(`"${m.ip}" is not an IP address`);
        // The hosts-file parser gives the same canonical names and merging as a file line.
        const t = parseHostsFile(
          `${normalizeIP(m.ip)} ${[m.hostname, ...m.aliases ?? []].join(" ")}`,
        );
        for (const [k, ips] of t.map) map.set(k, [...map.get(k) ?? [], ...ips]);
      }
      const members: HostMapper[] = [new Hosts(map)];
      if (c.file?.path) {
        requireFile(c.file.path);
        members.push(Hosts.fromFile(c.file.path, log));
      }
      const h = members.length === 1 ? members[0] : new HostsGroup(members);
      this.closers.push(() => h.close());
      return h;
    });
  }

  /** The resolver `name`: its nameservers in order, one timeout, TTL and preference. */
  resolver(name: string, where: string): NamedResolver {
    return this.once("resolver", this.cfg.resolvers, name, where, (c: ResolverConfig, log) => {
      if (!c.nameservers?.length) throw new Error("no nameservers");
      const one = (k: "prefer" | "ttl" | "timeout") => {
        const vals = new Set(c.nameservers.map((n) => n[k] ?? ""));
        if (vals.size > 1) {
          throw new Error(`different ${k} per nameserver is not supported yet`);
        }
        return [...vals][0] || undefined;
      };
      const prefer = one("prefer");
      if (prefer !== undefined && prefer !== "ipv4" && prefer !== "ipv6") {
        throw new Error(`prefer: expected ipv4 or ipv6, got "${prefer}"`);
      }
      const ttl = one("ttl");
      const timeout = one("timeout");
      const resolver = new Resolver({
        servers: c.nameservers.map((n) => parseNameserver(n.addr)),
        // gost: a negative ttl switches the cache off; 0/absent keeps the records' TTL.
        ttl: ttl ? ms(ttl) : undefined,
        timeout: timeout ? ms(timeout) : undefined,
        log,
      });
      return { resolver, prefer: prefer as Prefer | undefined };
    });
  }

  /** The traffic limiter `name`. */
  traffic(name: string, where: string): TrafficLimiter {
    return this.once(
      "limiter",
      this.cfg.limiters,
      name,
      where,
      (c: LimiterConfig) => TrafficLimiter.parse(c.limits ?? []),
    );
  }

  /** The connection limiter `name`. */
  conns(name: string, where: string): ConnLimiter {
    return this.once(
      "climiter",
      this.cfg.climiters,
      name,
      where,
      (c: LimiterConfig) => ConnLimiter.parse(c.limits ?? []),
    );
  }

  /** The request-rate limiter `name`. */
  rate(name: string, where: string): RateLimiter {
    return this.once(
      "rlimiter",
      this.cfg.rlimiters,
      name,
      where,
      (c: LimiterConfig) => RateLimiter.parse(c.limits ?? []),
    );
  }

  /** Stops every file watcher of the objects built so far. */
  close(): void {
    for (const c of this.closers.splice(0)) c();
    this.built.clear();
  }
}

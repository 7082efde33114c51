/**
 * Config model → running objects: chains from `chains`, services from `services`, each module
 * found in the registry by its type name. Every parameter must be consumed by some module.
 */
import { serviceAuther } from "../access/auth_build.ts";
import { buildChain } from "../chain/builder.ts";
import type { Chain } from "../chain/chain.ts";
import { targetGroup } from "../chain/group.ts";
import { DefaultRouter } from "../chain/router.ts";
import type { Sources } from "../config/cli.ts";
import type {
  AutherConfig,
  ChainConfig,
  Config,
  NodeConfig,
  ServiceConfig,
  TLSConfig,
} from "../config/model.ts";
import { Params } from "../config/params.ts";
import { closeQuietly, type Listener } from "../core/conn.ts";
import { ConfigError } from "../core/errors.ts";
import { Logger } from "../core/logger.ts";
import { lookup, NotSupportedError, registry } from "../registry.ts";
import { withProxyProtocol } from "../protocol/proxyproto/proxied.ts";
import { Service } from "./service.ts";
import { NameResolution, nameResolutionParts } from "../access/resolver.ts";
import { guardRouter, serviceAccess } from "../access/guard.ts";
import { withAdmission } from "../access/admission.ts";
import { ServiceLimits } from "../access/limiter/service.ts";
import { AdmissionGroup, BypassGroup, NamedObjects } from "../access/named.ts";

/** Default per-dial timeout, as gost's. */
export const DEFAULT_DIAL_TIMEOUT = 10_000;

function context<T>(where: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof NotSupportedError) throw new ConfigError(`${where}: ${e.message}`);
    throw e;
  }
}

/** The forward targets of a service as a node group with the forwarder's selector. */
function forwarderGroup(s: ServiceConfig, where: string, log: Logger) {
  const nodes = s.forwarder?.nodes ?? [];
  if (!nodes.length) return undefined;
  try {
    return targetGroup(`${s.name}/forwarder`, nodes, s.forwarder?.selector, { log });
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${where}: ${e.message}`);
    throw e;
  }
}

/** gost v3 `tls` settings as the parameters of the same names (certFile, serverName, …). */
function tlsParams(tls: TLSConfig | undefined): Record<string, unknown> {
  if (!tls) return {};
  const { certFile, keyFile, caFile, secure, serverName } = tls;
  return Object.fromEntries(
    Object.entries({ certFile, keyFile, caFile, secure, serverName }).filter(([, v]) =>
      v !== undefined
    ),
  );
}

/** Names given as `x` and/or `xs` (gost's `bypass` / `bypasses`). */
function names(one: string | undefined, many: string[] | undefined): string[] {
  return [one ?? [], many ?? []].flat().filter((n) => n !== "");
}

/** A service's limits: the named limiters, else the limiter parameters (not both). */
function serviceLimits(s: ServiceConfig, params: Params, where: string, named: NamedObjects) {
  const fromParams = ServiceLimits.fromParams(params, where);
  // gost's documented limiter metadata: they steer plugin limiters only (dost has none), so
  // with the local limiters they change nothing, in gost as here; checked, then done with.
  params.duration("limiter.refreshInterval", 0);
  params.str("limiter.scope");
  if (!s.limiter && !s.climiter && !s.rlimiter) return fromParams;
  const twice = (what: string) =>
    new ConfigError(`${where}: ${what} is given both by name and as parameters`);
  const traffic = s.limiter ? named.traffic(s.limiter, where) : undefined;
  const conns = s.climiter ? named.conns(s.climiter, where) : undefined;
  const rate = s.rlimiter ? named.rate(s.rlimiter, where) : undefined;
  if (traffic && fromParams?.traffic) throw twice("limiter");
  if (conns && fromParams?.conns) throw twice("climiter");
  if (rate && fromParams?.rate) throw twice("rlimiter");
  return new ServiceLimits(
    conns ?? fromParams?.conns,
    rate ?? fromParams?.rate,
    traffic ?? fromParams?.traffic,
  );
}

/**
 * A service's name resolution: named `hosts`/`resolver` and the hosts=/dns=/prefer= parameters
 * together (each piece given one way only).
 */
function serviceNames(
  s: ServiceConfig,
  params: Params,
  where: string,
  named: NamedObjects,
  log: Logger,
): NameResolution | undefined {
  const p = nameResolutionParts(params, log);
  if (!s.hosts && !s.resolver) return p && new NameResolution({ ...p, log });
  const twice = (what: string) =>
    new ConfigError(`${where}: ${what} is given both by name and as a parameter`);
  if (s.hosts && p?.hosts) throw twice("hosts");
  if (s.resolver && p?.resolver) throw twice("resolver (dns)");
  const r = s.resolver ? named.resolver(s.resolver, where) : undefined;
  if (r?.prefer && p?.prefer && r.prefer !== p.prefer) throw twice("prefer");
  return new NameResolution({
    hosts: s.hosts ? named.hosts(s.hosts, where) : p?.hosts,
    resolver: r?.resolver ?? p?.resolver,
    prefer: r?.prefer ?? p?.prefer,
    log,
  });
}

async function buildService(
  s: ServiceConfig,
  chains: Map<string, Chain>,
  sources: Sources,
  authers: AutherConfig[] = [],
  named: NamedObjects,
): Promise<Service> {
  const where = sources.get(s) ?? `service ${s.name}`;
  const params = new Params(
    {
      ...s.metadata,
      ...tlsParams(s.listener?.tls),
      ...s.listener?.metadata,
      ...s.handler?.metadata,
    },
    where,
  );
  const log = new Logger(s.name);
  const findChain = (name: string | undefined): Chain | undefined => {
    if (!name) return undefined;
    const c = chains.get(name);
    if (!c) throw new ConfigError(`${where}: chain "${name}" is not defined`);
    return c;
  };
  // As in gost: `handler.chain` routes the handler's dials; `listener.chain` is for listeners
  // that listen at the far end of a chain (rtcp, rudp), whose handlers dial targets directly.
  const chain = findChain(s.handler?.chain);
  const listenerChain = findChain(s.listener?.chain);
  // Connection, request-rate and traffic limits (climiter, rlimiter, limiter.*, or named).
  const limits = serviceLimits(s, params, where, named);
  const router = new DefaultRouter({
    chain,
    timeout: params.duration("timeout", DEFAULT_DIAL_TIMEOUT),
    retries: s.handler?.retries ?? params.int(["retries", "retry"], 0, 0, 100),
    // hosts= / dns= (resolver=) / prefer=, or named: how target names resolve before dialing.
    names: serviceNames(s, params, where, named, log),
  });
  // bypass= / whitelist= / blacklist= guard the targets, admission= the clients; named
  // bypasses and admissions add to them.
  const access = serviceAccess(params, where, log);
  const bypass = named.bypass(names(s.bypass, s.bypasses), where);
  if (bypass) {
    access.bypass = access.bypass
      ? new BypassGroup([access.bypass, bypass], [access.bypass])
      : bypass;
  }
  const admission = named.admission(names(s.admission, s.admissions), where);
  if (admission) {
    access.admission = access.admission
      ? new AdmissionGroup([access.admission, admission], [access.admission])
      : admission;
  }
  // Inline user:pass@, named authers and the auth parameters (secrets=, auther.*): any may accept.
  const auther = await serviceAuther({
    service: s.name,
    where,
    params,
    auth: s.handler?.auth,
    names: [s.handler?.auther ?? [], s.handler?.authers ?? []].flat().filter((n) => n),
    authers,
    log,
  });
  const handlerType = s.handler?.type ?? "auto";
  const handler = context(where, () =>
    lookup(registry.handlers, "handler", handlerType)({
      service: s.name,
      params,
      auther,
      auth: s.handler?.auth,
      transport: s.listener?.type ?? "tcp",
      router: guardRouter(router, access),
      bypass: access.bypass,
      rawRouter: router,
      targets: s.forwarder?.nodes?.map((n) => n.addr) ?? [],
      forwarder: forwarderGroup(s, where, log),
      log,
    }));
  // `proxyProtocol=1|2`: accept an optional PROXY header before the handler sees the conn.
  const served = withProxyProtocol(
    withAdmission(handler, access.admission),
    params,
    log,
    s.listener?.type ?? "tcp",
  );
  const listenerFactory = context(
    where,
    () => lookup(registry.listeners, "listener", s.listener?.type ?? "tcp"),
  );
  let listener: Listener;
  try {
    listener = await listenerFactory({
      service: s.name,
      addr: s.addr,
      params,
      log,
      chain: listenerChain,
    });
  } catch (e) {
    auther?.close?.();
    if (e instanceof ConfigError) throw e;
    if (e instanceof Deno.errors.AddrInUse) {
      throw new ConfigError(`${where}: address ${s.addr} is already in use`, { cause: e });
    }
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      throw new ConfigError(`${where}: listening needs --allow-net (${(e as Error).message})`);
    }
    throw new ConfigError(`${where}: listen ${s.addr}: ${(e as Error).message}`);
  }
  try {
    params.assertAllConsumed();
  } catch (e) {
    closeQuietly(listener);
    auther?.close?.();
    throw e;
  }
  return new Service(s.name, listener, served, log, limits);
}

/**
 * A chain as the chain builder takes it: hops named without nodes replaced by the top-level
 * `hops` entry of that name, and each dialer's `tls` settings turned into its parameters.
 */
function resolveChain(c: ChainConfig, cfg: Config, sources: Sources): ChainConfig {
  const node = (n: NodeConfig): NodeConfig => {
    if (!n.dialer?.tls) return n;
    const copy = {
      ...n,
      dialer: { ...n.dialer, metadata: { ...tlsParams(n.dialer.tls), ...n.dialer.metadata } },
    };
    const where = sources.get(n);
    if (where) sources.set(copy, where);
    return copy;
  };
  return {
    ...c,
    hops: c.hops.map((h) => {
      // A chain's selector (gost's documented chain-level selector) is its hops' default.
      if (c.selector && !h.selector) h = { ...h, selector: c.selector };
      let hop = h;
      if (!h.nodes?.length) {
        const top = cfg.hops?.find((t) => t.name === h.name);
        if (!top) {
          throw new ConfigError(
            `chain ${c.name}: hop "${h.name}" has no nodes and no top-level hop has its name`,
          );
        }
        hop = { ...top, selector: top.selector ?? h.selector };
      }
      return { ...hop, nodes: hop.nodes.map(node) };
    }),
  };
}

/**
 * Builds the services of `cfg` (those named in `only`, or all) and every chain and named object;
 * `release` closes the chains and named objects once none of these services runs any more (a
 * reload replaces services one by one). On any error, closes what was opened and throws.
 */
export async function buildServiceSet(
  cfg: Config,
  sources: Sources = new Map(),
  only?: Set<string>,
): Promise<{ services: Service[]; release: () => void }> {
  const named = new NamedObjects(cfg);
  const chains = new Map<string, Chain>();
  const out: Service[] = [];
  try {
    for (const c of cfg.chains ?? []) {
      const rc = resolveChain(c, cfg, sources);
      const chain = buildChain(rc, sources);
      chains.set(c.name, chain);
      // Named hop bypasses add to the hop's bypass= parameter.
      rc.hops.forEach((h, i) => {
        // Where the hop is written (`gost.yaml: chains[0].hops[1]`), from its first node's.
        const where = sources.get(h.nodes[0])?.replace(/\.nodes\[\d+\]$/, "") ??
          `chain ${c.name} hop ${h.name}`;
        const b = named.bypass(names(h.bypass, h.bypasses), where);
        const hop = chain.hops[i];
        if (b) {
          hop.bypass = new BypassGroup(
            hop.bypass ? [hop.bypass, b] : [b],
            hop.bypass ? [hop.bypass] : [],
          );
        }
      });
    }
    for (const s of cfg.services ?? []) {
      if (only && !only.has(s.name)) continue;
      out.push(await buildService(s, chains, sources, cfg.authers, named));
    }
  } catch (e) {
    for (const s of out) s.close();
    for (const c of chains.values()) c.close();
    named.close();
    throw e;
  }
  const release = () => {
    for (const c of chains.values()) c.close();
    named.close();
  };
  return { services: out, release };
}

/** Builds every chain and service of `cfg`; on any error, closes what was opened and throws. */
export async function buildServices(cfg: Config, sources: Sources = new Map()): Promise<Service[]> {
  return (await buildServiceSet(cfg, sources)).services;
}

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
import type { AutherConfig, Config, ServiceConfig } from "../config/model.ts";
import { Params } from "../config/params.ts";
import { closeQuietly, type Listener } from "../core/conn.ts";
import { ConfigError } from "../core/errors.ts";
import { Logger } from "../core/logger.ts";
import { lookup, NotSupportedError, registry } from "../registry.ts";
import { withProxyProtocol } from "../protocol/proxyproto/proxied.ts";
import { Service } from "./service.ts";
import { nameResolutionFromParams } from "../access/resolver.ts";
import { guardRouter, serviceAccess } from "../access/guard.ts";
import { withAdmission } from "../access/admission.ts";
import { ServiceLimits } from "../access/limiter/service.ts";

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

async function buildService(
  s: ServiceConfig,
  chains: Map<string, Chain>,
  sources: Sources,
  authers: AutherConfig[] = [],
): Promise<Service> {
  const where = sources.get(s) ?? `service ${s.name}`;
  const params = new Params(
    { ...s.metadata, ...s.listener?.metadata, ...s.handler?.metadata },
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
  // Connection, request-rate and traffic limits (climiter, rlimiter, limiter.*).
  const limits = ServiceLimits.fromParams(params, where);
  const router = new DefaultRouter({
    chain,
    timeout: params.duration("timeout", DEFAULT_DIAL_TIMEOUT),
    retries: s.handler?.retries ?? params.int(["retries", "retry"], 0, 0, 100),
    // hosts= / dns= (resolver=) / prefer=: how target names resolve before dialing.
    names: nameResolutionFromParams(params, log),
  });
  // bypass= / whitelist= / blacklist= guard the targets, admission= the clients.
  const access = serviceAccess(params, where, log);
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
      router: guardRouter(router, access),
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
      throw new ConfigError(`${where}: address ${s.addr} is already in use`);
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

/** Builds every chain and service of `cfg`; on any error, closes what was opened and throws. */
export async function buildServices(cfg: Config, sources: Sources = new Map()): Promise<Service[]> {
  const chains = new Map<string, Chain>();
  for (const c of cfg.chains ?? []) chains.set(c.name, buildChain(c, sources));
  const out: Service[] = [];
  try {
    for (const s of cfg.services ?? []) {
      out.push(await buildService(s, chains, sources, cfg.authers));
    }
  } catch (e) {
    for (const s of out) s.close();
    throw e;
  }
  return out;
}

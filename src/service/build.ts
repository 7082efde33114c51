/**
 * Config model → running objects: chains from `chains`, services from `services`, each module
 * found in the registry by its type name. Every parameter must be consumed by some module.
 */
import { StaticAuther } from "../access/auth.ts";
import { Chain, type ChainNode, Hop } from "../chain/chain.ts";
import { DefaultRouter } from "../chain/router.ts";
import type { Sources } from "../config/cli.ts";
import type { ChainConfig, Config, ServiceConfig } from "../config/model.ts";
import { Params } from "../config/params.ts";
import { closeQuietly, type Listener } from "../core/conn.ts";
import { ConfigError } from "../core/errors.ts";
import { Logger } from "../core/logger.ts";
import { lookup, NotSupportedError, registry } from "../registry.ts";
import { Service } from "./service.ts";

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

function buildChain(c: ChainConfig, sources: Sources): Chain {
  const hops = c.hops.map((h, hi) => {
    if (!h.nodes?.length) throw new ConfigError(`chain ${c.name}: hop ${hi + 1} has no nodes`);
    const nodes = h.nodes.map((n): ChainNode => {
      const where = sources.get(n) ?? `chain ${c.name} hop ${h.name} node ${n.name}`;
      const params = new Params(
        {
          ...c.metadata,
          ...h.metadata,
          ...n.metadata,
          ...n.dialer?.metadata,
          ...n.connector?.metadata,
        },
        where,
      );
      const log = new Logger(`${c.name}/${h.name}/${n.name}`);
      const opts = { node: n.name, addr: n.addr, params, log };
      const dialer = context(
        where,
        () =>
          lookup(registry.dialers, "dialer", n.dialer?.type ?? "tcp")({
            ...opts,
            auth: n.dialer?.auth,
          }),
      );
      const connector = context(
        where,
        () =>
          lookup(registry.connectors, "connector", n.connector?.type ?? "http")({
            ...opts,
            auth: n.connector?.auth,
          }),
      );
      params.assertAllConsumed();
      const dialerType = n.dialer?.type ?? "tcp";
      const connectorType = n.connector?.type ?? "http";
      const scheme = dialerType === "tcp" ? connectorType : `${connectorType}+${dialerType}`;
      return { name: n.name, addr: n.addr, label: `${scheme}://${n.addr}`, dialer, connector };
    });
    return new Hop(h.name, nodes);
  });
  return new Chain(c.name, hops);
}

async function buildService(
  s: ServiceConfig,
  chains: Map<string, Chain>,
  sources: Sources,
): Promise<Service> {
  const where = sources.get(s) ?? `service ${s.name}`;
  const params = new Params(
    { ...s.metadata, ...s.listener?.metadata, ...s.handler?.metadata },
    where,
  );
  const log = new Logger(s.name);
  const chainName = s.handler?.chain ?? s.listener?.chain;
  let chain: Chain | undefined;
  if (chainName) {
    chain = chains.get(chainName);
    if (!chain) throw new ConfigError(`${where}: chain "${chainName}" is not defined`);
  }
  const router = new DefaultRouter({
    chain,
    timeout: params.duration("timeout", DEFAULT_DIAL_TIMEOUT),
    retries: s.handler?.retries ?? params.int(["retries", "retry"], 0, 0, 100),
  });
  const auth = s.handler?.auth;
  const auther = auth ? new StaticAuther([[auth.username, auth.password ?? ""]]) : undefined;
  const handlerType = s.handler?.type ?? "auto";
  const handler = context(where, () =>
    lookup(registry.handlers, "handler", handlerType)({
      service: s.name,
      params,
      auther,
      router,
      targets: s.forwarder?.nodes?.map((n) => n.addr) ?? [],
      log,
    }));
  const listenerFactory = context(
    where,
    () => lookup(registry.listeners, "listener", s.listener?.type ?? "tcp"),
  );
  let listener: Listener;
  try {
    listener = await listenerFactory({ service: s.name, addr: s.addr, params, log });
  } catch (e) {
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
    throw e;
  }
  return new Service(s.name, listener, handler, log);
}

/** Builds every chain and service of `cfg`; on any error, closes what was opened and throws. */
export async function buildServices(cfg: Config, sources: Sources = new Map()): Promise<Service[]> {
  const chains = new Map<string, Chain>();
  for (const c of cfg.chains ?? []) chains.set(c.name, buildChain(c, sources));
  const out: Service[] = [];
  try {
    for (const s of cfg.services ?? []) out.push(await buildService(s, chains, sources));
  } catch (e) {
    for (const s of out) s.close();
    throw e;
  }
  return out;
}

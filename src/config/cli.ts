/**
 * `-L` / `-F` → the gost v3 config model, following gost's command-line builder:
 * one service per `-L` address (port ranges expand), one chain `chain-0` whose hops are the
 * `-F` nodes in order.
 */
import { ConfigError } from "../core/errors.ts";
import { GOST_PROTOCOLS, GOST_TRANSPORTS } from "../registry.ts";
import type { ChainConfig, Config, Metadata, ServiceConfig } from "./model.ts";
import { nodeAddr, parseNodeURL } from "./nodeurl.ts";

/** Forwarding handlers named after their listener when a `-L` has targets. */
const FORWARD_BY_LISTENER = new Set([
  "tcp",
  "udp",
  "rtcp",
  "rudp",
  "tun",
  "tap",
  "dns",
  "unix",
  "serial",
]);

/** Where each model object came from (`-L "…"`), for error messages. */
export type Sources = Map<object, string>;

function splitMetadata(params: Record<string, string>, levels: string[]) {
  const common: Metadata = {};
  const scoped: Record<string, Metadata> = Object.fromEntries(levels.map((l) => [l, {}]));
  for (const [k, v] of Object.entries(params)) {
    const dot = k.indexOf(".");
    const lvl = dot > 0 ? k.slice(0, dot).toLowerCase() : "";
    if (levels.includes(lvl)) scoped[lvl][k.slice(dot + 1)] = v;
    else common[k] = v;
  }
  const md = (l: string): Metadata | undefined => {
    const m = { ...common, ...scoped[l] };
    return Object.keys(m).length ? m : undefined;
  };
  return md;
}

/** Builds the config model from `-L` and `-F` values. */
export function buildConfigFromCLI(
  serves: string[],
  forwards: string[],
  sources: Sources = new Map(),
): Config {
  const cfg: Config = {};
  let chain: ChainConfig | undefined;
  if (forwards.length) {
    chain = { name: "chain-0", hops: [] };
    forwards.forEach((raw, i) => {
      const where = `-F "${raw}"`;
      const u = wrap(where, () => parseNodeURL(raw.includes("://") ? raw : `http://${raw}`));
      wrap(where, () => checkScheme(u));
      if (u.portEnd !== u.port) throw new ConfigError(`${where}: port ranges are for -L only`);
      if (u.targets.length) throw new ConfigError(`${where}: a chain node has no targets`);
      let connector = u.protocol;
      let dialer = u.transport;
      if (!dialer) {
        dialer = GOST_TRANSPORTS.has(u.protocol) && u.protocol !== "tcp" ? u.protocol : "tcp";
        connector = GOST_PROTOCOLS.has(u.protocol) ? u.protocol : "http";
      }
      const md = splitMetadata(u.params, ["hop", "node", "dialer", "connector"]);
      const auth = u.username !== undefined
        ? { username: u.username, ...(u.password !== undefined ? { password: u.password } : {}) }
        : undefined;
      const node = {
        name: "node-0",
        addr: nodeAddr(u),
        connector: { type: connector, ...(auth ? { auth } : {}), metadata: md("connector") },
        dialer: { type: dialer, metadata: md("dialer") },
        metadata: md("node"),
      };
      const hop = { name: `hop-${i}`, nodes: [node], metadata: md("hop") };
      sources.set(node, where);
      chain!.hops.push(hop);
    });
    cfg.chains = [chain];
  }
  const services: ServiceConfig[] = [];
  for (const raw of serves) {
    const where = `-L "${raw}"`;
    const u = wrap(where, () => parseNodeURL(raw.includes("://") ? raw : `auto://${raw}`));
    wrap(where, () => checkScheme(u));
    let handler = u.protocol;
    let listener = u.transport;
    if (!listener) {
      listener = GOST_TRANSPORTS.has(u.protocol) ? u.protocol : "tcp";
      handler = GOST_PROTOCOLS.has(u.protocol) ? u.protocol : "auto";
    }
    if (u.targets.length) {
      if (FORWARD_BY_LISTENER.has(listener)) handler = listener;
      else if (handler !== "relay") handler = "forward";
    }
    const md = splitMetadata(u.params, ["service", "handler", "listener"]);
    for (let port = u.port; port <= u.portEnd; port++) {
      const svc: ServiceConfig = {
        name: `service-${services.length}`,
        addr: nodeAddr(u, port),
        handler: {
          type: handler,
          ...(u.username !== undefined
            ? {
              auth: {
                username: u.username,
                ...(u.password !== undefined ? { password: u.password } : {}),
              },
            }
            : {}),
          metadata: md("handler"),
        },
        listener: { type: listener, metadata: md("listener") },
        metadata: md("service"),
      };
      if (chain) {
        if (listener === "rtcp" || listener === "rudp") svc.listener.chain = chain.name;
        else svc.handler.chain = chain.name;
      }
      if (u.targets.length) {
        svc.forwarder = { nodes: u.targets.map((t, i) => ({ name: `target-${i}`, addr: t })) };
      }
      sources.set(svc, where);
      services.push(svc);
    }
  }
  cfg.services = services;
  return cfg;
}

/** Rejects scheme parts gost does not know (typos must not silently become `auto`). */
function checkScheme(u: { scheme: string; protocol: string; transport: string }): void {
  if (u.scheme === "") return;
  if (u.transport === "") {
    if (!GOST_PROTOCOLS.has(u.protocol) && !GOST_TRANSPORTS.has(u.protocol)) {
      throw new ConfigError(`unknown scheme "${u.scheme}"`);
    }
    return;
  }
  if (!GOST_PROTOCOLS.has(u.protocol)) throw new ConfigError(`unknown protocol "${u.protocol}"`);
  if (!GOST_TRANSPORTS.has(u.transport)) {
    throw new ConfigError(`unknown transport "${u.transport}"`);
  }
}

function wrap<T>(where: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ConfigError) {
      // parseNodeURL quotes the URL itself; say which flag it came from instead.
      throw new ConfigError(`${where}: ${e.message.replace(/^"[^"]*": /, "")}`);
    }
    throw e;
  }
}

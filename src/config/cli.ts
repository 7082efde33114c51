/**
 * `-L` / `-F` → the gost v3 config model, following gost's command-line builder:
 * one service per `-L` address (port ranges expand), one chain `chain-0` whose hops are the
 * `-F` nodes in order.
 */
import { ConfigError } from "../core/errors.ts";
import { GOST_PROTOCOLS, GOST_TRANSPORTS } from "../registry.ts";
import { ipEntryAddr, isFilePath, parseIPList } from "../chain/nodefile.ts";
import { parseStrategy } from "../chain/selector.ts";
import type {
  ChainConfig,
  Config,
  HopConfig,
  Metadata,
  NodeConfig,
  SelectorConfig,
  ServiceConfig,
} from "./model.ts";
import { nodeAddr, parseNodeURL } from "./nodeurl.ts";
import { formatDuration, Params } from "./params.ts";

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
/** Naming for builds that are merged into one config (gost v2 routes). */
export interface BuildOptions {
  /** Name of the chain built from the `-F` values (default `chain-0`). */
  chainName?: string;
  /** Number of the first service (default 0). */
  firstService?: number;
  /** gost v2 `Retries`: dial attempts after the first, on every service. */
  retries?: number;
}

export function buildConfigFromCLI(
  serves: string[],
  forwards: string[],
  sources: Sources = new Map(),
  opts: BuildOptions = {},
): Config {
  const cfg: Config = {};
  let chain: ChainConfig | undefined;
  if (forwards.length) {
    const c: ChainConfig = { name: opts.chainName ?? "chain-0", hops: [] };
    forwards.forEach((raw, i) => c.hops.push(hopFromChainURL(raw, i, sources)));
    chain = c;
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
    const params = { ...u.params };
    const selector = wrap(where, () => takeSelector(params));
    if (selector && !u.targets.length) {
      throw new ConfigError(
        `${where}: strategy, max_fails and fail_timeout apply to forward targets ` +
          `(tcp://:port/host:port,host:port) and -F nodes`,
      );
    }
    const md = splitMetadata(params, ["service", "handler", "listener"]);
    for (let port = u.port; port <= u.portEnd; port++) {
      const svc: ServiceConfig = {
        name: `service-${(opts.firstService ?? 0) + services.length}`,
        addr: nodeAddr(u, port),
        handler: {
          type: handler,
          ...(opts.retries ? { retries: opts.retries } : {}),
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
        svc.forwarder = {
          ...(selector ? { selector: { ...selector } } : {}),
          nodes: u.targets.map((t, i) => ({ name: `target-${i}`, addr: t })),
        };
      }
      sources.set(svc, where);
      services.push(svc);
    }
  }
  // Same top-level order as gost's output: services, then chains.
  cfg.services = services;
  if (chain) cfg.chains = [chain];
  return cfg;
}

/** Keys a hop consumes itself (node sources, fastest filter); they never reach its nodes. */
export const HOP_ONLY_KEYS = ["ip", "peer", "fastest_count", "fastestCount"];

/** Removes `keys` (case-insensitive) from `params` and returns them as written. */
function takeKeys(params: Record<string, string>, keys: string[]): Record<string, string> {
  const want = new Set(keys.map((k) => k.toLowerCase()));
  const out: Record<string, string> = {};
  for (const k of Object.keys(params)) {
    if (want.has(k.toLowerCase())) {
      out[k] = params[k];
      delete params[k];
    }
  }
  return out;
}

/**
 * gost v3's parseSelector: `strategy`, `maxFails`/`max_fails`, `failTimeout`/`fail_timeout`
 * become a selector (round / 1 / 30s for the ones not given) and leave the metadata.
 */
function takeSelector(params: Record<string, string>): SelectorConfig | undefined {
  const taken = takeKeys(params, [
    "strategy",
    "maxFails",
    "max_fails",
    "failTimeout",
    "fail_timeout",
  ]);
  if (Object.keys(taken).length === 0) return undefined;
  const p = new Params(taken);
  const strategy = p.str("strategy", "round");
  parseStrategy(strategy); // reject unknown names now
  const maxFails = p.int(["maxFails", "max_fails"], 0, 0);
  const failTimeout = p.duration(["failTimeout", "fail_timeout"], 0);
  return {
    strategy,
    maxFails: maxFails > 0 ? maxFails : 1,
    failTimeout: formatDuration(failTimeout > 0 ? failTimeout : 30_000),
  };
}

/**
 * Splits gost v3's host list (`socks5://a:1080,b:1080?…`): the URL with its first host, and
 * the other hosts.
 */
function splitHostList(url: string): { url: string; extra: string[] } {
  const start = url.indexOf("://") + 3;
  let end = url.length;
  for (const ch of ["/", "?"]) {
    const i = url.indexOf(ch, start);
    if (i >= 0 && i < end) end = i;
  }
  const at = url.lastIndexOf("@", end);
  const hostStart = at >= start ? at + 1 : start;
  const hosts = url.slice(hostStart, end);
  if (!hosts.includes(",")) return { url, extra: [] };
  const [first, ...rest] = hosts.split(",");
  return {
    url: url.slice(0, hostStart) + first + url.slice(end),
    extra: rest.map((h) => h.trim()).filter((h) => h !== ""),
  };
}

/**
 * One `-F` value → one hop. Several addresses (`a:1,b:2` in the host part, or gost v2's
 * `ip=a,b:2`) make several nodes in the hop, named `node-0…`; `ip=` naming a file and `peer=`
 * stay in the hop metadata for the hop to load (and reload) at run time.
 */
export function hopFromChainURL(
  raw: string,
  index: number,
  sources: Sources = new Map(),
  where = `-F "${raw}"`,
): HopConfig {
  const split = splitHostList(raw.includes("://") ? raw : `http://${raw}`);
  const u = wrap(where, () => parseNodeURL(split.url));
  wrap(where, () => checkScheme(u));
  if (u.portEnd !== u.port) throw new ConfigError(`${where}: port ranges are for -L only`);
  if (u.targets.length) throw new ConfigError(`${where}: a chain node has no targets`);
  let connector = u.protocol;
  let dialer = u.transport;
  if (!dialer) {
    dialer = GOST_TRANSPORTS.has(u.protocol) && u.protocol !== "tcp" ? u.protocol : "tcp";
    connector = GOST_PROTOCOLS.has(u.protocol) ? u.protocol : "http";
  }
  const params = { ...u.params };
  const selector = wrap(where, () => takeSelector(params));
  const hopOnly = takeKeys(params, HOP_ONLY_KEYS);
  const md = splitMetadata(params, ["hop", "node", "dialer", "connector"]);
  let addrs = [nodeAddr(u), ...split.extra.map((h) => ipEntryAddr(h, u.port))];
  const hopMd: Metadata = { ...md("hop") };
  for (const [k, v] of Object.entries(hopOnly)) {
    if (k.toLowerCase() === "ip" && !wrap(where, () => isFilePath(v))) {
      // An inline list replaces the URL's address, as in gost v2.
      const list = wrap(where, () => parseIPList(v, u.port));
      if (list.length) addrs = list;
    } else hopMd[k] = v;
  }
  const nodes = addrs.map((addr, k): NodeConfig => {
    const node: NodeConfig = {
      name: `node-${k}`,
      addr,
      connector: {
        type: connector,
        ...(u.username !== undefined
          ? {
            auth: {
              username: u.username,
              ...(u.password !== undefined ? { password: u.password } : {}),
            },
          }
          : {}),
        metadata: md("connector"),
      },
      dialer: { type: dialer, metadata: md("dialer") },
      metadata: md("node"),
    };
    sources.set(node, where);
    return node;
  });
  return {
    name: `hop-${index}`,
    ...(selector ? { selector } : {}),
    nodes,
    metadata: Object.keys(hopMd).length ? hopMd : undefined,
  };
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

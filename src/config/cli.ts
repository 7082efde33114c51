/**
 * `-L` / `-F` → the gost v3 config model, following gost's command-line builder:
 * one service per `-L` address (port ranges expand), one chain `chain-0` whose hops are the
 * `-F` nodes in order.
 */
import { ConfigError, errMsg } from "../core/errors.ts";
import { parseInlineHosts } from "../access/hosts.ts";
import { GOST_PROTOCOLS, GOST_TRANSPORTS } from "../registry.ts";
import { ipEntryAddr, isFilePath, parseIPList } from "../chain/nodefile.ts";
import { parseStrategy } from "../chain/selector.ts";
import { autherConfigFromParams } from "../access/auth_build.ts";
import type {
  AutherConfig,
  ChainConfig,
  Config,
  HopConfig,
  HostsConfig,
  LimiterConfig,
  MatcherConfig,
  Metadata,
  NodeConfig,
  ResolverConfig,
  SelectorConfig,
  ServiceConfig,
} from "./model.ts";
import { nodeAddr, parseNodeURL } from "./nodeurl.ts";
import { formatDuration, Params, parseDuration } from "./params.ts";

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

/** Naming for builds that are merged into one config (gost v2 routes, a v3 file). */
export interface BuildOptions {
  /** Name of the chain built from the `-F` values (default `chain-0`). */
  chainName?: string;
  /** Number of the first service (default 0). */
  firstService?: number;
  /** gost v2 `Retries`: dial attempts after the first, on every service. */
  retries?: number;
  /** The config this build is merged into: named objects get names it does not use yet. */
  base?: Config;
}

/** Top-level lists of named objects the command line creates. */
type NamedKind =
  | "authers"
  | "bypasses"
  | "admissions"
  | "limiters"
  | "climiters"
  | "rlimiters"
  | "resolvers"
  | "hosts";
type NamedOf<K extends NamedKind> = K extends "authers" ? AutherConfig
  : K extends "bypasses" | "admissions" ? MatcherConfig
  : K extends "resolvers" ? ResolverConfig
  : K extends "hosts" ? HostsConfig
  : LimiterConfig;

/** Adds a named object to `cfg` under the first `prefix-N` name free in `cfg` and `base`. */
export type AddNamed = <K extends NamedKind>(
  kind: K,
  prefix: string,
  obj: Omit<NamedOf<K>, "name">,
) => string;

function namer(cfg: Config, base: Config | undefined): AddNamed {
  return (kind, prefix, obj) => {
    const used = new Set(
      [...(base?.[kind] ?? []), ...(cfg[kind] ?? [])].map((o) => (o as { name: string }).name),
    );
    let n = 0;
    while (used.has(`${prefix}-${n}`)) n++;
    const name = `${prefix}-${n}`;
    const list = (cfg[kind] ??= []) as { name: string }[];
    list.push({ name, ...obj });
    return name;
  };
}

/**
 * `bypass=` / `admission=` as a gost v3 named object: `[~]a,b` → `matchers` (`~`: whitelist),
 * `[~]path` of a file → `file` (its `reload`/`reverse` lines still apply).
 */
function matcherObject(value: string): Omit<MatcherConfig, "name"> {
  let v = value.trim();
  const whitelist = v.startsWith("~");
  if (whitelist) v = v.slice(1).trim();
  const out: Omit<MatcherConfig, "name"> = whitelist ? { whitelist } : {};
  if (v !== "" && isFilePath(v)) out.file = { path: v };
  else out.matchers = v.split(",").map((x) => x.trim()).filter((x) => x !== "");
  return out;
}

/**
 * `hosts=` as a gost v3 named object: a file (`ip name aliases…` lines, reloaded), else the
 * inline `name:ip,…` list as mappings.
 */
function hostsObject(value: string): Omit<HostsConfig, "name"> {
  const v = value.trim();
  if (isFilePath(v)) return { file: { path: v } };
  if (!v.includes(":")) {
    // Inline lists always contain a colon: anything else was meant as a file.
    try {
      Deno.statSync(v);
    } catch (e) {
      throw new ConfigError(`hosts file ${v}: ${errMsg(e)}`);
    }
    throw new ConfigError(`hosts file ${v}: not a file`);
  }
  const mappings = [...parseInlineHosts(v)].flatMap(([hostname, ips]) =>
    ips.map((ip) => ({ ip, hostname }))
  );
  return { mappings };
}

/** A duration parameter as a Go duration string (config files need the unit). */
function goDuration(v: string | number | undefined, where: string, key: string) {
  if (v === undefined || v === "") return undefined;
  const ms = typeof v === "number" ? v * 1000 : parseDuration(String(v));
  if (ms === undefined || ms < 0) {
    throw new ConfigError(`${where}: parameter "${key}": invalid duration "${v}"`);
  }
  return formatDuration(ms);
}

/** Parameters that become the auther of a service (dost's extensions, see auth_build.ts). */
const AUTHER_KEYS = [
  "secrets",
  "auther.file",
  "auther.reload",
  "auther.redis",
  "auther.redis.db",
  "auther.redis.username",
  "auther.redis.password",
  "auther.redis.key",
  "auther.http",
  "auther.http.timeout",
  "auther.plugin",
  "auther.plugin.type",
  "auther.plugin.timeout",
];

/**
 * Moves the parameters gost's builder turns into named objects (`bypass`, `admission`,
 * `resolver` with `prefer`, `hosts`, `limiter.*`, `climiter`, `rlimiter`, and dost's
 * `secrets`/`auther.*`) out of `params` and into `cfg`; returns the service's references.
 */
function serviceObjects(params: Record<string, string>, add: AddNamed, where: string) {
  const refs:
    & Partial<
      Pick<
        ServiceConfig,
        "bypass" | "admission" | "limiter" | "climiter" | "rlimiter" | "resolver" | "hosts"
      >
    >
    & {
      auther?: string;
    } = {};
  const one = (key: string) => Object.values(takeKeys(params, [key]))[0];
  const bypass = one("bypass");
  if (bypass !== undefined) refs.bypass = add("bypasses", "bypass", matcherObject(bypass));
  const admission = one("admission");
  if (admission !== undefined) {
    refs.admission = add("admissions", "admission", matcherObject(admission));
  }
  // As gost: resolver= (with prefer=) and hosts= become named objects; dns= stays a parameter.
  const resolver = one("resolver");
  if (resolver?.trim()) {
    const prefer = one("prefer");
    const nameservers = resolver.split(",").map((a) => a.trim()).filter((a) => a !== "")
      .map((addr) => (prefer !== undefined ? { addr, prefer } : { addr }));
    refs.resolver = add("resolvers", "resolver", { nameservers });
  }
  const hosts = one("hosts");
  if (hosts?.trim()) refs.hosts = add("hosts", "hosts", hostsObject(hosts));
  const lim = takeKeys(params, [
    "limiter.in",
    "limiter.out",
    "limiter.conn.in",
    "limiter.conn.out",
  ]);
  if (Object.keys(lim).length) {
    const p = new Params(lim, where);
    // Zero stands in for an unset direction (see ServiceLimits.fromParams).
    const size = (k: string) => p.str(k)?.trim() || "0";
    const limits: string[] = [];
    const [i, o, ci, co] = ["limiter.in", "limiter.out", "limiter.conn.in", "limiter.conn.out"]
      .map(size);
    if (i !== "0" || o !== "0") limits.push(`$ ${i} ${o}`);
    if (ci !== "0" || co !== "0") limits.push(`$$ ${ci} ${co}`);
    if (limits.length) refs.limiter = add("limiters", "limiter", { limits });
  }
  const climiter = one("climiter");
  if (climiter !== undefined) {
    refs.climiter = add("climiters", "climiter", { limits: [`$ ${climiter.trim()}`] });
  }
  const rlimiter = one("rlimiter");
  if (rlimiter !== undefined) {
    refs.rlimiter = add("rlimiters", "rlimiter", { limits: [`$ ${rlimiter.trim()}`] });
  }
  const auth = takeKeys(params, AUTHER_KEYS);
  if (Object.keys(auth).length) {
    const p = new Params(auth, where);
    const a = autherConfigFromParams(p, "");
    p.assertAllConsumed();
    if (a) {
      const reload = goDuration(a.reload, where, "auther.reload");
      const redis = a.redis && Object.fromEntries(
        Object.entries(a.redis).filter(([k, v]) => v !== undefined && !(k === "db" && v === 0)),
      ) as AutherConfig["redis"];
      const http = a.http && {
        url: a.http.url,
        timeout: goDuration(a.http.timeout, where, "auther.http.timeout"),
      };
      const plugin = a.plugin && {
        ...a.plugin,
        timeout: goDuration(a.plugin.timeout, where, "auther.plugin.timeout"),
      };
      refs.auther = add("authers", "auther", { reload, file: a.file, redis, http, plugin });
    }
  }
  return refs;
}

/** Builds the config model from `-L` and `-F` values. */
export function buildConfigFromCLI(
  serves: string[],
  forwards: string[],
  sources: Sources = new Map(),
  opts: BuildOptions = {},
): Config {
  const cfg: Config = {};
  const add = namer(cfg, opts.base);
  let chain: ChainConfig | undefined;
  if (forwards.length) {
    const c: ChainConfig = { name: opts.chainName ?? "chain-0", hops: [] };
    forwards.forEach((raw, i) => c.hops.push(hopFromChainURL(raw, i, sources, undefined, add)));
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
      // Shadowsocks UDP listens on UDP, as in gost.
      listener = u.protocol === "ssu"
        ? "udp"
        : GOST_TRANSPORTS.has(u.protocol)
        ? u.protocol
        : "tcp";
      handler = GOST_PROTOCOLS.has(u.protocol) ? u.protocol : "auto";
    }
    // Targets make a forward, except for relay, which serves a fixed target itself.
    if (u.targets.length && handler !== "relay") {
      handler = FORWARD_BY_LISTENER.has(listener) ? listener : "forward";
    }
    const params = { ...u.params };
    const selector = wrap(where, () => takeSelector(params));
    if (selector && !u.targets.length) {
      throw new ConfigError(
        `${where}: strategy, max_fails and fail_timeout apply to forward targets ` +
          `(tcp://:port/host:port,host:port) and -F nodes`,
      );
    }
    for (let port = u.port; port <= u.portEnd; port++) {
      // Each service gets its own named objects, as a `$` limit is per service.
      const own = { ...params };
      const refs = wrap(where, () => serviceObjects(own, add, where));
      const md = splitMetadata(own, ["service", "handler", "listener"]);
      const svc: ServiceConfig = {
        name: `service-${(opts.firstService ?? 0) + services.length}`,
        addr: nodeAddr(u, port),
        ...(refs.admission ? { admission: refs.admission } : {}),
        ...(refs.bypass ? { bypass: refs.bypass } : {}),
        ...(refs.resolver ? { resolver: refs.resolver } : {}),
        ...(refs.hosts ? { hosts: refs.hosts } : {}),
        ...(refs.limiter ? { limiter: refs.limiter } : {}),
        ...(refs.climiter ? { climiter: refs.climiter } : {}),
        ...(refs.rlimiter ? { rlimiter: refs.rlimiter } : {}),
        handler: {
          type: handler,
          ...(opts.retries ? { retries: opts.retries } : {}),
          ...(refs.auther ? { auther: refs.auther } : {}),
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
  // Same top-level order as gost's output: services, chains, then the named objects.
  const named = { ...cfg };
  for (const k of Object.keys(cfg) as (keyof Config)[]) delete cfg[k];
  cfg.services = services;
  if (chain) cfg.chains = [chain];
  return Object.assign(cfg, named);
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
  add?: AddNamed,
): HopConfig {
  const split = splitHostList(raw.includes("://") ? raw : `http://${raw}`);
  const u = wrap(where, () => parseNodeURL(split.url));
  wrap(where, () => checkScheme(u));
  if (u.portEnd !== u.port) throw new ConfigError(`${where}: port ranges are for -L only`);
  if (u.targets.length) throw new ConfigError(`${where}: a chain node has no targets`);
  let connector = u.protocol;
  let dialer = u.transport;
  if (!dialer) {
    dialer = u.protocol === "ssu"
      ? "udp" // Shadowsocks UDP nodes are reached over UDP, as in gost
      : GOST_TRANSPORTS.has(u.protocol) && u.protocol !== "tcp"
      ? u.protocol
      : "tcp";
    connector = GOST_PROTOCOLS.has(u.protocol) ? u.protocol : "http";
  }
  const params = { ...u.params };
  const selector = wrap(where, () => takeSelector(params));
  const hopOnly = takeKeys(params, HOP_ONLY_KEYS);
  // As gost's builder: a hop's bypass= becomes a named bypass (peer-file lines keep theirs).
  const bypassValue = add ? Object.values(takeKeys(params, ["bypass"]))[0] : undefined;
  const bypass = bypassValue !== undefined
    ? wrap(where, () => add!("bypasses", "bypass", matcherObject(bypassValue)))
    : undefined;
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
    ...(bypass ? { bypass } : {}),
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
      if (e.message.startsWith(`${where}: `)) throw e;
      // parseNodeURL quotes the URL itself; say which flag it came from instead.
      throw new ConfigError(`${where}: ${e.message.replace(/^"[^"]*": /, "")}`);
    }
    throw e;
  }
}

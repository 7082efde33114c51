/**
 * gost v3 configuration files (YAML or JSON, already parsed): schema check and conversion
 * (schema.ts), then the checks that need the whole file: names present and unique, references
 * to chains, hops, authers, bypasses, admissions, hosts, resolvers and limiters defined,
 * handler/listener/connector/dialer types implemented, no two services on one port, limit
 * lines and matchers valid. Every problem is reported with its path in the file.
 */
import { GOST_PROTOCOLS, GOST_TRANSPORTS, registry } from "../registry.ts";
import { splitHostPort } from "../core/conn.ts";
import { errMsg } from "../core/errors.ts";
import { ipVersion } from "../core/ip.ts";
import { ConnLimiter } from "../access/limiter/conn.ts";
import { RateLimiter } from "../access/limiter/rate.ts";
import { TrafficLimiter } from "../access/limiter/traffic.ts";
import { AddressMatcher } from "../access/matcher.ts";
import { parseStrategy } from "../chain/selector.ts";
import type { Sources } from "./cli.ts";
import type { Config, HopConfig, ServiceConfig } from "./model.ts";
import { CONFIG, type Issue, normalize } from "./schema.ts";

/** Log levels gost accepts (dost has no `fatal`/`panic`: they log errors only). */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "warning", "error", "fatal", "panic"];

type Kind = "handler" | "listener" | "connector" | "dialer";

function checkType(kind: Kind, type: string | undefined, path: string, issues: Issue[]): void {
  if (!type) {
    issues.push({ path: `${path}.type`, message: `missing ${kind} type` });
    return;
  }
  const map = kind === "handler"
    ? registry.handlers
    : kind === "listener"
    ? registry.listeners
    : kind === "connector"
    ? registry.connectors
    : registry.dialers;
  if (map.has(type)) return;
  const known = kind === "handler" || kind === "connector" ? GOST_PROTOCOLS : GOST_TRANSPORTS;
  issues.push({
    path: `${path}.type`,
    message: known.has(type)
      ? `${kind} "${type}" is not supported yet`
      : `unknown ${kind} "${type}"`,
  });
}

/** Wildcard hosts clash with every host on the same port. */
function isWildcard(host: string): boolean {
  return host === "" || host === "0.0.0.0" || host === "::" || host === "[::]";
}

/**
 * Converts and checks a parsed v3 file. Returns the model (meaningful only when `issues` is
 * empty) and records in `sources` where each service and node came from, for run-time errors.
 */
export function configFromV3(
  raw: unknown,
  file: string,
  sources: Sources = new Map(),
): { config: Config; issues: Issue[] } {
  const issues: Issue[] = [];
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    issues.push({ path: "(top)", message: "want a map of gost v3 sections (services, chains, …)" });
    return { config: {}, issues };
  }
  const cfg = normalize(raw as Record<string, unknown>, CONFIG, "", issues) as Config;
  check(cfg, file, sources, issues);
  return { config: cfg, issues };
}

function check(cfg: Config, file: string, sources: Sources, issues: Issue[]): void {
  const add = (path: string, message: string) => issues.push({ path, message });

  // Names of every kind of named object: present and unique.
  const defined = (key: keyof Config): Set<string> => {
    const seen = new Set<string>();
    const list = (cfg[key] ?? []) as { name?: string }[];
    list.forEach((o, i) => {
      if (!o.name) add(`${key}[${i}].name`, "missing name");
      else if (seen.has(o.name)) add(`${key}[${i}].name`, `"${o.name}" is defined twice`);
      else seen.add(o.name);
    });
    return seen;
  };
  const names = {
    services: defined("services"),
    chains: defined("chains"),
    hops: defined("hops"),
    authers: defined("authers"),
    admissions: defined("admissions"),
    bypasses: defined("bypasses"),
    resolvers: defined("resolvers"),
    hosts: defined("hosts"),
    limiters: defined("limiters"),
    climiters: defined("climiters"),
    rlimiters: defined("rlimiters"),
  };
  const ref = (set: Set<string>, what: string, path: string, v: string | string[] | undefined) => {
    for (const [i, n] of [v ?? []].flat().entries()) {
      const p = Array.isArray(v) ? `${path}[${i}]` : path;
      if (!set.has(n)) add(p, `${what} "${n}" is not defined`);
    }
  };
  const selector = (s: { strategy?: string } | undefined, path: string) => {
    if (!s?.strategy) return;
    try {
      parseStrategy(s.strategy);
    } catch (e) {
      add(`${path}.selector.strategy`, errMsg(e));
    }
  };

  const hop = (h: HopConfig, path: string, topLevel: boolean) => {
    if (!h.name) add(`${path}.name`, "missing name");
    selector(h.selector, path);
    ref(names.bypasses, "bypass", `${path}.bypass`, h.bypass);
    ref(names.bypasses, "bypass", `${path}.bypasses`, h.bypasses);
    if (!h.nodes?.length) {
      // In a chain, a hop without nodes is the top-level hop of that name.
      if (topLevel) add(`${path}.nodes`, "a hop needs nodes");
      else if (h.name && !names.hops.has(h.name)) {
        add(`${path}.nodes`, `no nodes, and no top-level hop is named "${h.name}"`);
      }
      return;
    }
    const seen = new Set<string>();
    h.nodes.forEach((n, k) => {
      const np = `${path}.nodes[${k}]`;
      sources.set(n, `${file}: ${np}`);
      if (!n.name) add(`${np}.name`, "missing name");
      else if (seen.has(n.name)) add(`${np}.name`, `"${n.name}" is defined twice in the hop`);
      else seen.add(n.name);
      if (!n.addr) add(`${np}.addr`, "missing address");
      else {
        try {
          splitHostPort(n.addr);
        } catch (e) {
          add(`${np}.addr`, errMsg(e));
        }
      }
      // gost's defaults for a node without them.
      n.connector ??= { type: "http" };
      n.dialer ??= { type: "tcp" };
      checkType("connector", n.connector.type, `${np}.connector`, issues);
      checkType("dialer", n.dialer.type, `${np}.dialer`, issues);
    });
  };

  (cfg.hops ?? []).forEach((h, i) => hop(h, `hops[${i}]`, true));
  (cfg.chains ?? []).forEach((c, i) => {
    if (!c.hops?.length) add(`chains[${i}].hops`, "a chain needs hops");
    selector(c.selector, `chains[${i}]`);
    (c.hops ?? []).forEach((h, j) => hop(h, `chains[${i}].hops[${j}]`, false));
  });

  // Local listening sockets by network and port, for clashes between services.
  const bound = new Map<string, { host: string; path: string }[]>();
  (cfg.services ?? []).forEach((s: ServiceConfig, i) => {
    const p = `services[${i}]`;
    sources.set(s, `${file}: ${p}`);
    // gost's defaults for a service without them.
    s.handler ??= { type: "auto" };
    s.listener ??= { type: "tcp" };
    checkType("handler", s.handler.type, `${p}.handler`, issues);
    checkType("listener", s.listener.type, `${p}.listener`, issues);
    ref(names.chains, "chain", `${p}.handler.chain`, s.handler.chain);
    ref(names.chains, "chain", `${p}.listener.chain`, s.listener.chain);
    ref(names.authers, "auther", `${p}.handler.auther`, s.handler.auther);
    ref(names.authers, "auther", `${p}.handler.authers`, s.handler.authers);
    ref(names.admissions, "admission", `${p}.admission`, s.admission);
    ref(names.admissions, "admission", `${p}.admissions`, s.admissions);
    ref(names.bypasses, "bypass", `${p}.bypass`, s.bypass);
    ref(names.bypasses, "bypass", `${p}.bypasses`, s.bypasses);
    ref(names.resolvers, "resolver", `${p}.resolver`, s.resolver);
    ref(names.hosts, "hosts", `${p}.hosts`, s.hosts);
    ref(names.limiters, "limiter", `${p}.limiter`, s.limiter);
    ref(names.climiters, "climiter", `${p}.climiter`, s.climiter);
    ref(names.rlimiters, "rlimiter", `${p}.rlimiter`, s.rlimiter);
    if (s.handler.auth && !s.handler.auth.username) {
      add(`${p}.handler.auth.username`, "missing username");
    }
    if (s.forwarder) {
      selector(s.forwarder.selector, `${p}.forwarder`);
      if (!s.forwarder.nodes?.length) add(`${p}.forwarder.nodes`, "a forwarder needs nodes");
      (s.forwarder.nodes ?? []).forEach((n, k) => {
        if (!n.addr) add(`${p}.forwarder.nodes[${k}].addr`, "missing address");
        n.name ||= `target-${k}`; // gost's name is optional here; logs need one
      });
    }
    if (!s.addr) {
      add(`${p}.addr`, "missing address");
      return;
    }
    let host: string, port: number;
    try {
      ({ host, port } = splitHostPort(s.addr));
    } catch (e) {
      add(`${p}.addr`, errMsg(e));
      return;
    }
    // rtcp/rudp listen at the far end of a chain: no local socket.
    if (s.listener.type === "rtcp" || s.listener.type === "rudp" || port === 0) return;
    const key = `${s.listener.type === "udp" ? "udp" : "tcp"}/${port}`;
    const others = bound.get(key) ?? [];
    const clash = others.find((o) => o.host === host || isWildcard(o.host) || isWildcard(host));
    if (clash) add(`${p}.addr`, `port ${port} is also used by ${clash.path}`);
    others.push({ host, path: p });
    bound.set(key, others);
  });

  // Contents of the named objects that can be checked without side effects.
  for (const key of ["admissions", "bypasses"] as const) {
    (cfg[key] ?? []).forEach((b, i) => {
      try {
        new AddressMatcher(b.matchers ?? [], key === "admissions");
      } catch (e) {
        add(`${key}[${i}].matchers`, errMsg(e));
      }
    });
  }
  (cfg.hosts ?? []).forEach((h, i) => {
    (h.mappings ?? []).forEach((m, k) => {
      if (ipVersion(m.ip ?? "") === 0) {
        add(`hosts[${i}].mappings[${k}].ip`, `"${m.ip ?? ""}" is not an IP address`);
      }
      if (!m.hostname) add(`hosts[${i}].mappings[${k}].hostname`, "missing hostname");
    });
  });
  (cfg.resolvers ?? []).forEach((r, i) => {
    if (!r.nameservers?.length) add(`resolvers[${i}].nameservers`, "no nameservers");
    (r.nameservers ?? []).forEach((n, k) => {
      if (!n.addr) add(`resolvers[${i}].nameservers[${k}].addr`, "missing address");
    });
  });
  const limits = [
    ["limiters", TrafficLimiter.parse],
    ["climiters", ConnLimiter.parse],
    ["rlimiters", RateLimiter.parse],
  ] as const;
  for (const [key, parse] of limits) {
    (cfg[key] ?? []).forEach((l, i) => {
      (l.limits ?? []).forEach((line, k) => {
        try {
          parse([line]);
        } catch (e) {
          add(`${key}[${i}].limits[${k}]`, errMsg(e));
        }
      });
    });
  }
  (cfg.authers ?? []).forEach((a, i) => {
    (a.auths ?? []).forEach((u, k) => {
      if (!u.username) add(`authers[${i}].auths[${k}].username`, "missing username");
    });
  });
  if (cfg.log) {
    const { level, output, format } = cfg.log;
    if (level !== undefined && !LOG_LEVELS.includes(level.toLowerCase())) {
      add("log.level", `unknown level "${level}" (${LOG_LEVELS.join(", ")})`);
    }
    if (output !== undefined && output !== "stderr") {
      add("log.output", `output "${output}" is not supported yet (only stderr)`);
    }
    if (format !== undefined && format !== "text") {
      add("log.format", `format "${format}" is not supported yet (only text)`);
    }
  }
}

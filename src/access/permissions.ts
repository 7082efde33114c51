/**
 * Permissions (gost v2 `whitelist=` / `blacklist=`): space-separated rules
 * `actions:hosts:ports`, each part a comma list — actions `tcp`, `udp`, `rtcp`, `rudp` or `*`,
 * host globs (`*.example.com`, `*`), ports with ranges (`80,443,8000-9000`, `*`). A target is
 * allowed when the whitelist (if any) has a matching rule and the blacklist (if any) has none.
 */
import { splitHostPort } from "../core/conn.ts";
import { compileGlob, parsePortList, type PortRange } from "./matcher.ts";

/** One `actions:hosts:ports` rule. */
export interface Permission {
  actions: RegExp[];
  hosts: RegExp[];
  ports: PortRange[];
  /** The host patterns when none has a `*`: such rules are found by exact lookup. */
  literalHosts?: string[];
}

/** The actions gost v2 checks. */
export const ACTIONS = ["tcp", "udp", "rtcp", "rudp"] as const;
export type Action = typeof ACTIONS[number];

/** gost v2's globs are `*` only (any run of characters). */
function starGlob(p: string): RegExp {
  return compileGlob(p.replace(/[?[\]{}\\]/g, "\\$&"));
}

/** Parses a rule list; throws naming the bad rule. */
export function parsePermissions(s: string): Permission[] {
  const out: Permission[] = [];
  for (const rule of s.trim().split(/\s+/).filter(Boolean)) {
    const parts = rule.split(":");
    if (parts.length !== 3) {
      throw new Error(`permission "${rule}" must look like actions:hosts:ports (tcp:*:80,443)`);
    }
    const [a, h, p] = parts;
    if (a === "" || h === "") throw new Error(`permission "${rule}": empty actions or hosts`);
    const actions = a.split(",");
    for (const x of actions) {
      if (x !== "*" && !x.includes("*") && !(ACTIONS as readonly string[]).includes(x)) {
        throw new Error(`permission "${rule}": unknown action "${x}" (tcp, udp, rtcp, rudp, *)`);
      }
    }
    let ports: PortRange[];
    try {
      ports = parsePortList(p);
    } catch (e) {
      throw new Error(`permission "${rule}": ${(e as Error).message}`);
    }
    const hosts = h.split(",");
    out.push({
      actions: actions.map(starGlob),
      hosts: hosts.map(starGlob),
      ports,
      literalHosts: hosts.some((x) => x.includes("*")) ? undefined : hosts,
    });
  }
  return out;
}

/** True when any rule covers `action` on `host`:`port`. */
export function can(rules: Permission[], action: string, host: string, port: number): boolean {
  return rules.some((r) =>
    r.actions.some((g) => g.test(action)) && r.hosts.some((g) => g.test(host)) &&
    r.ports.some((pr) => port >= pr.min && port <= pr.max)
  );
}

/**
 * Rules indexed by literal host, so a list of thousands of `tcp:host:80` rules costs one map
 * lookup per check; rules with `*` in a host are still tried in order.
 */
class RuleIndex {
  private readonly byHost = new Map<string, Permission[]>();
  private readonly wild: Permission[] = [];
  constructor(rules: Permission[]) {
    for (const r of rules) {
      if (!r.literalHosts) {
        this.wild.push(r);
        continue;
      }
      for (const h of r.literalHosts) {
        const list = this.byHost.get(h) ?? [];
        list.push(r);
        this.byHost.set(h, list);
      }
    }
  }
  can(action: string, host: string, port: number): boolean {
    const exact = this.byHost.get(host);
    return (!!exact && can(exact, action, host, port)) || can(this.wild, action, host, port);
  }
}

/** A whitelist and/or blacklist. */
export class Permissions {
  private readonly white?: RuleIndex;
  private readonly black?: RuleIndex;
  constructor(readonly whitelist?: Permission[], readonly blacklist?: Permission[]) {
    if (whitelist) this.white = new RuleIndex(whitelist);
    if (blacklist) this.black = new RuleIndex(blacklist);
  }

  /** True when `action` to `addr` (`host:port`; a bare host means port 80) is allowed. */
  allows(action: string, addr: string): boolean {
    let host: string;
    let port: number;
    try {
      ({ host, port } = splitHostPort(addr.includes(":") ? addr : `${addr}:80`));
    } catch {
      return false;
    }
    return (!this.white || this.white.can(action, host, port)) &&
      (!this.black || !this.black.can(action, host, port));
  }
}

/** Builds from `whitelist=` / `blacklist=` values (either may be absent); undefined if both are. */
export function permissionsFromParams(
  whitelist: string | undefined,
  blacklist: string | undefined,
): Permissions | undefined {
  if (whitelist === undefined && blacklist === undefined) return undefined;
  const parse = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    try {
      return parsePermissions(v);
    } catch (e) {
      throw new Error(`parameter "${name}": ${(e as Error).message}`);
    }
  };
  return new Permissions(parse("whitelist", whitelist), parse("blacklist", blacklist));
}

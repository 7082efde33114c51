/**
 * Service fingerprints for live reload: a service's own config plus every named object it
 * reaches (its chains and their hops, authers, bypasses, admissions, limiters, resolvers, hosts),
 * serialised with sorted keys. Two configs give a service the same fingerprint exactly when
 * rebuilding it would build the same thing, so a reload restarts only what changed.
 */
import type { Config } from "./model.ts";

/** Reference keys → the top-level section holding the named objects they refer to. */
const REFS: Record<string, keyof Config> = {
  chain: "chains",
  auther: "authers",
  authers: "authers",
  bypass: "bypasses",
  bypasses: "bypasses",
  admission: "admissions",
  admissions: "admissions",
  limiter: "limiters",
  climiter: "climiters",
  rlimiter: "rlimiters",
  resolver: "resolvers",
  hosts: "hosts",
};

/** Top-level sections every service depends on (e.g. the default TLS certificate). */
const GLOBAL = ["tls"];

/** JSON with object keys sorted, so key order never counts as a change. */
export function canonicalJSON(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x) =>
      x && typeof x === "object" && !Array.isArray(x)
        ? Object.fromEntries(
          Object.keys(x).sort().map((k) => [k, (x as Record<string, unknown>)[k]]),
        )
        : x,
  );
}

/** The named entry `name` of section `sec` (entries are `{ name, … }` lists). */
function named(cfg: Config, sec: keyof Config, name: string): unknown {
  const list = cfg[sec];
  return Array.isArray(list)
    ? list.find((e) => (e as { name?: string })?.name === name)
    : undefined;
}

/**
 * Fingerprint of service `name` in `cfg` (undefined when the config has no such service): the
 * service, the global sections, and each named object it references, transitively.
 */
export function serviceFingerprint(cfg: Config, name: string): string | undefined {
  const svc = cfg.services?.find((s) => s.name === name);
  if (!svc) return undefined;
  const reached = new Map<string, unknown>();
  const visit = (v: unknown, inChain: boolean) => {
    if (!v || typeof v !== "object") return;
    if (Array.isArray(v)) {
      for (const x of v) visit(x, inChain);
      return;
    }
    for (const [k, x] of Object.entries(v)) {
      // Metadata values are parameters (file paths, inline lists), never names.
      if (k === "metadata") continue;
      const sec = REFS[k];
      if (sec && (typeof x === "string" || Array.isArray(x))) {
        for (const n of [x].flat()) follow(sec, String(n));
        continue;
      }
      // A chain's hop given by name only is the top-level hop of that name.
      if (inChain && k === "hops" && Array.isArray(x)) {
        for (const h of x) {
          const hn = (h as { name?: string; nodes?: unknown[] })?.name;
          if (hn !== undefined && !(h as { nodes?: unknown[] }).nodes?.length) follow("hops", hn);
        }
      }
      visit(x, inChain);
    }
  };
  const follow = (sec: keyof Config, n: string) => {
    const key = `${sec}/${n}`;
    if (reached.has(key)) return;
    const obj = named(cfg, sec, n);
    reached.set(key, obj ?? null);
    visit(obj, sec === "chains" || sec === "hops");
  };
  visit(svc, false);
  const globals = Object.fromEntries(
    GLOBAL.map((g) => [g, (cfg as Record<string, unknown>)[g] ?? null]),
  );
  return canonicalJSON({ service: svc, globals, refs: Object.fromEntries(reached) });
}

/** What a reload must do to go from `before` to `after`, by service name. */
export interface ConfigDiff {
  /** Services in both with equal fingerprints: they keep running untouched. */
  kept: string[];
  /** Services in both whose fingerprint changed: stopped, then started from `after`. */
  changed: string[];
  /** Services only in `after`. */
  added: string[];
  /** Services only in `before`. */
  removed: string[];
}

/** Compares two configs service by service. */
export function diffConfigs(before: Config, after: Config): ConfigDiff {
  const d: ConfigDiff = { kept: [], changed: [], added: [], removed: [] };
  const names = (c: Config) => (c.services ?? []).map((s) => s.name);
  const old = new Set(names(before));
  for (const n of names(after)) {
    if (!old.has(n)) d.added.push(n);
    else if (serviceFingerprint(before, n) === serviceFingerprint(after, n)) d.kept.push(n);
    else d.changed.push(n);
  }
  const now = new Set(names(after));
  for (const n of old) if (!now.has(n)) d.removed.push(n);
  return d;
}

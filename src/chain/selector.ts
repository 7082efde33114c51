/**
 * Node selection, shared by chain hops and forward targets: filters (excluded items, the fail
 * filter, the fastest filter) cut the candidate list, then a strategy picks one.
 *
 * Semantics follow gost: a node whose dial failed `maxFails` times is skipped until
 * `failTimeout` has passed since its last failure; a successful dial resets its count; a group
 * of one is never filtered. Unlike gost v3 (which then has no node at all), when every candidate
 * is dead the fail filter falls back to all of them: trying a dead node beats failing outright.
 */
import { ConfigError } from "../core/errors.ts";
import { parseDuration } from "../config/params.ts";
import { crc32 } from "../core/crc32.ts";

/** Failure bookkeeping of one node or target. */
export class FailMarker {
  /** Consecutive failed dials. */
  count = 0;
  /** When the last failure happened (ms since epoch), 0 if none. */
  time = 0;
  /** Records a failed dial. */
  mark(now = Date.now()): void {
    this.count++;
    this.time = now;
  }
  /** Records a successful dial. */
  reset(): void {
    this.count = 0;
    this.time = 0;
  }
}

/** Anything a selector can pick: it has an address (for probes) and a fail marker. */
export interface Selectable {
  readonly addr: string;
  readonly marker: FailMarker;
}

/** Strategy names after alias resolution. */
export type StrategyName = "round" | "random" | "fifo" | "hash";

/** gost's strategy names and aliases (v2: round/random/fifo; v3 adds rr, rand, ha, hash). */
const STRATEGIES: Record<string, StrategyName> = {
  round: "round",
  rr: "round",
  random: "random",
  rand: "random",
  fifo: "fifo",
  ha: "fifo",
  hash: "hash",
};

/** Resolves a strategy name; unknown names are an error (gost silently uses round). */
export function parseStrategy(s: string): StrategyName {
  const v = STRATEGIES[s.trim().toLowerCase()];
  if (v) return v;
  if (["parallel", "lowestlatency", "lowest", "ll"].includes(s.trim().toLowerCase())) {
    throw new ConfigError(`strategy "${s}" is not supported yet`);
  }
  throw new ConfigError(`unknown strategy "${s}" (want round, random, fifo or hash)`);
}

/** gost v3's fail filter defaults without a selector config (DefaultNodeSelector). */
export const DEFAULT_MAX_FAILS = 1;
export const DEFAULT_FAIL_TIMEOUT = 10_000;
/** Defaults once any selector parameter is given (gost v2, and v3's command line). */
export const CONFIGURED_FAIL_TIMEOUT = 30_000;

/** Selector settings. */
export interface SelectorOptions {
  strategy: StrategyName;
  /** Failures after which a node is skipped (≥ 1). */
  maxFails: number;
  /** How long a failed node is skipped, in ms. */
  failTimeout: number;
  /** Keep only the N lowest-latency candidates (0 = off). */
  fastestCount?: number;
}

/** The default selector: round-robin with gost v3's default fail filter. */
export function defaultSelectorOptions(): SelectorOptions {
  return { strategy: "round", maxFails: DEFAULT_MAX_FAILS, failTimeout: DEFAULT_FAIL_TIMEOUT };
}

/** The config model's selector (`{strategy, maxFails, failTimeout}`), as in gost v3. */
export interface SelectorConfigLike {
  strategy?: string;
  maxFails?: number;
  failTimeout?: string | number;
}

/** Turns a config `selector` into options; `undefined` gives the default selector. */
export function selectorOptionsFrom(cfg: SelectorConfigLike | undefined): SelectorOptions {
  if (!cfg) return defaultSelectorOptions();
  const strategy = parseStrategy(cfg.strategy || "round");
  const maxFails = cfg.maxFails && cfg.maxFails > 0 ? Math.floor(cfg.maxFails) : 1;
  let failTimeout = CONFIGURED_FAIL_TIMEOUT;
  if (typeof cfg.failTimeout === "number" && cfg.failTimeout > 0) {
    failTimeout = cfg.failTimeout * 1000; // bare numbers are seconds, as everywhere in configs
  } else if (typeof cfg.failTimeout === "string" && cfg.failTimeout !== "") {
    const ms = parseDuration(cfg.failTimeout);
    if (ms === undefined) throw new ConfigError(`invalid failTimeout "${cfg.failTimeout}"`);
    if (ms > 0) failTimeout = ms;
  }
  return { strategy, maxFails, failTimeout };
}

/** Per-call selection inputs. */
export interface SelectOptions<T> {
  /** Items already tried for this request. */
  exclude?: ReadonlySet<T>;
  /** What the hash strategy hashes (target address or client IP); random without it. */
  key?: string;
}

/**
 * Picks one item from a list. Stateful only for round-robin (its counter), so one selector
 * belongs to one group.
 */
export class Selector<T extends Selectable> {
  private counter = 0;

  /**
   * @param latency the measured connect latency of an item in ms (undefined: not measured,
   *   Infinity: unreachable); used by the fastest filter.
   * @param now the clock, injectable for tests.
   */
  constructor(
    readonly opts: SelectorOptions,
    private readonly latency?: (item: T) => number | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** True while `item` is skipped by the fail filter. */
  isDead(item: T): boolean {
    const m = item.marker;
    return m.count >= this.opts.maxFails && this.now() - m.time < this.opts.failTimeout;
  }

  /** Applies the filters and the strategy; undefined only when nothing is left to try. */
  select(items: readonly T[], o: SelectOptions<T> = {}): T | undefined {
    let vs = o.exclude?.size ? items.filter((v) => !o.exclude!.has(v)) : items;
    if (vs.length === 0) return undefined;
    vs = this.failFilter(vs);
    vs = this.fastestFilter(vs);
    return this.apply(vs, o.key);
  }

  private failFilter(vs: readonly T[]): readonly T[] {
    if (vs.length <= 1) return vs;
    const alive = vs.filter((v) => !this.isDead(v));
    return alive.length ? alive : vs;
  }

  private fastestFilter(vs: readonly T[]): readonly T[] {
    const n = this.opts.fastestCount ?? 0;
    if (n <= 0 || !this.latency || vs.length <= n) return vs;
    // Measured before not-yet-measured before unreachable (Infinity).
    const lat = (v: T) => this.latency!(v) ?? Number.MAX_VALUE;
    // Array.prototype.sort is stable: equal latencies keep the configured order.
    return [...vs].sort((a, b) => lat(a) - lat(b)).slice(0, n);
  }

  private apply(vs: readonly T[], key?: string): T {
    switch (this.opts.strategy) {
      case "fifo":
        return vs[0];
      case "random":
        return vs[Math.floor(Math.random() * vs.length)];
      case "hash":
        if (key) return vs[crc32(key) % vs.length];
        return vs[Math.floor(Math.random() * vs.length)];
      default:
        return vs[this.counter++ % vs.length];
    }
  }
}

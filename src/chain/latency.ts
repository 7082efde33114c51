/**
 * Connect-latency probes for the fastest filter (`fastest_count`): every period, a plain TCP
 * connect to each node address (as gost v2's FastestFilter does), timed; a failed or timed-out
 * probe counts as unreachable (Infinity). The first round runs at once; the timer is unref'd so
 * probing never keeps the process alive.
 */
import { errMsg } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { dialTCP } from "./direct.ts";
import { track } from "../core/scope.ts";

/** Default probe period. */
export const PROBE_PERIOD = 30_000;
/** Probe connect timeout (gost v2: 3 s). */
export const PROBE_TIMEOUT = 3_000;

/** Measures one address: resolves with the latency in ms, or Infinity when unreachable. */
export type ProbeFn = (addr: string) => Promise<number>;

/** The default probe: a TCP connect, closed at once. */
export const tcpProbe: ProbeFn = async (addr) => {
  const start = performance.now();
  try {
    const c = await dialTCP(addr, PROBE_TIMEOUT);
    const ms = performance.now() - start;
    c.close();
    return ms;
  } catch {
    return Infinity;
  }
};

/** Keeps the latest probe result per address. */
export class LatencyProber {
  private readonly results = new Map<string, number>();
  private timer?: ReturnType<typeof setInterval>;
  private running?: Promise<void>;
  private closed = false;

  /**
   * @param addrs the addresses to probe, read at each round (the node list may reload).
   */
  constructor(
    private readonly addrs: () => string[],
    private readonly opts: { period?: number; probe?: ProbeFn; log?: Logger } = {},
  ) {}

  /** Starts probing: one round now, then one per period. */
  start(): void {
    if (this.timer !== undefined || this.closed) return;
    track(this); // a reload that drops the chain stops its probes
    void this.round();
    const t = setInterval(() => void this.round(), this.opts.period ?? PROBE_PERIOD);
    Deno.unrefTimer(t);
    this.timer = t;
  }

  /** The last measured latency of `addr` in ms (undefined before its first probe). */
  latency(addr: string): number | undefined {
    return this.results.get(addr);
  }

  /** Sets a result directly (tests, or an external measurement). */
  set(addr: string, ms: number): void {
    this.results.set(addr, ms);
  }

  /** Runs one probe round (or joins the one under way); resolves when all are measured. */
  round(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.running ??= this.probeAll().finally(() => this.running = undefined);
    return this.running;
  }

  private async probeAll(): Promise<void> {
    const probe = this.opts.probe ?? tcpProbe;
    const list = [...new Set(this.addrs())];
    await Promise.all(list.map(async (a) => {
      try {
        this.results.set(a, await probe(a));
      } catch (e) {
        this.results.set(a, Infinity);
        this.opts.log?.debug(`latency probe ${a}: ${errMsg(e)}`);
      }
    }));
    // Forget addresses that left the group.
    for (const a of this.results.keys()) if (!list.includes(a)) this.results.delete(a);
    this.opts.log?.trace(
      `latency: ${list.map((a) => `${a}=${fmt(this.results.get(a))}`).join(" ")}`,
    );
  }

  /** Stops the timer. */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

function fmt(ms: number | undefined): string {
  if (ms === undefined) return "?";
  return Number.isFinite(ms) ? `${ms.toFixed(1)}ms` : "down";
}

/**
 * A node group: a list of selectable items plus the selector that picks one per request.
 * Chain hops (groups of proxy nodes) and forwarders (groups of forward targets) are both
 * groups, so they share one selection implementation. The item list and the selector can be
 * replaced at run time (peer/ip files reload).
 */
import type { Logger } from "../core/logger.ts";
import { LatencyProber, type ProbeFn } from "./latency.ts";
import {
  FailMarker,
  type Selectable,
  type SelectOptions,
  Selector,
  type SelectorConfigLike,
  type SelectorOptions,
  selectorOptionsFrom,
} from "./selector.ts";

/** Options of a group. */
export interface GroupOptions {
  log?: Logger;
  /** Latency probe override (tests). */
  probe?: ProbeFn;
  /** Latency probe period override. */
  probePeriod?: number;
}

export class NodeGroup<T extends Selectable> {
  private items: readonly T[];
  private selector!: Selector<T>;
  private prober?: LatencyProber;

  constructor(
    readonly name: string,
    items: readonly T[],
    selector: SelectorOptions,
    protected readonly gopts: GroupOptions = {},
  ) {
    this.items = items;
    this.setSelector(selector);
  }

  /** The current items, in configured order. */
  get nodes(): readonly T[] {
    return this.items;
  }

  /** The current selector settings. */
  get selectorOptions(): SelectorOptions {
    return this.selector.opts;
  }

  /** Replaces the item list (fail counts travel with the items' markers). */
  setNodes(items: readonly T[]): void {
    this.items = items;
    void this.prober?.round(); // measure new addresses now rather than a period later
  }

  /** Replaces the selector; starts or stops latency probing as `fastestCount` asks. */
  setSelector(opts: SelectorOptions): void {
    const fastest = (opts.fastestCount ?? 0) > 0;
    if (fastest && !this.prober) {
      this.prober = new LatencyProber(() => this.items.map((n) => n.addr), {
        log: this.gopts.log,
        probe: this.gopts.probe,
        period: this.gopts.probePeriod,
      });
      this.prober.start();
    } else if (!fastest && this.prober) {
      this.prober.close();
      this.prober = undefined;
    }
    const prober = this.prober;
    this.selector = new Selector<T>(opts, prober ? (v) => prober.latency(v.addr) : undefined);
  }

  /** The latency prober, when `fastestCount` is on. */
  get latency(): LatencyProber | undefined {
    return this.prober;
  }

  /** True while the fail filter skips `item`. */
  isDead(item: T): boolean {
    return this.selector.isDead(item);
  }

  /** Picks an item (undefined only when every item is excluded). */
  select(o: SelectOptions<T> = {}): T | undefined {
    return this.selector.select(this.items, o);
  }

  /** Stops background work (latency probes). */
  close(): void {
    this.prober?.close();
    this.prober = undefined;
  }
}

/** A forward target (`tcp://:P/a:1,b:2` → `a:1`, `b:2`). */
export interface Target extends Selectable {
  name: string;
  addr: string;
  marker: FailMarker;
}

/** Builds the group of forward targets of a service with its configured selector. */
export function targetGroup(
  name: string,
  nodes: readonly { name: string; addr: string }[],
  selector?: SelectorConfigLike & { fastestCount?: number },
  gopts: GroupOptions = {},
): NodeGroup<Target> {
  const opts = selectorOptionsFrom(selector);
  if (selector?.fastestCount) opts.fastestCount = selector.fastestCount;
  const targets = nodes.map((n) => ({ name: n.name, addr: n.addr, marker: new FailMarker() }));
  return new NodeGroup<Target>(name, targets, opts, gopts);
}

/**
 * A hop: one level of a chain, a group of upstream nodes (same or different protocols) with
 * a selector. Its node list may come from reloadable files (`ip=file`, `peer=file`).
 */
import type { Connector, Dialer } from "../registry.ts";
import { type GroupOptions, NodeGroup } from "./group.ts";
import type { FileWatcher } from "../core/filewatch.ts";
import type { Bypass } from "../access/bypass.ts";
import { defaultSelectorOptions, type FailMarker, type SelectorOptions } from "./selector.ts";

/** One upstream node: how to reach it and how to ask it for a target. */
export interface ChainNode {
  name: string;
  addr: string;
  /** The URL or config path it came from, for error messages. */
  label: string;
  dialer: Dialer;
  connector: Connector;
  /** Dial failures, for the fail filter. */
  marker: FailMarker;
}

export class Hop extends NodeGroup<ChainNode> {
  private readonly watchers: FileWatcher[] = [];
  /** `bypass=` on the hop: a target it contains skips this hop and the ones after it. */
  bypass?: Bypass;

  constructor(
    name: string,
    nodes: readonly ChainNode[],
    selector: SelectorOptions = defaultSelectorOptions(),
    gopts: GroupOptions = {},
  ) {
    super(name, nodes, selector, gopts);
  }

  /** Ties a file watcher's lifetime to the hop. */
  addWatcher(w: FileWatcher): void {
    this.watchers.push(w);
  }

  /** Stops latency probes and file watching. */
  override close(): void {
    super.close();
    for (const w of this.watchers) w.close();
    this.bypass?.close();
  }
}

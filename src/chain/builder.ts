/**
 * Config model → running chains: each node's dialer and connector from the registry, each
 * hop's selector, and the hop's reloadable node sources (`ip=file`, `peer=file`, gost v2).
 */
import { hopFromChainURL, type Sources } from "../config/cli.ts";
import type { ChainConfig, HopConfig, NodeConfig } from "../config/model.ts";
import { Params } from "../config/params.ts";
import { splitHostPort } from "../core/conn.ts";
import { ConfigError, errMsg } from "../core/errors.ts";
import { Logger } from "../core/logger.ts";
import { lookup, NotSupportedError, registry } from "../registry.ts";
import { Chain } from "./chain.ts";
import { bypassFromParam } from "../access/bypass.ts";
import { type ChainNode, Hop } from "./hop.ts";
import { DEFAULT_RELOAD_CHECK, FileWatcher } from "../core/filewatch.ts";
import { isFilePath, parseIPFile, parseIPList, parsePeerFile } from "./nodefile.ts";
import {
  FailMarker,
  parseStrategy,
  type SelectorOptions,
  selectorOptionsFrom,
} from "./selector.ts";

/** Hop-level parameters (read by the hop, never passed to its nodes' modules). */
const HOP_KEYS = ["ip", "peer", "fastest_count", "fastestcount", "bypass"];

function context<T>(where: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof NotSupportedError) throw new ConfigError(`${where}: ${e.message}`);
    throw e;
  }
}

/** Runs `f`; any error becomes a ConfigError prefixed with `where`. */
function withWhere<T>(where: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new ConfigError(`${where}: ${errMsg(e)}`);
  }
}

function split(md: Record<string, unknown>): [hop: Record<string, unknown>, node: typeof md] {
  const hop: Record<string, unknown> = {};
  const node: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(md)) {
    if (HOP_KEYS.includes(k.toLowerCase())) hop[k] = v;
    else node[k] = v;
  }
  return [hop, node];
}

/** Builds the chains of a config; `sources` names where each node came from. */
export function buildChain(c: ChainConfig, sources: Sources = new Map()): Chain {
  const log = new Logger(c.name);
  return new Chain(c.name, c.hops.map((h, hi) => buildHop(c, h, hi, sources)), log);
}

/**
 * Builds one node. `markers` keeps fail counts across reloads: a node rebuilt from a reloaded
 * file with the same URL and address keeps its marker.
 */
function buildNode(
  c: ChainConfig,
  h: HopConfig,
  n: NodeConfig,
  where: string,
  markers: Map<string, FailMarker>,
): ChainNode {
  const [, nodeMd] = split({
    ...c.metadata,
    ...h.metadata,
    ...n.metadata,
    ...n.dialer?.metadata,
    ...n.connector?.metadata,
  });
  const params = new Params(nodeMd, where);
  const log = new Logger(`${c.name}/${h.name}/${n.name}`);
  const dialerType = n.dialer?.type ?? "tcp";
  const connectorType = n.connector?.type ?? "http";
  const opts = { node: n.name, addr: n.addr, params, log, transport: dialerType };
  const dialer = context(
    where,
    () => lookup(registry.dialers, "dialer", dialerType)({ ...opts, auth: n.dialer?.auth }),
  );
  const connector = context(
    where,
    () =>
      lookup(registry.connectors, "connector", connectorType)({
        ...opts,
        auth: n.connector?.auth,
      }),
  );
  params.assertAllConsumed();
  const scheme = dialerType === "tcp" ? connectorType : `${connectorType}+${dialerType}`;
  const label = `${scheme}://${n.addr}`;
  let marker = markers.get(label);
  if (!marker) markers.set(label, marker = new FailMarker());
  return { name: n.name, addr: n.addr, label, dialer, connector, marker };
}

function buildHop(c: ChainConfig, h: HopConfig, hi: number, sources: Sources): Hop {
  if (!h.nodes?.length) throw new ConfigError(`chain ${c.name}: hop ${hi + 1} has no nodes`);
  const where = sources.get(h.nodes[0]) ?? `chain ${c.name} hop ${h.name}`;
  const log = new Logger(`${c.name}/${h.name}`);
  const [hopMd] = split({ ...c.metadata, ...h.metadata });
  const hp = new Params(hopMd, where);
  const ip = hp.str("ip");
  const peer = hp.str("peer");
  const fastestCount = hp.int(["fastest_count", "fastestCount"], 0, 0);
  const markers = new Map<string, FailMarker>();
  const nodeWhere = (n: NodeConfig) =>
    sources.get(n) ?? `chain ${c.name} hop ${h.name} node ${n.name}`;
  const template = h.nodes[0];
  const templatePort = withWhere(where, () => splitHostPort(template.addr).port);
  // Nodes at the addresses of an ip= list: copies of the first node, one per address.
  const atAddrs = (addrs: string[]) =>
    addrs.map((addr, k) =>
      buildNode(c, h, { ...template, name: `node-${k}`, addr }, nodeWhere(template), markers)
    );

  let own = h.nodes.map((n) => buildNode(c, h, n, nodeWhere(n), markers));
  const ipIsFile = ip !== undefined && withWhere(where, () => isFilePath(ip));
  if (ip !== undefined && !ipIsFile) {
    const list = withWhere(where, () => parseIPList(ip, templatePort));
    if (list.length) own = atAddrs(list);
  }
  const baseSel: SelectorOptions = withWhere(where, () => ({
    ...selectorOptionsFrom(h.selector),
    fastestCount,
  }));
  const hop = new Hop(h.name, own, baseSel, { log });
  const bypass = hp.str("bypass");
  if (bypass !== undefined) {
    hop.bypass = bypassFromParam(bypass, { log, where: `${where}: parameter "bypass"` });
  }
  let peerNodes: ChainNode[] = [];
  const refresh = () => hop.setNodes([...own, ...peerNodes]);

  if (ip !== undefined && ipIsFile) {
    const w = new FileWatcher(ip, (text) => {
      const list = parseIPFile(text, templatePort);
      // An empty file leaves the node's own address, as gost v2 does.
      own = list.length ? atAddrs(list) : h.nodes.map((n) => buildNode(c, h, n, where, markers));
      refresh();
      log.debug(`${ip}: ${own.length} node address(es)`);
    }, log);
    w.loadNow();
    w.watch(DEFAULT_RELOAD_CHECK);
    hop.addWatcher(w);
  }
  if (peer !== undefined) {
    const w = new FileWatcher(peer, (text) => {
      const pf = parsePeerFile(text);
      if (pf.strategy !== undefined) parseStrategy(pf.strategy);
      const nodes = pf.nodes.flatMap((url, i) => peerHopNodes(c, h, url, i, markers));
      const sel: SelectorOptions = {
        strategy: pf.strategy !== undefined ? parseStrategy(pf.strategy) : baseSel.strategy,
        maxFails: pf.maxFails || baseSel.maxFails,
        failTimeout: pf.failTimeout || baseSel.failTimeout,
        fastestCount: pf.fastestCount ?? baseSel.fastestCount,
      };
      // Everything parsed: now swap (a bad file above leaves the previous state intact).
      peerNodes = nodes;
      hop.setSelector(sel);
      refresh();
      w.watch(pf.reload ?? DEFAULT_RELOAD_CHECK);
      log.debug(`${peer}: ${nodes.length} peer node(s), strategy ${sel.strategy}`);
    }, log);
    w.loadNow();
    hop.addWatcher(w);
  }
  return hop;
}

/** The nodes of one `peer` line: a node URL, expanded by its own `ip=` list or file. */
function peerHopNodes(
  c: ChainConfig,
  h: HopConfig,
  url: string,
  i: number,
  markers: Map<string, FailMarker>,
): ChainNode[] {
  const where = `peer "${url}"`;
  const ph = hopFromChainURL(url, i, new Map(), where);
  const [extra] = split(ph.metadata ?? {});
  const ep = new Params(extra, where);
  const ip = ep.str("ip");
  if (ep.str("peer") !== undefined) throw new ConfigError(`${where}: peer files do not nest`);
  ep.int(["fastest_count", "fastestCount"], 0, 0); // the hop's setting applies, as in gost
  if (ep.str("bypass") !== undefined) {
    throw new ConfigError(`${where}: bypass= applies to the -F hop, not to a peer node`);
  }
  let nodes = ph.nodes;
  if (ip !== undefined) {
    // ip= naming a file inside a peer file is read once, like gost v2.
    const list = parseIPFile(Deno.readTextFileSync(ip), splitHostPort(nodes[0].addr).port);
    if (list.length) nodes = list.map((addr, k) => ({ ...nodes[0], name: `node-${k}`, addr }));
  }
  // The peer node's own parameters apply, not the -F hop's metadata.
  const hopOfPeer: HopConfig = { ...h, metadata: ph.metadata };
  return nodes.map((n) =>
    buildNode(c, hopOfPeer, { ...n, name: `peer-${i}-${n.name}` }, where, markers)
  );
}

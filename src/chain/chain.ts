/**
 * A chain of hops. `dial` walks it: the first hop's node is dialed by its dialer; each next
 * hop is reached by the current connector's CONNECT plus the next dialer's handshake over that
 * stream; the last connector CONNECTs to the target.
 *
 * Each hop picks one of its nodes per dial. A node that cannot be reached (dial, handshake, or
 * the previous node's CONNECT to it fails) gets a failure mark, so the fail filter skips it on
 * the next attempt (retries pick another node); when the previous node itself turns us away
 * (a "not-allowed" answer such as an HTTP 407), that node is the one named and marked. When the last node's CONNECT to the target
 * fails, only a node fault marks it (the stream broke, or the answer was not the protocol): a
 * proper refusal or a timeout may be the target's doing. A node that did its part (its CONNECT
 * onward succeeded, or it answered with a proper refusal) has its mark reset.
 */
import { closeQuietly, type Conn } from "../core/conn.ts";
import { DialError, errMsg } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import type { ChainNode, Hop } from "./hop.ts";
import { dialTCP } from "./direct.ts";
import { dialUDPDirect } from "../transport/udp/socket.ts";

export { type ChainNode, Hop } from "./hop.ts";

export class Chain {
  constructor(readonly name: string, readonly hops: Hop[], private readonly log?: Logger) {}

  get isEmpty(): boolean {
    return this.hops.length === 0;
  }

  /** Picks hop `i`'s node for a dial to `address` (the hash strategy hashes the target). */
  private pick(i: number, address: string): ChainNode {
    const node = this.hops[i].select({ key: address });
    // A hop always has at least one node, and nothing is excluded here.
    if (!node) throw new DialError(`hop ${i + 1} (${this.hops[i].name}): no node`, "other");
    return node;
  }

  private markFailed(hopNo: number, node: ChainNode): void {
    node.marker.mark();
    if (this.hops[hopNo - 1].nodes.length > 1) {
      this.log?.debug(
        `hop ${hopNo} ${node.name} (${node.label}): failure ${node.marker.count} marked`,
      );
    }
  }

  /** Stops background work of every hop (latency probes, file watching). */
  close(): void {
    for (const h of this.hops) h.close();
  }

  /**
   * How many hops a dial to `address` goes through: up to (not including) the first hop whose
   * bypass contains the target, as gost v3 routes (0 = dial directly).
   */
  hopsFor(network: "tcp" | "udp", address: string): number {
    const i = this.hops.findIndex((h) => h.bypass?.contains(network, address));
    return i < 0 ? this.hops.length : i;
  }

  /** Opens a stream to `address` through every hop; errors name the failing hop. */
  async dial(network: "tcp" | "udp", address: string, timeout: number): Promise<Conn> {
    const nHops = this.hopsFor(network, address);
    if (nHops === 0) {
      this.log?.debug(`${address}: bypassed by hop 1, dialing directly`);
      return network === "tcp" ? dialTCP(address, timeout) : dialUDPDirect(address);
    }
    let conn: Conn | undefined;
    let node = this.pick(0, address);
    let hopNo = 1;
    // Nodes that did their part; their marks are reset once the outcome is known.
    const worked: ChainNode[] = [];
    // Until the current node is reached, a failure is that node's fault.
    let reaching = true;
    try {
      let c: Conn = await node.dialer.dial(node.addr, { timeout });
      conn = c;
      if (node.dialer.handshake) {
        conn = c = await node.dialer.handshake(c, { addr: node.addr, timeout });
      }
      for (let i = 1; i < nHops; i++) {
        const prev = node;
        node = this.pick(i, address); // a failure to reach hop i+1 is reported as that hop's
        hopNo = i + 1;
        try {
          conn = c = await prev.connector.connect(c, "tcp", node.addr, { timeout });
        } catch (e) {
          // The previous node itself turned us away (its credentials or rules, e.g. a 407):
          // that is its failure, not the next hop's.
          if (e instanceof DialError && e.code === "not-allowed") [node, hopNo] = [prev, i];
          throw e;
        }
        worked.push(prev);
        if (node.dialer.handshake) {
          conn = c = await node.dialer.handshake(c, { addr: node.addr, timeout });
        }
      }
      reaching = false;
      const out = await node.connector.connect(c, network, address, { timeout });
      for (const n of worked) n.marker.reset();
      node.marker.reset();
      return out;
    } catch (e) {
      closeQuietly(conn);
      for (const n of worked) n.marker.reset();
      if (reaching || isNodeFault(e)) this.markFailed(hopNo, node);
      else node.marker.reset(); // it answered properly: the target refused
      const code = e instanceof DialError ? e.code : "other";
      throw new DialError(`hop ${hopNo} (${node.label}): ${errMsg(e)}`, code, { cause: e });
    }
  }
}

/** An error that says the node itself misbehaved, not that it refused the target. */
function isNodeFault(e: unknown): boolean {
  return !(e instanceof DialError) && !/timed out/i.test(errMsg(e));
}

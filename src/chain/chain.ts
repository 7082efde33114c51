/**
 * A chain of hops. `dial` walks it: the first hop's node is dialed by its dialer; each next
 * hop is reached by the current connector's CONNECT plus the next dialer's handshake over that
 * stream; the last connector CONNECTs to the target.
 */
import { closeQuietly, type Conn } from "../core/conn.ts";
import { DialError, errMsg } from "../core/errors.ts";
import type { Connector, Dialer } from "../registry.ts";

/** One upstream node: how to reach it and how to ask it for a target. */
export interface ChainNode {
  name: string;
  addr: string;
  /** The URL or config path it came from, for error messages. */
  label: string;
  dialer: Dialer;
  connector: Connector;
}

/** A group of nodes; selection strategies arrive with hop groups. */
export class Hop {
  private next = 0;
  constructor(readonly name: string, readonly nodes: ChainNode[]) {}
  /** Picks the next node round-robin. */
  select(): ChainNode {
    const n = this.nodes[this.next % this.nodes.length];
    this.next = (this.next + 1) % this.nodes.length;
    return n;
  }
}

export class Chain {
  constructor(readonly name: string, readonly hops: Hop[]) {}

  get isEmpty(): boolean {
    return this.hops.length === 0;
  }

  /** Opens a stream to `address` through every hop; errors name the failing hop. */
  async dial(network: "tcp" | "udp", address: string, timeout: number): Promise<Conn> {
    let conn: Conn | undefined;
    let node = this.hops[0].select();
    let hopNo = 1;
    const fail = (e: unknown): never => {
      closeQuietly(conn);
      const code = e instanceof DialError ? e.code : "other";
      throw new DialError(`hop ${hopNo} (${node.label}): ${errMsg(e)}`, code, { cause: e });
    };
    try {
      let c: Conn = await node.dialer.dial(node.addr, { timeout });
      conn = c;
      if (node.dialer.handshake) {
        conn = c = await node.dialer.handshake(c, { addr: node.addr, timeout });
      }
      for (let i = 1; i < this.hops.length; i++) {
        const prev = node;
        node = this.hops[i].select(); // a failure to reach hop i+1 is reported as that hop's
        hopNo = i + 1;
        conn = c = await prev.connector.connect(c, "tcp", node.addr, { timeout });
        if (node.dialer.handshake) {
          conn = c = await node.dialer.handshake(c, { addr: node.addr, timeout });
        }
      }
      return await node.connector.connect(c, network, address, { timeout });
    } catch (e) {
      return fail(e);
    }
  }
}

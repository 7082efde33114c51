/**
 * The Router is how handlers reach targets: through the service's chain when there is one,
 * directly otherwise, with the dial timeout and retries applied.
 */
import type { Conn } from "../core/conn.ts";
import { dialTCP } from "./direct.ts";
import type { Chain } from "./chain.ts";
import { dialUDPDirect } from "../transport/udp/socket.ts";

export interface Router {
  /** Opens a stream to `address` (`host:port`). */
  dial(network: "tcp", address: string): Promise<Conn>;
  /**
   * Opens a UDP path to `address` (`host:port`): a message-preserving Conn (one write = one
   * datagram to the target, one read = one datagram from it). Directly, or through the chain,
   * whose last connector must carry UDP (SOCKS5 UDP ASSOCIATE, …).
   */
  dialUDP(address: string): Promise<Conn>;
  /** True when a chain is in use (handlers that need local sockets, e.g. UDP, check this). */
  readonly hasChain: boolean;
}

/** Router options. */
export interface RouterOptions {
  chain?: Chain;
  /** Per-dial timeout in ms (0 = none). */
  timeout: number;
  /** Extra attempts after a failed dial. */
  retries: number;
}

export class DefaultRouter implements Router {
  constructor(private readonly opts: RouterOptions) {}
  get hasChain(): boolean {
    return !!this.opts.chain && !this.opts.chain.isEmpty;
  }
  dial(network: "tcp", address: string): Promise<Conn> {
    return this.withRetries(() => {
      if (this.opts.chain && !this.opts.chain.isEmpty) {
        return this.opts.chain.dial(network, address, this.opts.timeout);
      }
      return dialTCP(address, this.opts.timeout);
    });
  }

  dialUDP(address: string): Promise<Conn> {
    return this.withRetries(() => {
      if (this.opts.chain && !this.opts.chain.isEmpty) {
        return this.opts.chain.dial("udp", address, this.opts.timeout);
      }
      return dialUDPDirect(address);
    });
  }

  private async withRetries(f: () => Promise<Conn>): Promise<Conn> {
    let err: unknown;
    for (let i = 0; i <= this.opts.retries; i++) {
      try {
        return await f();
      } catch (e) {
        err = e;
      }
    }
    throw err;
  }
}

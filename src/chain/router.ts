/**
 * The Router is how handlers reach targets: through the service's chain when there is one,
 * directly otherwise, with the dial timeout and retries applied.
 */
import { type Conn, joinHostPort, splitHostPort } from "../core/conn.ts";
import type { NameLookup } from "../core/resolve.ts";
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
  /** The service's hosts/resolver, for handlers that resolve names themselves (UDP relays). */
  readonly names?: NameLookup;
  /**
   * The service's bypass and permissions for traffic that does not go through dial/dialUDP:
   * `udp` datagrams a SOCKS5 server relays itself, and `rtcp`/`rudp` binds. Absent = allowed.
   */
  allows?(action: "udp" | "rtcp" | "rudp", address: string): boolean;
}

/** Router options. */
export interface RouterOptions {
  chain?: Chain;
  /** Per-dial timeout in ms (0 = none). */
  timeout: number;
  /** Extra attempts after a failed dial. */
  retries: number;
  /** `hosts=` / `dns=` / `prefer=`: resolves targets before dialing (else the system does). */
  names?: NameLookup;
}

export class DefaultRouter implements Router {
  constructor(private readonly opts: RouterOptions) {}
  get hasChain(): boolean {
    return !!this.opts.chain && !this.opts.chain.isEmpty;
  }
  get names(): NameLookup | undefined {
    return this.opts.names;
  }

  dial(network: "tcp", address: string): Promise<Conn> {
    const chain = this.opts.chain;
    const names = this.opts.names;
    return this.withRetries(async () => {
      if (chain && !chain.isEmpty) {
        // As gost v3: the target is resolved (hosts, resolver) before the chain sees it,
        // unless a hop bypass sends it direct by name.
        if (names && chain.hopsFor?.(network, address) === 0) {
          return dialTCP(address, this.opts.timeout, names);
        }
        return chain.dial(network, await this.resolved(address), this.opts.timeout);
      }
      return dialTCP(address, this.opts.timeout, names);
    });
  }

  dialUDP(address: string): Promise<Conn> {
    return this.withRetries(async () => {
      const target = await this.resolved(address);
      if (this.opts.chain && !this.opts.chain.isEmpty) {
        return this.opts.chain.dial("udp", target, this.opts.timeout);
      }
      return dialUDPDirect(target);
    });
  }

  /** `address` with its host replaced by the first configured resolution, if any. */
  private async resolved(address: string): Promise<string> {
    if (!this.opts.names) return address;
    const { host, port } = splitHostPort(address);
    const ips = host === "" ? null : await this.opts.names.lookup(host);
    return ips?.length ? joinHostPort(ips[0], port) : address;
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

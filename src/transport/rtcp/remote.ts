/**
 * What the remote-forwarding listeners (rtcp, rudp) share: reaching the last node of a chain,
 * and a Listener that keeps a far-end binding alive — binding on first accept, handing out what
 * arrives, and binding again (with backoff) when the binding is lost or used up.
 */
import type { Chain, ChainNode } from "../../chain/chain.ts";
import { type Addr, addrString, closeQuietly, type Conn, type Listener } from "../../core/conn.ts";
import { ConfigError, DialError, errMsg } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { BindFallbackError, type BindListener } from "../../registry.ts";

/**
 * Opens a connection to the chain's last node: the first hop dialed by its dialer, each next hop
 * reached through the previous connector (as Chain.dial does), but no final CONNECT — the last
 * node is then asked to bind. Errors name the failing hop.
 */
export async function dialLastNode(
  chain: Chain,
  timeout: number,
  key: string,
): Promise<{ conn: Conn; node: ChainNode }> {
  const pick = (i: number): ChainNode => {
    const n = chain.hops[i].select({ key });
    if (!n) throw new DialError(`hop ${i + 1} (${chain.hops[i].name}): no node`, "other");
    return n;
  };
  let node = pick(0);
  let hopNo = 1;
  let conn: Conn | undefined;
  try {
    let c = await node.dialer.dial(node.addr, { timeout });
    conn = c;
    if (node.dialer.handshake) {
      conn = c = await node.dialer.handshake(c, { addr: node.addr, timeout });
    }
    node.marker.reset();
    for (let i = 1; i < chain.hops.length; i++) {
      const prev = node;
      node = pick(i);
      hopNo = i + 1;
      conn = c = await prev.connector.connect(c, "tcp", node.addr, { timeout });
      if (node.dialer.handshake) {
        conn = c = await node.dialer.handshake(c, { addr: node.addr, timeout });
      }
      node.marker.reset();
    }
    return { conn: c, node };
  } catch (e) {
    closeQuietly(conn);
    node.marker.mark();
    const code = e instanceof DialError ? e.code : "other";
    throw new DialError(`hop ${hopNo} (${node.label}): ${errMsg(e)}`, code, { cause: e });
  }
}

/**
 * Fails at start-up when no node of the chain's last hop can bind (e.g. an HTTP proxy), rather
 * than retrying forever at run time.
 */
export function checkLastHopCanBind(
  chain: Chain,
  what: "rtcp" | "rudp",
  where: string,
): void {
  const last = chain.hops[chain.hops.length - 1];
  const method = what === "rtcp" ? "bind" : "bindUDP";
  if (last.nodes.some((n) => typeof n.connector[method] === "function")) return;
  throw new ConfigError(
    `${where}: ${what} needs the chain's last node to listen for it, but ` +
      `${last.nodes.map((n) => n.label).join(", ")} cannot (remote forwarding works through ` +
      `socks5 nodes)`,
  );
}

/** A binding at the far end: a listener, possibly good for one connection only. */
export type RemoteBinding = BindListener;

/** The binding is not usable yet (e.g. the far end bound another port); try again soon. */
export class RebindSoon extends Error {
  override name = "RebindSoon";
}

const FIRST_BACKOFF = 1000;
const MAX_BACKOFF = 10_000;
/** Retry delays after RebindSoon (waking early when a connection closes). */
const SOON_FIRST = 100;
const SOON_MAX = 1000;

/**
 * A Listener over a far-end binding that `bind()` creates. accept() binds when there is no
 * binding, waits for the next connection, and on failure (session lost, far end gone) binds
 * again after a backoff that grows 1 s → 10 s while binding keeps failing. One-shot bindings
 * (standard SOCKS5 BIND) are replaced after each connection.
 */
export class RemoteListener implements Listener {
  private current?: RemoteBinding;
  private closed = false;
  private backoff = 0;
  private soon = 0;
  private wakeSleep?: () => void;
  private announced = false;

  constructor(
    /** Prefix for log lines, e.g. "rtcp". */
    private readonly what: string,
    /** The requested address (what `addr` reports until a binding exists). */
    private readonly want: Addr,
    private readonly bind: () => Promise<RemoteBinding>,
    private readonly log: Logger,
  ) {}

  get addr(): Addr {
    return this.current?.addr ?? this.want;
  }

  /** Cuts a pending retry delay short (a connection closed: a busy port may be free now). */
  wake(): void {
    const w = this.wakeSleep;
    this.wakeSleep = undefined;
    w?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wakeSleep = done;
    });
  }

  private closedError(): Error {
    return new Deno.errors.BadResource(`${this.what} listener is closed`);
  }

  async accept(): Promise<Conn> {
    for (;;) {
      if (this.closed) throw this.closedError();
      if (!this.current) {
        let b: RemoteBinding;
        try {
          b = await this.bind();
        } catch (e) {
          if (this.closed) throw this.closedError();
          if (e instanceof BindFallbackError) {
            this.log.info(`${this.what}: ${e.message}`);
            continue;
          }
          if (e instanceof RebindSoon) {
            this.soon = this.soon ? Math.min(this.soon * 2, SOON_MAX) : SOON_FIRST;
            this.log.debug(`${this.what}: ${e.message}; binding again in ≤ ${this.soon} ms`);
            await this.sleep(this.soon);
            continue;
          }
          this.backoff = this.backoff ? Math.min(this.backoff * 2, MAX_BACKOFF) : FIRST_BACKOFF;
          this.log.warn(
            `${this.what}: cannot listen on ${addrString(this.want)} at the far end: ` +
              `${errMsg(e)}; retrying in ${this.backoff} ms`,
          );
          await this.sleep(this.backoff);
          continue;
        }
        if (this.closed) {
          closeQuietly(b);
          throw this.closedError();
        }
        this.current = b;
        this.soon = 0;
        // One-shot bindings are renewed per connection: announce only the first.
        const line = `${this.what}: listening on ${addrString(b.addr)} at the far end`;
        if (!b.oneShot || !this.announced) this.log.info(line);
        else this.log.debug(line);
        this.announced = true;
      }
      const b = this.current;
      try {
        const c = await b.accept();
        if (b.oneShot) this.current = undefined;
        this.backoff = 0;
        return c;
      } catch (e) {
        if (this.current === b) this.current = undefined;
        closeQuietly(b);
        if (this.closed) throw this.closedError();
        this.backoff = this.backoff ? Math.min(this.backoff * 2, MAX_BACKOFF) : FIRST_BACKOFF;
        this.log.warn(
          `${this.what}: far-end listener ${addrString(b.addr)} lost: ${errMsg(e)}; ` +
            `binding again in ${this.backoff} ms`,
        );
        await this.sleep(this.backoff);
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeQuietly(this.current);
    this.current = undefined;
    this.wake();
  }
}

/** Parses `host:port` into an Addr for display (host "" shown as 0.0.0.0). */
export function wantedAddr(transport: string, host: string, port: number): Addr {
  return { transport, hostname: host === "" ? "0.0.0.0" : host, port };
}

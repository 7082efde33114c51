/**
 * TCP port forwarding (`tcp://:P/target[,target…]`, and `forward` for other listeners):
 * each accepted connection is relayed to a target picked by the forwarder's selector
 * (`strategy=round|random|fifo|hash`, fail filter `max_fails`/`fail_timeout`), through the chain
 * or directly. A target that cannot be reached is marked failed and another one is tried, each
 * target at most once per connection.
 */
import { type Conn } from "../../core/conn.ts";
import { DialError, errMsg } from "../../core/errors.ts";
import { relay } from "../../core/relay.ts";
import {
  type HandleContext,
  type Handler,
  type HandlerOptions,
  registerHandler,
} from "../../registry.ts";
import { ConfigError } from "../../core/errors.ts";
import { type NodeGroup, type Target, targetGroup } from "../../chain/group.ts";
import { sendProxyHeader } from "../proxyproto/proxied.ts";

export class ForwardHandler implements Handler {
  private readonly group: NodeGroup<Target>;
  private readonly idleTimeout: number;
  /** `proxyProtocol=1|2`: PROXY header version sent to the target (0 = none). */
  private readonly proxyProtocol: 0 | 1 | 2;

  constructor(private readonly o: HandlerOptions) {
    if (o.targets.length === 0) {
      throw new ConfigError(`${o.params.where}: forwarding needs a target (tcp://:port/host:port)`);
    }
    this.group = o.forwarder ??
      targetGroup(o.service, o.targets.map((addr, i) => ({ name: `target-${i}`, addr })));
    this.idleTimeout = o.params.duration("idleTimeout", 0);
    this.proxyProtocol = o.params.int("proxyProtocol", 0, 0, 2) as 0 | 1 | 2;
  }

  async handle(conn: Conn, ctx: HandleContext): Promise<void> {
    let target: Conn | undefined;
    let lastErr: unknown;
    const tried = new Set<Target>();
    const key = conn.remoteAddr.hostname; // the hash strategy keeps a client on one target
    for (let t; !target && (t = this.group.select({ exclude: tried, key }));) {
      tried.add(t);
      try {
        target = await this.o.router.dial("tcp", t.addr);
        t.marker.reset();
        ctx.log.debug(`forward to ${t.addr} (${t.name})`);
      } catch (e) {
        lastErr = e;
        // A target the service's bypass/permissions refuse is not a failing target.
        if (e instanceof DialError && e.code === "not-allowed") {
          ctx.log.debug(`forward to ${t.addr}: ${errMsg(e)}`);
          continue;
        }
        t.marker.mark();
        ctx.log.warn(`forward to ${t.addr}: ${errMsg(e)}`);
      }
    }
    if (!target) throw lastErr;
    if (this.proxyProtocol) await sendProxyHeader(target, this.proxyProtocol, conn);
    await relay(conn, target, { idleTimeout: this.idleTimeout });
  }
}

registerHandler(["tcp", "forward"], (o) => new ForwardHandler(o));

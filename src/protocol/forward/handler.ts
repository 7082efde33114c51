/**
 * TCP port forwarding (`tcp://:P/target[,target…]`, and `forward` for other listeners):
 * each accepted connection is relayed to the next target, round-robin, through the chain or
 * directly. A target that cannot be reached is skipped for the next one in the list.
 */
import { type Conn } from "../../core/conn.ts";
import { errMsg } from "../../core/errors.ts";
import { relay } from "../../core/relay.ts";
import {
  type HandleContext,
  type Handler,
  type HandlerOptions,
  registerHandler,
} from "../../registry.ts";
import { ConfigError } from "../../core/errors.ts";

export class ForwardHandler implements Handler {
  private next = 0;
  private readonly idleTimeout: number;

  constructor(private readonly o: HandlerOptions) {
    if (o.targets.length === 0) {
      throw new ConfigError(`${o.params.where}: forwarding needs a target (tcp://:port/host:port)`);
    }
    this.idleTimeout = o.params.duration("idleTimeout", 0);
  }

  async handle(conn: Conn, ctx: HandleContext): Promise<void> {
    const targets = this.o.targets;
    let target: Conn | undefined;
    let lastErr: unknown;
    for (let i = 0; i < targets.length && !target; i++) {
      const addr = targets[this.next];
      this.next = (this.next + 1) % targets.length;
      try {
        target = await this.o.router.dial("tcp", addr);
        ctx.log.debug(`forward to ${addr}`);
      } catch (e) {
        lastErr = e;
        ctx.log.warn(`forward to ${addr}: ${errMsg(e)}`);
      }
    }
    if (!target) throw lastErr;
    await relay(conn, target, { idleTimeout: this.idleTimeout });
  }
}

registerHandler(["tcp", "forward"], (o) => new ForwardHandler(o));

/**
 * UDP port forwarding (`udp://:P/target[,target…]`): handler `udp`. The `udp` listener
 * (src/transport/udp/listener.ts) turns each client ip:port into a session Conn; this handler
 * gives every session its own upstream UDP path to one target — directly, or through the chain
 * (whose last hop must carry UDP, e.g. SOCKS5 UDP ASSOCIATE) — and relays datagrams both ways
 * until the session ends (idle `ttl`, see the listener) or the upstream closes.
 *
 * Each new session picks its target with the forwarder's selector, as TCP forwarding does
 * (`strategy=round|random|fifo|hash`, fail filter `max_fails`/`fail_timeout`): a target whose
 * UDP path cannot be opened is marked failed and the next one is tried. (A direct UDP "dial"
 * cannot fail for an unreachable port — UDP has no handshake — so marks come from name
 * resolution and chain failures.)
 */
import { addrString, type Conn } from "../../core/conn.ts";
import { ConfigError, errMsg } from "../../core/errors.ts";
import {
  type HandleContext,
  type Handler,
  type HandlerOptions,
  registerHandler,
} from "../../registry.ts";
import { relayDatagrams } from "../../transport/udp/relay.ts";
import { type NodeGroup, type Target, targetGroup } from "../../chain/group.ts";

export class UdpForwardHandler implements Handler {
  private readonly group: NodeGroup<Target>;

  constructor(private readonly o: HandlerOptions) {
    if (o.targets.length === 0) {
      throw new ConfigError(
        `${o.params.where}: UDP forwarding needs a target (udp://:port/host:port)`,
      );
    }
    this.group = o.forwarder ??
      targetGroup(o.service, o.targets.map((addr, i) => ({ name: `target-${i}`, addr })));
  }

  async handle(conn: Conn, ctx: HandleContext): Promise<void> {
    let upstream: Conn | undefined;
    let target = "";
    let lastErr: unknown;
    const tried = new Set<Target>();
    const key = conn.remoteAddr.hostname; // the hash strategy keeps a client on one target
    for (let t; !upstream && (t = this.group.select({ exclude: tried, key }));) {
      tried.add(t);
      target = t.addr;
      try {
        upstream = await this.o.router.dialUDP(t.addr);
        t.marker.reset();
      } catch (e) {
        t.marker.mark();
        lastErr = e;
        ctx.log.warn(`udp forward to ${t.addr}: ${errMsg(e)}`);
      }
    }
    if (!upstream) {
      conn.close();
      throw lastErr ?? new Error("udp forward: no target available");
    }
    const client = addrString(conn.remoteAddr);
    ctx.log.debug(`udp session ${client} -> ${target} (via ${addrString(upstream.localAddr)})`);
    const st = await relayDatagrams(conn, upstream);
    ctx.log.debug(
      `udp session ${client} -> ${target} closed: ${st.aToB} datagrams out, ${st.bToA} back` +
        (st.dropped ? `, ${st.dropped} dropped (${st.firstError})` : ""),
    );
  }
}

registerHandler("udp", (o) => new UdpForwardHandler(o));

/**
 * `rtcp` listener: remote TCP port forwarding. `-L rtcp://:P/target -F socks5://server` makes
 * the *far end* (the chain's last node) listen on :P; every connection arriving there becomes an
 * accepted Conn here, which the `rtcp` handler forwards to the target (directly, as gost does).
 *
 * The last node's connector does the binding (Connector.bind): for socks5 that is gost's MUX-BIND
 * (many connections over one smux session) or, with a plain SOCKS5 server such as dante,
 * standard BIND, one connection at a time. A standard BIND is renewed after each connection;
 * dante binds another port when the requested one is still busy with the previous connection,
 * so such a binding is dropped and retried until the port is free again.
 *
 * Without a chain, `rtcp` listens locally (gost's behaviour).
 *
 * Parameters: `timeout` (dial and bind handshake deadline, 10 s).
 */
import { type Addr, closeQuietly, type Conn, splitHostPort } from "../../core/conn.ts";
import { type ListenerOptions, registerListener } from "../../registry.ts";
import { listenTCP } from "../tcp/listener.ts";
import {
  checkLastHopCanBind,
  dialLastNode,
  RebindSoon,
  type RemoteBinding,
  RemoteListener,
  wantedAddr,
} from "./remote.ts";

/** Dial and bind handshake deadline, as the service's dial timeout (gost's 10 s). */
export const BIND_TIMEOUT = 10_000;

/** Opens the rtcp listener for `o.addr` through `o.chain`. */
export function listenRemoteTCP(o: ListenerOptions): RemoteListener | ReturnType<typeof listenTCP> {
  const timeout = o.params.duration("timeout", BIND_TIMEOUT);
  const chain = o.chain;
  if (!chain || chain.isEmpty) return listenTCP(o.addr);
  checkLastHopCanBind(chain, "rtcp", o.params.where);
  const { host, port } = splitHostPort(o.addr);
  const log = o.log;
  const bind = async (): Promise<RemoteBinding> => {
    const { conn, node } = await dialLastNode(chain, timeout, o.addr);
    if (!node.connector.bind) {
      closeQuietly(conn);
      throw new Error(
        `the last node ${node.label} cannot listen for us (its protocol has no BIND)`,
      );
    }
    let b: RemoteBinding;
    try {
      b = await node.connector.bind(conn, o.addr, { timeout });
    } catch (e) {
      closeQuietly(conn);
      throw e;
    }
    if (b.oneShot && port !== 0 && b.addr.port !== port) {
      closeQuietly(b);
      throw new RebindSoon(
        `${node.label} bound port ${b.addr.port} instead of ${port} (busy with the previous ` +
          `connection)`,
      );
    }
    return b.oneShot ? new WakingBinding(b, () => rl.wake()) : b;
  };
  const rl = new RemoteListener("rtcp", wantedAddr("tcp", host, port), bind, log);
  return rl;
}

/** Wraps a one-shot binding so that closing its connection wakes the listener's retry. */
class WakingBinding implements RemoteBinding {
  readonly oneShot = true;
  constructor(private readonly b: RemoteBinding, private readonly onConnClose: () => void) {}
  get addr(): Addr {
    return this.b.addr;
  }
  async accept(): Promise<Conn> {
    const c = await this.b.accept();
    const wake = this.onConnClose;
    return {
      read: (p) => c.read(p),
      write: (p) => c.write(p),
      closeWrite: () => c.closeWrite(),
      close() {
        c.close();
        wake();
      },
      get localAddr() {
        return c.localAddr;
      },
      get remoteAddr() {
        return c.remoteAddr;
      },
    };
  }
  close(): void {
    this.b.close();
  }
}

registerListener("rtcp", (o) => Promise.resolve(listenRemoteTCP(o)));

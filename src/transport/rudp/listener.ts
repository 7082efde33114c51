/**
 * `rudp` listener: remote UDP port forwarding. `-L rudp://:P/target -F socks5://server` makes the
 * far end (the chain's last node) bind UDP :P; datagrams arriving there come back over the chain
 * (SOCKS5 UDP-TUN frames on one TCP connection) and are split into one session per far-end peer,
 * exactly as the local `udp` listener splits its clients (src/transport/udp/listener.ts, whose
 * sessions and parameters — `ttl`, `keepalive`, `readBufferSize`, `readQueueSize`, `backlog` —
 * apply unchanged). The `rudp` handler forwards each session to the target.
 *
 * If the tunnel drops, the sessions end and the far end is asked to bind again (with backoff).
 * Without a chain, `rudp` listens locally.
 *
 * Parameters: those of the udp listener, and `timeout` (dial and bind deadline, 10 s).
 */
import { type Addr, closeQuietly, type PacketConn, splitHostPort } from "../../core/conn.ts";
import { type ListenerOptions, registerListener } from "../../registry.ts";
import {
  checkLastHopCanBind,
  dialLastNode,
  type RemoteBinding,
  RemoteListener,
  wantedAddr,
} from "../rtcp/remote.ts";
import { BIND_TIMEOUT } from "../rtcp/listener.ts";
import { listenUDP, UdpListener, udpListenerOptions } from "../udp/listener.ts";

/**
 * The part of Deno.DatagramConn the udp listener uses, served by a PacketConn (the UDP-TUN
 * tunnel): so the far end's datagrams go through the very same session logic as local ones.
 */
class TunnelSocket {
  constructor(private readonly pc: PacketConn) {}
  get addr(): Deno.Addr {
    return this.pc.localAddr as Deno.NetAddr;
  }
  async receive(p?: Uint8Array): Promise<[Uint8Array, Deno.Addr]> {
    const buf = p ?? new Uint8Array(65535);
    const r = await this.pc.readFrom(buf);
    if (!r) throw new Deno.errors.BadResource("the far end closed the UDP tunnel");
    return [buf.subarray(0, r[0]), r[1] as Deno.NetAddr];
  }
  send(p: Uint8Array, to: Deno.Addr): Promise<number> {
    return this.pc.writeTo(p, to as Addr);
  }
  close(): void {
    this.pc.close();
  }
}

/** Opens the rudp listener for `o.addr` through `o.chain`. */
export function listenRemoteUDP(o: ListenerOptions): RemoteListener | UdpListener {
  const udpOpts = udpListenerOptions(o);
  const timeout = o.params.duration("timeout", BIND_TIMEOUT);
  const chain = o.chain;
  if (!chain || chain.isEmpty) return listenUDP(o.addr, udpOpts);
  checkLastHopCanBind(chain, "rudp", o.params.where);
  const { host, port } = splitHostPort(o.addr);
  const bind = async (): Promise<RemoteBinding> => {
    const { conn, node } = await dialLastNode(chain, timeout, o.addr);
    if (!node.connector.bindUDP) {
      closeQuietly(conn);
      throw new Error(`the last node ${node.label} cannot bind UDP for us (no UDP-TUN)`);
    }
    let pc: PacketConn;
    try {
      pc = await node.connector.bindUDP(conn, o.addr, { timeout });
    } catch (e) {
      closeQuietly(conn);
      throw e;
    }
    // The udp listener needs only receive/send/close/addr of a datagram socket.
    return new UdpListener(new TunnelSocket(pc) as unknown as Deno.DatagramConn, udpOpts);
  };
  return new RemoteListener("rudp", wantedAddr("udp", host, port), bind, o.log);
}

registerListener("rudp", (o) => Promise.resolve(listenRemoteUDP(o)));

/**
 * SOCKS5 connector, UDP side: how UDP reaches a target through a SOCKS5 node. Two ways:
 *
 * - Standard UDP ASSOCIATE (RFC 1928 §7; gost's `relay=udp`). On the control connection:
 *   negotiate, ask for 0.0.0.0:0 (as gost does: "any source", which survives NAT between us and
 *   the node), read the relay address (unspecified 0.0.0.0/:: means "the node's own address").
 *   A local UDP socket, bound on the control connection's local IP (the source IP the server
 *   expects), carries each datagram to the relay inside the SOCKS UDP header naming the target.
 *   Every SOCKS5 server speaks it (dante, microsocks, …), but the relay is a plain UDP address,
 *   reachable only from where the control connection starts: the node must be the first hop.
 * - gost's UDP-over-TCP, UDP-TUN (command 0xF3, protocols.md §2.3): datagrams framed on the
 *   control stream itself, so it works behind any number of hops; only gost and dost servers
 *   speak it (with `udp=true`).
 *
 * `relay` picks: unset = standard ASSOCIATE when the node is the first hop (works with every
 * server), UDP-TUN behind other hops (the only way there); `relay=udp` = always ASSOCIATE (a
 * clear error behind other hops); any other value = always UDP-TUN (gost's default).
 * Either way the association lives exactly as long as the control connection.
 */
import { lookup } from "node:dns/promises";
import { BufferedConn } from "../../core/bufconn.ts";
import {
  type Addr,
  addrString,
  closeQuietly,
  type Conn,
  joinHostPort,
  splitHostPort,
} from "../../core/conn.ts";
import { withDeadline } from "../../core/deadline.ts";
import { DialError, errMsg } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { MAX_DATAGRAM, readDatagramInto } from "../../transport/udp/relay.ts";
import { openDatagram } from "../../transport/udp/socket.ts";
import { encodeAddr, ipVersion, normalizeIP, type SocksAddr } from "../socks/addr.ts";
import { HostResolver } from "../../core/resolve.ts";
import { CMD_UDP_TUN, UdpTunConn } from "./udp_tun.ts";
import { Cmd, decodeUdpDatagram } from "./wire.ts";

/** Which UDP mechanism to use (see the module header). */
export type UdpRelayMode = "auto" | "associate" | "tun";

/** `relay` parameter value → mode (gost: "udp" = ASSOCIATE, anything else = UDP-TUN). */
export function udpRelayMode(relay: string | undefined): UdpRelayMode {
  if (relay === undefined || relay === "") return "auto";
  return relay.toLowerCase() === "udp" ? "associate" : "tun";
}

/** What the connector lends the UDP side. */
export interface AssociateOptions {
  mode: UdpRelayMode;
  /** The node's `host:port`, to tell a direct control connection from a tunnelled one. */
  nodeAddr: string;
  /** Handshake deadline in ms (0 = none). */
  timeout: number;
  /**
   * Negotiates and sends one request (inside gost's TLS method when `tls` and the server picks
   * it); resolves with the reply's address and the stream to go on with.
   */
  request(
    bc: BufferedConn,
    cmd: number,
    host: string,
    port: number,
    tls?: boolean,
  ): Promise<{ addr: SocksAddr; bc: BufferedConn }>;
  log: Logger;
}

/** The error for `relay=udp` on a SOCKS5 node that is not the first hop. */
export const MULTI_HOP_UDP =
  "relay=udp: standard UDP ASSOCIATE needs the socks5 node as the first hop (its UDP relay is " +
  "not reachable through the chain); without relay=udp gost's UDP-over-TCP (UDP-TUN) is used";

const resolver = new HostResolver();

/**
 * True when `conn` goes straight to the node (its peer is the node's address) rather than
 * through earlier hops, whose tunnels report the first hop as their peer.
 */
async function isDirect(conn: Conn, nodeAddr: string): Promise<boolean> {
  const peer = conn.remoteAddr;
  let node;
  try {
    node = splitHostPort(nodeAddr);
  } catch {
    return false;
  }
  if (!peer || peer.port !== node.port) return false;
  const peerIP = normalizeIP(peer.hostname);
  if (ipVersion(node.host)) return normalizeIP(node.host) === peerIP;
  if (node.host === "" || node.host === "localhost") return ipVersion(peerIP) !== 0;
  try {
    const all = await lookup(node.host, { all: true });
    return all.some((a) => normalizeIP(a.address) === peerIP);
  } catch {
    return false;
  }
}

/**
 * Opens a UDP path to `target` through the node at the other end of `conn`: a
 * message-preserving Conn (one write = one datagram to the target, one read = one back).
 */
export async function associateUDP(
  conn: Conn,
  target: string,
  o: AssociateOptions,
): Promise<Conn> {
  const { host, port } = splitHostPort(target);
  const direct = o.mode === "tun" ? false : await isDirect(conn, o.nodeAddr);
  if (o.mode === "associate" && !direct) throw new DialError(MULTI_HOP_UDP, "other");
  if (!direct) return await udpTun(conn, host, port, o);
  const localIP = ipVersion(conn.localAddr.hostname)
    ? normalizeIP(conn.localAddr.hostname)
    : "0.0.0.0";
  let sock: Deno.DatagramConn;
  try {
    sock = openDatagram(localIP, 0);
  } catch (e) {
    throw new DialError(
      `socks5 UDP ASSOCIATE: cannot open a UDP socket on ${localIP}: ${errMsg(e)}`,
      "other",
      { cause: e },
    );
  }
  const bc = new BufferedConn(conn);
  let relay: Deno.NetAddr;
  try {
    const bound = await withDeadline(
      conn,
      o.timeout,
      "socks5 UDP ASSOCIATE",
      async () => (await o.request(bc, Cmd.UdpAssociate, "0.0.0.0", 0)).addr,
    );
    let ip = bound.host;
    if (ip === "0.0.0.0" || ip === "::" || ip === "") ip = normalizeIP(conn.remoteAddr.hostname);
    else ip = await resolver.resolve(ip);
    relay = { transport: "udp", hostname: ip, port: bound.port };
  } catch (e) {
    closeQuietly(sock);
    throw e;
  }
  o.log.debug(
    `socks5 UDP ASSOCIATE: relay ${addrString(relay)} for ${target} ` +
      `(local ${addrString(sock.addr as Addr)})`,
  );
  return new SocksUdpConn(sock, relay, host, port, bc, o.log);
}

/**
 * One UDP association as a message-preserving Conn to one target: writes are wrapped in the
 * SOCKS UDP header naming the target and sent to the relay; reads unwrap the relay's datagrams.
 */
class SocksUdpConn implements Conn {
  private closed = false;
  private readonly header: Uint8Array;
  private scratch: Uint8Array | undefined;
  private readonly buf = new Uint8Array(MAX_DATAGRAM);
  private readonly relayIP: string;
  readonly remoteAddr: Addr;

  constructor(
    private readonly sock: Deno.DatagramConn,
    private readonly relay: Deno.NetAddr,
    host: string,
    port: number,
    private readonly ctl: Conn,
    private readonly log: Logger,
  ) {
    const addr = encodeAddr(host, port);
    this.header = new Uint8Array(3 + addr.length); // RSV RSV FRAG=0 + address
    this.header.set(addr, 3);
    this.relayIP = normalizeIP(relay.hostname);
    this.remoteAddr = { transport: "udp", hostname: host, port };
    void this.watchControl();
  }

  get localAddr(): Addr {
    return this.sock.addr as Addr;
  }

  /** The association ends with the control connection (the server closes it, or resets). */
  private async watchControl(): Promise<void> {
    const b = new Uint8Array(64);
    try {
      while ((await this.ctl.read(b)) !== null) { /* the server has nothing to say here */ }
    } catch { /* reset or closed */ }
    if (!this.closed) this.log.debug(`socks5 UDP ASSOCIATE: control connection ended`);
    this.close();
  }

  /** The next datagram from the target, a view valid until the next call; null once closed. */
  async readDatagram(): Promise<Uint8Array | null> {
    for (;;) {
      let pkt: Uint8Array, from: Deno.NetAddr;
      try {
        [pkt, from] = (await this.sock.receive(this.buf)) as [Uint8Array, Deno.NetAddr];
      } catch (e) {
        if (this.closed || e instanceof Deno.errors.BadResource) return null;
        throw new Error(`socks5 UDP receive: ${errMsg(e)}`);
      }
      if (from.port !== this.relay.port || normalizeIP(from.hostname) !== this.relayIP) {
        continue; // only the relay may speak on this socket
      }
      try {
        const d = decodeUdpDatagram(pkt);
        if (d.frag !== 0) {
          this.log.debug(`socks5 UDP: dropped fragment ${d.frag} (fragmentation unsupported)`);
          continue;
        }
        return d.data;
      } catch (e) {
        this.log.debug(`socks5 UDP: bad datagram from relay ${addrString(from)}: ${errMsg(e)}`);
      }
    }
  }

  read(p: Uint8Array): Promise<number | null> {
    return readDatagramInto(this, p);
  }

  /** Sends `p` to the target through the relay; resolves to `p.length`. */
  async write(p: Uint8Array): Promise<number> {
    if (this.closed) throw new Deno.errors.BadResource("socks5 UDP association is closed");
    const size = this.header.length + p.length;
    // One reusable buffer while writes are sequential (the relay's case); a concurrent write
    // gets its own, since the pending send still reads the first.
    let out = this.scratch;
    this.scratch = undefined;
    if (!out || out.length < size) out = new Uint8Array(Math.max(size, 2048));
    out.set(this.header);
    out.set(p, this.header.length);
    try {
      await this.sock.send(out.subarray(0, size), this.relay);
    } finally {
      this.scratch = out;
    }
    return p.length;
  }

  /** UDP has no half-close. */
  closeWrite(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeQuietly(this.sock);
    closeQuietly(this.ctl);
  }
}

/** Opens a UDP-TUN (0xF3, associate mode: port 0) on `conn`. */
async function udpTun(conn: Conn, host: string, port: number, o: AssociateOptions) {
  // The datagrams follow inside gost's TLS method when the server picks it.
  const { bc } = await withDeadline(
    conn,
    o.timeout,
    "socks5 UDP-TUN",
    () => o.request(new BufferedConn(conn), CMD_UDP_TUN, "0.0.0.0", 0, true),
  );
  o.log.debug(`socks5 UDP-TUN for ${joinHostPort(host, port)}`);
  return new UdpTunConn(bc, host, port);
}

/**
 * Datagram sockets: opening them (Deno's UDP is behind `--unstable-net`), and a direct
 * "connected" UDP Conn to one target, the upstream side of UDP forwarding without a chain.
 */
import { type Addr, addrString, splitHostPort } from "../../core/conn.ts";
import { DialError, errMsg } from "../../core/errors.ts";
import { ipVersion, normalizeIP } from "../../protocol/socks/addr.ts";
import { HostResolver } from "../../core/resolve.ts";
import type { Conn } from "../../core/conn.ts";
import { MAX_DATAGRAM } from "./relay.ts";
import { ffiUdpAvailable, FfiUdpSocket } from "../../../ffi/udp.ts";
import { FfiUdpPeerConn } from "./ffi_peer.ts";

/** The flag UDP needs, named in errors (Deno.listenDatagram is absent without it). */
export const UDP_FLAG_HINT = "UDP needs the --unstable-net flag";

/**
 * Opens a UDP socket on `host:port`. An empty host means all interfaces: `::` is dual-stack on
 * Linux (IPv4 peers appear as `::ffff:a.b.c.d`); hosts without IPv6 fall back to `0.0.0.0`.
 */
export function openDatagram(host: string, port: number): Deno.DatagramConn {
  if (typeof Deno.listenDatagram !== "function") throw new Error(UDP_FLAG_HINT);
  if (host !== "") return Deno.listenDatagram({ transport: "udp", hostname: host, port });
  try {
    return Deno.listenDatagram({ transport: "udp", hostname: "::", port });
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse || e instanceof Deno.errors.PermissionDenied) throw e;
    return Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port });
  }
}

/**
 * Opens a listening UDP socket like `openDatagram`, as an FFI socket when `--allow-ffi` is granted
 * and libc loads (decided once per process) and `host` is an IP literal or empty; otherwise with
 * Deno's UDP API. `bufferSize` bounds a received datagram on the FFI path.
 */
export function openListenSocket(
  host: string,
  port: number,
  bufferSize = MAX_DATAGRAM,
): Deno.DatagramConn | FfiUdpSocket {
  if ((host === "" || ipVersion(host) !== 0) && ffiUdpAvailable()) {
    return FfiUdpSocket.bind(host, port, bufferSize);
  }
  return openDatagram(host, port);
}

/** Shared by all direct UDP dials: names are looked up with getaddrinfo, briefly cached. */
const resolver = new HostResolver();

/**
 * Opens a UDP "connection" to `address` (`host:port`): a socket on an ephemeral port that sends
 * every write to the target and returns only the target's datagrams (Deno has no connect()).
 */
export async function dialUDPDirect(address: string): Promise<Conn> {
  const { host, port } = splitHostPort(address);
  const ip = await resolver.resolve(host === "" ? "127.0.0.1" : host);
  const peer: Deno.NetAddr = { transport: "udp", hostname: ip, port };
  let sock: Deno.DatagramConn | FfiUdpSocket;
  try {
    sock = openListenSocket(ipVersion(ip) === 6 ? "::" : "0.0.0.0", 0);
  } catch (e) {
    throw new DialError(`dial udp ${address}: ${errMsg(e)}`, "other", { cause: e });
  }
  return sock instanceof FfiUdpSocket
    ? new FfiUdpPeerConn(sock, peer)
    : new UdpPeerConn(sock, peer);
}

/**
 * A message-preserving Conn on a datagram socket bound to one peer: one write = one datagram
 * to the peer, one read = one datagram from it (datagrams from anyone else are dropped).
 */
export class UdpPeerConn implements Conn {
  private closed = false;
  private readonly peerIP: string;
  private buf?: Uint8Array;

  constructor(private readonly sock: Deno.DatagramConn, private readonly peer: Deno.NetAddr) {
    this.peerIP = normalizeIP(peer.hostname);
  }

  get localAddr(): Addr {
    return this.sock.addr as Addr;
  }
  get remoteAddr(): Addr {
    return this.peer;
  }

  /** Reads one datagram from the peer into `p` (longer ones are truncated); null once closed. */
  async read(p: Uint8Array): Promise<number | null> {
    const d = await this.receiveFromPeer(p);
    return d === null ? null : d.length;
  }

  /** The next datagram from the peer, a view valid until the next call; null once closed. */
  readDatagram(): Promise<Uint8Array | null> {
    this.buf ??= new Uint8Array(MAX_DATAGRAM);
    return this.receiveFromPeer(this.buf);
  }

  private async receiveFromPeer(p: Uint8Array): Promise<Uint8Array | null> {
    for (;;) {
      let data: Uint8Array, from: Deno.NetAddr;
      try {
        [data, from] = (await this.sock.receive(p)) as [Uint8Array, Deno.NetAddr];
      } catch (e) {
        if (this.closed || e instanceof Deno.errors.BadResource) return null;
        throw new Error(`udp receive on ${addrString(this.localAddr)}: ${errMsg(e)}`);
      }
      // The kernel filters for a connected socket; here a stray sender is simply ignored.
      if (
        from.port === this.peer.port &&
        (from.hostname === this.peer.hostname || normalizeIP(from.hostname) === this.peerIP)
      ) {
        return data;
      }
    }
  }

  write(p: Uint8Array): Promise<number> {
    if (this.closed) return Promise.reject(new Deno.errors.BadResource("udp socket is closed"));
    return this.sock.send(p, this.peer);
  }

  /** UDP has no half-close. */
  closeWrite(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.sock.close();
    } catch { /* already closed */ }
  }
}

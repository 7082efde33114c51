/**
 * SOCKS5 connector (client side of `socks5`/`socks` for chain nodes): method negotiation
 * (no-auth, or RFC 1929 user/pass when the node URL has credentials), CONNECT, and UDP through
 * the chain (UDP ASSOCIATE or gost's UDP-TUN, udp_connector.ts). The whole
 * handshake is written without waiting between steps where the protocol allows it.
 */
import { BufferedConn } from "../../core/bufconn.ts";
import { type Conn, joinHostPort, splitHostPort, writeAll } from "../../core/conn.ts";
import { withDeadline } from "../../core/deadline.ts";
import { DialError, ProtocolError } from "../../core/errors.ts";
import {
  type BindListener,
  type BindOptions,
  type Connector,
  ENCRYPTED_TRANSPORTS,
  type NodeOptions,
  registerConnector,
} from "../../registry.ts";
import { negotiate, Socks5Binder, type SocksTls } from "./bind_client.ts";
import { clientTLSFromParams } from "../../transport/tls/config.ts";
import { tlsClient } from "../../transport/tls/client.ts";
import { encodeAddr, readAddr, type SocksAddr } from "../socks/addr.ts";
import { associateUDP, type UdpRelayMode, udpRelayMode } from "./udp_connector.ts";
import { CMD_UDP_TUN } from "./udp_tun.ts";
import { Cmd, Rep, VERSION } from "./wire.ts";

/** Request names for error messages. */
const CMD_NAMES: Record<number, string> = {
  [Cmd.Connect]: "CONNECT",
  [Cmd.UdpAssociate]: "UDP ASSOCIATE",
  [CMD_UDP_TUN]: "UDP-TUN",
};

/** What a failed CONNECT reply means for the dial error's code. */
function replyError(rep: number, what: string, address: string): DialError {
  const why: Record<number, [string, DialError["code"]]> = {
    [Rep.Failure]: ["general failure", "other"],
    [Rep.NotAllowed]: ["not allowed by ruleset", "not-allowed"],
    [Rep.NetUnreachable]: ["network unreachable", "unreachable"],
    [Rep.HostUnreachable]: ["host unreachable", "unreachable"],
    [Rep.ConnRefused]: ["connection refused", "refused"],
    [Rep.TTLExpired]: ["TTL expired", "timeout"],
    [Rep.CmdUnsupported]: ["command not supported", "other"],
    [Rep.AddrUnsupported]: ["address type not supported", "other"],
  };
  const [text, code] = why[rep] ?? [`reply code ${rep}`, "other"];
  return new DialError(`socks5 ${what} ${address}: ${text}`, code);
}

export class Socks5Connector implements Connector {
  private readonly connectTimeout: number;
  private readonly binder: Socks5Binder;
  private readonly udpMode: UdpRelayMode;
  /** gost's TLS methods (offered unless `notls=true`). */
  private readonly tls?: SocksTls;
  private tlsNoticed = false;
  constructor(private readonly o: NodeOptions) {
    this.connectTimeout = o.params.duration("connectTimeout", 0);
    // Not over a transport that already encrypts (a second TLS layer would only cost).
    if (!o.params.bool("notls", false) && !ENCRYPTED_TRANSPORTS.has(o.transport ?? "tcp")) {
      const cfg = clientTLSFromParams(o.params);
      this.tls = {
        upgrade: (c) => {
          if (!this.tlsNoticed) {
            // gost users found this halves throughput between gost nodes (ginuerzh/gost#647).
            this.tlsNoticed = true;
            o.log.info(
              `socks5 node ${o.addr} chose gost's TLS method: the hop is encrypted ` +
                "(notls=true on either side turns it off)",
            );
          }
          return tlsClient(c, cfg, o.addr, this.connectTimeout || 10_000);
        },
      };
    }
    this.binder = new Socks5Binder(o); // remote forwarding (bind_client.ts)
    // UDP: `relay=udp` = standard UDP ASSOCIATE, other values = gost's UDP-TUN, unset = pick by
    // position in the chain (udp_connector.ts).
    this.udpMode = udpRelayMode(o.params.str("relay"));
  }

  /** Remote TCP forwarding (rtcp): MUX-BIND or standard BIND, see bind_client.ts. */
  bind(conn: Conn, address: string, opts: BindOptions): Promise<BindListener> {
    return this.binder.bind(conn, address, { timeout: this.connectTimeout || opts.timeout });
  }

  /** Remote UDP forwarding (rudp): UDP-TUN in bind mode, see bind_client.ts. */
  bindUDP(conn: Conn, address: string, opts: BindOptions) {
    return this.binder.bindUDP(conn, address, { timeout: this.connectTimeout || opts.timeout });
  }

  async connect(
    conn: Conn,
    network: "tcp" | "udp",
    address: string,
    opts: { timeout: number },
  ): Promise<Conn> {
    if (network === "udp") {
      return await associateUDP(conn, address, {
        mode: this.udpMode,
        nodeAddr: this.o.addr,
        timeout: this.connectTimeout || opts.timeout,
        request: (bc, cmd, host, port, tls) => this.request(conn, bc, cmd, host, port, tls),
        log: this.o.log,
      });
    }
    const { host, port } = splitHostPort(address);
    const r = await withDeadline(
      conn,
      this.connectTimeout || opts.timeout,
      "socks5 handshake",
      () => this.request(conn, new BufferedConn(conn), Cmd.Connect, host, port, true),
    );
    return r.bc;
  }

  /**
   * Method negotiation (no-auth, user/pass when the node has credentials, and gost's TLS
   * methods when `tls`) and one request; resolves with the address in a successful reply and
   * the stream to go on with (inside TLS when it was negotiated), throws DialError otherwise.
   */
  private async request(
    c: Conn,
    b: BufferedConn,
    cmd: number,
    host: string,
    port: number,
    tls = false,
  ): Promise<{ addr: SocksAddr; bc: BufferedConn }> {
    const { conn, bc } = await negotiate(c, b, this.o.auth, tls ? this.tls : undefined);
    const addr = encodeAddr(host, port);
    const req = new Uint8Array(3 + addr.length);
    req.set([VERSION, cmd, 0]);
    req.set(addr, 3);
    await writeAll(conn, req);
    const [v2, rep] = await bc.readFull(3);
    if (v2 !== VERSION) throw new ProtocolError(`socks5: bad version ${v2} in reply`);
    if (rep !== Rep.Succeeded) {
      throw replyError(
        rep,
        CMD_NAMES[cmd] ?? `command 0x${cmd.toString(16)}`,
        joinHostPort(host, port),
      );
    }
    // The bound address (the UDP relay for UDP ASSOCIATE).
    return { addr: await readAddr(bc), bc };
  }
}

registerConnector(["socks5", "socks"], (o) => new Socks5Connector(o));

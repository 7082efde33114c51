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
  type NodeOptions,
  registerConnector,
} from "../../registry.ts";
import { Socks5Binder } from "./bind_client.ts";
import { encodeAddr, readAddr, type SocksAddr } from "../socks/addr.ts";
import { associateUDP, type UdpRelayMode, udpRelayMode } from "./udp_connector.ts";
import { CMD_UDP_TUN } from "./udp_tun.ts";
import { Cmd, Method, Rep, USERPASS_VERSION, VERSION } from "./wire.ts";

const enc = new TextEncoder();

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
  constructor(private readonly o: NodeOptions) {
    this.connectTimeout = o.params.duration("connectTimeout", 0);
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
        request: (bc, cmd, host, port) => this.request(conn, bc, cmd, host, port),
        log: this.o.log,
      });
    }
    const { host, port } = splitHostPort(address);
    const bc = new BufferedConn(conn);
    await withDeadline(
      conn,
      this.connectTimeout || opts.timeout,
      "socks5 handshake",
      () => this.request(conn, bc, Cmd.Connect, host, port),
    );
    return bc;
  }

  /**
   * Method negotiation (no-auth, or user/pass when the node has credentials) and one request;
   * resolves with the address in a successful reply, throws DialError otherwise.
   */
  private async request(
    conn: Conn,
    bc: BufferedConn,
    cmd: number,
    host: string,
    port: number,
  ): Promise<SocksAddr> {
    const auth = this.o.auth;
    await writeAll(
      conn,
      auth
        ? new Uint8Array([VERSION, 2, Method.NoAuth, Method.UserPass])
        : new Uint8Array([VERSION, 1, Method.NoAuth]),
    );
    const [ver, method] = await bc.readFull(2);
    if (ver !== VERSION) throw new ProtocolError(`socks5: bad version ${ver} in method reply`);
    if (method === Method.UserPass && auth) {
      const u = enc.encode(auth.username);
      const p = enc.encode(auth.password ?? "");
      if (u.length > 255 || p.length > 255) {
        throw new DialError("socks5: user name or password longer than 255 bytes", "other");
      }
      await writeAll(conn, new Uint8Array([USERPASS_VERSION, u.length, ...u, p.length, ...p]));
      const [, status] = await bc.readFull(2);
      if (status !== 0) throw new DialError("socks5: authentication failed", "not-allowed");
    } else if (method !== Method.NoAuth) {
      throw new DialError(
        method === Method.NoAcceptable
          ? `socks5: no acceptable authentication method${
            auth ? "" : " (the node may need credentials)"
          }`
          : `socks5: server chose unsupported method 0x${method.toString(16)}`,
        "not-allowed",
      );
    }
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
    return await readAddr(bc); // the bound address (the UDP relay for UDP ASSOCIATE)
  }
}

registerConnector(["socks5", "socks"], (o) => new Socks5Connector(o));

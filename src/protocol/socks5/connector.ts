/**
 * SOCKS5 connector (client side of `socks5`/`socks` for chain nodes): method negotiation
 * (no-auth, or RFC 1929 user/pass when the node URL has credentials) and CONNECT. The whole
 * handshake is written without waiting between steps where the protocol allows it.
 */
import { BufferedConn } from "../../core/bufconn.ts";
import { type Conn, splitHostPort, writeAll } from "../../core/conn.ts";
import { withDeadline } from "../../core/deadline.ts";
import { DialError, ProtocolError } from "../../core/errors.ts";
import { type Connector, type NodeOptions, registerConnector } from "../../registry.ts";
import { encodeAddr, readAddr } from "../socks/addr.ts";
import { Cmd, Method, Rep, USERPASS_VERSION, VERSION } from "./wire.ts";

const enc = new TextEncoder();

/** What a failed CONNECT reply means for the dial error's code. */
function replyError(rep: number, address: string): DialError {
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
  return new DialError(`socks5 CONNECT ${address}: ${text}`, code);
}

export class Socks5Connector implements Connector {
  private readonly connectTimeout: number;
  constructor(private readonly o: NodeOptions) {
    this.connectTimeout = o.params.duration("connectTimeout", 0);
  }

  async connect(
    conn: Conn,
    network: "tcp" | "udp",
    address: string,
    opts: { timeout: number },
  ): Promise<Conn> {
    if (network !== "tcp") {
      throw new DialError(`socks5 connector: ${network} is not supported yet`, "other");
    }
    const { host, port } = splitHostPort(address);
    const bc = new BufferedConn(conn);
    const auth = this.o.auth;
    await withDeadline(conn, this.connectTimeout || opts.timeout, "socks5 handshake", async () => {
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
      req.set([VERSION, Cmd.Connect, 0]);
      req.set(addr, 3);
      await writeAll(conn, req);
      const [v2, rep] = await bc.readFull(3);
      if (v2 !== VERSION) throw new ProtocolError(`socks5: bad version ${v2} in reply`);
      if (rep !== Rep.Succeeded) throw replyError(rep, address);
      await readAddr(bc); // the bound address: nothing to do with it for CONNECT
    });
    return bc;
  }
}

registerConnector(["socks5", "socks"], (o) => new Socks5Connector(o));

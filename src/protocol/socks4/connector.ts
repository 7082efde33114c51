/**
 * SOCKS4/4a connector (client side for chain nodes). `socks4` resolves names locally and sends
 * an IPv4 address (SOCKS4 has no other kind); `socks4a` sends names for the node to resolve.
 * `disable4a=true` on a socks4a node makes it behave as socks4, as in gost.
 */
import { lookup } from "node:dns/promises";
import { BufferedConn } from "../../core/bufconn.ts";
import { type Conn, splitHostPort, writeAll } from "../../core/conn.ts";
import { withDeadline } from "../../core/deadline.ts";
import { DialError } from "../../core/errors.ts";
import { type Connector, type NodeOptions, registerConnector } from "../../registry.ts";
import { parseIPv4 } from "../socks/addr.ts";
import { CMD_CONNECT, decodeReply, encodeRequest, REP_GRANTED } from "./wire.ts";

/** Resolves `host` to an IPv4 address with the system resolver (getaddrinfo: /etc/hosts too). */
async function resolveIPv4(host: string): Promise<string> {
  if (parseIPv4(host)) return host;
  try {
    return (await lookup(host, { family: 4 })).address;
  } catch (e) {
    throw new DialError(`socks4: cannot resolve ${host}: ${(e as Error).message}`, "unreachable");
  }
}

export class Socks4Connector implements Connector {
  private readonly connectTimeout: number;
  private readonly use4a: boolean;

  constructor(private readonly o: NodeOptions, socks4a: boolean) {
    this.connectTimeout = o.params.duration("connectTimeout", 0);
    this.use4a = socks4a && !o.params.bool("disable4a", false);
  }

  async connect(
    conn: Conn,
    network: "tcp" | "udp",
    address: string,
    opts: { timeout: number },
  ): Promise<Conn> {
    if (network !== "tcp") {
      throw new DialError(`socks4 connector: SOCKS4 has no ${network}`, "other");
    }
    const { host, port } = splitHostPort(address);
    if (host.includes(":")) {
      throw new DialError(`socks4: cannot reach IPv6 address ${address}`, "unreachable");
    }
    const target = this.use4a ? host : await resolveIPv4(host);
    const bc = new BufferedConn(conn);
    await withDeadline(conn, this.connectTimeout || opts.timeout, "socks4 handshake", async () => {
      await writeAll(conn, encodeRequest(CMD_CONNECT, target, port, this.o.auth?.username ?? ""));
      const reply = decodeReply(await bc.readFull(8));
      if (reply.code !== REP_GRANTED) {
        throw new DialError(
          `socks4 CONNECT ${address}: rejected or failed (${reply.code})`,
          "other",
        );
      }
    });
    return bc;
  }
}

registerConnector("socks4", (o) => new Socks4Connector(o, false));
registerConnector("socks4a", (o) => new Socks4Connector(o, true));

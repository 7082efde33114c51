/**
 * HTTP connector (client side of `http` for chain nodes): asks the node for a tunnel with
 * `CONNECT host:port HTTP/1.1`, with Basic credentials when the node URL has them.
 */
import { BufferedConn } from "../../core/bufconn.ts";
import { type Conn, writeAll } from "../../core/conn.ts";
import { withDeadline } from "../../core/deadline.ts";
import { DialError } from "../../core/errors.ts";
import { type Connector, type NodeOptions, registerConnector } from "../../registry.ts";

const enc = new TextEncoder();

/** Builds the CONNECT request head. */
export function connectRequest(
  address: string,
  auth?: { username: string; password?: string },
  headers: Record<string, string> = {},
): Uint8Array {
  let head = `CONNECT ${address} HTTP/1.1\r\nHost: ${address}\r\n`;
  if (auth) {
    const cred = enc.encode(`${auth.username}:${auth.password ?? ""}`);
    head += `Proxy-Authorization: Basic ${btoa(String.fromCharCode(...cred))}\r\n`;
  }
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  head += "Proxy-Connection: keep-alive\r\n\r\n";
  return enc.encode(head);
}

export class HttpConnector implements Connector {
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
      throw new DialError(`http connector: ${network} is not supported yet`, "other");
    }
    const bc = new BufferedConn(conn);
    const timeout = this.connectTimeout || opts.timeout;
    await withDeadline(conn, timeout, "http CONNECT", async () => {
      await writeAll(conn, connectRequest(address, this.o.auth));
      const status = await bc.readLine(8192);
      if (status === null) {
        throw new DialError(`CONNECT ${address}: proxy closed the connection`, "other");
      }
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(status);
      if (!m) {
        throw new DialError(`CONNECT ${address}: bad response "${status.slice(0, 80)}"`, "other");
      }
      for (;;) {
        const line = await bc.readLine(65536);
        if (line === null) throw new DialError(`CONNECT ${address}: truncated response`, "other");
        if (line === "") break;
      }
      const code = Number(m[1]);
      if (code !== 200) {
        const kind = code === 403 || code === 407
          ? "not-allowed"
          : code === 504
          ? "timeout"
          : code === 502
          ? "unreachable"
          : "other";
        throw new DialError(`CONNECT ${address}: proxy answered ${status.slice(9)}`, kind);
      }
    });
    return bc;
  }
}

registerConnector("http", (o) => new HttpConnector(o));

/**
 * relay connector (client side of gost's `relay`, `-F relay://[user:pass@]host:port`): one
 * CONNECT request naming the target (Addr feature) with the node's credentials (UserAuth
 * feature), then raw bytes — or, for UDP, the `FUDP` flag and datagrams framed on the stream.
 *
 * By default (`nodelay=false`, gost's default) the request goes out with the first payload and
 * the server's response is read before the first bytes from the target, so no round trip is
 * spent on set-up; a header with no payload to ride on leaves after FLUSH_DELAY_MS (conn.ts),
 * so server-speaks-first targets work. A refusal then shows up at the first read (logged as a
 * warning naming the node). `nodelay=true` sends the request at once and waits for the answer,
 * so a refusal fails the dial itself.
 */
import { BufferedConn } from "../../core/bufconn.ts";
import { type Conn, splitHostPort, writeAll } from "../../core/conn.ts";
import { withDeadline } from "../../core/deadline.ts";
import { DialError, errMsg } from "../../core/errors.ts";
import { type Connector, type NodeOptions, registerConnector } from "../../registry.ts";
import { DeferredConn, FLUSH_DELAY_MS, FramedConn } from "./conn.ts";
import {
  Cmd,
  encodeHeader,
  FLAG_UDP,
  readHeader,
  RelayHeaderError,
  Status,
  STATUS_TEXT,
} from "./wire.ts";

/** What a non-OK status means for the dial error's code. */
const STATUS_CODE: Record<number, DialError["code"]> = {
  [Status.Unauthorized]: "not-allowed",
  [Status.Forbidden]: "not-allowed",
  [Status.Timeout]: "timeout",
  [Status.HostUnreachable]: "unreachable",
  [Status.NetworkUnreachable]: "unreachable",
};

/** Throws the DialError a non-OK response stands for. */
function checkStatus(status: number, what: string): void {
  if (status === Status.OK) return;
  const text = STATUS_TEXT[status] ?? `status ${status}`;
  throw new DialError(`${what}: ${text}`, STATUS_CODE[status] ?? "other");
}

export class RelayConnector implements Connector {
  private readonly connectTimeout: number;
  private readonly noDelay: boolean;

  constructor(private readonly o: NodeOptions) {
    this.connectTimeout = o.params.duration("connectTimeout", 0);
    this.noDelay = o.params.bool("nodelay", false);
    const a = o.auth;
    // Checked once here so that a bad node fails at start-up, not per connection.
    if (a) encodeHeader({ code: Cmd.Connect, user: a });
  }

  async connect(
    conn: Conn,
    network: "tcp" | "udp",
    address: string,
    opts: { timeout: number },
  ): Promise<Conn> {
    const { host, port } = splitHostPort(address);
    const udp = network === "udp";
    const what = `relay ${udp ? "UDP " : ""}CONNECT ${address}`;
    let header: Uint8Array;
    try {
      header = encodeHeader({
        code: Cmd.Connect | (udp ? FLAG_UDP : 0),
        user: this.o.auth,
        addr: { host, port },
      });
    } catch (e) {
      throw new DialError(`${what}: ${errMsg(e)}`, "other", { cause: e });
    }
    const bc = new BufferedConn(conn);
    let stream: DeferredConn;
    if (this.noDelay) {
      await withDeadline(conn, this.connectTimeout || opts.timeout, what, async () => {
        await writeAll(conn, header);
        checkStatus((await readHeader(bc)).code, what);
      });
      stream = new DeferredConn(conn, bc, null, 0);
    } else {
      stream = new DeferredConn(conn, bc, header, FLUSH_DELAY_MS, async () => {
        try {
          checkStatus((await readHeader(bc)).code, what);
        } catch (e) {
          // A refusal or a non-relay answer is the operator's business; a stream that just
          // ended (the client went away first) is not.
          const bad = e instanceof DialError || e instanceof RelayHeaderError;
          const msg = e instanceof DialError ? errMsg(e) : `${what}: ${errMsg(e)}`;
          this.o.log[bad ? "warn" : "debug"](`${this.o.node}: ${msg}`);
          throw e;
        }
      });
    }
    return udp ? new FramedConn(stream, bc) : stream;
  }
}

registerConnector("relay", (o) => new RelayConnector(o));

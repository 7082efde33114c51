/**
 * The client side of gost's HTTP/2 proxy: the `http2` dialer keeps one HTTP/2 session (TLS,
 * ALPN h2) per node, and the `http2` connector opens one `CONNECT` stream per tunnel on it, with
 * `:authority` = the target and Basic `Proxy-Authorization` when the node has credentials.
 *
 * Parameters: TLS client keys (`secure`, `serverName`, `ca`, `cert`, `key`), `handshakeTimeout`,
 * `connectTimeout` (deadline of the CONNECT answer; default the dial timeout), `header` (extra
 * request headers).
 */
import type * as http2 from "node:http2";
import type { Addr, Conn } from "../../core/conn.ts";
import { DialError } from "../../core/errors.ts";
import {
  type Connector,
  type NodeOptions,
  registerConnector,
  registerDialer,
} from "../../registry.ts";
import { H2Pool, request, type SessionRef } from "../../transport/h2/client.ts";
import { H2StreamConn } from "../../transport/h2/stream.ts";
import { h2TLSClient } from "../../transport/h2/tls.ts";
import { parseHeaderParam } from "../../transport/h2/transport.ts";
import { basicAuthValue } from "../http/auth.ts";

/** The node's HTTP/2 session as the chain carries it from the dialer to the connector. */
export class Http2Session implements Conn {
  constructor(readonly ref: SessionRef) {}
  get localAddr(): Addr {
    return this.ref.addrs.localAddr;
  }
  get remoteAddr(): Addr {
    return this.ref.addrs.remoteAddr;
  }
  read(): Promise<number | null> {
    return Promise.reject(new Error("http2: a session is not a stream (use the http2 connector)"));
  }
  write(): Promise<number> {
    return Promise.reject(new Error("http2: a session is not a stream (use the http2 connector)"));
  }
  closeWrite(): Promise<void> {
    return Promise.resolve();
  }
  /** A pooled session outlives this connection; one made for it alone (hop 2+) ends. */
  close(): void {
    if (this.ref.sole) this.ref.session.close();
  }
}

class Http2Connector implements Connector {
  private readonly connectTimeout: number;
  private readonly header: [string, string][];

  constructor(private readonly o: NodeOptions) {
    this.connectTimeout = o.params.duration("connectTimeout", 0);
    this.header = parseHeaderParam(o.params, ["header"]);
  }

  async connect(
    conn: Conn,
    network: "tcp" | "udp",
    address: string,
    opts: { timeout: number },
  ): Promise<Conn> {
    if (network !== "tcp") {
      throw new DialError(`http2 connector: ${network} is not supported yet`, "other");
    }
    if (!(conn instanceof Http2Session)) {
      throw new DialError(
        "http2 connector: needs the http2 dialer (-F http2://…), not another transport",
        "other",
      );
    }
    const headers: http2.OutgoingHttpHeaders = { ":method": "CONNECT", ":authority": address };
    for (const [k, v] of this.header) headers[k.toLowerCase()] = v;
    const auth = this.o.auth;
    if (auth) {
      headers["proxy-authorization"] = basicAuthValue(auth.username, auth.password ?? "");
    }
    const ref = conn.ref;
    const r = await request(ref.session, headers, {
      timeout: this.connectTimeout || opts.timeout,
      waitResponse: true,
    });
    if (r.status !== 200) {
      r.stream.destroy();
      const s = r.status;
      const kind = s === 403 || s === 407
        ? "not-allowed"
        : s === 504
        ? "timeout"
        : s === 502 || s === 503
        ? "unreachable"
        : "other";
      throw new DialError(`CONNECT ${address}: proxy answered ${s}`, kind);
    }
    const onClose = ref.sole ? () => ref.session.close() : undefined;
    return new H2StreamConn(r.stream, ref.addrs, onClose);
  }
}

registerDialer("http2", (o) => {
  const pool = new H2Pool(h2TLSClient(o.params), true, o.log, "http2");
  return {
    dial: (addr, d) => pool.dial(addr, d),
    handshake: async (conn, h) => new Http2Session(await pool.session(conn, h)),
  };
});

registerConnector("http2", (o) => new Http2Connector(o));

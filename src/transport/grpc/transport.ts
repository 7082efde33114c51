/**
 * gost's `grpc` tunnel transport, listener and dialer sides: each tunnel is one call of the
 * bidirectional stream `/GostTunel/Tunnel` (see codec.ts) on an HTTP/2 session per node, over
 * TLS with ALPN h2, or cleartext with `grpcInsecure=true` (`grpc.insecure`, `insecure`).
 *
 * Parameters, as gost: `path`/`grpc.path` (method path), dialer `host`/`grpc.authority`/
 * `grpc.host` (`:authority`; default the node's host, without the port, as grpc-go sends it),
 * `minConnectTimeout`/`grpc.minConnectTimeout` (deadline of the connection handshake).
 * gRPC keepalive (`keepalive`, `grpc.keepalive`) is not supported yet.
 */
import type * as http2 from "node:http2";
import type { Params } from "../../config/params.ts";
import { addrString, type Conn, splitHostPort } from "../../core/conn.ts";
import { ConfigError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { UpgradeListener } from "../../core/upgrade_listener.ts";
import { type Dialer, registerDialer, registerListener } from "../../registry.ts";
import { listenStream } from "../tcp/listener.ts";
import { endSoleSession, H2Pool, request } from "../h2/client.ts";
import { serveH2 } from "../h2/server.ts";
import { h2TLSClient, h2TLSServer, plain } from "../h2/tls.ts";
import { methodPath } from "./codec.ts";
import { GrpcConn } from "./conn.ts";

interface GrpcOptions {
  insecure: boolean;
  path: string;
}

function grpcOptions(p: Params): GrpcOptions {
  if (p.bool(["grpc.keepalive", "keepalive", "keepAlive"], false)) {
    throw new ConfigError(
      `${p.where ? p.where + ": " : ""}grpc: parameter "keepalive" is not supported yet`,
    );
  }
  return {
    insecure: p.bool(["grpc.insecure", "grpcInsecure", "insecure"], false),
    path: methodPath(p.str(["grpc.path", "path"], "")),
  };
}

class GrpcDialer implements Dialer {
  private readonly pool: H2Pool;
  private readonly host: string;
  private readonly connectTimeout: number;

  constructor(private readonly o: GrpcOptions, p: Params, log: Logger) {
    this.host = p.str(["grpc.authority", "grpc.host", "host"], "");
    this.connectTimeout = p.duration(["grpc.minConnectTimeout", "minConnectTimeout"], 0);
    const layer = o.insecure ? plain : h2TLSClient(p);
    this.pool = new H2Pool(layer, !o.insecure, log, "grpc");
  }

  dial(addr: string, opts: { timeout: number }): Promise<Conn> {
    return this.pool.dial(addr, opts);
  }

  async handshake(conn: Conn, opts: { addr: string; timeout: number }): Promise<Conn> {
    const timeout = this.connectTimeout || opts.timeout;
    const ref = await this.pool.session(conn, { addr: opts.addr, timeout });
    let authority = this.host || opts.addr;
    try {
      authority = splitHostPort(authority).host || authority;
    } catch {
      // no port: use it as it is
    }
    const headers: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": this.o.path,
      ":authority": authority,
      "content-type": "application/grpc",
      te: "trailers",
    };
    // gRPC servers send their headers with the first message, so the call is not awaited.
    const { stream } = await request(ref.session, headers, { timeout, waitResponse: false });
    const onClose = ref.sole ? () => endSoleSession(ref.session) : undefined;
    return new GrpcConn(stream, ref.addrs, "client", onClose);
  }
}

registerDialer("grpc", (o) => new GrpcDialer(grpcOptions(o.params), o.params, o.log));

registerListener("grpc", async (o) => {
  const g = grpcOptions(o.params);
  const layer = g.insecure ? plain : await h2TLSServer(o.params, o.log);
  return new UpgradeListener(
    listenStream(o),
    async (raw, emit) => {
      const peer = addrString(raw.remoteAddr);
      const conn = await layer(raw);
      o.log.debug(`${peer}: grpc session started`);
      const n = await serveH2(conn, (stream, headers) => {
        const method = headers[":method"];
        const path = headers[":path"];
        const ctype = String(headers["content-type"] ?? "");
        if (method !== "POST") {
          stream.respond({ ":status": 405 }, { endStream: true });
        } else if (!/^application\/grpc(\+proto)?(;|$)/.test(ctype)) {
          stream.respond({ ":status": 415 }, { endStream: true });
        } else if (path !== g.path) {
          // gRPC's way to say "no such method": HTTP 200 with only trailers.
          stream.respond({
            ":status": 200,
            "content-type": "application/grpc",
            "grpc-status": "12",
            "grpc-message": encodeURIComponent(`unknown method ${path}`),
          }, { endStream: true });
        } else {
          stream.respond({ ":status": 200, "content-type": "application/grpc" }, {
            waitForTrailers: true,
          });
          emit(
            new GrpcConn(
              stream,
              { localAddr: raw.localAddr, remoteAddr: raw.remoteAddr },
              "server",
            ),
          );
          return;
        }
        o.log.debug(
          `${peer}: grpc: ${method} ${path ?? ""} (${ctype || "no content-type"}) refused`,
        );
      });
      o.log.debug(`${peer}: grpc session ended after ${n} call(s)`);
    },
    o.log,
    "grpc session",
  );
});

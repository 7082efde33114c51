/**
 * The `http2` handler: gost's HTTP/2 proxy, on streams from the `http2` listener.
 *
 * - `CONNECT` with `:authority` = target: dial, answer 200, relay the stream's DATA both ways.
 * - other methods (`:scheme http`, `:authority`, `:path`): forwarded to the target as an
 *   HTTP/1.1 request, the response streamed back (gost ≥ 3.2.1).
 * - Basic `Proxy-Authorization` checked by the service's auther: 407 with a challenge.
 * - Answers, as gost: a target that cannot be reached 503, one the bypass refuses 403,
 *   a malformed target 400. `Gost-Target`/`X-Gost-Target` (v2 clients) replace the host.
 *
 * - HTTP/1.1 clients on the listener's TLS (no h2 by ALPN, e.g. `curl --proxy https://…`) are
 *   served by the `http` handler, as Go's server falls back to HTTP/1.1 under gost.
 *
 * Parameters: `header`/`http.header` (extra response headers), `authBasicRealm`, `idleTimeout`.
 * Probe resistance (`probeResist`, `knock`) is not supported yet on this handler.
 */
import * as http from "node:http";
import type * as http2 from "node:http2";
import { pipeline } from "node:stream";
import { addrString, closeQuietly, type Conn } from "../../core/conn.ts";
import { connToDuplex } from "../../core/duplex.ts";
import { classifyNetError, ConfigError, errMsg } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { relay } from "../../core/relay.ts";
import {
  type HandleContext,
  type Handler,
  type HandlerOptions,
  registerHandler,
} from "../../registry.ts";
import { parseHeaderParam } from "../../transport/h2/transport.ts";
import { parseBasicAuth } from "../http/auth.ts";
import { HttpHandler } from "../http/handler.ts";
import { type Authority, decodeServerName, dialAddress, parseAuthority } from "../http/target.ts";
import { Http2RequestConn } from "./listener.ts";

/** Request headers that concern the proxy hop only, never forwarded. */
const HOP_REQUEST = new Set([
  "proxy-authorization",
  "proxy-connection",
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "te",
  "gost-target",
  "x-gost-target",
  "host",
]);
/** Response headers HTTP/2 must not carry. */
const HOP_RESPONSE = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);

export class Http2Handler implements Handler {
  private readonly header: [string, string][];
  private readonly realm: string;
  private readonly idleTimeout: number;
  private readonly http1: HttpHandler;

  constructor(private readonly o: HandlerOptions) {
    const p = o.params;
    const where = p.where ? `${p.where}: ` : "";
    if (p.str(["probeResist", "probe_resist"], "") || p.str("knock", "")) {
      throw new ConfigError(`${where}http2 handler: probe resistance is not supported yet`);
    }
    this.header = parseHeaderParam(p, ["http.header", "header"]);
    this.realm = (p.str("authBasicRealm", "") || "gost").replace(/["\\]/g, "\\$&");
    this.idleTimeout = Math.max(p.duration("idleTimeout", 0), 0);
    this.http1 = new HttpHandler(o);
    if (this.http1.udpRequested) {
      throw new ConfigError(`${where}http2 handler: udp=true is not supported yet`);
    }
  }

  async handle(conn: Conn, ctx: HandleContext): Promise<void> {
    // HTTP/1.1 over the listener's TLS (no h2 by ALPN), or another listener: an HTTP proxy.
    if (!(conn instanceof Http2RequestConn)) return await this.http1.handle(conn, ctx);
    try {
      await this.serve(conn, ctx.log);
    } catch (e) {
      ctx.log.debug(`http2: ${addrString(conn.remoteAddr)}: ${errMsg(e)}`);
    } finally {
      conn.close();
    }
  }

  private extraHeaders(): http2.OutgoingHttpHeaders {
    const h: http2.OutgoingHttpHeaders = {};
    for (const [k, v] of this.header) h[k.toLowerCase()] = v;
    return h;
  }

  private async serve(conn: Http2RequestConn, log: Logger): Promise<void> {
    const h = conn.headers;
    const client = addrString(conn.remoteAddr);
    const method = String(h[":method"] ?? "");
    const isConnect = method === "CONNECT";
    const extra = this.extraHeaders();
    let target: Authority;
    try {
      let authority = String(h[":authority"] ?? h["host"] ?? "");
      for (const name of ["gost-target", "x-gost-target"]) {
        const v = h[name];
        const decoded = typeof v === "string" ? decodeServerName(v) : undefined;
        if (decoded) authority = decoded;
      }
      const defPort = !isConnect && h[":scheme"] === "https" ? 443 : 80;
      target = parseAuthority(authority, defPort);
    } catch (e) {
      log.debug(`http2: ${client}: ${method}: ${errMsg(e)} (400)`);
      return conn.respond(400, extra, true);
    }
    const addr = dialAddress(target);

    if (this.o.auther) {
      const creds = parseBasicAuth(h["proxy-authorization"] as string | undefined);
      const info = { client, service: this.o.service };
      if (!creds || !(await this.o.auther.verify(creds.username, creds.password, info))) {
        if (creds) log.info(`http2: authentication failed for user "${creds.username}"`);
        else log.debug(`http2: ${client}: proxy authentication required`);
        return conn.respond(
          407,
          { ...extra, "proxy-authenticate": `Basic realm="${this.realm}"` },
          true,
        );
      }
    }

    log.debug(`http2 ${method} ${client} → ${addr}`);
    let out: Conn;
    try {
      out = await this.o.router.dial("tcp", addr);
    } catch (e) {
      const code = classifyNetError(e);
      const status = code === "not-allowed" ? 403 : 503;
      const msg = `http2 ${method} ${client} → ${addr}: ${errMsg(e)} (${status})`;
      if (this.o.router.hasChain || code === "other") log.warn(msg);
      else log.debug(msg);
      return conn.respond(status, extra, true);
    }
    try {
      if (isConnect) {
        conn.respond(200, extra);
        await relay(conn, out, { idleTimeout: this.idleTimeout });
      } else {
        await forward(conn, out, target, extra);
      }
    } finally {
      closeQuietly(out);
    }
  }
}

/** Forwards a non-CONNECT request over `out` as HTTP/1.1 and streams the response back. */
function forward(
  conn: Http2RequestConn,
  out: Conn,
  target: Authority,
  extra: http2.OutgoingHttpHeaders,
): Promise<void> {
  const h = conn.headers;
  const headers: Record<string, string | string[]> = { host: target.hostHeader };
  for (const [k, v] of Object.entries(h)) {
    if (k.startsWith(":") || HOP_REQUEST.has(k) || v === undefined) continue;
    headers[k] = v;
  }
  return new Promise<void>((resolve, reject) => {
    const req = http.request({
      method: String(h[":method"]),
      path: String(h[":path"] ?? "/"),
      headers,
      // An agent of its own: the socket is this tunnel, never to be pooled for another request
      // (Deno's node:http ignores `createConnection` with `agent: false`).
      agent: Object.assign(new http.Agent({ keepAlive: false }), {
        createConnection: () => connToDuplex(out),
      }),
    });
    req.on("error", (e: Error) => {
      conn.respond(503, extra, true);
      reject(e);
    });
    req.on("response", (res: http.IncomingMessage) => {
      const rh: http2.OutgoingHttpHeaders = { ...extra };
      for (const [k, v] of Object.entries(res.headers)) {
        if (!HOP_RESPONSE.has(k) && v !== undefined) rh[k] = v;
      }
      conn.respond(res.statusCode ?? 502, rh);
      pipeline(res, conn.stream, (e) => e ? reject(e) : resolve());
    });
    sendBody(conn, req).catch((e) => req.destroy(e));
  });
}

/** Copies the request body from the client's stream into the forwarded request. */
async function sendBody(conn: Http2RequestConn, req: http.ClientRequest): Promise<void> {
  const buf = new Uint8Array(65536);
  for (;;) {
    const n = await conn.readBody(buf);
    if (n === null) break;
    if (!req.write(buf.slice(0, n))) await new Promise((r) => req.once("drain", r));
  }
  req.end();
}

registerHandler("http2", (o) => new Http2Handler(o));

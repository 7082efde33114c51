/**
 * gost's `h2` (HTTP/2 over TLS, ALPN h2) and `h2c` (cleartext HTTP/2, prior knowledge) tunnel
 * transports, listener and dialer sides.
 *
 * Wire, as gost: one request stream per tunnel; the request body carries the client's bytes and
 * the response body the server's. Without `path` the client sends `CONNECT` with `:authority`
 * = `host` (default: the node address) and the server accepts only CONNECT (else 405); with
 * `path` the client sends `GET <path>` and the server accepts only that request URI (else 400).
 * The server answers 200 at once. `header` adds request headers.
 */
import type * as http2 from "node:http2";
import type { Params } from "../../config/params.ts";
import { addrString, type Conn } from "../../core/conn.ts";
import { ConfigError, DialError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { UpgradeListener } from "../../core/upgrade_listener.ts";
import {
  type Dialer,
  type ListenerOptions,
  registerDialer,
  registerListener,
} from "../../registry.ts";
import { listenStream } from "../tcp/listener.ts";
import { endSoleSession, H2Pool, request } from "./client.ts";
import { serveH2 } from "./server.ts";
import { H2StreamConn } from "./stream.ts";
import { type ClientLayer, h2TLSClient, h2TLSServer, plain, type ServerLayer } from "./tls.ts";

/** Parses `header` (`Name:Value,Name2:Value2` or a JSON object) into request headers. */
export function parseHeaderParam(p: Params, keys: string[]): [string, string][] {
  const v = p.str(keys);
  if (!v) return [];
  const where = p.where ? `${p.where}: ` : "";
  const bad = (m: string): never => {
    throw new ConfigError(`${where}parameter "header": ${m}`);
  };
  let pairs: [string, string][];
  if (v.trim().startsWith("{")) {
    let obj: unknown;
    try {
      obj = JSON.parse(v);
    } catch {
      bad("invalid JSON object");
    }
    pairs = Object.entries(obj as Record<string, unknown>).map(([k, x]) => [k, String(x)]);
  } else {
    pairs = v.split(",").map((item) => {
      const i = item.indexOf(":");
      if (i <= 0) bad(`"${item}" is not Name:Value`);
      return [item.slice(0, i).trim(), item.slice(i + 1).trim()];
    });
  }
  for (const [k, x] of pairs) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) bad(`invalid header name "${k}"`);
    if (/[\r\n\0]/.test(x)) bad(`header ${k}: invalid value`);
  }
  return pairs;
}

/** `path` of the h2 transports: empty (CONNECT) or an absolute path. */
function pathParam(p: Params): string {
  const path = p.str("path", "");
  if (path && !path.startsWith("/")) {
    throw new ConfigError(`${p.where ? p.where + ": " : ""}parameter "path" must start with /`);
  }
  return path;
}

/** The h2/h2c dialer: one HTTP/2 session per node, one stream per tunnel. */
class H2Dialer implements Dialer {
  private readonly pool: H2Pool;
  private readonly host: string;
  private readonly path: string;
  private readonly header: [string, string][];

  constructor(p: Params, layer: ClientLayer, secure: boolean, log: Logger, what: string) {
    this.host = p.str("host", "");
    this.path = pathParam(p);
    this.header = parseHeaderParam(p, ["header"]);
    this.pool = new H2Pool(layer, secure, log, what);
  }

  dial(addr: string, opts: { timeout: number }): Promise<Conn> {
    return this.pool.dial(addr, opts);
  }

  async handshake(conn: Conn, opts: { addr: string; timeout: number }): Promise<Conn> {
    const ref = await this.pool.session(conn, opts);
    const authority = this.host || opts.addr;
    const headers: http2.OutgoingHttpHeaders = this.path
      ? { ":method": "GET", ":path": this.path, ":authority": authority }
      : { ":method": "CONNECT", ":authority": authority };
    for (const [k, v] of this.header) headers[k.toLowerCase()] = v;
    const onClose = ref.sole ? () => endSoleSession(ref.session) : undefined;
    let r;
    try {
      r = await request(ref.session, headers, { timeout: opts.timeout, waitResponse: true });
    } catch (e) {
      onClose?.();
      throw e;
    }
    if (r.status !== 200) {
      r.stream.destroy();
      onClose?.();
      throw new DialError(`h2 tunnel to ${opts.addr}: server answered ${r.status}`, "other");
    }
    return new H2StreamConn(r.stream, ref.addrs, onClose);
  }
}

/** Accepts gost h2 tunnel streams: the CONNECT / path rule, then 200 and a Conn per stream. */
function h2Listener(o: ListenerOptions, layer: ServerLayer, what: string) {
  const path = pathParam(o.params);
  return new UpgradeListener(
    listenStream(o),
    async (raw, emit) => {
      const peer = addrString(raw.remoteAddr);
      const conn = await layer(raw);
      o.log.debug(`${peer}: ${what} session started`);
      const n = await serveH2(conn, (stream, headers) => {
        const method = headers[":method"];
        const reqPath = headers[":path"];
        let status = 200;
        if (!path && method !== "CONNECT") status = 405;
        else if (path && reqPath !== path) status = 400;
        if (status !== 200) {
          o.log.debug(`${peer}: ${what}: ${method} ${reqPath ?? ""} refused (${status})`);
          stream.respond({ ":status": status }, { endStream: true });
          return;
        }
        stream.respond({ ":status": 200 });
        emit(new H2StreamConn(stream, { localAddr: raw.localAddr, remoteAddr: raw.remoteAddr }));
      });
      o.log.debug(`${peer}: ${what} session ended after ${n} stream(s)`);
    },
    o.log,
    `${what} session`,
  );
}

registerListener("h2c", (o) => Promise.resolve(h2Listener(o, plain, "h2c")));
registerListener("h2", async (o) => h2Listener(o, await h2TLSServer(o.params, o.log), "h2"));

registerDialer("h2c", (o) => new H2Dialer(o.params, plain, false, o.log, "h2c"));
registerDialer("h2", (o) => new H2Dialer(o.params, h2TLSClient(o.params), true, o.log, "h2"));

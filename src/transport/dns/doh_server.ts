/**
 * DNS over HTTPS server (RFC 8484), the `dns` listener's `mode=https`, as gost's: any path,
 * `GET ?dns=<base64url>` or `POST` with `Content-Type: application/dns-message`; the answer goes
 * back as `200 application/dns-message`. TLS offers ALPN h2 (dig +https, kdig +https, browsers
 * speak HTTP/2) and serves HTTP/1.1 (keep-alive) to clients that do not pick h2 (curl
 * --doh-url over HTTP/1.1, Go's default transport without h2).
 *
 * Each request becomes one message conn for the dns handler: read() yields the query once,
 * write() sends the response. A request the handler leaves unanswered gets 502, a malformed one
 * 400/405/413/415 without reaching the handler.
 */
import type * as http2 from "node:http2";
import { BufferedConn } from "../../core/bufconn.ts";
import { type Addr, addrString, type Conn, type Listener, writeAll } from "../../core/conn.ts";
import { errMsg, ProtocolError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { UpgradeListener } from "../../core/upgrade_listener.ts";
import {
  HeaderList,
  HttpError,
  MAX_REQUEST_HEAD,
  parseRequestHead,
  readHeadBytes,
  reasonPhrase,
  serializeResponseHead,
  simpleResponse,
} from "../../protocol/http/wire.ts";
import type { ListenerOptions } from "../../registry.ts";
import { alpnOf, h2TLSServer } from "../h2/tls.ts";
import { serveH2 } from "../h2/server.ts";
import { listenStream } from "../tcp/listener.ts";
import { b64urlDecode } from "../../core/base64url.ts";

/** Largest DNS message (and so request body) taken. */
const MAX_MESSAGE = 65535;
const MEDIA = "application/dns-message";

type Addrs = { localAddr: Addr; remoteAddr: Addr };
/** Sends the HTTP response of one request: `body` is a DNS message, or none for an error. */
type Respond = (status: number, body?: Uint8Array) => void;

/** One DoH request as a message conn of the dns handler. */
class DohRequestConn implements Conn {
  private query: Uint8Array | null;
  private answered = false;

  constructor(query: Uint8Array, private readonly respond: Respond, private readonly a: Addrs) {
    this.query = query;
  }

  get localAddr(): Addr {
    return this.a.localAddr;
  }
  get remoteAddr(): Addr {
    return this.a.remoteAddr;
  }

  /** The query, once; then the end (one request, one answer). */
  read(p: Uint8Array): Promise<number | null> {
    const q = this.query;
    this.query = null;
    if (!q) return Promise.resolve(null);
    if (q.length > p.length) {
      return Promise.reject(new ProtocolError(`query of ${q.length} bytes is over ${p.length}`));
    }
    p.set(q);
    return Promise.resolve(q.length);
  }

  write(p: Uint8Array): Promise<number> {
    if (this.answered) return Promise.reject(new Deno.errors.BrokenPipe("DoH request answered"));
    this.answered = true;
    this.respond(200, p);
    return Promise.resolve(p.length);
  }

  closeWrite(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    if (this.answered) return;
    this.answered = true;
    this.respond(502);
  }
}

/** The query a request carries, or the HTTP status refusing it. */
function queryOf(
  method: string,
  path: string,
  contentType: string | undefined,
  body: Uint8Array,
): Uint8Array | number {
  if (method === "GET") {
    const q = path.indexOf("?");
    const b64 = q < 0 ? null : new URLSearchParams(path.slice(q + 1)).get("dns");
    if (!b64) return 400;
    const msg = b64urlDecode(b64.replace(/=+$/, "")); // RFC 8484 omits padding; some add it
    return !msg || msg.length === 0 || msg.length > MAX_MESSAGE ? 400 : msg;
  }
  if (method === "POST") {
    if ((contentType ?? "").split(";")[0].trim().toLowerCase() !== MEDIA) return 415;
    return body.length === 0 ? 400 : body;
  }
  return 405;
}

/** HTTP/1.1: requests one after another on the connection (keep-alive), each answered in turn. */
async function serveHttp1(conn: Conn, a: Addrs, emit: (c: Conn) => void): Promise<number> {
  const bc = new BufferedConn(conn);
  let served = 0;
  try {
    for (;;) {
      const raw = await readHeadBytes(bc, "request", MAX_REQUEST_HEAD);
      if (!raw) return served;
      const req = parseRequestHead(raw);
      if (req.headers.has("transfer-encoding")) throw new HttpError(411, "chunked request body");
      const len = Number(req.headers.get("content-length") ?? "0");
      if (!Number.isInteger(len) || len < 0) throw new HttpError(400, "bad Content-Length");
      if (len > MAX_MESSAGE) throw new HttpError(413, `a ${len}-byte body`);
      const body = len ? await bc.readFull(len) : new Uint8Array(0);
      const close = req.version === "HTTP/1.0" ||
        req.headers.tokens("connection").includes("close");
      const q = queryOf(req.method, req.target, req.headers.get("content-type"), body);
      let out: Uint8Array;
      if (typeof q === "number") out = simpleResponse(q);
      else {
        served++;
        out = await new Promise<Uint8Array>((resolve) => {
          emit(
            new DohRequestConn(q, (status, msg) => {
              if (!msg) return resolve(simpleResponse(status));
              const head = serializeResponseHead({
                version: "HTTP/1.1",
                status,
                reason: reasonPhrase(status),
                headers: new HeaderList([
                  ["Content-Type", MEDIA],
                  ["Content-Length", String(msg.length)],
                  ["Cache-Control", "no-store"],
                ]),
              });
              const r = new Uint8Array(head.length + msg.length);
              r.set(head);
              r.set(msg, head.length);
              resolve(r);
            }, a),
          );
        });
      }
      await writeAll(bc, out);
      if (close) return served;
    }
  } catch (e) {
    if (e instanceof HttpError) await writeAll(bc, simpleResponse(e.status)).catch(() => {});
    throw e;
  } finally {
    bc.close();
  }
}

/** HTTP/2: every request stream answered on its own. */
function onH2Stream(
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  a: Addrs,
  emit: (c: Conn) => void,
): void {
  const method = String(headers[":method"] ?? "");
  const reply: Respond = (status, msg) => {
    if (stream.destroyed || stream.headersSent) return;
    try {
      if (!msg) stream.respond({ ":status": status }, { endStream: true });
      else {
        stream.respond({
          ":status": status,
          "content-type": MEDIA,
          "content-length": msg.length,
          "cache-control": "no-store",
        });
        stream.end(msg);
      }
    } catch { /* reset by the client */ }
  };
  const parts: Uint8Array[] = [];
  let size = 0;
  stream.on("data", (d: Uint8Array) => {
    size += d.length;
    if (size > MAX_MESSAGE) {
      reply(413);
      stream.destroy();
    } else parts.push(d);
  });
  stream.on("end", () => {
    if (size > MAX_MESSAGE) return;
    const body = new Uint8Array(size);
    parts.reduce((at, d) => (body.set(d, at), at + d.length), 0);
    const q = queryOf(
      method,
      String(headers[":path"] ?? "/"),
      headers["content-type"] as string | undefined,
      body,
    );
    if (typeof q === "number") reply(q);
    else emit(new DohRequestConn(q, reply, a));
  });
}

/** The DoH listener: TLS (ALPN h2, else HTTP/1.1) on `o.addr`, one conn per request. */
export async function listenDoH(o: ListenerOptions, log: Logger): Promise<Listener> {
  const tls = await h2TLSServer(o.params, log, ["h2", "http/1.1"]);
  return new UpgradeListener(
    listenStream(o),
    async (raw, emit) => {
      const peer = addrString(raw.remoteAddr);
      const conn = await tls(raw);
      const a = { localAddr: raw.localAddr, remoteAddr: raw.remoteAddr };
      const h2 = alpnOf(conn) === "h2";
      try {
        const n = h2
          ? await serveH2(conn, (s, h) => onH2Stream(s, h, a, emit))
          : await serveHttp1(conn, a, emit);
        log.debug(`${peer}: DoH over ${h2 ? "HTTP/2" : "HTTP/1.1"}: ${n} request(s)`);
      } catch (e) {
        throw new ProtocolError(`DoH over ${h2 ? "HTTP/2" : "HTTP/1.1"}: ${errMsg(e)}`);
      }
    },
    log,
    "dns over https",
  );
}

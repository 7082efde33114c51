/**
 * The client side of the HTTP/2 transports (h2, h2c, grpc) and of the http2 proxy node: one
 * HTTP/2 session per node, a new stream per proxied connection, a dead session replaced on the
 * next dial (the shape of the mux dialer in src/transport/mux/pool.ts).
 *
 * The sessions are kept by a SessionPool (src/chain/session_pool.ts), shared with the mux
 * dialer; `session()` (called from `handshake`) resolves what `dial` returned.
 *
 * At hop 2+ the chain hands `handshake` a new tunnel stream every time, so such a session
 * carries exactly one stream and ends with it (`sole`).
 */
import * as http2 from "node:http2";
import type { Duplex } from "node:stream";
import { type PooledSession, SessionPool } from "../../chain/session_pool.ts";
import { type Conn } from "../../core/conn.ts";
import { connToDuplex } from "../../core/duplex.ts";
import { DialError, errMsg } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { END_GRACE } from "./server.ts";
import { H2_SETTINGS, tuneSession } from "./stream.ts";
import type { ClientLayer } from "./tls.ts";

/** A session to use, and whether it was made for one stream only (hop 2+). */
export type SessionRef = PooledSession<http2.ClientHttp2Session>;

/** True while a session can take new streams. */
export function usable(s: http2.ClientHttp2Session): boolean {
  return !s.closed && !s.destroyed && !(s as { goingAway?: boolean }).goingAway;
}

/** The HTTP/2 sessions of one dialer: one per node (see src/chain/session_pool.ts). */
export class H2Pool {
  private readonly pool: SessionPool<http2.ClientHttp2Session>;

  /** `secure` picks the `https` scheme; `what` names the transport in logs and errors. */
  constructor(layer: ClientLayer, secure: boolean, log: Logger, what: string) {
    this.pool = new SessionPool<http2.ClientHttp2Session>({
      what,
      start: async (conn, addr, timeout) =>
        await connectH2(await layer(conn, addr, timeout), secure, addr, timeout),
      alive: usable,
      onEnd: (s, done) => void s.once("close", done),
    }, log);
  }

  /** The node's live session, if any. */
  live(addr: string): { session: http2.ClientHttp2Session } | undefined {
    const session = this.pool.live(addr);
    return session ? { session } : undefined;
  }

  dial(addr: string, opts: { timeout: number }): Promise<Conn> {
    return this.pool.dial(addr, opts);
  }

  /** The session `conn` (from `dial`, or a tunnel stream at hop 2+) leads to. */
  session(conn: Conn, opts: { addr: string; timeout: number }): Promise<SessionRef> {
    return this.pool.session(conn, opts);
  }
}

/** The transport under each client session (endSoleSession ends it). */
const transports = new WeakMap<http2.ClientHttp2Session, Duplex>();

/**
 * Ends a session made for a single tunnel stream (hop 2+) without a GOAWAY frame: its transport
 * is ended (FIN after what is queued), then destroyed, and the session closes with its socket.
 * Why not `session.close()`: Deno 2.9.6's nghttp2 can abort the whole process while processing
 * a received GOAWAY (denoland/deno#36788) — seen here in the server of an h2 hop over a tunnel.
 * The tunnel's end tells the server as much as a GOAWAY would.
 */
export function endSoleSession(session: http2.ClientHttp2Session): void {
  const duplex = transports.get(session);
  if (!duplex || duplex.destroyed) {
    session.destroy();
    return;
  }
  const t = setTimeout(() => duplex.destroy(), END_GRACE);
  duplex.end(() => {
    clearTimeout(t);
    duplex.destroy();
  });
}

/** Starts an HTTP/2 client session over `conn`; resolves once the server's SETTINGS arrived. */
export function connectH2(
  conn: Conn,
  secure: boolean,
  addr: string,
  timeout: number,
): Promise<http2.ClientHttp2Session> {
  const duplex = connToDuplex(conn);
  const session = http2.connect(`${secure ? "https" : "http"}://${addr}`, {
    createConnection: () => duplex as never,
    settings: H2_SETTINGS,
  });
  let lastErr: Error | undefined;
  session.on("error", (e: Error) => lastErr = e); // fails the streams; never fatal
  session.on("goaway", () => (session as { goingAway?: boolean }).goingAway = true);
  session.once("close", () => duplex.destroy());
  transports.set(session, duplex);
  // The server closed the connection: the session cannot carry more (see serveH2).
  duplex.once("end", () => {
    (session as { goingAway?: boolean }).goingAway = true;
    setTimeout(() => session.destroy(), END_GRACE);
  });
  return new Promise((resolve, reject) => {
    const fail = (e: Error) => {
      clearTimeout(t);
      session.destroy();
      reject(e);
    };
    const t = timeout > 0
      ? setTimeout(
        () => fail(new DialError(`http2 handshake timed out after ${timeout} ms`, "timeout")),
        timeout,
      )
      : undefined;
    session.once("remoteSettings", () => {
      clearTimeout(t);
      tuneSession(session);
      resolve(session);
    });
    session.once("close", () => {
      const why = lastErr ? errMsg(lastErr) : "connection closed";
      fail(new DialError(`http2 handshake failed: ${why}`, "other"));
    });
  });
}

/** Opens a request stream; with `waitResponse`, resolves once the response headers arrive. */
export function request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  opts: { timeout: number; waitResponse: boolean },
): Promise<
  { stream: http2.ClientHttp2Stream; status: number; headers: http2.IncomingHttpHeaders }
> {
  let stream: http2.ClientHttp2Stream;
  try {
    stream = session.request(headers, { endStream: false });
  } catch (e) {
    return Promise.reject(new DialError(`http2 request: ${errMsg(e)}`, "other"));
  }
  stream.on("error", () => {}); // reported through the stream's Conn or below
  if (!opts.waitResponse) return Promise.resolve({ stream, status: 0, headers: {} });
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(t);
      stream.off("response", ok);
      stream.off("close", closed);
      stream.off("error", failed);
    };
    const ok = (h: http2.IncomingHttpHeaders) => {
      done();
      resolve({ stream, status: Number(h[":status"]), headers: h });
    };
    const failed = (e: Error) => {
      done();
      stream.destroy();
      reject(new DialError(`http2 request: ${errMsg(e)}`, "other"));
    };
    const closed = () => failed(new Error(`stream closed (code ${stream.rstCode ?? "?"})`));
    const t = opts.timeout > 0
      ? setTimeout(() => {
        done();
        stream.destroy();
        reject(new DialError(`http2 request timed out after ${opts.timeout} ms`, "timeout"));
      }, opts.timeout)
      : undefined;
    stream.once("response", ok);
    stream.once("close", closed);
    stream.once("error", failed);
  });
}

/**
 * The client side of the HTTP/2 transports (h2, h2c, grpc) and of the http2 proxy node: one
 * HTTP/2 session per node, a new stream per proxied connection, a dead session replaced on the
 * next dial (the shape of the mux dialer in src/transport/mux/pool.ts).
 *
 * The chain calls `dial` then `handshake`. `dial` returns a handle on the node's live session
 * when there is one (no new socket), else a fresh TCP socket, and concurrent first dials wait
 * for the one session being made. `session()` (called from `handshake`) resolves the handle,
 * or layers TLS over the fresh socket and starts the session there.
 *
 * At hop 2+ the chain hands `handshake` a new tunnel stream every time, so such a session
 * carries exactly one stream and ends with it (`sole`).
 */
import * as http2 from "node:http2";
import { dialTCP } from "../../chain/direct.ts";
import { type Addr, closeQuietly, type Conn } from "../../core/conn.ts";
import { connToDuplex } from "../../core/duplex.ts";
import { DialError, errMsg } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { END_GRACE } from "./server.ts";
import { H2_SETTINGS, tuneSession } from "./stream.ts";
import type { ClientLayer } from "./tls.ts";

/** Stands for a node's live session in the chain between `dial` and `handshake`. */
export class H2SessionHandle implements Conn {
  constructor(readonly session: http2.ClientHttp2Session, private readonly addrs: Addr[]) {}
  get localAddr(): Addr {
    return this.addrs[0];
  }
  get remoteAddr(): Addr {
    return this.addrs[1];
  }
  read(): Promise<number | null> {
    return Promise.reject(new Error("http2: session handle used as a stream"));
  }
  write(): Promise<number> {
    return Promise.reject(new Error("http2: session handle used as a stream"));
  }
  closeWrite(): Promise<void> {
    return Promise.resolve();
  }
  /** The session belongs to the dialer, not to one connection. */
  close(): void {}
}

/** A session to use, and whether it was made for one stream only (hop 2+). */
export interface SessionRef {
  session: http2.ClientHttp2Session;
  sole: boolean;
  addrs: { localAddr: Addr; remoteAddr: Addr };
}

type Pending = { resolve: (s: SessionRef) => void; reject: (e: Error) => void };

/** True while a session can take new streams. */
export function usable(s: http2.ClientHttp2Session): boolean {
  return !s.closed && !s.destroyed && !(s as { goingAway?: boolean }).goingAway;
}

export class H2Pool {
  private readonly sessions = new Map<string, SessionRef>();
  private readonly making = new Map<string, Promise<SessionRef>>();
  private readonly owned = new WeakMap<Conn, Pending>();

  /** `secure` picks the `https` scheme; `what` names the transport in logs and errors. */
  constructor(
    private readonly layer: ClientLayer,
    private readonly secure: boolean,
    private readonly log: Logger,
    private readonly what: string,
  ) {}

  /** The node's live session, if any. */
  live(addr: string): SessionRef | undefined {
    const s = this.sessions.get(addr);
    return s && usable(s.session) ? s : undefined;
  }

  async dial(addr: string, opts: { timeout: number }): Promise<Conn> {
    for (;;) {
      const live = this.live(addr);
      if (live) return this.handle(live);
      const making = this.making.get(addr);
      if (making) {
        try {
          return this.handle(await making);
        } catch {
          continue; // that attempt failed: try (or wait for) another
        }
      }
      let pending!: Pending;
      const p = new Promise<SessionRef>((resolve, reject) => pending = { resolve, reject });
      p.catch(() => {});
      this.making.set(addr, p);
      try {
        const conn = await dialTCP(addr, opts.timeout);
        this.owned.set(conn, pending);
        return conn;
      } catch (e) {
        this.making.delete(addr);
        pending.reject(e as Error);
        throw e;
      }
    }
  }

  private handle(r: SessionRef): H2SessionHandle {
    return new H2SessionHandle(r.session, [r.addrs.localAddr, r.addrs.remoteAddr]);
  }

  /** The session `conn` (from `dial`, or a tunnel stream at hop 2+) leads to. */
  async session(conn: Conn, opts: { addr: string; timeout: number }): Promise<SessionRef> {
    if (conn instanceof H2SessionHandle) {
      const addrs = { localAddr: conn.localAddr, remoteAddr: conn.remoteAddr };
      if (usable(conn.session)) return { session: conn.session, sole: false, addrs };
      this.log.debug(`${this.what} session to ${opts.addr} is gone, making a new one`);
      return this.session(await this.dial(opts.addr, opts), opts);
    }
    const own = this.owned.get(conn);
    this.owned.delete(conn);
    let ref: SessionRef;
    try {
      const layered = await this.layer(conn, opts.addr, opts.timeout);
      const session = await connectH2(layered, this.secure, opts.addr, opts.timeout);
      ref = {
        session,
        sole: !own,
        addrs: { localAddr: conn.localAddr, remoteAddr: conn.remoteAddr },
      };
    } catch (e) {
      closeQuietly(conn);
      if (own) {
        this.making.delete(opts.addr);
        own.reject(e as Error);
      }
      throw e;
    }
    if (own) {
      this.sessions.set(opts.addr, ref);
      this.making.delete(opts.addr);
      own.resolve(ref);
      this.log.debug(`${this.what} session to ${opts.addr} started`);
      ref.session.once("close", () => {
        if (this.sessions.get(opts.addr) === ref) this.sessions.delete(opts.addr);
        this.log.debug(`${this.what} session to ${opts.addr} ended`);
      });
    }
    return ref;
  }
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

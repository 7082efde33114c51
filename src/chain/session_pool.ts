/**
 * One shared session per node for multiplexing dialers (smux for mws/mwss/mtls/mtcp, HTTP/2 for
 * h2/h2c/grpc/http2). The chain calls `dial` then the dialer's handshake: `dial` returns a handle
 * on the node's live session when there is one (no new socket), else a fresh TCP socket, and
 * concurrent first dials wait for the one session being made. `session` turns what `dial`
 * returned into a session: the handle's, or a new one started over the fresh socket.
 *
 * At hop 2+ the chain hands the handshake a new tunnel stream every time, so a session made there
 * cannot be shared: it is returned with `sole` set, to carry exactly one stream.
 */
import { dialTCP } from "./direct.ts";
import { type Addr, closeQuietly, type Conn } from "../core/conn.ts";
import type { Logger } from "../core/logger.ts";

/** What the pool needs to know about a kind of session. */
export interface SessionKind<S> {
  /** Layers the transport over `conn` (TLS, WebSocket, …) and starts a client session on it. */
  start(conn: Conn, addr: string, timeout: number): Promise<S>;
  /** True while the session can take new streams. */
  alive(s: S): boolean;
  /** Calls `done` once when the session has ended. */
  onEnd(s: S, done: () => void): void;
  /** Names the transport in log lines ("mux", "h2c", …). */
  what: string;
}

/** Stands for a node's live session in the chain between `dial` and the handshake. */
export class SessionHandle<S> implements Conn {
  constructor(readonly session: S, readonly localAddr: Addr, readonly remoteAddr: Addr) {}
  read(): Promise<number | null> {
    return Promise.reject(new Error("session handle used as a stream"));
  }
  write(): Promise<number> {
    return Promise.reject(new Error("session handle used as a stream"));
  }
  closeWrite(): Promise<void> {
    return Promise.resolve();
  }
  /** The session belongs to the dialer, not to one connection. */
  close(): void {}
}

type Pending<S> = { resolve: (s: Live<S>) => void; reject: (e: Error) => void };
/** A pooled session and the addresses of the socket under it. */
interface Live<S> {
  session: S;
  localAddr: Addr;
  remoteAddr: Addr;
}

/** The sessions of one dialer, keyed by node address. */
export class SessionPool<S> {
  private readonly sessions = new Map<string, Live<S>>();
  private readonly making = new Map<string, Promise<Live<S>>>();
  /** Sockets from `dial` whose session will be the node's shared one. */
  private readonly owned = new WeakMap<Conn, Pending<S>>();

  constructor(private readonly kind: SessionKind<S>, private readonly log: Logger) {}

  /** The node's live session, if any. */
  live(addr: string): S | undefined {
    const s = this.sessions.get(addr);
    return s && this.kind.alive(s.session) ? s.session : undefined;
  }

  private handle(l: Live<S>): SessionHandle<S> {
    return new SessionHandle(l.session, l.localAddr, l.remoteAddr);
  }

  async dial(addr: string, opts: { timeout: number }): Promise<Conn> {
    for (;;) {
      const live = this.sessions.get(addr);
      if (live && this.kind.alive(live.session)) return this.handle(live);
      const making = this.making.get(addr);
      if (making) {
        try {
          return this.handle(await making);
        } catch {
          continue; // that attempt failed: try (or wait for) another
        }
      }
      let pending!: Pending<S>;
      const p = new Promise<Live<S>>((resolve, reject) => pending = { resolve, reject });
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

  /**
   * The session `conn` (from `dial`, or a tunnel stream at hop 2+) leads to; `sole` when it was
   * made for this one connection.
   */
  async session(conn: Conn, opts: { addr: string; timeout: number }): Promise<PooledSession<S>> {
    const addrs = { localAddr: conn.localAddr, remoteAddr: conn.remoteAddr };
    if (conn instanceof SessionHandle) {
      if (this.kind.alive(conn.session)) return { session: conn.session as S, sole: false, addrs };
      this.log.debug(`${this.kind.what} session to ${opts.addr} is gone, making a new one`);
      return this.session(await this.dial(opts.addr, opts), opts);
    }
    const own = this.owned.get(conn);
    this.owned.delete(conn);
    let session: S;
    try {
      session = await this.kind.start(conn, opts.addr, opts.timeout);
    } catch (e) {
      closeQuietly(conn);
      if (own) {
        this.making.delete(opts.addr);
        own.reject(e as Error);
      }
      throw e;
    }
    if (!own) return { session, sole: true, addrs };
    const live = { session, localAddr: conn.localAddr, remoteAddr: conn.remoteAddr };
    this.sessions.set(opts.addr, live);
    this.making.delete(opts.addr);
    own.resolve(live);
    this.log.debug(`${this.kind.what} session to ${opts.addr} started`);
    this.kind.onEnd(session, () => {
      if (this.sessions.get(opts.addr) === live) this.sessions.delete(opts.addr);
      this.log.debug(`${this.kind.what} session to ${opts.addr} ended`);
    });
    return { session, sole: false, addrs };
  }
}

/** A session to use, whether it was made for one stream only (hop 2+), and its socket's addresses. */
export interface PooledSession<S> {
  session: S;
  sole: boolean;
  addrs: { localAddr: Addr; remoteAddr: Addr };
}

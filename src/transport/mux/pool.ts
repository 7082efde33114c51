/**
 * The client side of gost's multiplexed transports (mtcp, mtls, mws, mwss): one smux session per
 * node, a new stream per proxied connection, a dead session replaced on the next dial.
 *
 * The chain calls `dial` then `handshake`. `dial` returns a handle on the node's live session
 * when there is one (no new socket), else a fresh TCP socket, and concurrent first dials wait for
 * the one session being made. `handshake` opens a stream on the handle's session, or layers the
 * transport (TLS, WebSocket) over the fresh socket and starts the session there.
 *
 * At hop 2+ the chain hands `handshake` a new tunnel stream every time, so a session cannot be
 * shared: each such connection gets a session of its own carrying one stream (gost's mux dialers
 * fail there after the first connection).
 */
import { dialTCP } from "../../chain/direct.ts";
import { type Addr, type Conn } from "../../core/conn.ts";
import { errMsg } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import type { Dialer } from "../../registry.ts";
import type { MuxConfig } from "./config.ts";
import { MuxSession } from "./session.ts";
import type { MuxStream } from "./stream.ts";

/** Puts the transport under the session: TLS, WebSocket, or nothing (mtcp). */
export type Layer = (conn: Conn, addr: string, timeout: number) => Promise<Conn>;

/** Stands for a node's live session in the chain between `dial` and `handshake`. */
class SessionHandle implements Conn {
  constructor(readonly session: MuxSession) {}
  get localAddr(): Addr {
    return this.session.localAddr;
  }
  get remoteAddr(): Addr {
    return this.session.remoteAddr;
  }
  read(): Promise<number | null> {
    return Promise.reject(new Error("mux: session handle used as a stream"));
  }
  write(): Promise<number> {
    return Promise.reject(new Error("mux: session handle used as a stream"));
  }
  closeWrite(): Promise<void> {
    return Promise.resolve();
  }
  /** The session belongs to the dialer, not to one connection. */
  close(): void {}
}

type Pending = { resolve: (s: MuxSession) => void; reject: (e: Error) => void };

export class MuxDialer implements Dialer {
  private readonly sessions = new Map<string, MuxSession>();
  private readonly making = new Map<string, Promise<MuxSession>>();
  /** Sockets from `dial` whose handshake will make the node's session. */
  private readonly owned = new WeakMap<Conn, Pending>();

  constructor(
    private readonly layer: Layer,
    private readonly config: MuxConfig,
    private readonly log: Logger,
  ) {}

  /** The node's live session, if any (for tests and metrics). */
  session(addr: string): MuxSession | undefined {
    const s = this.sessions.get(addr);
    return s && !s.isClosed ? s : undefined;
  }

  async dial(addr: string, opts: { timeout: number }): Promise<Conn> {
    for (;;) {
      const live = this.session(addr);
      if (live) return new SessionHandle(live);
      const making = this.making.get(addr);
      if (making) {
        try {
          return new SessionHandle(await making);
        } catch {
          continue; // that attempt failed: try (or wait for) another
        }
      }
      let pending!: Pending;
      const p = new Promise<MuxSession>((resolve, reject) => pending = { resolve, reject });
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

  async handshake(conn: Conn, opts: { addr: string; timeout: number }): Promise<Conn> {
    if (conn instanceof SessionHandle) {
      try {
        return await conn.session.openStream();
      } catch (e) {
        // The session died since `dial`: replace it now rather than fail this connection.
        this.log.debug(`mux session to ${opts.addr} is gone (${errMsg(e)}), making a new one`);
        return this.handshake(await this.dial(opts.addr, opts), opts);
      }
    }
    const own = this.owned.get(conn);
    this.owned.delete(conn);
    let session: MuxSession;
    try {
      const layered = await this.layer(conn, opts.addr, opts.timeout);
      session = new MuxSession(layered, { client: true, config: this.config });
    } catch (e) {
      if (own) {
        this.making.delete(opts.addr);
        own.reject(e as Error);
      }
      throw e;
    }
    if (own) {
      this.sessions.set(opts.addr, session);
      this.making.delete(opts.addr);
      own.resolve(session);
      this.log.debug(`mux session to ${opts.addr} started (smux v${this.config.version})`);
      session.done.then(() => {
        if (this.sessions.get(opts.addr) === session) this.sessions.delete(opts.addr);
        this.log.debug(`mux session to ${opts.addr} ended: ${errMsg(session.error)}`);
      });
      return await session.openStream();
    }
    // Over a tunnel stream (hop 2+): a session for this one connection.
    return new SoleStream(await session.openStream(), session);
  }
}

/** A stream whose session exists only for it: closing the stream ends the session. */
class SoleStream implements Conn {
  constructor(private readonly stream: MuxStream, private readonly session: MuxSession) {}
  get localAddr(): Addr {
    return this.stream.localAddr;
  }
  get remoteAddr(): Addr {
    return this.stream.remoteAddr;
  }
  read(p: Uint8Array): Promise<number | null> {
    return this.stream.read(p);
  }
  write(p: Uint8Array): Promise<number> {
    return this.stream.write(p);
  }
  closeWrite(): Promise<void> {
    return this.stream.closeWrite();
  }
  close(): void {
    // Let the FIN reach the peer before the session's socket goes.
    const t = setTimeout(() => this.session.close(), 2000);
    this.stream.closeWrite().catch(() => {}).finally(() => {
      clearTimeout(t);
      this.stream.close();
      this.session.close();
    });
  }
}

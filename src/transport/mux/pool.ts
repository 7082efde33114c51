/**
 * The client side of gost's multiplexed transports (mtcp, mtls, mws, mwss): one smux session per
 * node, a new stream per proxied connection, a dead session replaced on the next dial.
 *
 * The sessions are kept by a SessionPool (src/chain/session_pool.ts); `handshake` opens a stream
 * on the session `dial` led to.
 *
 * At hop 2+ the chain hands `handshake` a new tunnel stream every time, so a session cannot be
 * shared: each such connection gets a session of its own carrying one stream (gost's mux dialers
 * fail there after the first connection).
 */
import { SessionHandle, SessionPool } from "../../chain/session_pool.ts";
import { type Addr, type Conn } from "../../core/conn.ts";
import { errMsg } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import type { Dialer } from "../../registry.ts";
import type { MuxConfig } from "./config.ts";
import { MuxSession } from "./session.ts";
import type { MuxStream } from "./stream.ts";

/** Puts the transport under the session: TLS, WebSocket, or nothing (mtcp). */
export type Layer = (conn: Conn, addr: string, timeout: number) => Promise<Conn>;

export class MuxDialer implements Dialer {
  private readonly pool: SessionPool<MuxSession>;

  constructor(layer: Layer, config: MuxConfig, private readonly log: Logger) {
    this.pool = new SessionPool<MuxSession>({
      what: `mux (smux v${config.version})`,
      start: async (conn, addr, timeout) =>
        new MuxSession(await layer(conn, addr, timeout), { client: true, config }),
      alive: (s) => !s.isClosed,
      onEnd: (s, done) => void s.done.then(done),
    }, log);
  }

  /** The node's live session, if any (for tests and metrics). */
  session(addr: string): MuxSession | undefined {
    return this.pool.live(addr);
  }

  dial(addr: string, opts: { timeout: number }): Promise<Conn> {
    return this.pool.dial(addr, opts);
  }

  async handshake(conn: Conn, opts: { addr: string; timeout: number }): Promise<Conn> {
    const { session, sole } = await this.pool.session(conn, opts);
    try {
      const stream = await session.openStream();
      // Over a tunnel stream (hop 2+): a session for this one connection.
      return sole ? new SoleStream(stream, session) : stream;
    } catch (e) {
      if (!(conn instanceof SessionHandle)) throw e;
      // The shared session died since `dial`: replace it now rather than fail this connection.
      this.log.debug(`mux session to ${opts.addr} is gone (${errMsg(e)}), making a new one`);
      return this.handshake(await this.pool.dial(opts.addr, opts), opts);
    }
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

/**
 * SOCKS5 client side of remote forwarding (the socks5 connector's `bind` / `bindUDP`):
 *
 * - MUX-BIND (0xF2, gost ≥ v2 with `mbind`, always in gost v3): one control connection becomes
 *   an smux session (this side is the smux *server*); each stream the far end opens is one
 *   peer, introduced by a SOCKS5 reply carrying the peer's address.
 * - Standard BIND (RFC 1928, e.g. dante): one connection per peer — the first reply is the bound
 *   address, the second the peer's; after that the control connection *is* the peer's stream.
 *   The caller binds again for the next peer. Dante honours a requested port only for the
 *   address 0.0.0.0, so that is what is requested.
 * - UDP-TUN (0xF3) with a port: the far end binds that UDP port and relays its datagrams as
 *   UDP-TUN frames on the control connection.
 *
 * Which TCP flavour: the node parameter `mbind` (gost v2's name) — true: MUX-BIND only; false:
 * standard BIND only; unset: MUX-BIND first and, when the server does not know the command
 * (it closes the connection or answers 0x07 "command not supported"), standard BIND from then on.
 */
import { BufferedConn } from "../../core/bufconn.ts";
import { type Addr, type Conn, splitHostPort, writeAll } from "../../core/conn.ts";
import { withDeadline } from "../../core/deadline.ts";
import { DialError, errMsg, ProtocolError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import {
  BindFallbackError,
  type BindListener,
  type BindOptions,
  type NodeOptions,
} from "../../registry.ts";
import { type MuxConfig, muxConfigFromParams } from "../../transport/mux/config.ts";
import { MuxSession } from "../../transport/mux/session.ts";
import { encodeAddr, readAddr, type SocksAddr } from "../socks/addr.ts";
import { CMD_MUX_BIND } from "./mbind.ts";
import { CMD_UDP_TUN, UdpTunPacketConn } from "./udp_tun.ts";
import { Cmd, Method, Rep, USERPASS_VERSION, VERSION } from "./wire.ts";

const enc = new TextEncoder();

/** How long a far-end stream may take to deliver its SOCKS5 reply. */
const STREAM_REPLY_TIMEOUT = 15_000;

/** Reply codes as words, for errors. */
const REP_TEXT: Record<number, string> = {
  [Rep.Failure]: "general failure",
  [Rep.NotAllowed]: "not allowed by ruleset",
  [Rep.NetUnreachable]: "network unreachable",
  [Rep.HostUnreachable]: "host unreachable",
  [Rep.ConnRefused]: "connection refused",
  [Rep.TTLExpired]: "TTL expired",
  [Rep.CmdUnsupported]: "command not supported",
  [Rep.AddrUnsupported]: "address type not supported",
};

/** A request the server answered with a failure code. */
class ReplyError extends DialError {
  constructor(what: string, readonly rep: number) {
    super(
      `socks5 ${what}: ${REP_TEXT[rep] ?? `reply code ${rep}`}` +
        (rep === Rep.NotAllowed ? " (the server may need bind=true)" : ""),
      rep === Rep.NotAllowed ? "not-allowed" : "other",
    );
  }
}

/** Method negotiation: no-auth, or RFC 1929 user/pass when credentials are given. */
export async function negotiate(
  conn: Conn,
  bc: BufferedConn,
  auth: NodeOptions["auth"],
  tls?: SocksTls,
): Promise<{ conn: Conn; bc: BufferedConn }> {
  const methods: number[] = auth ? [Method.NoAuth, Method.UserPass] : [Method.NoAuth];
  if (tls) methods.push(...(auth ? [Method.Tls, Method.TlsAuth] : [Method.Tls]));
  await writeAll(conn, Uint8Array.of(VERSION, methods.length, ...methods));
  const [ver, method] = await bc.readFull(2);
  if (ver !== VERSION) throw new ProtocolError(`socks5: bad version ${ver} in method reply`);
  if (tls && (method === Method.Tls || (method === Method.TlsAuth && auth))) {
    // gost's extension: TLS on this socket, then the rest of the conversation inside it.
    conn = await tls.upgrade(conn);
    bc = new BufferedConn(conn);
  }
  if ((method === Method.UserPass || method === Method.TlsAuth) && auth) {
    const u = enc.encode(auth.username);
    const p = enc.encode(auth.password ?? "");
    if (u.length > 255 || p.length > 255) {
      throw new DialError("socks5: user name or password longer than 255 bytes", "other");
    }
    await writeAll(conn, Uint8Array.of(USERPASS_VERSION, u.length, ...u, p.length, ...p));
    const [, status] = await bc.readFull(2);
    if (status !== 0) throw new DialError("socks5: authentication failed", "not-allowed");
  } else if (method !== Method.NoAuth && !(tls && method === Method.Tls)) {
    throw new DialError(
      method === Method.NoAcceptable
        ? `socks5: no acceptable authentication method${
          auth ? "" : " (the node may need credentials)"
        }`
        : `socks5: server chose unsupported method 0x${method.toString(16)}`,
      "not-allowed",
    );
  }
  return { conn, bc };
}

/** gost's TLS methods on the client side: how to upgrade the socket when the server picks one. */
export interface SocksTls {
  upgrade(conn: Conn): Promise<Conn>;
}

/** Writes a request (one write). */
function writeRequest(conn: Conn, cmd: number, host: string, port: number): Promise<void> {
  const addr = encodeAddr(host, port);
  const req = new Uint8Array(3 + addr.length);
  req.set([VERSION, cmd, 0]);
  req.set(addr, 3);
  return writeAll(conn, req);
}

/** Reads a reply; throws ReplyError on a failure code. */
async function readReply(bc: BufferedConn, what: string): Promise<SocksAddr> {
  const [ver, rep] = await bc.readFull(3);
  if (ver !== VERSION) throw new ProtocolError(`socks5 ${what}: bad version ${ver} in reply`);
  if (rep !== Rep.Succeeded) throw new ReplyError(what, rep);
  return await readAddr(bc);
}

function tcpAddr(a: SocksAddr): Addr {
  return { transport: "tcp", hostname: a.host, port: a.port };
}

/** The bind side of the socks5 connector; one per node. */
export class Socks5Binder {
  private mode: "auto" | "mux" | "plain";
  private readonly mux: MuxConfig;

  /** Reads (consumes) the node parameters `mbind` and `mux.*`. */
  constructor(private readonly o: NodeOptions) {
    const p = o.params;
    this.mode = p.has("mbind") ? (p.bool("mbind") ? "mux" : "plain") : "auto";
    this.mux = muxConfigFromParams(p);
  }

  /** Remote TCP forwarding: asks the node to listen on `address` (see the module comment). */
  async bind(conn: Conn, address: string, opts: BindOptions): Promise<BindListener> {
    const { host, port } = splitHostPort(address);
    const bc = new BufferedConn(conn);
    const useMux = this.mode !== "plain";
    const what = useMux ? `MUX-BIND ${address}` : `BIND 0.0.0.0:${port}`;
    const bound = await withDeadline(conn, opts.timeout, `socks5 ${what}`, async () => {
      await negotiate(conn, bc, this.o.auth);
      await writeRequest(conn, useMux ? CMD_MUX_BIND : Cmd.Bind, useMux ? host : "0.0.0.0", port);
      try {
        return await readReply(bc, what);
      } catch (e) {
        const unknown = (e instanceof ReplyError && e.rep === Rep.CmdUnsupported) ||
          (e instanceof ProtocolError && /end of stream/.test(e.message));
        if (useMux && this.mode === "auto" && unknown) {
          this.mode = "plain";
          throw new BindFallbackError(
            `socks5 node ${this.o.addr} does not support MUX-BIND (${errMsg(e)}); ` +
              `using standard BIND, one connection at a time`,
          );
        }
        throw e;
      }
    });
    if (!useMux) return new PlainBindListener(bc, tcpAddr(bound));
    if (this.mode === "auto") this.mode = "mux";
    const session = new MuxSession(bc, { client: false, config: this.mux, log: this.o.log });
    return new MuxBindListener(session, tcpAddr(bound), this.o.log);
  }

  /** Remote UDP forwarding: UDP-TUN in bind mode; the far end binds `address`. */
  async bindUDP(conn: Conn, address: string, opts: BindOptions) {
    const { host, port } = splitHostPort(address);
    const bc = new BufferedConn(conn);
    const what = `UDP-TUN ${address}`;
    const bound = await withDeadline(conn, opts.timeout, `socks5 ${what}`, async () => {
      await negotiate(conn, bc, this.o.auth);
      await writeRequest(conn, CMD_UDP_TUN, host, port);
      return await readReply(bc, what);
    });
    return new UdpTunPacketConn(bc, { transport: "udp", hostname: bound.host, port: bound.port });
  }
}

/** A Conn that reports given addresses (a far-end peer's stream stands for that peer). */
class PeerConn implements Conn {
  constructor(
    private readonly inner: Conn,
    readonly localAddr: Addr,
    readonly remoteAddr: Addr,
  ) {}
  read(p: Uint8Array): Promise<number | null> {
    return this.inner.read(p);
  }
  write(p: Uint8Array): Promise<number> {
    return this.inner.write(p);
  }
  closeWrite(): Promise<void> {
    return this.inner.closeWrite();
  }
  close(): void {
    this.inner.close();
  }
}

/** Standard BIND: waits for the second reply; the control connection then is the peer. */
class PlainBindListener implements BindListener {
  readonly oneShot = true;
  private used = false;
  constructor(private readonly bc: BufferedConn, readonly addr: Addr) {}

  async accept(): Promise<Conn> {
    if (this.used) throw new Deno.errors.BadResource("a BIND yields one connection");
    this.used = true;
    let peer: SocksAddr;
    try {
      peer = await readReply(this.bc, "BIND (peer)");
    } catch (e) {
      this.bc.close();
      throw e;
    }
    return new PeerConn(this.bc, this.addr, tcpAddr(peer));
  }

  close(): void {
    if (!this.used) this.bc.close();
    this.used = true;
  }
}

/**
 * MUX-BIND: every stream the far end opens is a peer. Streams are introduced concurrently (a
 * slow one does not hold up the others) and handed out in arrival order.
 */
class MuxBindListener implements BindListener {
  private readonly ready: Conn[] = [];
  private waiters: { resolve: (c: Conn) => void; reject: (e: Error) => void }[] = [];

  constructor(private readonly session: MuxSession, readonly addr: Addr, private log: Logger) {
    this.acceptLoop();
  }

  private async acceptLoop(): Promise<void> {
    for (;;) {
      let stream;
      try {
        stream = await this.session.acceptStream();
      } catch (e) {
        for (const w of this.waiters.splice(0)) w.reject(e as Error);
        return;
      }
      const s = stream;
      const bc = new BufferedConn(s);
      withDeadline(s, STREAM_REPLY_TIMEOUT, "MUX-BIND stream reply", () => readReply(bc, "peer"))
        .then((peer) => {
          s.setAddrs(this.addr, tcpAddr(peer));
          const w = this.waiters.shift();
          if (w) w.resolve(bc);
          else this.ready.push(bc);
        }, (e) => {
          this.log.debug(`MUX-BIND stream ${s.id}: ${errMsg(e)}`);
          s.close();
        });
    }
  }

  accept(): Promise<Conn> {
    const c = this.ready.shift();
    if (c) return Promise.resolve(c);
    if (this.session.error) return Promise.reject(this.session.error);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  close(): void {
    this.session.close();
    for (const c of this.ready.splice(0)) c.close();
  }
}

/**
 * SOCKS5 server (handler `socks5`, alias `socks`), RFC 1928 / RFC 1929 as gost v3 serves it:
 * no-auth or user/pass method negotiation, CONNECT through the router, and — when enabled with
 * `udp=true` / `bind=true` — UDP ASSOCIATE and BIND (direct only; through a chain they are a
 * later step and answered with a general failure), plus gost's extensions for remote
 * forwarding: MUX-BIND (0xF2, mbind.ts) and UDP-TUN (0xF3, udp_tun_server.ts).
 */
import { lazyServerTLS } from "../../transport/tls/config.ts";
import { TLSServer } from "../../transport/tls/server.ts";
import { BufferedConn } from "../../core/bufconn.ts";
import { addrString, closeQuietly, type Conn, writeAll } from "../../core/conn.ts";
import { withDeadline } from "../../core/deadline.ts";
import { classifyNetError, ConfigError, errMsg } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { relay } from "../../core/relay.ts";
import {
  ENCRYPTED_TRANSPORTS,
  type HandleContext,
  type Handler,
  type HandlerOptions,
  registerHandler,
} from "../../registry.ts";
import { ipVersion, normalizeIP, SocksAddrError, socksAddrString } from "../socks/addr.ts";
import { serveBind } from "./bind.ts";
import { CMD_MUX_BIND, type MuxBindOptions, serveMuxBind } from "./mbind.ts";
import { CMD_UDP_TUN } from "./udp_tun.ts";
import { serveUdpTun } from "./udp_tun_server.ts";
import { muxConfigFromParams } from "../../transport/mux/config.ts";
import { HostResolver } from "../../core/resolve.ts";
import { serveUdpAssociate, type UdpAssociateOptions } from "./udp.ts";
import {
  Cmd,
  encodeMethodReply,
  encodeReply,
  encodeUserPassReply,
  Method,
  readGreeting,
  readRequest,
  readUserPass,
  Rep,
  type Request,
  USERPASS_VERSION,
} from "./wire.ts";

/** The SOCKS5 handler. Parameters are read (and so validated) once, in the constructor. */
export class Socks5Handler implements Handler {
  private readonly readTimeout: number;
  private readonly idleTimeout: number;
  private readonly enableUdp: boolean;
  private readonly enableBind: boolean;
  private readonly udp: UdpAssociateOptions;
  private readonly mbind: MuxBindOptions;
  /** gost's TLS methods (0x80/0x82); undefined with `notls=true`. */
  private readonly tls?: () => Promise<TLSServer>;

  constructor(private readonly o: HandlerOptions) {
    const p = o.params;
    // Not over a transport that already encrypts (a second TLS layer would only cost).
    if (!p.bool("notls", false) && !ENCRYPTED_TRANSPORTS.has(o.transport ?? "tcp")) {
      const cfg = lazyServerTLS(p, o.log);
      let server: Promise<TLSServer> | undefined;
      this.tls = () => server ??= cfg().then((c) => new TLSServer(c));
    }
    // gost treats a zero or negative readTimeout as "use the default".
    const rt = p.duration("readTimeout", 15_000);
    this.readTimeout = rt > 0 ? rt : 15_000;
    this.idleTimeout = p.duration("idleTimeout", 0);
    this.enableUdp = p.bool("udp", false);
    this.enableBind = p.bool("bind", false);
    const publicAddr = p.str("publicAddr", "");
    if (publicAddr && !ipVersion(publicAddr)) {
      throw new ConfigError(`${p.where}: parameter "publicAddr": "${publicAddr}" is not an IP`);
    }
    this.udp = {
      // gost clamps the buffer size to [512, 64 KiB].
      bufferSize: Math.min(Math.max(p.int(["udp.bufferSize", "udpBufferSize"], 4096), 512), 65536),
      bindMin: p.int("udp.bindRange.min", 0, 0, 65535),
      bindMax: p.int("udp.bindRange.max", 0, 0, 65535),
      publicAddr: publicAddr ? normalizeIP(publicAddr) : "",
      resolver: new HostResolver(o.router.names),
    };
    // gost's MUX-BIND (remote forwarding): `comp=true` for gost v2 clients, `mux.*` session knobs.
    this.mbind = {
      compat: p.bool("comp", false),
      mux: muxConfigFromParams(p),
      idleTimeout: this.idleTimeout,
      publicAddr: this.udp.publicAddr,
    };
    const { bindMin: lo, bindMax: hi } = this.udp;
    if ((lo || hi) && (lo === 0 || hi < lo)) {
      throw new ConfigError(
        `${p.where}: parameters "udp.bindRange.min"/"udp.bindRange.max": ${lo}-${hi} is not a port range`,
      );
    }
  }

  async handle(conn: Conn, ctx: HandleContext): Promise<void> {
    let bc = conn instanceof BufferedConn ? conn : new BufferedConn(conn);
    const client = addrString(bc.remoteAddr);
    let req: Request | null;
    try {
      const raw = bc;
      [req, bc] = await withDeadline(
        raw,
        this.readTimeout,
        "socks5 handshake",
        () => this.handshake(raw, ctx.log),
      );
    } catch (e) {
      ctx.log.debug(`socks5 handshake from ${client} failed: ${errMsg(e)}`);
      closeQuietly(bc);
      return;
    }
    if (!req) {
      closeQuietly(bc);
      return;
    }
    switch (req.cmd) {
      case Cmd.Connect:
        return await this.connect(bc, req, ctx.log);
      case Cmd.UdpAssociate:
        if (!this.enableUdp) {
          return await this.refuse(bc, "UDP relay is disabled (udp=true enables it)", ctx.log);
        }
        // Through a chain, each target gets a UDP path from the router (its last hop must
        // carry UDP: SOCKS5, relay, ssu, …); otherwise the association has its own sockets.
        return await serveUdpAssociate(bc, req, {
          ...this.udp,
          allow: this.allow("udp"),
          dialUDP: this.o.router.hasChain ? (t) => this.o.router.dialUDP(t) : undefined,
        }, ctx.log);
      case Cmd.Bind:
        if (!this.enableBind) {
          return await this.refuse(bc, "BIND is disabled (bind=true enables it)", ctx.log);
        }
        if (this.o.router.hasChain) {
          ctx.log.warn("socks5: BIND through a chain is not supported yet");
          return await this.reply(bc, Rep.Failure);
        }
        if (!this.bindAllowed("rtcp", req)) return await this.reply(bc, Rep.NotAllowed);
        return await serveBind(bc, req, { idleTimeout: this.idleTimeout }, ctx.log);
      case CMD_MUX_BIND:
        if (!this.enableBind) {
          return await this.refuse(bc, "BIND is disabled (bind=true enables it)", ctx.log);
        }
        if (this.o.router.hasChain) {
          ctx.log.warn("socks5: MUX-BIND through a chain is not supported yet");
          return await this.reply(bc, Rep.Failure);
        }
        if (!this.bindAllowed("rtcp", req)) return await this.reply(bc, Rep.NotAllowed);
        return await serveMuxBind(bc, req, this.mbind, ctx.log);
      case CMD_UDP_TUN: {
        // Port ≠ 0 binds that UDP port (rudp's far end); port 0 relays anywhere (UDP relay).
        const bindMode = req.addr.port !== 0;
        if (bindMode ? !this.enableBind : !this.enableUdp) {
          const why = bindMode
            ? "BIND is disabled (bind=true enables it)"
            : "UDP relay is disabled (udp=true enables it)";
          return await this.refuse(bc, why, ctx.log);
        }
        if (this.o.router.hasChain) {
          ctx.log.warn("socks5: UDP-TUN through a chain is not supported yet");
          return await this.reply(bc, Rep.Failure);
        }
        if (bindMode && !this.bindAllowed("rudp", req)) return await this.reply(bc, Rep.NotAllowed);
        return await serveUdpTun(bc, req, {
          bufferSize: 65535, // whole datagrams, as for UDP ASSOCIATE
          resolver: this.udp.resolver,
          allow: this.allow("udp"),
          idleTimeout: this.idleTimeout,
        }, ctx.log);
      }
      default:
        ctx.log.debug(`socks5: unsupported command 0x${req.cmd.toString(16)} from ${client}`);
        return await this.reply(bc, Rep.CmdUnsupported);
    }
  }

  /** The router's bypass/permissions check for relayed datagrams, if the service has one. */
  private allow(action: "udp"): ((target: string) => boolean) | undefined {
    const r = this.o.router;
    return r.allows ? (target) => r.allows!(action, target) : undefined;
  }

  /** Permissions for a bind (gost's rtcp/rudp actions) at the requested address. */
  private bindAllowed(action: "rtcp" | "rudp", req: Request): boolean {
    return this.o.router.allows?.(action, socksAddrString(req.addr)) ?? true;
  }

  /**
   * Method negotiation, optional user/pass, and the request. Returns null when the client was
   * turned away (the reply that applies is already written); throws on malformed input.
   */
  private async handshake(
    bc: BufferedConn,
    log: Logger,
  ): Promise<[Request | null, BufferedConn]> {
    const methods = await readGreeting(bc);
    const method = this.selectMethod(methods);
    await writeAll(bc, encodeMethodReply(method));
    if (method === Method.NoAcceptable) {
      log.debug(
        `socks5: no acceptable method among [${[...methods].join(",")}]${
          this.o.auther ? " (authentication is required)" : ""
        }`,
      );
      return [null, bc];
    }
    if (method === Method.Tls || method === Method.TlsAuth) {
      // gost's extension: the rest of the conversation runs inside TLS on this socket.
      const tls = await (await this.tls!()).handshake(bc, 0);
      bc = new BufferedConn(tls);
      log.debug(`socks5: TLS method 0x${method.toString(16)} negotiated`);
    }
    if (method === Method.UserPass || method === Method.TlsAuth) {
      // A bad sub-negotiation version still gets a failure status before the close.
      if ((await bc.peek(1))[0] !== USERPASS_VERSION) {
        await writeAll(bc, encodeUserPassReply(false)).catch(() => {});
      }
      const creds = await readUserPass(bc);
      // Without an auther, user/pass is accepted with any credentials (as gost does), so a
      // client that offers only 0x02 still gets through an open proxy.
      const ok = !this.o.auther ||
        await this.o.auther.verify(creds.username, creds.password, {
          client: addrString(bc.remoteAddr),
          service: this.o.service,
        });
      await writeAll(bc, encodeUserPassReply(ok));
      if (!ok) {
        log.info(`socks5: authentication failed for user "${creds.username}"`);
        return [null, bc];
      }
    }
    try {
      return [await readRequest(bc), bc];
    } catch (e) {
      if (e instanceof SocksAddrError && e.reason !== "truncated") {
        // Unknown ATYP → 0x08; an empty domain name names no host → general failure.
        await writeAll(bc, encodeReply(e.reason === "atyp" ? Rep.AddrUnsupported : Rep.Failure))
          .catch(() => {});
      }
      throw e;
    }
  }

  /**
   * Picks a method as gost v3 does: with authentication, TLS-AUTH (0x82) when offered, else
   * user/pass; without, TLS (0x80) when offered, else no-auth, or user/pass for a client that
   * offers only that. `notls=true` leaves the TLS methods out.
   */
  private selectMethod(offered: Uint8Array): number {
    if (this.o.auther) {
      if (this.tls && offered.includes(Method.TlsAuth)) return Method.TlsAuth;
      return offered.includes(Method.UserPass) ? Method.UserPass : Method.NoAcceptable;
    }
    if (this.tls && offered.includes(Method.Tls)) return Method.Tls;
    if (offered.includes(Method.NoAuth)) return Method.NoAuth;
    if (offered.includes(Method.UserPass)) return Method.UserPass;
    return Method.NoAcceptable;
  }

  private async connect(bc: BufferedConn, req: Request, log: Logger): Promise<void> {
    const target = socksAddrString(req.addr);
    const client = addrString(bc.remoteAddr);
    log.debug(`socks5 connect ${client} → ${target}`);
    let out: Conn;
    try {
      out = await this.o.router.dial("tcp", target);
    } catch (e) {
      const code = classifyNetError(e);
      const rep = replyFor(e);
      // A target that is down is the client's business; a failing chain or an odd error is
      // the operator's.
      const msg = `socks5 connect ${client} → ${target}: ${errMsg(e)} (reply 0x0${rep})`;
      if (this.o.router.hasChain || code === "other") log.warn(msg);
      else log.debug(msg);
      await this.reply(bc, rep);
      return;
    }
    // Announce the outgoing socket's address when it is a real IP (a layered transport may not
    // have one), else 0.0.0.0:0.
    const la = out.localAddr;
    const bound = la && ipVersion(la.hostname) ? la : { hostname: "0.0.0.0", port: 0 };
    try {
      await writeAll(bc, encodeReply(Rep.Succeeded, normalizeIP(bound.hostname), bound.port));
    } catch (e) {
      log.debug(`socks5 connect ${client} → ${target}: reply failed: ${errMsg(e)}`);
      closeQuietly(out);
      closeQuietly(bc);
      return;
    }
    await relay(bc, out, { idleTimeout: this.idleTimeout });
  }

  private async refuse(bc: BufferedConn, why: string, log: Logger): Promise<void> {
    log.debug(`socks5: ${why}`);
    await this.reply(bc, Rep.NotAllowed);
  }

  /** Writes a failure reply (one write) and closes. */
  private async reply(bc: BufferedConn, rep: number): Promise<void> {
    await writeAll(bc, encodeReply(rep)).catch(() => {});
    closeQuietly(bc);
  }
}

/** Maps a dial failure to a SOCKS5 reply code. */
export function replyFor(e: unknown): number {
  switch (classifyNetError(e)) {
    case "refused":
      return Rep.ConnRefused;
    case "timeout":
      return Rep.TTLExpired;
    case "not-allowed":
      return Rep.NotAllowed;
    case "unreachable":
      return /network (is )?unreachable|ENETUNREACH/i.test(errMsg(e))
        ? Rep.NetUnreachable
        : Rep.HostUnreachable;
    default:
      return Rep.Failure;
  }
}

registerHandler(["socks5", "socks"], (o) => new Socks5Handler(o));

/**
 * relay handler (server side of gost's `relay`, `-L relay://[user:pass@]:port[/target,…]`), as
 * gost v3 serves it: read one request (within `readTimeout`), check its UserAuth feature against
 * the service's auther, then CONNECT — TCP, or UDP when the request has the `FUDP` flag or a
 * Network feature saying udp, with datagrams framed on the stream. With forward targets the
 * service is a forwarder: the client's Addr feature is ignored and the target is picked by the
 * forwarder's selector (as gost v3 does).
 *
 * The response goes out glued to the first bytes from the target (gost's default,
 * `nodelay=false`), or at once with `nodelay=true`; unlike gost a held response also leaves
 * after FLUSH_DELAY_MS, so a client that waits for it never waits for the target to speak.
 * Status codes are gost's: 1 for a malformed request, 2 bad credentials, 3 bypass/permissions
 * or a disabled BIND, 7 (CONNECT) / 6 (forward) for a target that cannot be reached.
 */
import { BufferedConn } from "../../core/bufconn.ts";
import { addrString, closeQuietly, type Conn, writeAll } from "../../core/conn.ts";
import { withDeadline } from "../../core/deadline.ts";
import { ConfigError, DialError, errMsg } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { relay } from "../../core/relay.ts";
import {
  type HandleContext,
  type Handler,
  type HandlerOptions,
  registerHandler,
} from "../../registry.ts";
import type { Target } from "../../chain/group.ts";
import { relayDatagrams } from "../../transport/udp/relay.ts";
import { socksAddrString } from "../socks/addr.ts";
import { DeferredConn, FLUSH_DELAY_MS, FramedConn } from "./conn.ts";
import {
  Cmd,
  CMD_MASK,
  encodeHeader,
  FLAG_UDP,
  Network,
  readHeader,
  type RelayHeader,
  RelayHeaderError,
  Status,
  STATUS_TEXT,
} from "./wire.ts";

/** gost's handshake read deadline. */
const DEFAULT_READ_TIMEOUT = 15_000;

export class RelayHandler implements Handler {
  private readonly readTimeout: number;
  private readonly idleTimeout: number;
  private readonly noDelay: boolean;

  constructor(private readonly o: HandlerOptions) {
    const p = o.params;
    const rt = p.duration("readTimeout", DEFAULT_READ_TIMEOUT);
    this.readTimeout = rt > 0 ? rt : DEFAULT_READ_TIMEOUT;
    this.idleTimeout = Math.max(p.duration("idleTimeout", 0), 0);
    this.noDelay = p.bool("nodelay", false);
    if (p.bool("bind", false)) {
      throw new ConfigError(
        `${p.where}: relay handler: bind=true (remote forwarding over relay) is not supported yet`,
      );
    }
  }

  async handle(conn: Conn, ctx: HandleContext): Promise<void> {
    const bc = conn instanceof BufferedConn ? conn : new BufferedConn(conn);
    const client = addrString(bc.remoteAddr);
    const log = ctx.log;
    let req: RelayHeader;
    try {
      req = await withDeadline(bc, this.readTimeout, "relay handshake", () => readHeader(bc));
    } catch (e) {
      log.debug(`relay: request from ${client}: ${errMsg(e)}`);
      // A header that arrived but breaks the protocol gets an answer; a stalled or cut one not.
      if (e instanceof RelayHeaderError) return await this.reply(bc, Status.BadRequest);
      closeQuietly(bc);
      return;
    }
    if (req.unknown.length) {
      log.debug(`relay: ${client}: ignored unknown feature types ${req.unknown.join(",")}`);
    }
    if (this.o.auther) {
      const ok = await this.o.auther.verify(req.user?.username ?? "", req.user?.password ?? "", {
        client,
        service: this.o.service,
      });
      if (!ok) {
        log.info(`relay: authentication failed for user "${req.user?.username ?? ""}"`);
        return await this.reply(bc, Status.Unauthorized);
      }
    }
    let udp = (req.code & FLAG_UDP) !== 0;
    if (!udp && req.network !== undefined && req.network !== Network.TCP) {
      if (req.network !== Network.UDP) {
        log.debug(`relay: ${client}: network 0x${req.network.toString(16)} is not supported`);
        return await this.reply(bc, Status.BadRequest);
      }
      udp = true;
    }
    // As gost v3: a forwarder serves every request with its own targets.
    if (this.o.forwarder) return await this.forward(bc, udp, log);
    const cmd = req.code & CMD_MASK;
    switch (cmd) {
      case 0: // gost v2 clients send 0x00 / 0x80 for CONNECT
      case Cmd.Connect:
        return await this.connect(bc, req, udp, log);
      case Cmd.Bind:
        log.debug(`relay: ${client}: BIND is disabled`);
        return await this.reply(bc, Status.Forbidden);
      default:
        log.debug(`relay: ${client}: unsupported command 0x${cmd.toString(16)}`);
        return await this.reply(bc, Status.BadRequest);
    }
  }

  /** CONNECT to the client's target (Addr feature). */
  private async connect(
    bc: BufferedConn,
    req: RelayHeader,
    udp: boolean,
    log: Logger,
  ): Promise<void> {
    const client = addrString(bc.remoteAddr);
    if (!req.addr) {
      log.debug(`relay: ${client}: CONNECT without a target`);
      return await this.reply(bc, Status.BadRequest);
    }
    const target = socksAddrString(req.addr);
    const what = `relay ${udp ? "UDP " : ""}connect ${client} → ${target}`;
    log.debug(what);
    let out: Conn;
    try {
      out = udp ? await this.o.router.dialUDP(target) : await this.o.router.dial("tcp", target);
    } catch (e) {
      const status = e instanceof DialError && e.code === "not-allowed"
        ? Status.Forbidden
        : Status.NetworkUnreachable;
      this.logDialError(log, `${what}: ${errMsg(e)} (${STATUS_TEXT[status]})`, e);
      return await this.reply(bc, status);
    }
    await this.serve(bc, out, udp, log, what);
  }

  /** Forward mode: the forwarder's targets, each tried at most once, failures marked. */
  private async forward(bc: BufferedConn, udp: boolean, log: Logger): Promise<void> {
    const group = this.o.forwarder!;
    const client = addrString(bc.remoteAddr);
    const tried = new Set<Target>();
    let out: Conn | undefined;
    let status: number = Status.ServiceUnavailable; // no target at all
    let target = "";
    for (let t; !out && (t = group.select({ exclude: tried, key: bc.remoteAddr.hostname }));) {
      tried.add(t);
      target = t.addr;
      try {
        out = udp ? await this.o.router.dialUDP(t.addr) : await this.o.router.dial("tcp", t.addr);
        t.marker.reset();
      } catch (e) {
        const refused = e instanceof DialError && e.code === "not-allowed";
        if (!refused) t.marker.mark();
        status = refused ? Status.Forbidden : Status.HostUnreachable;
        this.logDialError(log, `relay forward ${client} → ${t.addr}: ${errMsg(e)}`, e);
      }
    }
    if (!out) {
      log.debug(`relay forward ${client}: ${STATUS_TEXT[status]}`);
      return await this.reply(bc, status);
    }
    await this.serve(bc, out, udp, log, `relay ${udp ? "UDP " : ""}forward ${client} → ${target}`);
  }

  /** Answers OK (now or with the first bytes back) and relays until either side is done. */
  private async serve(
    bc: BufferedConn,
    out: Conn,
    udp: boolean,
    log: Logger,
    what: string,
  ): Promise<void> {
    const ok = encodeHeader({ code: Status.OK });
    if (this.noDelay) {
      try {
        await writeAll(bc, ok);
      } catch (e) {
        log.debug(`${what}: reply failed: ${errMsg(e)}`);
        closeQuietly(out);
        closeQuietly(bc);
        return;
      }
    }
    const stream = new DeferredConn(bc, bc, this.noDelay ? null : ok, FLUSH_DELAY_MS);
    if (udp) {
      const st = await relayDatagrams(new FramedConn(stream, bc), out);
      log.debug(`${what} closed: ${st.aToB} datagrams out, ${st.bToA} back`);
    } else {
      await relay(stream, out, { idleTimeout: this.idleTimeout });
    }
  }

  private logDialError(log: Logger, msg: string, e: unknown): void {
    // A refused or dead target is the client's business; a failing chain is the operator's.
    if (this.o.router.hasChain && !(e instanceof DialError && e.code === "not-allowed")) {
      log.warn(msg);
    } else log.debug(msg);
  }

  /** Writes a failure response and closes. */
  private async reply(bc: BufferedConn, status: number): Promise<void> {
    await writeAll(bc, encodeHeader({ code: status })).catch(() => {});
    closeQuietly(bc);
  }
}

registerHandler("relay", (o) => new RelayHandler(o));

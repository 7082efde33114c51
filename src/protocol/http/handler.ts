/**
 * HTTP proxy server (handler `http`), as gost v3 serves it: CONNECT tunnels, plain
 * absolute-form request forwarding with keep-alive, Basic proxy authentication, and probe
 * resistance (decoy answers for unauthenticated clients, with an optional knock host).
 */
import { BufferedConn } from "../../core/bufconn.ts";
import { addrString, closeQuietly, type Conn, writeAll } from "../../core/conn.ts";
import { withDeadline } from "../../core/deadline.ts";
import { classifyNetError, ConfigError, errMsg } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { relay } from "../../core/relay.ts";
import {
  type HandleContext,
  type Handler,
  type HandlerOptions,
  registerHandler,
} from "../../registry.ts";
import { parseBasicAuth } from "./auth.ts";
import { requestFraming } from "./body.ts";
import { Forwarder } from "./forward.ts";
import { wantsClose } from "./hop.ts";
import { parseProbeResist, type ProbeResist, serveDecoy } from "./probe.ts";
import {
  type AbsoluteTarget,
  type Authority,
  decodeServerName,
  dialAddress,
  knockMatch,
  parseAbsoluteTarget,
  parseAuthority,
} from "./target.ts";
import {
  clip,
  HttpError,
  latin1Encode,
  MAX_REQUEST_HEAD,
  parseRequestHead,
  readHeadBytes,
  type RequestHead,
  simpleResponse,
} from "./wire.ts";

/** gost's handshake read deadline. */
const DEFAULT_READ_TIMEOUT = 15_000;
/** How long an idle keep-alive client connection waits for its next request. */
const KEEPALIVE_TIMEOUT = 60_000;
/** After an error reply, how long (and how much) to drain the client before closing. */
const LINGER_MS = 2_000;
const LINGER_BYTES = 4 << 20;

/** The HTTP proxy handler. Parameters are read (and so validated) once, in the constructor. */
export class HttpHandler implements Handler {
  /** True when `udp=true` was given (UDP over HTTP, not implemented yet). */
  readonly udpRequested: boolean;
  private readonly readTimeout: number;
  private readonly idleTimeout: number;
  private readonly proxyAgent: string;
  private readonly realm: string;
  private readonly probe?: ProbeResist;
  private readonly knock: string[];
  private readonly connectOk: Uint8Array;

  constructor(private readonly o: HandlerOptions) {
    const p = o.params;
    // As gost: 0 means the default, a negative value turns the deadline off.
    const rt = p.duration("readTimeout", DEFAULT_READ_TIMEOUT);
    this.readTimeout = rt === 0 ? DEFAULT_READ_TIMEOUT : Math.max(rt, 0);
    this.idleTimeout = Math.max(p.duration("idleTimeout", 0), 0);
    this.proxyAgent = p.str(["proxyAgent", "http.proxyAgent"], "") || "gost/3.0";
    this.realm = (p.str("authBasicRealm", "") || "gost").replace(/["\\]/g, "\\$&");
    const pr = p.str(["probeResist", "probe_resist"], "");
    this.probe = pr ? parseProbeResist(pr, p.where) : undefined;
    this.knock = p.list("knock");
    this.udpRequested = p.bool("udp", false);
    this.connectOk = latin1Encode(
      `HTTP/1.1 200 Connection established\r\nProxy-Agent: ${this.proxyAgent}\r\n\r\n`,
    );
  }

  async handle(conn: Conn, ctx: HandleContext): Promise<void> {
    // The auto handler passes a BufferedConn holding the peeked first byte: reuse it.
    const bc = conn instanceof BufferedConn ? conn : new BufferedConn(conn);
    const fwd = new Forwarder(
      {
        router: this.o.router,
        readTimeout: this.readTimeout,
        idleTimeout: this.idleTimeout,
        proxyAgent: this.proxyAgent,
      },
      bc,
      ctx.log,
    );
    try {
      await this.serve(bc, fwd, ctx.log);
    } finally {
      fwd.close();
      closeQuietly(bc);
    }
  }

  /** The request loop of one client connection. */
  private async serve(bc: BufferedConn, fwd: Forwarder, log: Logger): Promise<void> {
    const client = addrString(bc.remoteAddr);
    for (let first = true;; first = false) {
      let raw: Uint8Array | null;
      try {
        if (!first) {
          const wait = this.idleTimeout || KEEPALIVE_TIMEOUT;
          const next = await withDeadline(bc, wait, "keep-alive wait", () => bc.peekSome());
          if (next === null) return; // the client is done
        }
        raw = await withDeadline(
          bc,
          this.readTimeout,
          first ? "http handshake" : "http request head",
          () => readHeadBytes(bc, "request", MAX_REQUEST_HEAD),
        );
      } catch (e) {
        return await this.badRequest(bc, e, client, log);
      }
      if (raw === null) {
        if (first) log.debug(`http: ${client} closed before sending a request`);
        return;
      }
      let req: RequestHead;
      try {
        req = parseRequestHead(raw);
      } catch (e) {
        return await this.badRequest(bc, e, client, log);
      }
      let keep: boolean;
      try {
        keep = await this.serveRequest(bc, raw, req, fwd, log);
      } catch (e) {
        log.debug(`http: ${client}: ${errMsg(e)}`);
        return;
      }
      if (!keep) return await lingerClose(bc);
    }
  }

  /** Answers a head that could not be read or parsed (if it was not a timeout) and closes. */
  private async badRequest(
    bc: BufferedConn,
    e: unknown,
    client: string,
    log: Logger,
  ): Promise<void> {
    log.debug(`http: ${client}: ${errMsg(e)}`);
    if (e instanceof HttpError) {
      await writeAll(bc, simpleResponse(e.status, [["Connection", "close"]])).catch(() => {});
      await lingerClose(bc);
    }
  }

  /** Serves one request; resolves to true when the connection may carry another. */
  private async serveRequest(
    bc: BufferedConn,
    raw: Uint8Array,
    req: RequestHead,
    fwd: Forwarder,
    log: Logger,
  ): Promise<boolean> {
    const client = addrString(bc.remoteAddr);
    const isConnect = req.method === "CONNECT";
    let target: AbsoluteTarget | Authority | null = null;
    let targetError = "";
    try {
      target = isConnect ? parseAuthority(req.target, 80) : parseAbsoluteTarget(req.target);
      if (target) target = withGostTarget(target, req);
    } catch (e) {
      targetError = errMsg(e);
    }

    if (this.o.auther) {
      const creds = parseBasicAuth(req.headers.get("proxy-authorization"));
      const info = { client, service: this.o.service };
      if (!creds || !(await this.o.auther.verify(creds.username, creds.password, info))) {
        if (creds) log.info(`http: authentication failed for user "${clip(creds.username)}"`);
        else log.debug(`http: ${client}: proxy authentication required`);
        // Probe resistance hides the proxy unless the request names a knock host.
        if (this.probe && !(this.knock.length && knockMatch(target?.host ?? "", this.knock))) {
          log.debug(`http: ${client}: probe resistance (${this.probe.type})`);
          await serveDecoy(this.probe, bc, raw, {
            router: this.o.router,
            readTimeout: this.readTimeout || DEFAULT_READ_TIMEOUT,
            idleTimeout: this.idleTimeout,
            log,
          });
          return false;
        }
        return await this.requireAuth(bc, req);
      }
    }

    if (
      req.method === "PRI" || !target ||
      (!isConnect && (target as AbsoluteTarget).scheme !== "http")
    ) {
      log.debug(
        `http: ${client}: ${
          targetError || `cannot proxy "${req.method} ${clip(req.target, 80)}"`
        } (400)`,
      );
      await this.reply(bc, 400, false);
      return false;
    }
    if (req.headers.get("x-gost-protocol")?.toLowerCase() === "udp") {
      log.debug(`http: ${client}: UDP over HTTP is not supported yet (403)`);
      await this.reply(bc, 403, true);
      return false;
    }
    if (isConnect) {
      fwd.close();
      await this.tunnel(bc, target, log);
      return false;
    }
    return await fwd.roundTrip(req, target as AbsoluteTarget);
  }

  /** 407 with the Basic challenge; the connection stays open when it safely can. */
  private async requireAuth(bc: BufferedConn, req: RequestHead): Promise<boolean> {
    let keep = !wantsClose(req.version, req.headers);
    try {
      // Unread body bytes would be taken for the next request: close instead.
      if (requestFraming(req.headers).kind !== "none") keep = false;
    } catch {
      keep = false;
    }
    const headers: [string, string][] = [
      ["Proxy-Authenticate", `Basic realm="${this.realm}"`],
      ["Proxy-Agent", this.proxyAgent],
    ];
    if (!keep) headers.push(["Connection", "close"]);
    else if (req.version === "HTTP/1.0") headers.push(["Connection", "keep-alive"]);
    await writeAll(bc, simpleResponse(407, headers));
    return keep;
  }

  /** CONNECT: dial, answer 200, relay (bytes pipelined after the head included). */
  private async tunnel(bc: BufferedConn, target: Authority, log: Logger): Promise<void> {
    const addr = dialAddress(target);
    const client = addrString(bc.remoteAddr);
    log.debug(`http CONNECT ${client} → ${addr}`);
    let out: Conn;
    try {
      out = await this.o.router.dial("tcp", addr);
    } catch (e) {
      const code = classifyNetError(e);
      // A target the bypass or permissions refuse is 403, as in gost.
      const status = code === "timeout" ? 504 : code === "not-allowed" ? 403 : 502;
      const msg = `http CONNECT ${client} → ${addr}: ${errMsg(e)} (${status})`;
      if (this.o.router.hasChain || code === "other") log.warn(msg);
      else log.debug(msg);
      await this.reply(bc, status, true);
      return;
    }
    try {
      await writeAll(bc, this.connectOk);
    } catch (e) {
      log.debug(`http CONNECT ${client} → ${addr}: reply failed: ${errMsg(e)}`);
      closeQuietly(out);
      return;
    }
    await relay(bc, out, { idleTimeout: this.idleTimeout });
  }

  /** An error response that ends the connection. */
  private async reply(bc: BufferedConn, status: number, agent: boolean): Promise<void> {
    const headers: [string, string][] = agent ? [["Proxy-Agent", this.proxyAgent]] : [];
    headers.push(["Connection", "close"]);
    await writeAll(bc, simpleResponse(status, headers)).catch(() => {});
  }
}

/**
 * gost v2 clients may hide the real host in `Gost-Target` / `X-Gost-Target` (checksummed);
 * a valid value replaces the target host (keeping the request's port unless it has one).
 */
function withGostTarget<T extends Authority>(t: T, req: RequestHead): T {
  for (const name of ["x-gost-target", "gost-target"]) {
    const v = req.headers.get(name);
    const decoded = v ? decodeServerName(v) : undefined;
    if (decoded) {
      const a = parseAuthority(decoded, t.port);
      return { ...t, host: a.host, port: a.port, hostHeader: a.hostHeader };
    }
  }
  return t;
}

/**
 * Closes after an error reply without losing it: send FIN, then read and drop what the client
 * is still sending (bounded), so the close does not turn into a reset that discards the reply.
 */
async function lingerClose(bc: BufferedConn): Promise<void> {
  try {
    await bc.closeWrite();
    await withDeadline(bc, LINGER_MS, "linger", async () => {
      const buf = new Uint8Array(16384);
      for (let n = 0; n < LINGER_BYTES;) {
        const r = await bc.read(buf);
        if (r === null) break;
        n += r;
      }
    });
  } catch {
    // already closed or reset: nothing left to protect
  }
  closeQuietly(bc);
}

registerHandler("http", (o) => {
  const h = new HttpHandler(o);
  // Checked here rather than in the constructor so that `auto`, which also builds an
  // HttpHandler, can still pass `udp=true` on to its SOCKS5 side.
  if (h.udpRequested) {
    throw new ConfigError(
      `${o.params.where}: http handler: udp=true (UDP over HTTP) is not supported yet`,
    );
  }
  return h;
});

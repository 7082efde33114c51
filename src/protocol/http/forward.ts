/**
 * Plain-HTTP forwarding for one client connection: each absolute-form request is rewritten to
 * origin-form and sent to its host, the response streamed back. The upstream connection is kept
 * while consecutive requests go to the same host and both sides allow it; request and response
 * bodies stream concurrently (so `Expect: 100-continue` works); a `101 Switching Protocols`
 * turns the connection into a raw relay.
 */
import { BufferedConn } from "../../core/bufconn.ts";
import { addrString, closeQuietly, type Conn, writeAll } from "../../core/conn.ts";
import { withDeadline } from "../../core/deadline.ts";
import { classifyNetError, errMsg } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { relay } from "../../core/relay.ts";
import type { Router } from "../../chain/router.ts";
import { copyBody, type Framing, requestFraming, responseFraming } from "./body.ts";
import { stripHopByHop, upgradeRequested, wantsClose } from "./hop.ts";
import { type AbsoluteTarget, dialAddress } from "./target.ts";
import {
  HeaderList,
  HttpError,
  MAX_RESPONSE_HEAD,
  parseResponseHead,
  readHeadBytes,
  type RequestHead,
  type ResponseHead,
  serializeRequestHead,
  serializeResponseHead,
  simpleResponse,
} from "./wire.ts";

/** What forwarding needs from the handler's configuration. */
export interface ForwardConfig {
  router: Router;
  /** Deadline for an upstream response head (gost's ResponseHeaderTimeout); 0 = none. */
  readTimeout: number;
  /** Close after this long without traffic while streaming or relaying; 0 = never. */
  idleTimeout: number;
  /** Proxy-Agent value for the error responses dost writes itself. */
  proxyAgent: string;
}

interface Upstream {
  addr: string;
  conn: BufferedConn;
}

/** A request body being streamed upstream while the response is read. */
interface Pump {
  done: boolean;
  error?: unknown;
  promise: Promise<void>;
}

/** Closes two conns after `ms` without a touch(); a no-op when `ms` is 0. */
class IdleWatch {
  private last = Date.now();
  private timer?: ReturnType<typeof setTimeout>;
  readonly touch: () => void;
  constructor(ms: number, conns: Conn[]) {
    this.touch = ms > 0 ? () => (this.last = Date.now()) : () => {};
    if (ms <= 0) return;
    const check = () => {
      const left = this.last + ms - Date.now();
      if (left > 0) this.timer = setTimeout(check, left);
      else for (const c of conns) closeQuietly(c);
    };
    this.timer = setTimeout(check, ms);
  }
  stop(): void {
    clearTimeout(this.timer);
  }
}

/** Builds the request to send upstream: origin-form, Host from the URL, hop-by-hop removed. */
export function upstreamRequest(req: RequestHead, target: AbsoluteTarget): RequestHead {
  const h = req.headers.clone();
  const upgrade = upgradeRequested(h);
  stripHopByHop(h);
  // RFC 9112 §3.2.2: a proxy replaces Host with the authority of an absolute-form target.
  h.delete("host");
  const headers = new HeaderList([["Host", target.hostHeader], ...h.entries]);
  if (upgrade) {
    headers.add("Connection", "Upgrade");
    headers.add("Upgrade", upgrade);
  } else if (wantsClose(req.version, req.headers)) {
    headers.add("Connection", "close");
  } else if (req.version === "HTTP/1.0") {
    headers.add("Connection", "keep-alive");
  }
  // The version is passed through, so an HTTP/1.0 client never receives a chunked body.
  return { method: req.method, target: target.path, version: req.version, headers };
}

/** Per-client-connection forwarding state. */
export class Forwarder {
  private up?: Upstream;

  constructor(
    private readonly cfg: ForwardConfig,
    private readonly client: BufferedConn,
    private readonly log: Logger,
  ) {}

  /** Closes the kept upstream connection, if any. */
  close(): void {
    if (this.up) closeQuietly(this.up.conn);
    this.up = undefined;
  }

  /**
   * Forwards one request and its response. Resolves to true when the client connection may
   * carry another request. Throws only once the response has begun (the caller just closes).
   */
  async roundTrip(req: RequestHead, target: AbsoluteTarget): Promise<boolean> {
    const client = this.client;
    const addr = dialAddress(target);
    let reqFraming: Framing;
    try {
      reqFraming = requestFraming(req.headers);
    } catch (e) {
      this.log.debug(`http: ${errMsg(e)} from ${addrString(client.remoteAddr)}`);
      await this.fail((e as HttpError).status ?? 400);
      return false;
    }
    this.log.debug(
      `http ${req.method} ${
        addrString(client.remoteAddr)
      } → http://${target.hostHeader}${target.path}`,
    );
    const head = serializeRequestHead(upstreamRequest(req, target));
    const upgrade = upgradeRequested(req.headers);
    const clientClose = wantsClose(req.version, req.headers);

    let up: Upstream;
    let resp: ResponseHead;
    let pump: Pump | undefined;
    for (let attempt = 0;; attempt++) {
      let reused: boolean;
      try {
        [up, reused] = await this.upstreamFor(addr);
      } catch (e) {
        await this.dialFailed(e, addr);
        return false;
      }
      // A kept connection the server has closed meanwhile fails at once; a bodyless request
      // can then be sent again on a fresh one.
      const canRetry = reused && reqFraming.kind === "none" && attempt === 0;
      try {
        await writeAll(up.conn, head);
        if (reqFraming.kind !== "none") pump = this.startPump(up.conn, reqFraming);
        resp = await this.readFinalResponse(up.conn, req);
        break;
      } catch (e) {
        this.close();
        const stale = !(e instanceof HttpError) && !/timed out/.test(errMsg(e));
        if (canRetry && stale) {
          this.log.debug(`http: kept connection to ${addr} went stale (${errMsg(e)}); redialling`);
          continue;
        }
        this.log.debug(`http: ${addr}: ${errMsg(e)}`);
        if (pump && !pump.done) closeQuietly(client);
        else await this.fail(/timed out/.test(errMsg(e)) ? 504 : 502);
        return false;
      }
    }

    if (resp.status === 101) {
      return await this.switchProtocols(up, resp, upgrade, pump);
    }

    let framing: Framing;
    try {
      framing = responseFraming(req.method, resp.status, resp.headers);
    } catch (e) {
      this.log.debug(`http: ${addr}: ${errMsg(e)}`);
      this.close();
      await this.fail(502);
      return false;
    }
    const upstreamClose = wantsClose(resp.version, resp.headers) || framing.kind === "close";
    // As gost: a server that closes its side ends the client connection too.
    const keep = !clientClose && !upstreamClose;
    stripHopByHop(resp.headers);
    if (framing.kind === "chunked") resp.headers.delete("content-length");
    if (!keep) resp.headers.add("Connection", "close");
    else if (req.version === "HTTP/1.0") resp.headers.add("Connection", "keep-alive");

    const watch = new IdleWatch(this.cfg.idleTimeout, [client, up.conn]);
    try {
      await copyBody(up.conn, client, framing, {
        prefix: serializeResponseHead(resp),
        touch: watch.touch,
      });
    } finally {
      watch.stop();
    }
    if (pump) {
      // The response is complete but the client never finished its body (say, a refused
      // `Expect: 100-continue`): the rest of its stream cannot be parsed, so close.
      if (!pump.done) {
        this.close();
        return false;
      }
      if (pump.error) return false;
    }
    if (!keep) {
      this.close();
      return false;
    }
    return true;
  }

  /** The kept connection to `addr` (reused = true), or a new one (the old one closed). */
  private async upstreamFor(addr: string): Promise<[Upstream, boolean]> {
    if (this.up?.addr === addr && this.up.conn.buffered === 0) return [this.up, true];
    this.close();
    const conn = new BufferedConn(await this.cfg.router.dial("tcp", addr));
    this.up = { addr, conn };
    return [this.up, false];
  }

  /** Streams the request body upstream in the background. */
  private startPump(up: BufferedConn, f: Framing): Pump {
    const watch = new IdleWatch(this.cfg.idleTimeout, [this.client, up]);
    const pump: Pump = { done: false, promise: Promise.resolve() };
    pump.promise = copyBody(this.client, up, f, { touch: watch.touch }).then(
      () => {
        pump.done = true;
      },
      (e) => {
        // A broken body leaves the upstream request unfinished: drop that connection (the
        // response read then fails and the client connection is closed).
        this.log.debug(`http: request body: ${errMsg(e)}`);
        pump.error = e;
        pump.done = true;
        closeQuietly(up);
      },
    ).finally(() => watch.stop());
    return pump;
  }

  /**
   * Reads response heads until a final one (or 101), passing interim 1xx responses on to
   * HTTP/1.1 clients. Throws on a closed, malformed or late response.
   */
  private async readFinalResponse(up: BufferedConn, req: RequestHead): Promise<ResponseHead> {
    for (;;) {
      const raw = await withDeadline(
        up,
        this.cfg.readTimeout,
        "response head",
        () => readHeadBytes(up, "response", MAX_RESPONSE_HEAD),
      );
      if (raw === null) throw new Error("server closed the connection without a response");
      const resp = parseResponseHead(raw);
      if (resp.status < 100 || resp.status >= 200 || resp.status === 101) return resp;
      if (req.version === "HTTP/1.1") {
        stripHopByHop(resp.headers);
        await writeAll(this.client, serializeResponseHead(resp));
      }
    }
  }

  /** Passes a 101 on and relays raw bytes both ways from then on. */
  private async switchProtocols(
    up: Upstream,
    resp: ResponseHead,
    upgrade: string | undefined,
    pump: Pump | undefined,
  ): Promise<boolean> {
    this.up = undefined; // the relay owns (and closes) the connection now
    if (!upgrade) {
      this.log.debug(`http: ${up.addr} switched protocols without being asked to`);
      closeQuietly(up.conn);
      await this.fail(502);
      return false;
    }
    if (pump) await pump.promise;
    const proto = resp.headers.get("upgrade") ?? upgrade;
    stripHopByHop(resp.headers);
    resp.headers.add("Connection", "Upgrade");
    resp.headers.add("Upgrade", proto);
    try {
      await writeAll(this.client, serializeResponseHead(resp));
    } catch (e) {
      closeQuietly(up.conn);
      throw e;
    }
    this.log.debug(`http: ${addrString(this.client.remoteAddr)} ⇄ ${up.addr} upgraded to ${proto}`);
    await relay(this.client, up.conn, { idleTimeout: this.cfg.idleTimeout });
    return false;
  }

  private async dialFailed(e: unknown, addr: string): Promise<void> {
    const code = classifyNetError(e);
    // A target the bypass or permissions refuse is 403, as in gost.
    const status = code === "timeout" ? 504 : code === "not-allowed" ? 403 : 502;
    const msg = `http: dial ${addr} for ${addrString(this.client.remoteAddr)}: ${
      errMsg(e)
    } (${status})`;
    if (this.cfg.router.hasChain || code === "other") this.log.warn(msg);
    else this.log.debug(msg);
    await this.fail(status);
  }

  /** Writes an error response (with Proxy-Agent) that ends the client connection. */
  private async fail(status: number): Promise<void> {
    await writeAll(
      this.client,
      simpleResponse(status, [["Proxy-Agent", this.cfg.proxyAgent], ["Connection", "close"]]),
    ).catch(() => {});
  }
}

/**
 * The SNI proxy's fallback for bytes that are not TLS: plain HTTP routed by its Host header
 * (port 80 unless the header names one), as gost's sni handler does. Requests may also be
 * absolute-form (`GET http://host/ …`). Keep-alive, bodies and upgrades are the HTTP proxy's
 * Forwarder's. CONNECT is not served here (that is the `http` handler's job).
 */
import type { BufferedConn } from "../../core/bufconn.ts";
import { addrString, closeQuietly, writeAll } from "../../core/conn.ts";
import { withDeadline } from "../../core/deadline.ts";
import { errMsg } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import type { Router } from "../../chain/router.ts";
import { Forwarder } from "../http/forward.ts";
import { type AbsoluteTarget, parseAbsoluteTarget, parseAuthority } from "../http/target.ts";
import {
  HttpError,
  MAX_REQUEST_HEAD,
  parseRequestHead,
  readHeadBytes,
  type RequestHead,
  simpleResponse,
} from "../http/wire.ts";

/** How long an idle keep-alive client connection waits for its next request. */
const KEEPALIVE_TIMEOUT = 60_000;
/** After an error reply, how long (and how much) to drain the client before closing. */
const LINGER_MS = 2_000;
const LINGER_BYTES = 1 << 20;

/** What the fallback needs from the handler. */
export interface HttpFallbackOptions {
  router: Router;
  readTimeout: number;
  idleTimeout: number;
}

/** Where a request goes: its absolute-form URL, else its Host header. */
export function requestTarget(req: RequestHead): AbsoluteTarget {
  if (req.method === "CONNECT") {
    throw new HttpError(405, "CONNECT is not served by the sni handler");
  }
  const abs = parseAbsoluteTarget(req.target);
  if (abs) {
    if (abs.scheme !== "http") throw new HttpError(400, `cannot forward ${abs.scheme}:// URLs`);
    return abs;
  }
  if (!req.target.startsWith("/")) {
    throw new HttpError(400, `unsupported request-target "${req.target.slice(0, 60)}"`);
  }
  const host = req.headers.get("host")?.trim();
  if (!host) throw new HttpError(400, "request without a Host header");
  return { ...parseAuthority(host, 80), scheme: "http", path: req.target };
}

/** Serves HTTP requests on `bc` until the client or a response ends the connection. */
export async function serveHttp(
  bc: BufferedConn,
  o: HttpFallbackOptions,
  log: Logger,
): Promise<void> {
  const client = addrString(bc.remoteAddr);
  const fwd = new Forwarder(
    {
      router: o.router,
      readTimeout: o.readTimeout,
      idleTimeout: o.idleTimeout,
      proxyAgent: "gost/3.0",
    },
    bc,
    log,
  );
  try {
    for (let first = true;; first = false) {
      if (!first) {
        const wait = o.idleTimeout || KEEPALIVE_TIMEOUT;
        const next = await withDeadline(bc, wait, "keep-alive wait", () => bc.peekSome());
        if (next === null) return;
      }
      const raw = await withDeadline(
        bc,
        o.readTimeout,
        "sni: http request head",
        () => readHeadBytes(bc, "request", MAX_REQUEST_HEAD),
      );
      if (raw === null) return;
      const req = parseRequestHead(raw);
      const target = requestTarget(req);
      log.debug(`sni: http ${client} → ${target.host}:${target.port}`);
      if (!(await fwd.roundTrip(req, target))) return;
    }
  } catch (e) {
    log.debug(`sni: http ${client}: ${errMsg(e)}`);
    if (e instanceof HttpError) {
      await writeAll(bc, simpleResponse(e.status, [["Connection", "close"]])).catch(() => {});
      await linger(bc);
    }
  } finally {
    fwd.close();
    closeQuietly(bc);
  }
}

/**
 * Closes after an error reply without losing it: FIN, then drop what the client still sends
 * (bounded), so the close does not become a reset that discards the reply.
 */
async function linger(bc: BufferedConn): Promise<void> {
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
    // already closed or reset
  }
}

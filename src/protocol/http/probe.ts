/**
 * Probe resistance (`probeResist=TYPE:VALUE`): clients that fail authentication get a decoy
 * instead of `407`, so a scanner sees an ordinary web server rather than a proxy.
 *
 * - `code:404`   an empty response with that status;
 * - `web:host[:port][/path]`  the page at `http://host[:port]/path`, fetched through the router;
 * - `host:host:port`          the raw client connection (bytes already read included) piped there;
 * - `file:/path`              the file's content as `200 text/html`.
 *
 * A decoy always ends the client connection.
 */
import { BufferedConn } from "../../core/bufconn.ts";
import { closeQuietly, type Conn, splitHostPort, writeAll } from "../../core/conn.ts";
import { withDeadline } from "../../core/deadline.ts";
import { ConfigError, errMsg } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { relay } from "../../core/relay.ts";
import type { Router } from "../../chain/router.ts";
import { copyBody, responseFraming } from "./body.ts";
import { stripHopByHop } from "./hop.ts";
import { dialAddress, parseAbsoluteTarget } from "./target.ts";
import {
  HeaderList,
  latin1Encode,
  MAX_RESPONSE_HEAD,
  parseResponseHead,
  readHeadBytes,
  reasonPhrase,
  serializeResponseHead,
  simpleResponse,
} from "./wire.ts";

/** A parsed `probeResist` value. */
export type ProbeResist =
  | { type: "code"; status: number }
  | { type: "web"; host: string; port: number; hostHeader: string; path: string }
  | { type: "host"; addr: string }
  | { type: "file"; path: string };

/** Parses `TYPE:VALUE`; throws ConfigError naming `where` when it is not valid. */
export function parseProbeResist(value: string, where: string): ProbeResist {
  const fail = (why: string): never => {
    throw new ConfigError(`${where}: parameter "probeResist": ${why} (got "${value}")`);
  };
  const colon = value.indexOf(":");
  if (colon < 0) fail("expected TYPE:VALUE with TYPE code, web, host or file");
  const type = value.slice(0, colon).trim().toLowerCase();
  const v = value.slice(colon + 1).trim();
  if (!v) fail("the value after the colon is empty");
  switch (type) {
    case "code": {
      const status = /^\d{3}$/.test(v) ? Number(v) : 0;
      if (status < 200 || status > 599) fail(`"${v}" is not an HTTP status code 200-599`);
      return { type, status };
    }
    case "web": {
      if (/^https:\/\//i.test(v)) fail("https pages are not supported yet; use http://");
      const url = /^http:\/\//i.test(v) ? v : `http://${v}`;
      let t: ReturnType<typeof parseAbsoluteTarget> = null;
      try {
        t = parseAbsoluteTarget(url);
      } catch {
        // reported below
      }
      if (!t) return fail(`"${v}" is not host[:port][/path]`);
      return { type, host: t.host, port: t.port, hostHeader: t.hostHeader, path: t.path };
    }
    case "host":
      try {
        splitHostPort(v);
      } catch (e) {
        fail(errMsg(e));
      }
      return { type, addr: v };
    case "file":
      return { type, path: v };
    default:
      return fail(`unknown type "${type}" (expected code, web, host or file)`);
  }
}

/** What serving a decoy needs from the handler. */
export interface DecoyEnv {
  router: Router;
  /** Deadline for the decoy page's response head (web). */
  readTimeout: number;
  /** Relay idle timeout (host). */
  idleTimeout: number;
  log: Logger;
}

/**
 * Answers an unauthenticated client with the decoy. `rawHead` is the request head as the
 * client sent it (the `host` decoy replays it). Never throws.
 */
export async function serveDecoy(
  pr: ProbeResist,
  bc: BufferedConn,
  rawHead: Uint8Array,
  env: DecoyEnv,
): Promise<void> {
  try {
    switch (pr.type) {
      case "code":
        await writeAll(bc, simpleResponse(pr.status, [["Connection", "close"]]));
        return;
      case "file":
        return await serveFile(pr.path, bc, env.log);
      case "web":
        return await serveWeb(pr, bc, env);
      case "host":
        return await pipeHost(pr.addr, bc, rawHead, env);
    }
  } catch (e) {
    env.log.debug(`http: probe resistance ${pr.type}: ${errMsg(e)}`);
  }
}

/** The answer when a decoy cannot be produced (gost's choice too). */
function unavailable(bc: Conn): Promise<void> {
  return writeAll(bc, simpleResponse(503, [["Connection", "close"]])).catch(() => {});
}

async function serveFile(path: string, bc: BufferedConn, log: Logger): Promise<void> {
  let f: Deno.FsFile;
  let size: number;
  try {
    f = await Deno.open(path, { read: true });
    size = (await f.stat()).size;
  } catch (e) {
    log.warn(`http: probe resistance file ${path}: ${errMsg(e)}`);
    return await unavailable(bc);
  }
  try {
    const head = serializeResponseHead({
      version: "HTTP/1.1",
      status: 200,
      reason: "OK",
      headers: new HeaderList([
        ["Content-Type", "text/html"],
        ["Content-Length", String(size)],
        ["Connection", "close"],
      ]),
    });
    await writeAll(bc, head);
    const buf = new Uint8Array(65536);
    let left = size;
    while (left > 0) {
      const n = await f.read(buf.subarray(0, Math.min(left, buf.length)));
      if (n === null) break; // the file shrank: the client sees a short body
      await writeAll(bc, buf.subarray(0, n));
      left -= n;
    }
  } finally {
    f.close();
  }
}

async function serveWeb(
  pr: Extract<ProbeResist, { type: "web" }>,
  bc: BufferedConn,
  env: DecoyEnv,
): Promise<void> {
  const addr = dialAddress(pr);
  let up: BufferedConn;
  try {
    up = new BufferedConn(await env.router.dial("tcp", addr));
  } catch (e) {
    env.log.warn(`http: probe resistance web ${addr}: ${errMsg(e)}`);
    return await unavailable(bc);
  }
  try {
    const req = `GET ${pr.path} HTTP/1.1\r\nHost: ${pr.hostHeader}\r\n` +
      "Accept: */*\r\nConnection: close\r\n\r\n";
    let resp;
    try {
      await writeAll(up, latin1Encode(req));
      do {
        const raw = await withDeadline(
          up,
          env.readTimeout,
          "probe resistance page",
          () => readHeadBytes(up, "response", MAX_RESPONSE_HEAD),
        );
        if (raw === null) throw new Error("the server closed without a response");
        resp = parseResponseHead(raw);
      } while (resp.status >= 100 && resp.status < 200);
    } catch (e) {
      env.log.warn(`http: probe resistance web http://${pr.hostHeader}${pr.path}: ${errMsg(e)}`);
      return await unavailable(bc);
    }
    const framing = responseFraming("GET", resp.status, resp.headers);
    stripHopByHop(resp.headers);
    resp.headers.set("Connection", "close");
    if (!resp.reason) resp.reason = reasonPhrase(resp.status);
    await copyBody(up, bc, framing, { prefix: serializeResponseHead(resp) });
  } finally {
    closeQuietly(up);
  }
}

async function pipeHost(
  addr: string,
  bc: BufferedConn,
  rawHead: Uint8Array,
  env: DecoyEnv,
): Promise<void> {
  let out: Conn;
  try {
    out = await env.router.dial("tcp", addr);
  } catch (e) {
    env.log.warn(`http: probe resistance host ${addr}: ${errMsg(e)}`);
    return await unavailable(bc);
  }
  try {
    await writeAll(out, rawHead);
  } catch (e) {
    closeQuietly(out);
    throw e;
  }
  await relay(bc, out, { idleTimeout: env.idleTimeout });
}

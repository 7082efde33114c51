/**
 * The WebSocket opening handshake on both sides, over any Conn (a TCP socket, TLS, or a tunnel
 * stream at hop 2+), shaped as gost's (gorilla/websocket) so either side interoperates with it:
 *
 *   GET /ws HTTP/1.1 · Host · User-Agent: Go-http-client/1.1 · Upgrade: websocket ·
 *   Connection: Upgrade · Sec-WebSocket-Key · Sec-WebSocket-Version: 13 · custom headers
 *
 * The server upgrades only on its path (others get 404, as gost's HTTP mux answers) and answers
 * a request that is not a valid upgrade with 400.
 */
import { createHash } from "node:crypto";
import type { Params } from "../../config/params.ts";
import { BufferedConn } from "../../core/bufconn.ts";
import { type Conn, writeAll } from "../../core/conn.ts";
import { withDeadline } from "../../core/deadline.ts";
import { ConfigError, ProtocolError } from "../../core/errors.ts";
import { WsConn } from "./conn.ts";
import { WS_GUID } from "./frame.ts";

/** Settings shared by the ws/wss/mws/mwss dialers and listeners (gost's metadata names). */
export interface WsOptions {
  /** Upgrade path, `path`/`ws.path` (default `/ws`). */
  path: string;
  /** Client: the Host header, `host`/`ws.host` (default: the node address). */
  host?: string;
  /** Extra request (client) or response (server) headers, `header`/`ws.header`. */
  header: [string, string][];
  /** `handshakeTimeout` in ms (0: the dial timeout on clients, 15 s on servers). */
  handshakeTimeout: number;
  /** Server: deadline for the request head, `readHeaderTimeout` (0: the handshake's). */
  readHeaderTimeout: number;
  readBufferSize: number;
  writeBufferSize: number;
  /** Client: ping interval when `keepalive=true` (`ttl`, default 15 s); 0 = none. */
  pingInterval: number;
}

const enc = new TextEncoder();
const MAX_HEAD_LINE = 8192;
const MAX_HEADERS = 100;
/** Server default when `handshakeTimeout` is not given. */
export const SERVER_WS_TIMEOUT = 15_000;

/** Reads the WebSocket parameters of a dialer (`client`) or listener. */
export function wsOptionsFromParams(p: Params, side: "client" | "server"): WsOptions {
  const where = p.where ? `${p.where}: ` : "";
  const path = p.str(["ws.path", "path"]) || "/ws";
  if (!path.startsWith("/")) throw new ConfigError(`${where}parameter "path" must start with /`);
  if (p.bool(["ws.enableCompression", "enableCompression"], false)) {
    throw new ConfigError(
      `${where}parameter "enableCompression" (permessage-deflate) is not supported yet`,
    );
  }
  const o: WsOptions = {
    path,
    header: parseHeaders(p.str(["ws.header", "header"]), where),
    handshakeTimeout: p.duration(["ws.handshakeTimeout", "handshakeTimeout"], 0),
    readHeaderTimeout: 0,
    readBufferSize: p.int(["ws.readBufferSize", "readBufferSize"], 0, 0, 1 << 24),
    writeBufferSize: p.int(["ws.writeBufferSize", "writeBufferSize"], 0, 0, 1 << 24),
    pingInterval: 0,
  };
  if (side === "client") {
    o.host = p.str(["ws.host", "host"]) || undefined;
    if (p.bool(["ws.keepalive", "keepalive"], false)) {
      const ttl = p.duration(["ttl", "keepalive.interval"], 0);
      o.pingInterval = ttl > 0 ? ttl : 15_000;
    }
  } else {
    o.readHeaderTimeout = p.duration(["ws.readHeaderTimeout", "readHeaderTimeout"], 0);
  }
  return o;
}

/**
 * `header=Name:Value,Name2:Value2` (or a JSON object). gost takes a map from its config file;
 * on a command line this is the one spelling.
 */
function parseHeaders(v: string | undefined, where: string): [string, string][] {
  if (v === undefined || v === "") return [];
  const bad = (m: string): never => {
    throw new ConfigError(`${where}parameter "header": ${m}`);
  };
  if (v.trim().startsWith("{")) {
    let obj: unknown;
    try {
      obj = JSON.parse(v);
    } catch {
      bad("invalid JSON object");
    }
    return Object.entries(obj as Record<string, unknown>).map(([k, x]) => check([k, String(x)]));
  }
  if (v === "[object Object]") bad("a map is not accepted here; use Name:Value,Name2:Value2");
  return v.split(",").map((item) => {
    const i = item.indexOf(":");
    if (i <= 0) bad(`"${item}" is not Name:Value`);
    return check([item.slice(0, i).trim(), item.slice(i + 1).trim()]);
  });
  function check([k, x]: [string, string]): [string, string] {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) bad(`invalid header name "${k}"`);
    if (/[\r\n]/.test(x)) bad(`header ${k}: value with a line break`);
    return [k, x];
  }
}

function acceptKey(key: string): string {
  return createHash("sha1").update(key + WS_GUID).digest("base64");
}

/** Reads an HTTP head: the first line and the header fields (names lower-cased). */
async function readHead(
  bc: BufferedConn,
): Promise<{ first: string; headers: Map<string, string> }> {
  const first = await bc.readLine(MAX_HEAD_LINE);
  if (first === null) throw new ProtocolError("ws: connection closed before the HTTP head");
  const headers = new Map<string, string>();
  for (let i = 0;; i++) {
    const line = await bc.readLine(MAX_HEAD_LINE);
    if (line === null) throw new ProtocolError("ws: connection closed inside the HTTP head");
    if (line === "") break;
    if (i >= MAX_HEADERS) throw new ProtocolError(`ws: more than ${MAX_HEADERS} header fields`);
    const c = line.indexOf(":");
    if (c <= 0) throw new ProtocolError(`ws: malformed header line "${line.slice(0, 60)}"`);
    const name = line.slice(0, c).trim().toLowerCase();
    const value = line.slice(c + 1).trim();
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
  }
  return { first, headers };
}

function hasToken(v: string | undefined, token: string): boolean {
  return (v ?? "").toLowerCase().split(",").some((t) => t.trim() === token);
}

/** The conn to frame over: the buffered one only while it still holds read-ahead bytes. */
function rest(bc: BufferedConn): Conn {
  return bc.buffered > 0 ? bc : bc.inner;
}

/** Runs the client handshake to the node at `addr`; `timeoutMs` bounds it (0 = none). */
export function wsClient(
  conn: Conn,
  o: WsOptions,
  addr: string,
  timeoutMs: number,
): Promise<WsConn> {
  const t = o.handshakeTimeout > 0 ? o.handshakeTimeout : timeoutMs;
  return withDeadline(conn, t, "ws handshake", async () => {
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const lines = [
      `GET ${o.path} HTTP/1.1`,
      `Host: ${o.host ?? addr}`,
    ];
    const custom = new Set(o.header.map(([k]) => k.toLowerCase()));
    if (!custom.has("user-agent")) lines.push("User-Agent: Go-http-client/1.1");
    lines.push(
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${key}`,
      "Sec-WebSocket-Version: 13",
      "Upgrade: websocket",
    );
    for (const [k, v] of o.header) lines.push(`${k}: ${v}`);
    await writeAll(conn, enc.encode(lines.join("\r\n") + "\r\n\r\n"));
    const bc = new BufferedConn(conn);
    const { first, headers } = await readHead(bc);
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(first);
    if (!m) throw new ProtocolError(`ws: not an HTTP response: "${first.slice(0, 60)}"`);
    if (m[1] !== "101") {
      throw new ProtocolError(`ws: upgrade refused: ${first.slice(9, 80)} (path ${o.path})`);
    }
    if (headers.get("sec-websocket-accept") !== acceptKey(key)) {
      throw new ProtocolError("ws: bad Sec-WebSocket-Accept in the server's answer");
    }
    return new WsConn(rest(bc), {
      client: true,
      readBufferSize: o.readBufferSize,
      maxFramePayload: o.writeBufferSize,
      pingInterval: o.pingInterval,
    });
  });
}

/** Answers an HTTP request with `status` and closes the conversation. */
async function refuse(conn: Conn, status: string, body: string): Promise<void> {
  const text = `HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${enc.encode(body).length}\r\nConnection: close\r\n\r\n${body}`;
  await writeAll(conn, enc.encode(text)).catch(() => {});
}

/** Runs the server side of the upgrade; a wrong path or a bad request is answered and thrown. */
export function wsServer(conn: Conn, o: WsOptions): Promise<WsConn> {
  const t = o.handshakeTimeout > 0 ? o.handshakeTimeout : SERVER_WS_TIMEOUT;
  const headT = o.readHeaderTimeout > 0 ? Math.min(o.readHeaderTimeout, t) : t;
  const bc = new BufferedConn(conn);
  return withDeadline(conn, headT, "ws upgrade request", async () => {
    const { first, headers } = await readHead(bc);
    const m = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(first);
    if (!m) throw new ProtocolError(`ws: not an HTTP request: "${first.slice(0, 60)}"`);
    const [, method, target] = m;
    const path = target.split("?")[0];
    if (path !== o.path) {
      await refuse(conn, "404 Not Found", "404 page not found\n");
      throw new ProtocolError(`ws: ${method} ${path.slice(0, 100)}: not the ws path ${o.path}`);
    }
    const key = headers.get("sec-websocket-key");
    if (
      method !== "GET" || !hasToken(headers.get("connection"), "upgrade") ||
      !hasToken(headers.get("upgrade"), "websocket") ||
      headers.get("sec-websocket-version") !== "13" || !key ||
      atobLength(key) !== 16
    ) {
      await refuse(conn, "400 Bad Request", "Bad Request\n");
      throw new ProtocolError(`ws: ${method} ${path}: not a valid websocket upgrade`);
    }
    const lines = [
      "HTTP/1.1 101 Switching Protocols",
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Accept: ${acceptKey(key)}`,
      ...o.header.map(([k, v]) => `${k}: ${v}`),
    ];
    await writeAll(conn, enc.encode(lines.join("\r\n") + "\r\n\r\n"));
    return new WsConn(rest(bc), {
      client: false,
      readBufferSize: o.readBufferSize,
      maxFramePayload: o.writeBufferSize,
    });
  });
}

function atobLength(s: string): number {
  try {
    return atob(s).length;
  } catch {
    return -1;
  }
}

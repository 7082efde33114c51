/**
 * PROXY protocol on services: the receiving side (a handler wrapper that reads an optional
 * header from each accepted connection and presents the carried client address as the conn's
 * `remoteAddr`) and the sending side (a header written to a forward target).
 *
 * `proxyProtocol=1|2` on a service turns the receiving side on; either header version is
 * accepted whatever the number, as gost (go-proxyproto) does.
 */
import { BufferedConn } from "../../core/bufconn.ts";
import { type Addr, addrString, closeQuietly, type Conn, writeAll } from "../../core/conn.ts";
import { withDeadline } from "../../core/deadline.ts";
import { errMsg } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import type { Params } from "../../config/params.ts";
import { DATAGRAM_TRANSPORTS, type HandleContext, type Handler } from "../../registry.ts";
import { encodeHeader, type ProxyHeader, readProxyHeader } from "./wire.ts";

/** How long a header may take when `readTimeout` is not set (go-proxyproto's default). */
export const DEFAULT_HEADER_TIMEOUT = 10_000;

/**
 * A conn whose `remoteAddr` is the client announced by a PROXY header. `localAddr` stays the
 * socket's own (handlers bind on it, e.g. SOCKS5 BIND / UDP ASSOCIATE, and the header's
 * destination may belong to the proxy's host); the announced one is `destination`.
 */
export class ProxiedConn implements Conn {
  constructor(
    /** The accepted conn, positioned after the header (it holds any bytes read past it). */
    readonly inner: Conn,
    /** The original client. */
    readonly source: Addr,
    /** The address the client connected to (on the proxy). */
    readonly destination: Addr,
  ) {}

  get remoteAddr(): Addr {
    return this.source;
  }
  get localAddr(): Addr {
    return this.inner.localAddr;
  }
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

/**
 * The address the client of `conn` connected to: a PROXY header's destination when one was
 * accepted (looking through BufferedConn layers), else the socket's local address.
 */
export function originalDestination(conn: Conn): Addr {
  let c: Conn = conn;
  while (c instanceof BufferedConn) c = c.inner;
  return c instanceof ProxiedConn ? c.destination : conn.localAddr;
}

/**
 * A conn whose first read starts at construction, so a caller can wait for the client's first
 * bytes with a time limit and, when none come, hand the still-pending read over to whoever
 * reads next instead of cancelling it (Deno cannot cancel a read without closing the socket).
 */
class FirstReadConn implements Conn {
  /** The first read: its bytes (null at end of stream); cleared once fully consumed. */
  private first: Promise<Uint8Array | null> | null;
  private eof = false;

  constructor(private readonly inner: Conn) {
    const buf = new Uint8Array(2048);
    this.first = inner.read(buf).then((n) => n === null ? null : buf.subarray(0, n));
    this.first.catch(() => {}); // surfaced by the next read()
  }

  /** Resolves true once the first read completed (bytes, end or error), false after `ms`. */
  async arrived(ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const settled = this.first!.then(() => true, () => true);
    try {
      return await Promise.race([
        settled,
        new Promise<boolean>((r) => timer = setTimeout(r, ms, false)),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  get localAddr(): Addr {
    return this.inner.localAddr;
  }
  get remoteAddr(): Addr {
    return this.inner.remoteAddr;
  }
  read(p: Uint8Array): Promise<number | null> {
    if (this.first) return this.readFirst(p, this.first);
    if (this.eof) return Promise.resolve(null);
    return this.inner.read(p);
  }
  private async readFirst(
    p: Uint8Array,
    first: Promise<Uint8Array | null>,
  ): Promise<number | null> {
    let b: Uint8Array | null;
    try {
      b = await first;
    } catch (e) {
      this.first = null;
      throw e;
    }
    if (b === null) {
      this.first = null;
      this.eof = true;
      return null;
    }
    const n = Math.min(p.length, b.length);
    p.set(b.subarray(0, n));
    this.first = n === b.length ? null : Promise.resolve(b.subarray(n));
    return n;
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

/** What acceptProxyHeader found on a connection. */
export interface AcceptedConn {
  /** The conn to use from now on. */
  conn: Conn;
  /** The header, or null when the client sent none. */
  header: ProxyHeader | null;
  /** True when the client sent nothing within the deadline (served without a header). */
  waited?: boolean;
}

/**
 * Reads an optional PROXY header from `conn`. Returns the conn to use from now on — a
 * ProxiedConn for a header carrying an address, else a conn holding the bytes already read —
 * and the header (null when there was none).
 *
 * A client that sends nothing within `timeoutMs` is taken as one without a header, as
 * go-proxyproto does, so server-speaks-first protocols (SMTP, FTP, MySQL) still work, after
 * that wait. Once bytes arrived, a header that starts must be complete within the rest of
 * `timeoutMs`: a malformed, truncated or stalled header throws ProtocolError (a stalled one
 * after closing `conn`).
 */
export async function acceptProxyHeader(
  conn: Conn,
  timeoutMs: number,
): Promise<AcceptedConn> {
  const start = Date.now();
  const early = new FirstReadConn(conn);
  if (!(await early.arrived(timeoutMs))) return { conn: early, header: null, waited: true };
  const bc = new BufferedConn(early, 512);
  const left = Math.max(1, timeoutMs - (Date.now() - start));
  const header = await withDeadline(conn, left, "PROXY header", () => readProxyHeader(bc));
  if (header?.command === "proxy" && header.source && header.destination) {
    return { conn: new ProxiedConn(bc, header.source, header.destination), header };
  }
  return { conn: bc, header };
}

/** The debug line of an accepted header: who sent it, and the client and address it names. */
export function describeProxied(raw: Conn, c: ProxiedConn, header: ProxyHeader | null): string {
  return `PROXY v${header?.version} header from ${addrString(raw.remoteAddr)}: client ${
    addrString(c.source)
  } → ${addrString(c.destination)}`;
}

/** Wraps a service's handler: each connection first goes through acceptProxyHeader. */
export class ProxyProtocolHandler implements Handler {
  constructor(
    private readonly inner: Handler,
    /** The service logger: per-connection loggers are scoped to the announced client. */
    private readonly log: Logger,
    private readonly timeoutMs: number,
  ) {}

  async handle(conn: Conn, ctx: HandleContext): Promise<void> {
    let accepted: AcceptedConn;
    try {
      accepted = await acceptProxyHeader(conn, this.timeoutMs);
    } catch (e) {
      // The service closes `conn` when this returns.
      ctx.log.debug(
        `PROXY header from ${addrString(conn.remoteAddr)} rejected: ${errMsg(e)}; closing`,
      );
      return;
    }
    const { conn: c, header } = accepted;
    let log = ctx.log;
    if (c instanceof ProxiedConn) {
      log = this.log.child(addrString(c.source));
      log.debug(describeProxied(conn, c, header));
    } else if (header) {
      log.debug(`PROXY v${header.version} header without client address: keeping socket's`);
    } else if (accepted.waited) {
      log.debug(`no data within ${this.timeoutMs} ms: serving it as a client without PROXY header`);
    }
    await this.inner.handle(c, { ...ctx, log });
  }
}

/**
 * Stream transports whose TCP listener reads the PROXY header itself, before their own
 * handshake (`listenStream` in tcp/listener.ts); the handler must not look for a second one.
 */
const LISTENER_READS = new Set([
  "tls",
  "mtls",
  "ws",
  "wss",
  "mws",
  "mwss",
  "mtcp",
  "h2",
  "h2c",
  "grpc",
  "http2",
  "ohttp",
  "otls",
]);

/**
 * Returns `handler` wrapped to accept PROXY headers when the service has `proxyProtocol=1|2`
 * (the header deadline is `readTimeout`, else DEFAULT_HEADER_TIMEOUT); else `handler` itself.
 * On datagram listeners the parameter is left unread, so it is reported as unknown there;
 * stream transports read the header in their TCP listener (LISTENER_READS).
 */
export function withProxyProtocol(
  handler: Handler,
  params: Params,
  log: Logger,
  listenerType: string,
): Handler {
  // Datagram sessions never carry a PROXY header.
  if (DATAGRAM_TRANSPORTS.has(listenerType) || LISTENER_READS.has(listenerType)) return handler;
  const version = params.int("proxyProtocol", 0, 0, 2);
  if (version === 0) return handler;
  return new ProxyProtocolHandler(handler, log, proxyHeaderTimeout(params));
}

/** The PROXY header deadline of a service: `readTimeout`, else DEFAULT_HEADER_TIMEOUT. */
export function proxyHeaderTimeout(params: Params): number {
  const rt = params.duration("readTimeout", 0);
  return rt > 0 ? rt : DEFAULT_HEADER_TIMEOUT;
}

/**
 * Writes a PROXY header of `version` to `target` announcing the client of `client` (its
 * `remoteAddr`, after any accepted header) and the address it connected to. On failure
 * closes `target` and throws.
 */
export async function sendProxyHeader(target: Conn, version: 1 | 2, client: Conn): Promise<void> {
  const header = encodeHeader(version, client.remoteAddr, originalDestination(client));
  try {
    await writeAll(target, header);
  } catch (e) {
    closeQuietly(target);
    throw new Error(`sending PROXY v${version} header: ${errMsg(e)}`);
  }
}

/**
 * Scheme → factory maps. Each protocol and transport module registers its sides here
 * (`registerHandler("socks5", …)`); the service and chain builders look them up by name.
 * Names gost knows but dost does not implement yet are listed so that using one fails with
 * "not supported yet" instead of "unknown".
 */
import type { Conn, Listener, PacketConn } from "./core/conn.ts";
import type { Logger } from "./core/logger.ts";
import type { Params } from "./config/params.ts";
import type { Auther } from "./access/auth.ts";
import type { Bypass } from "./access/bypass.ts";
import type { Router } from "./chain/router.ts";
import type { Chain } from "./chain/chain.ts";
import type { NodeGroup, Target } from "./chain/group.ts";

/** What a handler gets per connection. */
export interface HandleContext {
  /** Logger scoped to the service. */
  log: Logger;
}

/** The server side of a protocol. */
export interface Handler {
  handle(conn: Conn, ctx: HandleContext): Promise<void>;
}

/** Everything a handler factory may use. */
export interface HandlerOptions {
  service: string;
  params: Params;
  auther?: Auther;
  /**
   * The service's inline credentials as written (`proto://user:pass@…`): protocols whose
   * "user:pass" is a key rather than a login (Shadowsocks `method:password`) read them here.
   */
  auth?: { username: string; password?: string };
  /** Reaches targets: through the chain, or directly. */
  router: Router;
  /** Forward targets (`tcp://:P/a,b`), empty for proxies. */
  targets: string[];
  /** The same targets as a group with the forwarder's selector (strategy, fail filter). */
  forwarder?: NodeGroup<Target>;
  log: Logger;
  /** The service's listener type (`tcp`, `tls`, `wss`, …): handlers may skip their own encryption. */
  transport?: string;
  /**
   * The service's bypass, for handlers that match names rather than dial targets (the DNS proxy
   * answers a bypassed query name itself); dials are already checked by the router.
   */
  bypass?: Bypass;
  /**
   * `router` without the bypass/permissions checks, for handlers whose own dials are not client
   * targets (the DNS proxy's upstream queries; gost checks its bypass on query names only).
   */
  rawRouter?: Router;
}

/**
 * Transports that already encrypt the stream: over them gost's SOCKS5 TLS methods would only
 * add a second TLS layer (gost does stack them; dost does not).
 */
export const ENCRYPTED_TRANSPORTS = new Set([
  "tls",
  "mtls",
  "wss",
  "mwss",
  "h2",
  "grpc",
  "http2",
  "quic",
  "http3",
  "h3",
  "wt",
  "dtls",
  "ssh",
  "sshd",
]);

/**
 * Transports (listener or dialer types) whose conns carry datagrams, one read per message:
 * handlers that also run over streams (ssu) or read stream headers (PROXY) tell them apart.
 */
export const DATAGRAM_TRANSPORTS = new Set(["udp", "rudp", "redu", "tun", "tap"]);

export interface ListenerOptions {
  service: string;
  /** `host:port` to listen on (host "" = all interfaces). */
  addr: string;
  params: Params;
  log: Logger;
  /** `listener.chain`: for listeners that listen at the far end of a chain (rtcp, rudp). */
  chain?: Chain;
}

/** Client side of a transport: how bytes reach a node. */
export interface Dialer {
  /** Opens a connection to the node at `addr` (first hop). */
  dial(addr: string, opts: { timeout: number }): Promise<Conn>;
  /** Runs the transport handshake over an existing stream (hop 2+ and after dial). */
  handshake?(conn: Conn, opts: { addr: string; timeout: number }): Promise<Conn>;
}

/** Client side of a protocol: how to ask a node for a target. */
export interface Connector {
  connect(
    conn: Conn,
    network: "tcp" | "udp",
    address: string,
    opts: { timeout: number },
  ): Promise<Conn>;
  /**
   * Remote TCP forwarding (rtcp): asks the node, reached over `conn`, to listen on `address`
   * (`host:port`) at its end; the returned listener yields the connections arriving there.
   */
  bind?(conn: Conn, address: string, opts: BindOptions): Promise<BindListener>;
  /**
   * Remote UDP forwarding (rudp): asks the node to bind a UDP socket on `address`; the returned
   * PacketConn carries that socket's datagrams (readFrom: from a far-end peer; writeTo: to one).
   */
  bindUDP?(conn: Conn, address: string, opts: BindOptions): Promise<PacketConn>;
}

/** Options of Connector.bind / bindUDP. */
export interface BindOptions {
  /** Deadline of the bind handshake in ms (0 = none). */
  timeout: number;
}

/** A listener at the far end of a chain (Connector.bind). */
export interface BindListener extends Listener {
  /** It yields one connection only (standard SOCKS5 BIND): bind again for the next one. */
  readonly oneShot?: boolean;
}

/**
 * Connector.bind could not use the way it tried (e.g. the server does not know SOCKS5 MUX-BIND)
 * and has switched to another: bind again on a fresh connection.
 */
export class BindFallbackError extends Error {
  override name = "BindFallbackError";
}

export interface NodeOptions {
  node: string;
  addr: string;
  params: Params;
  auth?: { username: string; password?: string };
  log: Logger;
  /** The node's dialer type (`tcp`, `tls`, `wss`, …): connectors may skip their own encryption. */
  transport?: string;
}

export type HandlerFactory = (o: HandlerOptions) => Handler;
export type ListenerFactory = (o: ListenerOptions) => Promise<Listener>;
export type DialerFactory = (o: NodeOptions) => Dialer;
export type ConnectorFactory = (o: NodeOptions) => Connector;

const handlers = new Map<string, HandlerFactory>();
const listeners = new Map<string, ListenerFactory>();
const dialers = new Map<string, DialerFactory>();
const connectors = new Map<string, ConnectorFactory>();

export function registerHandler(names: string | string[], f: HandlerFactory): void {
  for (const n of [names].flat()) handlers.set(n, f);
}
export function registerListener(names: string | string[], f: ListenerFactory): void {
  for (const n of [names].flat()) listeners.set(n, f);
}
export function registerDialer(names: string | string[], f: DialerFactory): void {
  for (const n of [names].flat()) dialers.set(n, f);
}
export function registerConnector(names: string | string[], f: ConnectorFactory): void {
  for (const n of [names].flat()) connectors.set(n, f);
}

export const registry = { handlers, listeners, dialers, connectors };

/** Protocol (handler/connector) names gost v2/v3 know. */
export const GOST_PROTOCOLS = new Set([
  "auto",
  "http",
  "http2",
  "socks",
  "socks4",
  "socks4a",
  "socks5",
  "ss",
  "ssu",
  "sni",
  "relay",
  "tcp",
  "udp",
  "rtcp",
  "rudp",
  "forward",
  "red",
  "redir",
  "redirect",
  "redu",
  "dns",
  "tun",
  "tap",
  "sshd",
  "tunnel",
  "file",
  "serial",
  "unix",
  "runix",
  "router",
  "direct",
  "remote",
  "metrics",
]);

/** Transport (listener/dialer) names gost v2/v3 know. */
export const GOST_TRANSPORTS = new Set([
  "tcp",
  "udp",
  "tls",
  "mtls",
  "mtcp",
  "ws",
  "wss",
  "mws",
  "mwss",
  "h2",
  "h2c",
  "http2",
  "grpc",
  "pht",
  "phts",
  "quic",
  "http3",
  "h3",
  "wt",
  "kcp",
  "ssh",
  "sshd",
  "ohttp",
  "ohttps",
  "otls",
  "obfs4",
  "icmp",
  "dtls",
  "ftcp",
  "red",
  "redir",
  "redirect",
  "redu",
  "tun",
  "tap",
  "rtcp",
  "rudp",
  "dns",
  "unix",
  "runix",
  "serial",
  "vsock",
]);

/** Looks a factory up, or throws the one-line "not supported yet" / "unknown" error. */
export function lookup<T>(
  map: Map<string, T>,
  kind: "handler" | "listener" | "dialer" | "connector",
  name: string,
): T {
  const f = map.get(name);
  if (f) return f;
  const known = kind === "handler" || kind === "connector" ? GOST_PROTOCOLS : GOST_TRANSPORTS;
  const word = kind === "handler" || kind === "connector" ? "protocol" : "transport";
  if (known.has(name)) {
    throw new NotSupportedError(`${kind} "${name}" is not supported yet`);
  }
  throw new NotSupportedError(`unknown ${word} "${name}"`);
}

/** A known-but-unimplemented or unknown scheme. */
export class NotSupportedError extends Error {
  override name = "NotSupportedError";
}

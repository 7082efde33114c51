/**
 * smux stream multiplexing (xtaci/smux v1 and v2), shared by every gost mux transport
 * (mtls, mws, mwss, mtcp, kcp) and by remote forwarding (SOCKS5 MUX-BIND, relay BIND).
 *
 * ```ts
 * const client = new MuxSession(conn, { client: true, config: { version: 1 } });
 * const s = await client.openStream();      // a Conn
 * const server = new MuxSession(conn2, { client: false });
 * const t = await server.acceptStream();    // a Conn
 * ```
 */
export { MuxSession, type MuxSessionOptions, SessionClosedError } from "./session.ts";
export { MuxStream, StreamClosedError } from "./stream.ts";
export { DEFAULT_MUX_CONFIG, type MuxConfig, muxConfig, muxConfigFromParams } from "./config.ts";

/**
 * TLS with ALPN "h2" for the HTTP/2 transports (h2, grpc, http2). Go's HTTP/2 and gRPC stacks
 * speak HTTP/2 over TLS only when ALPN chose "h2" (otherwise Go falls back to HTTP/1.1 and
 * grpc-go refuses the connection), so both sides here offer it. Certificates and verification
 * follow the `tls` transport's parameters (src/transport/tls/config.ts). The OpenSSL engine
 * (tls/openssl.ts) runs it when the process has it (h2 tunnels: ~1.5 → ~2.5 Gbit/s here);
 * node:tls otherwise, or with `DOST_TLS_BACKEND=node`.
 */
import * as tls from "node:tls";
import { isIP } from "node:net";
import type { Duplex } from "node:stream";
import type { Params } from "../../config/params.ts";
import { type Conn, splitHostPort } from "../../core/conn.ts";
import { connToDuplex, DuplexConn } from "../../core/duplex.ts";
import type { Logger } from "../../core/logger.ts";
import { clientTLSFromParams, serverTLSFromParams } from "../tls/config.ts";
import { SERVER_HANDSHAKE_TIMEOUT } from "../tls/server.ts";
import { settleHandshake } from "../tls/settle.ts";
import { osslTlsAvailable, osslTlsClient, OsslTlsConn, OsslTlsServer } from "../tls/openssl.ts";

/** Puts a transport layer over a connection to the node at `addr` (TLS, or nothing). */
export type ClientLayer = (conn: Conn, addr: string, timeout: number) => Promise<Conn>;
/** Puts a transport layer over an accepted connection. */
export type ServerLayer = (raw: Conn) => Promise<Conn>;

/** No layer: cleartext HTTP/2 (h2c, grpc with `grpc.insecure`). */
export const plain = (c: Conn): Promise<Conn> => Promise.resolve(c);

/** A TLS client step offering ALPN h2, from a node's TLS parameters and `handshakeTimeout`. */
export function h2TLSClient(p: Params): ClientLayer {
  const cfg = clientTLSFromParams(p);
  const hsTimeout = p.duration("handshakeTimeout", 0);
  if (osslTlsAvailable()) {
    const withAlpn = { ...cfg, alpn: ["h2"] }; // one object: its OpenSSL context is cached
    return (conn, addr, timeout) =>
      osslTlsClient(conn, withAlpn, addr, hsTimeout > 0 ? hsTimeout : timeout);
  }
  return (conn, addr, timeout) => {
    const host = splitHostPort(addr).host || "127.0.0.1";
    const name = cfg.serverName ?? host;
    const duplex = connToDuplex(conn);
    const sock = tls.connect({
      socket: duplex,
      servername: isIP(name) ? undefined : name,
      host: name,
      rejectUnauthorized: cfg.secure,
      ca: cfg.ca,
      cert: cfg.cert,
      key: cfg.key,
      ALPNProtocols: ["h2"],
    });
    const ms = hsTimeout > 0 ? hsTimeout : timeout;
    return settleHandshake(sock, duplex, "secureConnect", ms).then(() => {
      followTransport(sock, duplex);
      return new DuplexConn(sock, { localAddr: conn.localAddr, remoteAddr: conn.remoteAddr });
    });
  };
}

/**
 * A TLS server step offering ALPN h2 (and whatever else `alpn` lists, in order of preference),
 * from a listener's `cert`/`key`/`ca` parameters.
 */
export async function h2TLSServer(
  p: Params,
  log: Logger,
  alpn: string[] = ["h2"],
): Promise<ServerLayer> {
  const cfg = await serverTLSFromParams(p, log);
  if (osslTlsAvailable()) {
    const server = new OsslTlsServer(cfg, alpn);
    return (raw) => server.handshake(raw, SERVER_HANDSHAKE_TIMEOUT);
  }
  const ctx = tls.createSecureContext({ cert: cfg.cert, key: cfg.key, ca: cfg.ca });
  const requestCert = cfg.ca !== undefined;
  return (raw) => {
    const duplex = connToDuplex(raw);
    const sock = new tls.TLSSocket(duplex, {
      isServer: true,
      secureContext: ctx,
      requestCert,
      rejectUnauthorized: requestCert,
      ALPNProtocols: alpn,
    });
    // node:http2 needs the TLS socket behind a plain Duplex (handed a TLSSocket directly, the
    // server session never starts in Deno 2.9.6), hence the Conn in between.
    return settleHandshake(sock, duplex, "secure", SERVER_HANDSHAKE_TIMEOUT).then(() => {
      followTransport(sock, duplex);
      return new DuplexConn(sock, { localAddr: raw.localAddr, remoteAddr: raw.remoteAddr });
    });
  };
}

/** The protocol ALPN chose on a connection made by one of the layers above, if any. */
export function alpnOf(conn: Conn): string | undefined {
  if (conn instanceof OsslTlsConn) return conn.alpnProtocol;
  const sock = (conn as Partial<DuplexConn>).stream;
  if (sock instanceof tls.TLSSocket) return sock.alpnProtocol || undefined;
  return undefined;
}

/**
 * Ends the TLS socket with its transport: in Deno 2.9.6 a TLSSocket over a Duplex does not
 * always report the transport's end (a peer that vanished left the HTTP/2 session open).
 */
function followTransport(sock: tls.TLSSocket, transport: Duplex): void {
  transport.once("end", () => setTimeout(() => sock.destroy(), 1000));
  transport.once("close", () => sock.destroy());
}

/**
 * The server side of TLS over any Conn: OpenSSL through FFI (openssl.ts) when the process has
 * it, else node:tls (a TLSSocket over a Conn↔Duplex adapter; `DOST_TLS_BACKEND=node` forces it).
 *
 * Why not Deno.listenTls: it cannot ask for client certificates (mTLS, `ca=`) and its conns
 * have no setNoDelay (Nagle stalls framed protocols such as smux). Measured on loopback, a
 * node:tls server over a Deno TCP conn sends as fast as Deno.listenTls (444 vs 448 MB/s to a
 * native client), so one implementation serves every TLS listener (tls, mtls, wss, mwss).
 */
import * as tls from "node:tls";
import { type Conn } from "../../core/conn.ts";
import { connToDuplex, DuplexConn, FlowGate } from "../../core/duplex.ts";
import { settleHandshake } from "./settle.ts";
import { osslTlsAvailable, OsslTlsServer } from "./openssl.ts";
import type { ServerTLS } from "./config.ts";

/** Handshake deadline of TLS listeners (gost's handlers allow 15 s for the first bytes). */
export const SERVER_HANDSHAKE_TIMEOUT = 15_000;

/** A reusable server context: the certificate is parsed once per listener. */
export class TLSServer {
  private readonly ctx: tls.SecureContext;
  private readonly requestCert: boolean;
  /** OpenSSL through FFI when available (about twice node:tls's throughput, half the CPU). */
  private readonly ossl?: OsslTlsServer;

  constructor(cfg: ServerTLS) {
    this.requestCert = cfg.ca !== undefined;
    if (osslTlsAvailable()) this.ossl = new OsslTlsServer(cfg);
    this.ctx = tls.createSecureContext({ cert: cfg.cert, key: cfg.key, ca: cfg.ca });
  }

  /** Runs the server handshake over `raw`; with `ca=`, a client without a valid cert fails. */
  handshake(raw: Conn, timeoutMs = SERVER_HANDSHAKE_TIMEOUT): Promise<Conn> {
    if (this.ossl) return this.ossl.handshake(raw, timeoutMs);
    const gate = new FlowGate();
    const duplex = connToDuplex(raw, gate);
    const sock = new tls.TLSSocket(duplex, {
      isServer: true,
      secureContext: this.ctx,
      requestCert: this.requestCert,
      rejectUnauthorized: this.requestCert,
    });
    return settleHandshake(sock, duplex, "secure", timeoutMs).then(() =>
      new DuplexConn(sock, { localAddr: raw.localAddr, remoteAddr: raw.remoteAddr }, {
        transport: duplex,
        gate,
      })
    );
  }
}

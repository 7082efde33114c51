/**
 * SNI proxy (handler `sni`, `-L sni://:443`): a TLS client's connection goes to the server its
 * ClientHello names, `<sni>:443`, through the chain like any other dial. The ClientHello is only
 * peeked, so the upstream receives the client's bytes exactly (the TLS session is end to end;
 * nothing is decrypted). Bytes that are not TLS are served as plain HTTP routed by the Host
 * header (http.ts). The service's bypass and permissions apply to `<sni>:<port>`.
 *
 * `host=[:port]`: as in gost v2, the port of `host` replaces 443 as the upstream port for TLS
 * (`host=:8443`). gost v2 ignores a host name there; dost refuses one rather than drop it.
 * gost v2's obfuscated server name (extension 0xFFFE from its sni connector) is not decoded,
 * as in gost v3: routing follows the visible name.
 */
import { BufferedConn } from "../../core/bufconn.ts";
import {
  addrString,
  closeQuietly,
  type Conn,
  joinHostPort,
  splitHostPort,
} from "../../core/conn.ts";
import { withDeadline } from "../../core/deadline.ts";
import { ConfigError, DialError, errMsg } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { relay } from "../../core/relay.ts";
import {
  type HandleContext,
  type Handler,
  type HandlerOptions,
  registerHandler,
} from "../../registry.ts";
import { peekServerName, RECORD_HANDSHAKE } from "./clienthello.ts";
import { serveHttp } from "./http.ts";

/** gost's handshake read deadline. */
const DEFAULT_READ_TIMEOUT = 15_000;

export class SniHandler implements Handler {
  private readonly readTimeout: number;
  private readonly idleTimeout: number;
  /** Upstream port for TLS connections. */
  private readonly port: number;

  constructor(private readonly o: HandlerOptions) {
    const p = o.params;
    const rt = p.duration("readTimeout", DEFAULT_READ_TIMEOUT);
    this.readTimeout = rt > 0 ? rt : DEFAULT_READ_TIMEOUT;
    this.idleTimeout = Math.max(p.duration("idleTimeout", 0), 0);
    this.port = 443;
    const host = p.str("host", "");
    if (host) {
      let hp;
      try {
        hp = splitHostPort(host.includes(":") ? host : `${host}:`);
      } catch {
        hp = undefined;
      }
      if (!hp || hp.host !== "" || hp.port === 0) {
        throw new ConfigError(
          `${p.where}: sni handler: parameter "host": "${host}": only a port is used ` +
            `(host=:PORT sets the upstream port of TLS connections, as in gost v2)`,
        );
      }
      this.port = hp.port;
    }
    if (o.auther) {
      throw new ConfigError(
        `${p.where}: sni handler: authentication is not supported (an SNI proxy cannot ask ` +
          `TLS clients for credentials)`,
      );
    }
    if (o.targets.length) {
      throw new ConfigError(
        `${p.where}: sni handler: forward targets are not supported (it routes by server name)`,
      );
    }
  }

  async handle(conn: Conn, ctx: HandleContext): Promise<void> {
    const bc = conn instanceof BufferedConn ? conn : new BufferedConn(conn);
    const client = addrString(bc.remoteAddr);
    let first: Uint8Array | null;
    try {
      first = await withDeadline(bc, this.readTimeout, "sni: first byte", () => bc.peekSome());
    } catch (e) {
      ctx.log.debug(`sni: ${client}: ${errMsg(e)}`);
      closeQuietly(bc);
      return;
    }
    if (first === null) {
      closeQuietly(bc);
      return;
    }
    if (first[0] !== RECORD_HANDSHAKE) {
      return await serveHttp(bc, {
        router: this.o.router,
        readTimeout: this.readTimeout,
        idleTimeout: this.idleTimeout,
      }, ctx.log);
    }
    await this.tls(bc, ctx.log);
  }

  private async tls(bc: BufferedConn, log: Logger): Promise<void> {
    const client = addrString(bc.remoteAddr);
    let name: string;
    try {
      name = await withDeadline(bc, this.readTimeout, "sni: ClientHello", () => peekServerName(bc));
    } catch (e) {
      log.debug(`sni: ${client}: ${errMsg(e)}`);
      closeQuietly(bc);
      return;
    }
    if (!name) {
      log.debug(`sni: ${client}: ClientHello without a server name`);
      closeQuietly(bc);
      return;
    }
    const target = joinHostPort(name, this.port);
    log.debug(`sni ${client} → ${target}`);
    let out: Conn;
    try {
      out = await this.o.router.dial("tcp", target);
    } catch (e) {
      const msg = `sni ${client} → ${target}: ${errMsg(e)}`;
      const refused = e instanceof DialError && e.code === "not-allowed";
      if (this.o.router.hasChain && !refused) log.warn(msg);
      else log.debug(msg);
      closeQuietly(bc);
      return;
    }
    // The peeked ClientHello is still buffered in bc: relay() sends it first, byte for byte.
    await relay(bc, out, { idleTimeout: this.idleTimeout });
  }
}

registerHandler("sni", (o) => new SniHandler(o));

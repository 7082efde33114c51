/**
 * Shadowsocks client (`-F ss://method:password@host:port`): wraps the hop's stream in the AEAD
 * (or 2022) stream and sends the target address in front of the first payload. The address goes
 * out with the first write, or alone after a short delay, so server-speaks-first protocols
 * (SSH, SMTP, MySQL) never wait on it — no `nodelay` needed.
 */
import { type Conn } from "../../core/conn.ts";
import { ConfigError } from "../../core/errors.ts";
import { registerConnector } from "../../registry.ts";
import { encodeAddr } from "../socks/addr.ts";
import { splitHostPort } from "../../core/conn.ts";
import { DeferredConn, FLUSH_DELAY_MS } from "../relay/conn.ts";
import { ssCipher } from "./cipher.ts";
import { SsStreamConn } from "./stream.ts";
import { check2022, Ss2022ClientConn } from "./ss2022.ts";

registerConnector("ss", (o) => {
  if (!o.auth) {
    throw new ConfigError(
      `node ${o.node}: shadowsocks needs method:password (ss://method:password@host:port)`,
    );
  }
  const cipher = ssCipher(
    o.auth.username,
    o.auth.password ?? "",
    `node ${o.node}`,
    o.params.str("key"),
  );
  if (cipher.method.kind === "2022") check2022(cipher, `node ${o.node}`);
  return {
    connect(conn: Conn, network, address) {
      if (network === "udp") {
        return Promise.reject(
          new ConfigError(`node ${o.node}: UDP through an ss hop needs ssu (not supported yet)`),
        );
      }
      const { host, port } = splitHostPort(address);
      const target = encodeAddr(host, port);
      switch (cipher.method.kind) {
        case "none":
          return Promise.resolve(new DeferredConn(conn, conn, target, FLUSH_DELAY_MS));
        case "2022":
          return Promise.resolve(new Ss2022ClientConn(conn, cipher, target));
        default: {
          const ss = new SsStreamConn(conn, cipher);
          return Promise.resolve(new DeferredConn(ss, ss, target, FLUSH_DELAY_MS));
        }
      }
    },
  };
});

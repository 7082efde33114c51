/** The `tls` dialer: TCP to the first hop, then a TLS handshake over whatever stream it gets. */
import { dialTCP } from "../../chain/direct.ts";
import type { Params } from "../../config/params.ts";
import type { Conn } from "../../core/conn.ts";
import { registerDialer } from "../../registry.ts";
import { clientTLSFromParams } from "./config.ts";
import { tlsClient } from "./client.ts";

/** A TLS client step configured from a node's parameters (`handshakeTimeout`, TLS keys). */
export function tlsStep(p: Params): (conn: Conn, addr: string, timeout: number) => Promise<Conn> {
  const cfg = clientTLSFromParams(p);
  const hsTimeout = p.duration("handshakeTimeout", 0);
  return (conn, addr, timeout) => tlsClient(conn, cfg, addr, hsTimeout > 0 ? hsTimeout : timeout);
}

registerDialer("tls", (o) => {
  const step = tlsStep(o.params);
  return {
    dial: (addr, d) => dialTCP(addr, d.timeout),
    handshake: (conn, h) => step(conn, h.addr, h.timeout),
  };
});

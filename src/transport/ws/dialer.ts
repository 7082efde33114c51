/** The `ws` and `wss` dialers: TCP to the first hop, then (TLS and) the WebSocket handshake. */
import { dialTCP } from "../../chain/direct.ts";
import { registerDialer } from "../../registry.ts";
import { tlsStep } from "../tls/dialer.ts";
import { wsClient, wsOptionsFromParams } from "./handshake.ts";

registerDialer("ws", (o) => {
  const wo = wsOptionsFromParams(o.params, "client");
  return {
    dial: (addr, d) => dialTCP(addr, d.timeout),
    handshake: (conn, h) => wsClient(conn, wo, h.addr, h.timeout),
  };
});

registerDialer("wss", (o) => {
  const tls = tlsStep(o.params);
  const wo = wsOptionsFromParams(o.params, "client");
  return {
    dial: (addr, d) => dialTCP(addr, d.timeout),
    handshake: async (conn, h) =>
      wsClient(await tls(conn, h.addr, h.timeout), wo, h.addr, h.timeout),
  };
});

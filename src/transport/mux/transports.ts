/**
 * gost's multiplexed stream transports, listener and dialer sides: `mtcp` (smux over TCP,
 * smux v2 by default), `mtls` (over TLS), `mws` (over WebSocket), `mwss` (over WebSocket over
 * TLS), all smux v1 by default as in gost; `mux.*` parameters tune the session.
 */
import type { Conn } from "../../core/conn.ts";
import { UpgradeListener } from "../../core/upgrade_listener.ts";
import { registerDialer, registerListener } from "../../registry.ts";
import { listenStream } from "../tcp/listener.ts";
import { tlsStep } from "../tls/dialer.ts";
import { tlsBase } from "../tls/listener.ts";
import { wsClient, wsOptionsFromParams, wsServer } from "../ws/handshake.ts";
import { muxConfigFromParams } from "./config.ts";
import { type Layer, MuxDialer } from "./pool.ts";
import { muxUpgrade } from "./server.ts";

const none = (c: Conn) => Promise.resolve(c);

registerListener("mtcp", (o) => {
  const cfg = muxConfigFromParams(o.params, { version: 2 });
  return Promise.resolve(
    new UpgradeListener(listenStream(o), muxUpgrade(none, cfg, o.log), o.log, "mtcp session"),
  );
});

registerListener("mtls", async (o) => {
  const cfg = muxConfigFromParams(o.params);
  const { tcp, tls } = await tlsBase(o);
  const layer = (raw: Conn) => tls.handshake(raw);
  return new UpgradeListener(tcp, muxUpgrade(layer, cfg, o.log), o.log, "mtls session");
});

registerListener("mws", (o) => {
  const cfg = muxConfigFromParams(o.params);
  const wo = wsOptionsFromParams(o.params, "server");
  const layer = (raw: Conn) => wsServer(raw, wo);
  return Promise.resolve(
    new UpgradeListener(listenStream(o), muxUpgrade(layer, cfg, o.log), o.log, "mws session"),
  );
});

registerListener("mwss", async (o) => {
  const cfg = muxConfigFromParams(o.params);
  const wo = wsOptionsFromParams(o.params, "server");
  const { tcp, tls } = await tlsBase(o);
  const layer = async (raw: Conn) => wsServer(await tls.handshake(raw), wo);
  return new UpgradeListener(tcp, muxUpgrade(layer, cfg, o.log), o.log, "mwss session");
});

registerDialer("mtcp", (o) => {
  const cfg = muxConfigFromParams(o.params, { version: 2 });
  return new MuxDialer((c) => Promise.resolve(c), cfg, o.log);
});

registerDialer("mtls", (o) => {
  const cfg = muxConfigFromParams(o.params);
  const layer: Layer = tlsStep(o.params);
  return new MuxDialer(layer, cfg, o.log);
});

registerDialer("mws", (o) => {
  const cfg = muxConfigFromParams(o.params);
  const wo = wsOptionsFromParams(o.params, "client");
  return new MuxDialer((c, addr, t) => wsClient(c, wo, addr, t), cfg, o.log);
});

registerDialer("mwss", (o) => {
  const cfg = muxConfigFromParams(o.params);
  const tls = tlsStep(o.params);
  const wo = wsOptionsFromParams(o.params, "client");
  return new MuxDialer(
    async (c, addr, t) => wsClient(await tls(c, addr, t), wo, addr, t),
    cfg,
    o.log,
  );
});

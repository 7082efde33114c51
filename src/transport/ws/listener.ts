/** The `ws` and `wss` listeners: a WebSocket upgrade (over TLS for wss) per connection. */
import { UpgradeListener } from "../../core/upgrade_listener.ts";
import { registerListener } from "../../registry.ts";
import { listenStream } from "../tcp/listener.ts";
import { tlsBase } from "../tls/listener.ts";
import { wsOptionsFromParams, wsServer } from "./handshake.ts";

registerListener("ws", (o) => {
  const wo = wsOptionsFromParams(o.params, "server");
  return Promise.resolve(
    new UpgradeListener(
      listenStream(o),
      async (raw, emit) => emit(await wsServer(raw, wo)),
      o.log,
      "ws upgrade",
    ),
  );
});

registerListener("wss", async (o) => {
  const wo = wsOptionsFromParams(o.params, "server");
  const { tcp, tls } = await tlsBase(o);
  return new UpgradeListener(
    tcp,
    async (raw, emit) => emit(await wsServer(await tls.handshake(raw), wo)),
    o.log,
    "wss upgrade",
  );
});

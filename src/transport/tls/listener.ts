/** The `tls` listener: TLS over TCP, handshaken before the handler sees the connection. */
import type { Listener } from "../../core/conn.ts";
import { UpgradeListener } from "../../core/upgrade_listener.ts";
import { type ListenerOptions, registerListener } from "../../registry.ts";
import { listenStream } from "../tcp/listener.ts";
import { serverTLSFromParams } from "./config.ts";
import { TLSServer } from "./server.ts";

/** TCP listener plus the TLS server context of a listener's `cert`/`key`/`ca` parameters. */
export async function tlsBase(o: ListenerOptions): Promise<{ tcp: Listener; tls: TLSServer }> {
  const tls = new TLSServer(await serverTLSFromParams(o.params, o.log));
  return { tcp: listenStream(o), tls };
}

registerListener("tls", async (o) => {
  const { tcp, tls } = await tlsBase(o);
  return new UpgradeListener(
    tcp,
    async (raw, emit) => emit(await tls.handshake(raw)),
    o.log,
    "tls handshake",
  );
});

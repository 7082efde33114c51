/**
 * The server side of gost's multiplexed transports: each accepted connection (after its
 * transport handshake) carries an smux session, and every stream the client opens on it is one
 * connection for the handler.
 */
import { addrString, type Conn } from "../../core/conn.ts";
import { errMsg, ProtocolError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import type { Upgrade } from "../../core/upgrade_listener.ts";
import type { MuxConfig } from "./config.ts";
import { MuxSession } from "./session.ts";

/**
 * An upgrade for UpgradeListener: `layer` runs the transport handshake (TLS, WebSocket, none),
 * then the session's streams are emitted until it ends. A session killed by a protocol error
 * (garbage, a bad frame) fails the upgrade, which the listener logs with the peer's address.
 */
export function muxUpgrade(
  layer: (raw: Conn) => Promise<Conn>,
  config: MuxConfig,
  log: Logger,
): Upgrade {
  return async (raw, emit) => {
    const peer = addrString(raw.remoteAddr);
    const session = new MuxSession(await layer(raw), { client: false, config });
    log.debug(`${peer}: mux session started (smux v${config.version})`);
    let streams = 0;
    for (;;) {
      try {
        emit(await session.acceptStream());
        streams++;
      } catch {
        break;
      }
    }
    const err = session.error;
    if (err instanceof ProtocolError) throw err;
    log.debug(`${peer}: mux session ended after ${streams} stream(s): ${errMsg(err)}`);
  };
}

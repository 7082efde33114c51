/**
 * The `forward` connector (gost v3's): the node itself is the target's doorway — typically a
 * dost/gost port forward (`-L tcp+tls://:443/target`) — so connecting asks nothing and the stream
 * the dialer built is used as is. `-F forward+otls://host:port` reaches a forwarded port through
 * a transport. Streams only: a datagram cannot be told apart on a bare stream.
 */
import { ConfigError } from "../../core/errors.ts";
import { registerConnector } from "../../registry.ts";

registerConnector("forward", (o) => ({
  connect(conn, network) {
    if (network === "udp") {
      return Promise.reject(
        new ConfigError(`node ${o.node}: the forward connector carries TCP only, not UDP`),
      );
    }
    return Promise.resolve(conn);
  },
}));

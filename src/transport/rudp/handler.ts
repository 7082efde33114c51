/**
 * `rudp` handler: forwards each session of the rudp listener (one far-end peer's datagrams) to
 * the service's target over a local UDP socket. It is the udp forward handler; the service gives
 * it a router without the chain (the chain belongs to the listener), so targets are reached
 * directly, as gost's remote forward handler does.
 */
import { UdpForwardHandler } from "../../protocol/forward/udp.ts";
import { registerHandler } from "../../registry.ts";

registerHandler("rudp", (o) => new UdpForwardHandler(o));

/**
 * `rtcp` handler: forwards each connection the rtcp listener accepted (one that arrived at the
 * far end) to the service's target. It is the tcp forward handler; the service gives it a
 * router without the chain (the chain belongs to the listener), so targets are dialed directly,
 * as gost's remote forward handler does.
 */
import { ForwardHandler } from "../../protocol/forward/handler.ts";
import { registerHandler } from "../../registry.ts";

registerHandler("rtcp", (o) => new ForwardHandler(o));

/** Imports every protocol and transport module so each registers itself. */
import "./transport/tcp/listener.ts";
import "./transport/tcp/dialer.ts";
import "./protocol/forward/handler.ts";

/** Imports every protocol and transport module so each registers itself. */
import "./transport/tcp/listener.ts";
import "./transport/tcp/dialer.ts";
import "./protocol/forward/handler.ts";
import "./protocol/http/connector.ts";
import "./protocol/socks4/handler.ts";
import "./protocol/socks5/handler.ts";
import "./protocol/socks5/connector.ts";
import "./protocol/http/handler.ts";
import "./protocol/auto/handler.ts";
import "./protocol/socks4/connector.ts";
import "./transport/udp/listener.ts";
import "./protocol/forward/udp.ts";
import "./transport/rtcp/listener.ts";
import "./transport/rtcp/handler.ts";
import "./transport/rudp/listener.ts";
import "./transport/rudp/handler.ts";

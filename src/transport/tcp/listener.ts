/** Plain TCP listener (`tcp`), the default transport, and the TCP base of stream transports. */
import { type Addr, type Conn, type Listener, setNoDelay, splitHostPort } from "../../core/conn.ts";
import { UpgradeListener } from "../../core/upgrade_listener.ts";
import {
  acceptProxyHeader,
  describeProxied,
  ProxiedConn,
  proxyHeaderTimeout,
} from "../../protocol/proxyproto/proxied.ts";
import { type ListenerOptions, registerListener } from "../../registry.ts";

/** Listens on `addr`; an empty host means all interfaces of both address families. */
export function listenTCP(addr: string): Listener {
  const { host, port } = splitHostPort(addr);
  let l: Deno.TcpListener;
  if (host === "") {
    try {
      l = Deno.listen({ hostname: "::", port, transport: "tcp" });
    } catch (e) {
      if (e instanceof Deno.errors.AddrInUse || e instanceof Deno.errors.PermissionDenied) throw e;
      l = Deno.listen({ hostname: "0.0.0.0", port, transport: "tcp" }); // no IPv6 on this host
    }
  } else {
    l = Deno.listen({ hostname: host, port, transport: "tcp" });
  }
  return new TCPListener(l);
}

class TCPListener implements Listener {
  constructor(private readonly l: Deno.TcpListener) {}
  get addr(): Addr {
    return this.l.addr;
  }
  async accept(): Promise<Conn> {
    const c = await this.l.accept();
    setNoDelay(c);
    return c;
  }
  close(): void {
    this.l.close();
  }
}

/**
 * The TCP listener under a stream transport (tls, ws, mux, h2, grpc, obfs, …). With
 * `proxyProtocol=1|2` each connection's PROXY header is read here, before the transport's own
 * handshake, as gost wraps its TCP listener (a load balancer sends the header ahead of the
 * ClientHello or the HTTP upgrade). A plain `tcp` service reads it in its handler instead.
 */
export function listenStream(o: ListenerOptions): Listener {
  const tcp = listenTCP(o.addr);
  const version = o.params.int("proxyProtocol", 0, 0, 2);
  if (version === 0) return tcp;
  const timeout = proxyHeaderTimeout(o.params);
  return new UpgradeListener(
    tcp,
    async (raw, emit) => {
      const { conn, header } = await acceptProxyHeader(raw, timeout);
      if (conn instanceof ProxiedConn) o.log.debug(describeProxied(raw, conn, header));
      emit(conn);
    },
    o.log,
    "PROXY header",
  );
}

registerListener("tcp", (o) => Promise.resolve(listenTCP(o.addr)));

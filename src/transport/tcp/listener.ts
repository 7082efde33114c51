/** Plain TCP listener (`tcp`), the default transport. */
import { type Addr, type Conn, type Listener, setNoDelay, splitHostPort } from "../../core/conn.ts";
import { registerListener } from "../../registry.ts";

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

registerListener("tcp", (o) => Promise.resolve(listenTCP(o.addr)));

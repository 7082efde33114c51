/**
 * Direct TCP dialing: name resolution by the system resolver (getaddrinfo, so /etc/hosts and
 * both address families are honoured; Deno tries each resolved address in turn), a timeout,
 * and TCP_NODELAY on the new socket.
 */
import { type Conn, setNoDelay, splitHostPort } from "../core/conn.ts";
import { classifyNetError, DialError, errMsg } from "../core/errors.ts";

/** Opens a TCP connection to `address` (`host:port`) within `timeoutMs` (0 = no limit). */
export async function dialTCP(address: string, timeoutMs: number): Promise<Conn> {
  const { host, port } = splitHostPort(address);
  const hostname = host === "" ? "127.0.0.1" : host;
  const p = Deno.connect({ hostname, port, transport: "tcp" });
  let conn: Deno.TcpConn;
  try {
    conn = timeoutMs > 0 ? await withTimeout(p, timeoutMs, address) : await p;
  } catch (e) {
    if (e instanceof DialError) throw e;
    throw new DialError(`dial ${address}: ${errMsg(e)}`, classifyNetError(e), { cause: e });
  }
  setNoDelay(conn);
  return conn;
}

function withTimeout(p: Promise<Deno.TcpConn>, ms: number, address: string) {
  return new Promise<Deno.TcpConn>((resolve, reject) => {
    let done = false;
    const t = setTimeout(() => {
      done = true;
      reject(new DialError(`dial ${address}: timed out after ${ms} ms`, "timeout"));
      // A connect that lands after the deadline must not leak its socket.
      p.then((c) => c.close(), () => {});
    }, ms);
    p.then((c) => {
      if (done) return;
      clearTimeout(t);
      resolve(c);
    }, (e) => {
      if (done) return;
      clearTimeout(t);
      reject(e);
    });
  });
}

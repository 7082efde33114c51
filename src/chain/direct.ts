/**
 * Direct TCP dialing: name resolution by the system resolver (getaddrinfo, so /etc/hosts and
 * both address families are honoured; Deno tries each resolved address in turn), a timeout,
 * and TCP_NODELAY on the new socket.
 */
import { type Conn, joinHostPort, setNoDelay, splitHostPort } from "../core/conn.ts";
import { classifyNetError, DialError, errMsg } from "../core/errors.ts";
import type { NameLookup } from "../core/resolve.ts";

/**
 * Opens a TCP connection to `address` (`host:port`) within `timeoutMs` (0 = no limit).
 * With `names` (the service's hosts/resolver), the host is resolved there first and its
 * addresses are tried in order within the same overall timeout; a name `names` leaves to the
 * system (null) is dialed as is.
 */
export async function dialTCP(
  address: string,
  timeoutMs: number,
  names?: NameLookup,
): Promise<Conn> {
  if (names) {
    const { host, port } = splitHostPort(address);
    const ips = host === "" ? null : await names.lookup(host);
    if (ips?.length) {
      const deadline = Date.now() + timeoutMs;
      let err: unknown;
      for (const ip of ips) {
        const left = timeoutMs > 0 ? deadline - Date.now() : 0;
        if (timeoutMs > 0 && left <= 0) break;
        try {
          return await dialOne(joinHostPort(ip, port), left, address);
        } catch (e) {
          err = e;
        }
      }
      throw err ?? new DialError(`dial ${address}: timed out after ${timeoutMs} ms`, "timeout");
    }
  }
  return dialOne(address, timeoutMs, address);
}

async function dialOne(address: string, timeoutMs: number, target: string): Promise<Conn> {
  const { host, port } = splitHostPort(address);
  const hostname = host === "" ? "127.0.0.1" : host;
  const p = Deno.connect({ hostname, port, transport: "tcp" });
  let conn: Deno.TcpConn;
  try {
    conn = timeoutMs > 0 ? await withTimeout(p, timeoutMs, address) : await p;
  } catch (e) {
    if (e instanceof DialError) throw e;
    const via = target === address ? "" : ` (${address})`;
    throw new DialError(`dial ${target}${via}: ${errMsg(e)}`, classifyNetError(e), { cause: e });
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

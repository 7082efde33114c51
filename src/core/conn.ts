/**
 * The stream and packet interfaces every dost module plugs into.
 *
 * `Conn` is a structural subset of `Deno.Conn`, so a native socket already is a `Conn`; layered
 * transports (TLS over a tunnel, WebSocket framing, mux streams) are `Conn`s wrapping a `Conn`.
 */

/** A network address, shaped like `Deno.NetAddr` so native addresses need no conversion. */
export interface Addr {
  transport: string;
  hostname: string;
  port: number;
}

/** A bidirectional byte stream. */
export interface Conn {
  /** Reads into `p`; resolves to the count read, or `null` at end of stream. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes some of `p`; resolves to the count written. */
  write(p: Uint8Array): Promise<number>;
  /** Half-close: sends end-of-stream (FIN) while the read side stays open. */
  closeWrite(): Promise<void>;
  close(): void;
  readonly localAddr: Addr;
  readonly remoteAddr: Addr;
}

/** A datagram socket: one message per call. */
export interface PacketConn {
  readFrom(p: Uint8Array): Promise<[n: number, from: Addr] | null>;
  writeTo(p: Uint8Array, to: Addr): Promise<number>;
  close(): void;
  readonly localAddr: Addr;
}

/** The server side of a transport. */
export interface Listener {
  accept(): Promise<Conn>;
  close(): void;
  readonly addr: Addr;
}

/** Writes all of `p`, looping over short writes. */
export async function writeAll(conn: Conn, p: Uint8Array): Promise<void> {
  let off = 0;
  while (off < p.length) {
    off += await conn.write(off === 0 ? p : p.subarray(off));
  }
}

/** Turns on TCP_NODELAY where the conn is a native TCP socket (Deno leaves Nagle on). */
export function setNoDelay(conn: Conn): void {
  const c = conn as Partial<Deno.TcpConn>;
  if (typeof c.setNoDelay === "function") {
    try {
      c.setNoDelay(true);
    } catch {
      // The socket may already be closed by the peer; nothing to tune then.
    }
  }
}

/** Closes without throwing (closing twice or closing a reset socket is not an error here). */
export function closeQuietly(c: { close(): void } | undefined | null): void {
  if (!c) return;
  try {
    c.close();
  } catch {
    // already closed
  }
}

/** Formats an address as `host:port`, with IPv6 hosts in brackets. */
export function addrString(a: Addr | undefined): string {
  if (!a) return "?";
  return joinHostPort(a.hostname, a.port);
}

/** Joins host and port, bracketing IPv6 literals. */
export function joinHostPort(host: string, port: number | string): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Splits `host:port` / `[v6]:port`. Throws on a missing or invalid port.
 */
export function splitHostPort(s: string): { host: string; port: number } {
  let host: string;
  let portStr: string;
  if (s.startsWith("[")) {
    const end = s.indexOf("]");
    if (end < 0 || s[end + 1] !== ":") throw new Error(`invalid address "${s}"`);
    host = s.slice(1, end);
    portStr = s.slice(end + 2);
  } else {
    const i = s.lastIndexOf(":");
    if (i < 0) throw new Error(`missing port in address "${s}"`);
    host = s.slice(0, i);
    portStr = s.slice(i + 1);
    if (host.includes(":")) throw new Error(`IPv6 address must be in brackets: "${s}"`);
  }
  if (!/^\d{1,5}$/.test(portStr)) throw new Error(`invalid port in address "${s}"`);
  const port = Number(portStr);
  if (port > 65535) throw new Error(`port out of range in address "${s}"`);
  return { host, port };
}

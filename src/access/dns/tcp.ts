/** DNS over TCP (RFC 7766): each message prefixed with its 2-byte length, one query per connection. */
import { closeQuietly, type Conn, setNoDelay, writeAll } from "../../core/conn.ts";
import { type Exchanger, withTimeout } from "./exchanger.ts";

export class TcpExchanger implements Exchanger {
  constructor(
    private readonly host: string,
    private readonly port: number,
    readonly name: string,
  ) {}

  exchange(query: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    let conn: Conn | undefined;
    let timedOut = false;
    return withTimeout(this.name, timeoutMs, async () => {
      const c = await Deno.connect({ hostname: this.host, port: this.port, transport: "tcp" });
      if (timedOut) {
        closeQuietly(c);
        throw new Error("timed out");
      }
      conn = c;
      setNoDelay(c);
      try {
        return await streamExchange(c, query);
      } finally {
        closeQuietly(c);
      }
    }, () => {
      timedOut = true;
      closeQuietly(conn);
    });
  }
}

/** Writes one length-prefixed message and reads the length-prefixed reply. */
export async function streamExchange(conn: Conn, query: Uint8Array): Promise<Uint8Array> {
  const out = new Uint8Array(2 + query.length);
  new DataView(out.buffer).setUint16(0, query.length);
  out.set(query, 2);
  await writeAll(conn, out);
  const len = await readFull(conn, 2);
  const n = (len[0] << 8) | len[1];
  return await readFull(conn, n);
}

async function readFull(conn: Conn, n: number): Promise<Uint8Array> {
  const b = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const r = await conn.read(b.subarray(off));
    if (r === null) throw new Error("connection closed before the DNS reply was complete");
    off += r;
  }
  return b;
}

/**
 * DNS over TLS (RFC 7858): DNS-over-TCP framing inside TLS. As in gost, the server certificate is
 * not verified (gost sets InsecureSkipVerify when no server name is configured, which its CLI
 * forms never do); the upstream is named by address, so there is nothing to verify it against.
 */
import tls from "node:tls";
import { type Exchanger, withTimeout } from "./exchanger.ts";

export class TlsExchanger implements Exchanger {
  constructor(
    private readonly host: string,
    private readonly port: number,
    readonly name: string,
  ) {}

  exchange(query: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    let sock: tls.TLSSocket | undefined;
    return withTimeout(this.name, timeoutMs, () =>
      new Promise<Uint8Array>((resolve, reject) => {
        const s = tls.connect({
          host: this.host,
          port: this.port,
          rejectUnauthorized: false,
          // SNI must be a name, never an IP literal.
          ...(/^[\d.]+$|:/.test(this.host) ? {} : { servername: this.host }),
        });
        sock = s;
        s.setNoDelay(true);
        const chunks: Uint8Array[] = [];
        let have = 0;
        s.on("secureConnect", () => {
          const out = new Uint8Array(2 + query.length);
          new DataView(out.buffer).setUint16(0, query.length);
          out.set(query, 2);
          s.write(out);
        });
        s.on("data", (d: Uint8Array) => {
          chunks.push(new Uint8Array(d));
          have += d.length;
          if (have < 2) return;
          const all = concat(chunks, have);
          const n = (all[0] << 8) | all[1];
          if (have < 2 + n) return;
          s.destroy();
          resolve(all.slice(2, 2 + n));
        });
        s.on("error", (e: Error) => reject(e));
        s.on("close", () => reject(new Error("connection closed before the DNS reply")));
      }), () => sock?.destroy());
  }
}

function concat(chunks: Uint8Array[], n: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const b = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    b.set(c, off);
    off += c.length;
  }
  chunks.length = 0;
  chunks.push(b);
  return b;
}

/**
 * DNS over HTTPS (RFC 8484): POST of the wire-format query as `application/dns-message`. As for
 * DoT, the certificate is not verified, matching gost (InsecureSkipVerify without a server name).
 */
import https from "node:https";
import { type Exchanger, withTimeout } from "./exchanger.ts";

/** Largest reply accepted (a DNS message is at most 64 KiB). */
const MAX_REPLY = 65_535;

export class HttpsExchanger implements Exchanger {
  readonly name: string;
  constructor(private readonly url: URL) {
    this.name = url.href;
  }

  exchange(query: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    let req: ReturnType<typeof https.request> | undefined;
    return withTimeout(this.name, timeoutMs, () =>
      new Promise<Uint8Array>((resolve, reject) => {
        const r = https.request(this.url, {
          method: "POST",
          rejectUnauthorized: false,
          agent: false,
          headers: {
            "content-type": "application/dns-message",
            "accept": "application/dns-message",
            "content-length": String(query.length),
          },
        }, (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            reject(new Error(`${this.name}: HTTP ${res.statusCode}`));
            return;
          }
          const chunks: Uint8Array[] = [];
          let n = 0;
          res.on("data", (d: Uint8Array) => {
            n += d.length;
            if (n > MAX_REPLY) {
              r.destroy();
              reject(new Error(`${this.name}: reply larger than ${MAX_REPLY} bytes`));
              return;
            }
            chunks.push(new Uint8Array(d));
          });
          res.on("end", () => {
            const b = new Uint8Array(n);
            let off = 0;
            for (const c of chunks) {
              b.set(c, off);
              off += c.length;
            }
            resolve(b);
          });
          res.on("error", reject);
        });
        req = r;
        r.on("error", reject);
        r.end(query);
      }), () => req?.destroy());
  }
}

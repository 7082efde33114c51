/** DNS over UDP (RFC 1035), falling back to TCP when the reply is truncated. */
import { closeQuietly } from "../../core/conn.ts";
import { ipVersion, normalizeIP } from "../../core/ip.ts";
import { type Exchanger, withTimeout } from "./exchanger.ts";
import { messageId } from "./msg.ts";
import { TcpExchanger } from "./tcp.ts";

/** Largest reply read (EDNS0-sized; classic DNS replies are ≤ 512 bytes). */
const MAX_REPLY = 4096;

export class UdpExchanger implements Exchanger {
  private readonly tcp: TcpExchanger;
  constructor(private readonly host: string, private readonly port: number, readonly name: string) {
    this.tcp = new TcpExchanger(host, port, name);
  }

  async exchange(query: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const start = Date.now();
    const v6 = ipVersion(this.host) === 6;
    const sock = Deno.listenDatagram({
      transport: "udp",
      hostname: v6 ? "::" : "0.0.0.0",
      port: 0,
    });
    const id = messageId(query);
    const run = async () => {
      await sock.send(query, { transport: "udp", hostname: this.host, port: this.port });
      const buf = new Uint8Array(MAX_REPLY);
      const peer = normalizeIP(this.host);
      for (;;) {
        const [msg, from] = await sock.receive(buf);
        // Only the server's reply to this query counts (stray datagrams are dropped).
        if (normalizeIP((from as Deno.NetAddr).hostname) !== peer) continue;
        if (messageId(msg) !== id) continue;
        return msg.slice();
      }
    };
    let reply: Uint8Array;
    try {
      reply = await withTimeout(`${this.name}`, timeoutMs, run, () => closeQuietly(sock));
    } finally {
      closeQuietly(sock);
    }
    // TC bit: the answer did not fit in a datagram; ask again over TCP (RFC 7766).
    if (reply.length >= 3 && (reply[2] & 0x02) !== 0) {
      return this.tcp.exchange(query, Math.max(1, timeoutMs - (Date.now() - start)));
    }
    return reply;
  }
}

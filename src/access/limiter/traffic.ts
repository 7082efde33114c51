/**
 * Traffic (bandwidth) limits, gost v3 style: `in` is what the service receives from a client,
 * `out` what it sends to a client, in bytes per second. Scopes: `$` one bucket shared by the
 * whole service, `$$` one bucket per connection, an IP or CIDR one bucket per client IP.
 * Every bucket's burst is one second's worth, as gost's (rate.NewLimiter(r, r)).
 */
import type { Addr, Conn } from "../../core/conn.ts";
import { sleep, TokenBucket } from "./bucket.ts";
import { parseSize, ScopeTable } from "./parse.ts";

/** Bytes per second in each direction; 0 means unlimited. */
export interface Rates {
  in: number;
  out: number;
}

/** Parses `<in> [<out>]`; zero or negative sizes mean unlimited, as in gost. */
export function parseRates(values: string[]): Rates {
  const size = (s: string | undefined) => (s === undefined ? 0 : Math.max(0, parseSize(s)));
  return { in: size(values[0]), out: size(values[1]) };
}

const bucket = (rate: number) => (rate > 0 ? new TokenBucket(rate, rate) : undefined);

interface IpEntry {
  in?: TokenBucket;
  out?: TokenBucket;
  conns: number;
}

/** Above this many remembered client IPs, idle ones are forgotten. */
const MAX_IDLE_IPS = 1024;

/** Applies traffic limits to accepted connections. */
export class TrafficLimiter {
  private readonly globalIn?: TokenBucket;
  private readonly globalOut?: TokenBucket;
  private readonly perIp = new Map<string, IpEntry>();

  constructor(private readonly table: ScopeTable<Rates>) {
    this.globalIn = bucket(table.global?.in ?? 0);
    this.globalOut = bucket(table.global?.out ?? 0);
  }

  /** Builds a limiter from gost limit lines (`$ 100MB 200MB`, `$$ 10MB`, `10.0.0.0/8 1MB 2MB`). */
  static parse(lines: string[]): TrafficLimiter {
    return new TrafficLimiter(ScopeTable.parse(lines, parseRates));
  }

  private ipEntry(host: string): { key: string; entry: IpEntry } | undefined {
    const found = this.table.lookupAddress(host);
    if (!found || (found.value.in <= 0 && found.value.out <= 0)) return undefined;
    let entry = this.perIp.get(found.key);
    if (!entry) {
      if (this.perIp.size >= MAX_IDLE_IPS) {
        for (const [k, e] of this.perIp) {
          if (e.conns === 0 && (e.in?.idle ?? true) && (e.out?.idle ?? true)) this.perIp.delete(k);
        }
      }
      entry = { in: bucket(found.value.in), out: bucket(found.value.out), conns: 0 };
      this.perIp.set(found.key, entry);
    }
    return { key: found.key, entry };
  }

  /** Wraps `conn` with the buckets that apply to its client; returns it unchanged if none do. */
  wrap(conn: Conn): Conn {
    const ins: TokenBucket[] = [];
    const outs: TokenBucket[] = [];
    const add = (list: TokenBucket[], b: TokenBucket | undefined) => b && list.push(b);
    add(ins, this.globalIn);
    add(outs, this.globalOut);
    const client = this.table.client;
    if (client) {
      add(ins, bucket(client.in));
      add(outs, bucket(client.out));
    }
    const ip = this.ipEntry(conn.remoteAddr.hostname);
    if (ip) {
      add(ins, ip.entry.in);
      add(outs, ip.entry.out);
    }
    if (!ins.length && !outs.length) return conn;
    if (ip) ip.entry.conns++;
    return new LimitedConn(conn, ins, outs, () => {
      if (ip) ip.entry.conns--;
    });
  }
}

/** Takes `n` tokens from every bucket and waits for the slowest. */
async function take(buckets: TokenBucket[], n: number): Promise<void> {
  let wait = 0;
  for (const b of buckets) wait = Math.max(wait, b.reserve(n));
  if (wait > 0) await sleep(wait);
}

/** A Conn whose reads and writes are paced by token buckets. */
export class LimitedConn implements Conn {
  private readonly inMax: number;
  private readonly outMax: number;
  private closed = false;
  /** Datagram sessions (udp listeners) keep message boundaries: no splitting, no truncation. */
  private readonly packets: boolean;

  constructor(
    private readonly inner: Conn,
    private readonly ins: TokenBucket[],
    private readonly outs: TokenBucket[],
    private readonly onClose: () => void,
  ) {
    // One call never asks for more than the smallest burst, so a reservation always fits.
    this.inMax = Math.max(1, Math.min(...ins.map((b) => Math.floor(b.burst))));
    this.outMax = Math.max(1, Math.min(...outs.map((b) => Math.floor(b.burst))));
    this.packets = inner.localAddr?.transport === "udp";
  }

  get localAddr(): Addr {
    return this.inner.localAddr;
  }

  get remoteAddr(): Addr {
    return this.inner.remoteAddr;
  }

  async read(p: Uint8Array): Promise<number | null> {
    if (!this.ins.length) return this.inner.read(p);
    // Read no more than one reservation's worth, then pay for what arrived; not reading
    // further meanwhile lets TCP flow control push back on the client.
    if (this.packets) {
      const m = await this.inner.read(p);
      if (m) await take(this.ins, Math.min(m, this.inMax));
      return m;
    }
    const n = await this.inner.read(p.length > this.inMax ? p.subarray(0, this.inMax) : p);
    if (n) await take(this.ins, n);
    return n;
  }

  async write(p: Uint8Array): Promise<number> {
    if (!this.outs.length) return this.inner.write(p);
    if (this.packets) {
      await take(this.outs, Math.min(p.length, this.outMax));
      return this.inner.write(p);
    }
    let off = 0;
    while (off < p.length) {
      const end = Math.min(p.length, off + this.outMax);
      await take(this.outs, end - off);
      while (off < end) off += await this.inner.write(p.subarray(off, end));
    }
    return p.length;
  }

  closeWrite(): Promise<void> {
    return this.inner.closeWrite();
  }

  close(): void {
    if (!this.closed) {
      this.closed = true;
      this.onClose();
    }
    this.inner.close();
  }
}

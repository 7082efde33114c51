/** Unit tests of the token bucket, traffic, connection and rate limiters (no timing asserts). */
import { assert, assertEquals, assertThrows } from "../../../tests/lib/assert.ts";
import type { Addr, Conn } from "../../core/conn.ts";
import { TokenBucket } from "./bucket.ts";
import { ConnLimiter } from "./conn.ts";
import { RateLimiter } from "./rate.ts";
import { LimitedConn, parseRates, TrafficLimiter } from "./traffic.ts";

Deno.test("TokenBucket: starts full, reserve goes into debt and reports a wait", () => {
  const b = new TokenBucket(100, 100);
  assert(b.tryTake(60));
  assert(!b.tryTake(60));
  assertEquals(b.reserve(40), 0);
  const wait = b.reserve(50);
  // 50 tokens short at 100/s: up to half a second (less as time passes while testing).
  assert(wait > 0 && wait <= 500, `wait ${wait}`);
});

Deno.test("RateLimiter: burst of floor(r)+1 for $, then refusals; $$ is per client IP", () => {
  const g = RateLimiter.parse(["$ 1"]);
  assert(g.allow("127.0.0.1"));
  assert(g.allow("127.0.0.2"));
  assert(!g.allow("127.0.0.3"));
  const c = RateLimiter.parse(["$$ 2"]);
  for (let i = 0; i < 3; i++) assert(c.allow("10.0.0.1"));
  assert(!c.allow("10.0.0.1"));
  assert(c.allow("10.0.0.2"));
  const ip = RateLimiter.parse(["$$ 100", "10.0.0.0/8 0.5"]);
  assert(ip.allow("10.1.1.1"));
  assert(!ip.allow("10.1.1.1"));
  assert(ip.allow("11.1.1.1"));
  assertThrows(() => RateLimiter.parse(["$ fast"]), Error, "invalid rate");
});

Deno.test("ConnLimiter: $ caps the service, $$ each IP, release frees a slot once", () => {
  const l = ConnLimiter.parse(["$ 3", "$$ 2", "10.0.0.9 1"]);
  const a = l.acquire("10.0.0.1");
  assert(a && l.acquire("10.0.0.1"));
  assertEquals(l.acquire("10.0.0.1"), undefined);
  assert(l.acquire("10.0.0.9"));
  assertEquals(l.acquire("10.0.0.2"), undefined); // service total 3 reached
  a();
  a(); // idempotent
  assertEquals(l.count, 2);
  assert(l.acquire("10.0.0.2"));
  assertEquals(l.acquire("10.0.0.9"), undefined);
  assertThrows(() => ConnLimiter.parse(["$ many"]), Error, "invalid connection limit");
});

Deno.test("parseRates: optional out, zero or negative means unlimited", () => {
  assertEquals(parseRates(["1MB"]), { in: 1 << 20, out: 0 });
  assertEquals(parseRates(["0", "512KB"]), { in: 0, out: 512 << 10 });
  assertEquals(parseRates(["-1MB", "-1"]), { in: 0, out: 0 });
});

/** An in-memory Conn: reads come from `input`, writes are recorded in call-sized pieces. */
class MemConn implements Conn {
  writes: number[] = [];
  closed = false;
  readonly localAddr: Addr = { transport: "tcp", hostname: "127.0.0.1", port: 1 };
  constructor(private input: Uint8Array, readonly remoteAddr: Addr) {}
  read(p: Uint8Array): Promise<number | null> {
    if (!this.input.length) return Promise.resolve(null);
    const n = Math.min(p.length, this.input.length);
    p.set(this.input.subarray(0, n));
    this.input = this.input.subarray(n);
    return Promise.resolve(n);
  }
  write(p: Uint8Array): Promise<number> {
    this.writes.push(p.length);
    return Promise.resolve(p.length);
  }
  closeWrite(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {
    this.closed = true;
  }
}

const peer = (hostname: string): Addr => ({ transport: "tcp", hostname, port: 5000 });

Deno.test("TrafficLimiter: no applicable limit returns the conn itself (zero cost)", () => {
  const l = TrafficLimiter.parse(["10.0.0.0/8 1MB 1MB"]);
  const c = new MemConn(new Uint8Array(0), peer("127.0.0.1"));
  assert(l.wrap(c) === c);
  assert(l.wrap(new MemConn(new Uint8Array(0), peer("10.1.2.3"))) instanceof LimitedConn);
});

Deno.test("TrafficLimiter: reads and writes are split to the burst and stay byte-exact", async () => {
  const data = crypto.getRandomValues(new Uint8Array(3000));
  const l = TrafficLimiter.parse(["$ 1000KB 1000KB", "$$ 0 1KB"]);
  const inner = new MemConn(data, peer("127.0.0.1"));
  const c = l.wrap(inner);
  const got = new Uint8Array(4096);
  let total = 0;
  for (;;) {
    const n = await c.read(got.subarray(total));
    if (n === null) break;
    total += n;
  }
  assertEquals(total, 3000);
  assertEquals(got.subarray(0, total), data);
  // Writes go out in pieces no larger than the smallest out burst (1 KiB, per connection).
  assertEquals(await c.write(new Uint8Array(1500)), 1500);
  assertEquals(inner.writes, [1024, 476]);
  c.close();
  assert(inner.closed);
});

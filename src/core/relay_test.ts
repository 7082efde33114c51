import { assertEquals } from "../../tests/lib/assert.ts";
import { BufferedConn } from "./bufconn.ts";
import type { Addr, Conn } from "./conn.ts";
import { relay } from "./relay.ts";

const ADDR: Addr = { transport: "tcp", hostname: "127.0.0.1", port: 1 };

/** An in-memory Conn: reads come from `input` in the given chunks; writes are collected. */
class MemConn implements Conn {
  written: Uint8Array[] = [];
  writeClosed = false;
  closed = false;
  private idx = 0;
  constructor(private readonly input: Uint8Array[], private readonly hang = false) {}
  localAddr = ADDR;
  remoteAddr = ADDR;
  read(p: Uint8Array): Promise<number | null> {
    if (this.closed) return Promise.reject(new Deno.errors.BadResource("closed"));
    if (this.idx >= this.input.length) {
      return this.hang ? new Promise((_, rej) => this.onClose = rej) : Promise.resolve(null);
    }
    const chunk = this.input[this.idx];
    const n = Math.min(p.length, chunk.length);
    p.set(chunk.subarray(0, n));
    if (n < chunk.length) this.input[this.idx] = chunk.subarray(n);
    else this.idx++;
    return Promise.resolve(n);
  }
  private onClose?: (e: Error) => void;
  write(p: Uint8Array): Promise<number> {
    const n = Math.min(p.length, 1000); // short writes exercise the write loop
    this.written.push(p.slice(0, n));
    return Promise.resolve(n);
  }
  closeWrite(): Promise<void> {
    this.writeClosed = true;
    return Promise.resolve();
  }
  close(): void {
    this.closed = true;
    this.onClose?.(new Deno.errors.BadResource("closed"));
  }
  all(): Uint8Array {
    const n = this.written.reduce((s, c) => s + c.length, 0);
    const out = new Uint8Array(n);
    let o = 0;
    for (const c of this.written) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

Deno.test("relay copies both ways, propagates half-close, counts bytes", async () => {
  const big = crypto.getRandomValues(new Uint8Array(65536));
  const a = new MemConn([new Uint8Array([1, 2, 3]), big, big]);
  const b = new MemConn([new Uint8Array([9, 8])]);
  const stats = await relay(a, b);
  assertEquals(stats.aToB, 3 + 2 * 65536);
  assertEquals(stats.bToA, 2);
  assertEquals(b.all().length, 3 + 2 * 65536);
  assertEquals(b.all().subarray(3, 3 + 65536), big);
  assertEquals(a.all(), new Uint8Array([9, 8]));
  assertEquals([a.writeClosed, b.writeClosed, a.closed, b.closed], [true, true, true, true]);
});

Deno.test("relay closes both sides after the idle timeout", async () => {
  const a = new MemConn([new Uint8Array([1])], true);
  const b = new MemConn([], true);
  const stats = await relay(a, b, { idleTimeout: 50 });
  assertEquals(stats.aToB, 1);
  assertEquals([a.closed, b.closed], [true, true]);
});

Deno.test("BufferedConn: lines, exact reads, peek, then pass-through", async () => {
  const enc = new TextEncoder();
  const c = new BufferedConn(
    new MemConn([
      enc.encode("GET / HTTP/1.1\r\nHo"),
      enc.encode("st: x\n\r\nBODY"),
      enc.encode("REST"),
    ]),
  );
  assertEquals(await c.readLine(), "GET / HTTP/1.1");
  assertEquals(await c.readLine(), "Host: x");
  assertEquals(await c.readLine(), "");
  assertEquals((await c.peek(2)).slice(), enc.encode("BO"));
  assertEquals(await c.readFull(4), enc.encode("BODY"));
  const p = new Uint8Array(10);
  const n = await c.read(p);
  assertEquals(new TextDecoder().decode(p.subarray(0, n!)), "REST");
  assertEquals(await c.read(p), null);
});

Deno.test("BufferedConn: an oversized line is a protocol error", async () => {
  const c = new BufferedConn(new MemConn([new Uint8Array(100_000).fill(65)]));
  let err = "";
  try {
    await c.readLine(1024);
  } catch (e) {
    err = (e as Error).message;
  }
  assertEquals(err.includes("longer than 1024"), true);
});

Deno.test("BufferedConn: truncated input is a protocol error", async () => {
  const c = new BufferedConn(new MemConn([new Uint8Array([5, 2])]));
  let err = "";
  try {
    await c.readFull(4);
  } catch (e) {
    err = (e as Error).name;
  }
  assertEquals(err, "ProtocolError");
});

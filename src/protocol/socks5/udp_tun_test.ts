import { assert, assertEquals, assertRejects } from "../../../tests/lib/assert.ts";
import { BufferedConn } from "../../core/bufconn.ts";
import type { Addr, Conn } from "../../core/conn.ts";
import { ProtocolError } from "../../core/errors.ts";
import { encodeUdpTunFrame, readUdpTunFrame, UdpTunPacketConn } from "./udp_tun.ts";

const ADDR: Addr = { transport: "tcp", hostname: "127.0.0.1", port: 1 };

/** A Conn reading from fixed bytes (in small pieces) and collecting writes. */
class Mem implements Conn {
  written: Uint8Array[] = [];
  private off = 0;
  constructor(private readonly input: Uint8Array) {}
  localAddr = ADDR;
  remoteAddr = ADDR;
  read(p: Uint8Array): Promise<number | null> {
    if (this.off >= this.input.length) return Promise.resolve(null);
    const n = Math.min(p.length, 5, this.input.length - this.off);
    p.set(this.input.subarray(this.off, this.off + n));
    this.off += n;
    return Promise.resolve(n);
  }
  write(p: Uint8Array): Promise<number> {
    this.written.push(p.slice());
    return Promise.resolve(p.length);
  }
  closeWrite(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {}
}

Deno.test("udp-tun: frame layout (RSV = length, FRAG 0xFF, address, data)", () => {
  const f = encodeUdpTunFrame("10.1.2.3", 53, Uint8Array.of(9, 8, 7));
  assertEquals([...f], [0, 3, 0xff, 1, 10, 1, 2, 3, 0, 53, 9, 8, 7]);
  const v6 = encodeUdpTunFrame("::1", 1, new Uint8Array(300));
  assertEquals([v6[0], v6[1], v6[3]], [1, 44, 4]);
  assertEquals(v6.length, 3 + 19 + 300);
});

Deno.test("udp-tun: frames round-trip through a stream; RSV 0 is an empty datagram", async () => {
  const a = encodeUdpTunFrame("example.com", 443, new TextEncoder().encode("hello"));
  const empty = Uint8Array.of(0, 0, 0, 1, 1, 2, 3, 4, 0, 80);
  const b = encodeUdpTunFrame("::1", 9, new Uint8Array(1000).fill(7));
  const all = new Uint8Array(a.length + empty.length + b.length);
  all.set(a);
  all.set(empty, a.length);
  all.set(b, a.length + empty.length);
  const bc = new BufferedConn(new Mem(all));
  const f1 = await readUdpTunFrame(bc);
  assertEquals(f1?.addr, { host: "example.com", port: 443 });
  assertEquals(new TextDecoder().decode(f1!.data), "hello");
  assertEquals((await readUdpTunFrame(bc))?.data.length, 0);
  const f3 = await readUdpTunFrame(bc);
  assertEquals([f3?.addr.host, f3?.data.length], ["::1", 1000]);
  assertEquals(await readUdpTunFrame(bc), null);

  // The PacketConn skips empty datagrams and reports addresses.
  const pc = new UdpTunPacketConn(new Mem(all), { transport: "udp", hostname: "1.2.3.4", port: 5 });
  const buf = new Uint8Array(2000);
  const r1 = await pc.readFrom(buf);
  assertEquals(r1?.[1].hostname, "example.com");
  const r2 = await pc.readFrom(buf);
  assertEquals([r2?.[0], r2?.[1].port], [1000, 9]);
  assertEquals(await pc.readFrom(buf), null);
});

Deno.test("udp-tun: a truncated frame is a protocol error", async () => {
  const f = encodeUdpTunFrame("1.2.3.4", 5, new Uint8Array(50));
  const bc = new BufferedConn(new Mem(f.subarray(0, 30)));
  await assertRejects(() => readUdpTunFrame(bc), ProtocolError);
});

Deno.test("udp-tun: writeTo sends one frame per datagram", async () => {
  const m = new Mem(new Uint8Array(0));
  const pc = new UdpTunPacketConn(m, ADDR);
  await Promise.all([
    pc.writeTo(Uint8Array.of(1), { transport: "udp", hostname: "127.0.0.1", port: 7 }),
    pc.writeTo(Uint8Array.of(2, 2), { transport: "udp", hostname: "127.0.0.1", port: 8 }),
  ]);
  assertEquals(m.written.length, 2);
  assertEquals([...m.written[0]], [0, 1, 0xff, 1, 127, 0, 0, 1, 0, 7, 1]);
  assert(m.written[1][1] === 2 && m.written[1][9] === 8);
});

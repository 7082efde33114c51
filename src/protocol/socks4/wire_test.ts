import { assertEquals, assertRejects, assertThrows } from "../../../tests/lib/assert.ts";
import { BufferedConn } from "../../core/bufconn.ts";
import type { Addr, Conn } from "../../core/conn.ts";
import { ProtocolError } from "../../core/errors.ts";
import {
  CMD_BIND,
  CMD_CONNECT,
  decodeReply,
  encodeReply,
  encodeRequest,
  MAX_HOSTNAME,
  MAX_USERID,
  readRequest,
  REP_FAILED,
  REP_GRANTED,
  requestAddress,
} from "./wire.ts";

const ADDR: Addr = { transport: "tcp", hostname: "127.0.0.1", port: 1 };
const enc = new TextEncoder();

/** Serves `chunks` one per read (to split fields across reads), then end of stream. */
class ChunkConn implements Conn {
  private i = 0;
  constructor(private readonly chunks: Uint8Array[]) {}
  localAddr = ADDR;
  remoteAddr = ADDR;
  read(p: Uint8Array): Promise<number | null> {
    const c = this.chunks[this.i];
    if (!c) return Promise.resolve(null);
    const n = Math.min(p.length, c.length);
    p.set(c.subarray(0, n));
    if (n < c.length) this.chunks[this.i] = c.subarray(n);
    else this.i++;
    return Promise.resolve(n);
  }
  write(p: Uint8Array): Promise<number> {
    return Promise.resolve(p.length);
  }
  closeWrite(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {}
}

/** Splits `b` into one-byte chunks: the worst case for a parser. */
function bytewise(b: Uint8Array): Uint8Array[] {
  return [...b].map((x) => new Uint8Array([x]));
}

const bc = (...chunks: Uint8Array[]) => new BufferedConn(new ChunkConn(chunks));

Deno.test("socks4 wire: CONNECT to an IPv4 address with a USERID", async () => {
  const raw = new Uint8Array([4, 1, 0x1f, 0x90, 10, 1, 2, 3, ...enc.encode("bob"), 0]);
  const r = await readRequest(bc(raw));
  assertEquals(r, {
    cmd: CMD_CONNECT,
    host: "10.1.2.3",
    port: 8080,
    userId: "bob",
    socks4a: false,
  });
  assertEquals(requestAddress(r), "10.1.2.3:8080");
});

Deno.test("socks4 wire: SOCKS4a host name, split byte by byte, leaves pipelined payload", async () => {
  const raw = new Uint8Array([
    4,
    1,
    0,
    80,
    0,
    0,
    0,
    7,
    0,
    ...enc.encode("example.test"),
    0,
    ...enc.encode("GET"),
  ]);
  const c = bc(...bytewise(raw));
  const r = await readRequest(c);
  assertEquals(r, {
    cmd: CMD_CONNECT,
    host: "example.test",
    port: 80,
    userId: "",
    socks4a: true,
  });
  const rest = new Uint8Array(10);
  let got = "";
  for (let n = await c.read(rest); n !== null; n = await c.read(rest)) {
    got += new TextDecoder().decode(rest.subarray(0, n));
  }
  assertEquals(got, "GET");
});

Deno.test("socks4 wire: DSTIP 0.0.0.0 is plain SOCKS4, not 4a", async () => {
  const r = await readRequest(bc(new Uint8Array([4, 2, 0, 21, 0, 0, 0, 0, 0])));
  assertEquals(r, { cmd: CMD_BIND, host: "0.0.0.0", port: 21, userId: "", socks4a: false });
});

Deno.test("socks4 wire: encodeRequest round-trips both forms", async () => {
  for (const [host, userId] of [["192.168.0.1", "u"], ["name.test", ""], ["x", "long id"]]) {
    const r = await readRequest(bc(encodeRequest(CMD_CONNECT, host, 443, userId)));
    assertEquals([r.host, r.port, r.userId], [host, 443, userId]);
  }
  assertThrows(() => encodeRequest(CMD_CONNECT, "a".repeat(MAX_HOSTNAME + 1), 1), RangeError);
});

Deno.test("socks4 wire: bad input is a ProtocolError with context", async () => {
  const cases: [Uint8Array[], string][] = [
    [[enc.encode("GET / HTTP/1.1\r\n\r\n")], "bad version 71"],
    [[new Uint8Array([4, 9, 0, 80, 1, 2, 3, 4, 0])], "unknown command 9"],
    [[new Uint8Array([4, 1, 0])], "truncated request header"],
    [[new Uint8Array([4, 1, 0, 80, 1, 2, 3, 4, 65, 66])], "stream ended inside the USERID"],
    [[new Uint8Array([4, 1, 0, 80, 0, 0, 0, 1, 0, 65])], "stream ended inside the host name"],
    [[new Uint8Array([4, 1, 0, 80, 0, 0, 0, 1, 0, 0])], "empty host name"],
    [
      [new Uint8Array([4, 1, 0, 80, 1, 2, 3, 4]), new Uint8Array(1 << 20).fill(65)],
      `USERID longer than ${MAX_USERID}`,
    ],
    [
      [new Uint8Array([4, 1, 0, 80, 0, 0, 0, 1, 0]), ...bytewise(new Uint8Array(300).fill(97))],
      `host name longer than ${MAX_HOSTNAME}`,
    ],
  ];
  for (const [chunks, want] of cases) {
    await assertRejects(() => readRequest(bc(...chunks)), ProtocolError, want);
  }
});

Deno.test("socks4 wire: a USERID of exactly the limit is accepted", async () => {
  const id = "i".repeat(MAX_USERID);
  const r = await readRequest(bc(encodeRequest(CMD_CONNECT, "1.2.3.4", 5, id)));
  assertEquals(r.userId, id);
});

Deno.test("socks4 wire: replies are 8 bytes, VN 0", () => {
  assertEquals(encodeReply(REP_GRANTED), new Uint8Array([0, 90, 0, 0, 0, 0, 0, 0]));
  assertEquals(decodeReply(encodeReply(REP_FAILED, 1080, [127, 0, 0, 1])), {
    code: 91,
    port: 1080,
    host: "127.0.0.1",
  });
  assertThrows(() => decodeReply(new Uint8Array([4, 90, 0, 0, 0, 0, 0, 0])), ProtocolError);
});

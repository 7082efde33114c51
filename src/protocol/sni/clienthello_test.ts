import { assertEquals, assertRejects, assertThrows } from "../../../tests/lib/assert.ts";
import { BufferedConn } from "../../core/bufconn.ts";
import type { Conn } from "../../core/conn.ts";
import { ProtocolError } from "../../core/errors.ts";
import { parseServerName, peekServerName } from "./clienthello.ts";

const u16 = (n: number) => [n >> 8, n & 0xff];

/** A ClientHello body (no handshake header) with the given extensions. */
function helloBody(exts: number[][]): number[] {
  const extBytes = exts.flat();
  return [
    ...[3, 3],
    ...new Array(32).fill(7), // random
    ...[4, 1, 2, 3, 4], // session id
    ...u16(4),
    ...[0x13, 0x01, 0x13, 0x02], // cipher suites
    ...[1, 0], // compression
    ...u16(extBytes.length),
    ...extBytes,
  ];
}

function sniExt(name: string): number[] {
  const n = [...new TextEncoder().encode(name)];
  const entry = [0, ...u16(n.length), ...n];
  return [...u16(0), ...u16(entry.length + 2), ...u16(entry.length), ...entry];
}

/** Handshake message split into records of at most `recSize` bytes. */
function records(body: number[], recSize = 16384): Uint8Array {
  const msg = [1, 0, ...u16(body.length), ...body];
  const out: number[] = [];
  for (let off = 0; off < msg.length; off += recSize) {
    const frag = msg.slice(off, off + recSize);
    out.push(0x16, 3, 1, ...u16(frag.length), ...frag);
  }
  return new Uint8Array(out);
}

/** A Conn that yields `data` in `chunk`-sized reads. */
function source(data: Uint8Array, chunk = 7): Conn {
  let off = 0;
  const addr = { transport: "tcp", hostname: "127.0.0.1", port: 1 };
  return {
    read(p) {
      if (off >= data.length) return Promise.resolve(null);
      const n = Math.min(chunk, p.length, data.length - off);
      p.set(data.subarray(off, off + n));
      off += n;
      return Promise.resolve(n);
    },
    write: (p) => Promise.resolve(p.length),
    closeWrite: () => Promise.resolve(),
    close() {},
    localAddr: addr,
    remoteAddr: addr,
  };
}

Deno.test("sni clienthello: the name is found and every byte stays buffered for replay", async () => {
  const padding = [...u16(21), ...u16(3000), ...new Array(3000).fill(0)];
  for (const recSize of [16384, 100]) {
    const bytes = records(
      helloBody([[...u16(10), ...u16(2), 0, 23], padding, sniExt("a.example.com")]),
      recSize,
    );
    const tail = new Uint8Array([0x17, 3, 3, 0, 1, 9]); // whatever follows stays too
    const all = new Uint8Array([...bytes, ...tail]);
    const bc = new BufferedConn(source(all));
    assertEquals(await peekServerName(bc), "a.example.com");
    const replay = new Uint8Array(all.length);
    let n = 0;
    for (let r; n < all.length && (r = await bc.read(replay.subarray(n))) !== null;) n += r;
    assertEquals([...replay.subarray(0, n)], [...all]);
  }
});

Deno.test("sni clienthello: no extension → empty name; malformed input → ProtocolError", async () => {
  assertEquals(parseServerName(new Uint8Array(helloBody([]))), "");
  assertEquals(parseServerName(new Uint8Array(helloBody([[...u16(10), ...u16(0)]]))), "");
  assertThrows(
    () => parseServerName(new Uint8Array(helloBody([sniExt("bad name!")]))),
    ProtocolError,
  );
  assertThrows(() => parseServerName(new Uint8Array(helloBody([sniExt("")]))), ProtocolError);
  assertThrows(() => parseServerName(new Uint8Array(36)), ProtocolError);
  const bad: Uint8Array[] = [
    new Uint8Array([0x16, 3, 1, 0, 0]), // empty record
    new Uint8Array([0x16, 9, 1, 0, 4, 1, 0, 0, 0]), // bad version
    new Uint8Array([0x16, 3, 1, 0, 4, 2, 0, 0, 0]), // not a ClientHello
    new Uint8Array([0x16, 3, 1, 0xff, 0xff]), // oversized record
    new Uint8Array([0x16, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff]), // oversized ClientHello
    records(helloBody([sniExt("x.y")])).subarray(0, 30), // truncated
    new Uint8Array([0x16, 3, 1, 0, 4, 1, 0, 0, 9, 0x17, 3, 3, 0, 1]), // then a non-handshake record
  ];
  for (const b of bad) {
    await assertRejects(() => peekServerName(new BufferedConn(source(b))), ProtocolError);
  }
});

import { assertEquals, assertThrows } from "../../../tests/lib/assert.ts";
import { ProtocolError } from "../../core/errors.ts";
import { decodeChunk, encodeChunk, MAX_MESSAGE, methodPath, parsePrefix } from "./codec.ts";

Deno.test("grpc codec: method path follows gost's path parameter", () => {
  assertEquals(methodPath(""), "/GostTunel/Tunnel");
  assertEquals(methodPath("/svc"), "/svc/Tunnel");
  assertEquals(methodPath("svc/"), "/svc/Tunnel");
  assertEquals(methodPath("/svc/a/b"), "/svc/a-b");
  assertEquals(methodPath("/x/y"), "/x/y");
});

Deno.test("grpc codec: a Chunk round-trips, prefix and protobuf bytes as gRPC-Go writes them", () => {
  const msg = encodeChunk(new Uint8Array([1, 2, 3]));
  assertEquals([...msg], [0, 0, 0, 0, 5, 0x0a, 3, 1, 2, 3]);
  assertEquals(parsePrefix(msg.subarray(0, 5)), 5);
  assertEquals([...decodeChunk(msg.subarray(5))], [1, 2, 3]);
  // 300 bytes: a two-byte varint length (0xac 0x02).
  const big = new Uint8Array(300).fill(7);
  const m2 = encodeChunk(big);
  assertEquals([...m2.subarray(5, 8)], [0x0a, 0xac, 0x02]);
  assertEquals(decodeChunk(m2.subarray(5)).length, 300);
  // Empty data: proto3 sends an empty message.
  assertEquals([...encodeChunk(new Uint8Array(0))], [0, 0, 0, 0, 0]);
  assertEquals(decodeChunk(new Uint8Array(0)).length, 0);
});

Deno.test("grpc codec: unknown fields are skipped", () => {
  // field 2 varint 150, field 3 fixed32, then field 1 "hi"
  const m = new Uint8Array([0x10, 0x96, 0x01, 0x1d, 1, 2, 3, 4, 0x0a, 2, 0x68, 0x69]);
  assertEquals(new TextDecoder().decode(decodeChunk(m)), "hi");
});

Deno.test("grpc codec: bad input is a ProtocolError", () => {
  assertThrows(() => parsePrefix(new Uint8Array([1, 0, 0, 0, 1])), ProtocolError, "compressed");
  assertThrows(() => parsePrefix(new Uint8Array([9, 0, 0, 0, 1])), ProtocolError, "flag");
  const over = new Uint8Array(5);
  new DataView(over.buffer).setUint32(1, MAX_MESSAGE + 1);
  assertThrows(() => parsePrefix(over), ProtocolError, "exceeds");
  assertThrows(() => decodeChunk(new Uint8Array([0x0a, 5, 1])), ProtocolError, "truncated");
  assertThrows(() => decodeChunk(new Uint8Array([0x0a, 0xff])), ProtocolError, "varint");
  assertThrows(() => decodeChunk(new Uint8Array([0x0b])), ProtocolError, "wire type");
  assertThrows(() => decodeChunk(new Uint8Array([0x02, 0])), ProtocolError, "field number 0");
});

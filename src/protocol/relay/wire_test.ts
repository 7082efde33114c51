import { assert, assertEquals, assertThrows } from "../../../tests/lib/assert.ts";
import { decodeFeatures, encodeFrame, encodeHeader, RelayHeaderError } from "./wire.ts";

Deno.test("relay wire: CONNECT example.com:443 as u/p is protocols.md's example byte for byte", () => {
  const got = encodeHeader({
    code: 0x01,
    user: { username: "u", password: "p" },
    addr: { host: "example.com", port: 443 },
  });
  const want = [
    ...[0x01, 0x01, 0x00, 0x19],
    ...[0x01, 0x00, 0x04, 0x01, 0x75, 0x01, 0x70],
    ...[0x02, 0x00, 0x0f, 0x03, 0x0b, ...new TextEncoder().encode("example.com"), 0x01, 0xbb],
  ];
  assertEquals([...got], want);
  assertEquals([...encodeHeader({ code: 0 })], [1, 0, 0, 0]);
});

Deno.test("relay wire: features decode back; IPv6, network and unknown types", () => {
  const h = encodeHeader({
    code: 0x81,
    user: { username: "üser", password: "" },
    addr: { host: "::1", port: 53 },
    network: 1,
  });
  const d = decodeFeatures(h[1], h.subarray(4));
  assertEquals(d.code, 0x81);
  assertEquals(d.user, { username: "üser", password: "" });
  assertEquals(d.addr, { host: "::1", port: 53 });
  assertEquals(d.network, 1);
  // An unknown feature type is skipped, the rest still decoded.
  const withUnknown = new Uint8Array([0x09, 0, 2, 7, 7, ...h.subarray(4)]);
  const d2 = decodeFeatures(1, withUnknown);
  assertEquals(d2.unknown, [9]);
  assertEquals(d2.addr, { host: "::1", port: 53 });
});

Deno.test("relay wire: malformed features are RelayHeaderErrors", () => {
  const bad: number[][] = [
    [0x02, 0x00], // truncated feature header
    [0x02, 0x00, 0x09, 0x01, 1, 2], // runs past the list
    [0x01, 0x00, 0x03, 0x05, 0x61, 0x62], // user name longer than the feature
    [0x01, 0x00, 0x03, 0x01, 0x61, 0x04], // password longer than the feature
    [0x02, 0x00, 0x03, 0x07, 0x00, 0x50], // unknown address type
    [0x04, 0x00, 0x01, 0x00], // short network feature
  ];
  for (const b of bad) {
    assertThrows(() => decodeFeatures(1, new Uint8Array(b)), RelayHeaderError);
  }
  assertThrows(
    () => encodeHeader({ code: 1, user: { username: "x".repeat(256) } }),
    RangeError,
  );
});

Deno.test("relay wire: UDP frames carry the length and may carry a header in front", () => {
  assertEquals([...encodeFrame(new Uint8Array([9, 8, 7]))], [0, 3, 9, 8, 7]);
  assertEquals([...encodeFrame(new Uint8Array(0), new Uint8Array([1, 0, 0, 0]))], [
    1,
    0,
    0,
    0,
    0,
    0,
  ]);
  const big = encodeFrame(new Uint8Array(65535));
  assert(big[0] === 0xff && big[1] === 0xff);
  assertThrows(() => encodeFrame(new Uint8Array(65536)), RangeError);
});

/**
 * SIP022 UDP: the codec against packets built and read here straight from the spec (node:crypto
 * AES, @noble BLAKE3/XChaCha), the replay window, and the failures a server must drop.
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { blake3 } from "@noble/hashes/blake3";
import { xchacha20poly1305 } from "@noble/ciphers/chacha";
import { assert, assertEquals, assertThrows } from "../../../tests/lib/assert.ts";
import { encodeAddr } from "../socks/addr.ts";
import { ssCipher } from "./cipher.ts";
import { ReplayWindow, Ss2022UdpClient, Ss2022UdpServer } from "./packet2022.ts";
import { SsAuthError } from "./stream.ts";

const enc = new TextEncoder();
const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
const CTX = enc.encode("shadowsocks 2022 session subkey");

function u64(v: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v));
  return b;
}
function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}
const now = () => Math.floor(Date.now() / 1000);

/** A client packet of an AES method, per SIP022 §3.2. */
function specAesClientPacket(
  psk: Uint8Array,
  sid: Uint8Array,
  pid: number,
  body: Uint8Array,
): Uint8Array {
  const bits = psk.length * 8;
  const header = cat(sid, u64(pid));
  const ecb = createCipheriv(`aes-${bits}-ecb`, psk, null).setAutoPadding(false);
  const subkey = blake3(cat(psk, sid), { context: CTX, dkLen: psk.length });
  const gcm = createCipheriv(`aes-${bits}-gcm`, subkey, header.subarray(4)) as any;
  const sealed = cat(gcm.update(body), gcm.final(), gcm.getAuthTag());
  return cat(ecb.update(header), sealed);
}

/** Opens a server packet of an AES method: [server session ID, packet ID, body]. */
function specAesOpen(psk: Uint8Array, packet: Uint8Array): [Uint8Array, number, Uint8Array] {
  const bits = psk.length * 8;
  const ecb = createDecipheriv(`aes-${bits}-ecb`, psk, null).setAutoPadding(false);
  const header = new Uint8Array(ecb.update(packet.subarray(0, 16)));
  const sid = header.slice(0, 8);
  const subkey = blake3(cat(psk, sid), { context: CTX, dkLen: psk.length });
  const gcm = createDecipheriv(`aes-${bits}-gcm`, subkey, header.subarray(4)) as any;
  gcm.setAuthTag(packet.subarray(packet.length - 16));
  const body = cat(gcm.update(packet.subarray(16, packet.length - 16)), gcm.final());
  return [sid, Number(new DataView(header.buffer).getBigUint64(8)), body];
}

for (
  const [method, size] of [["2022-blake3-aes-128-gcm", 16], [
    "2022-blake3-aes-256-gcm",
    32,
  ]] as const
) {
  Deno.test(`ss2022 udp ${method}: a spec-built client packet opens; the reply reads per spec`, () => {
    const psk = crypto.getRandomValues(new Uint8Array(size));
    const server = new Ss2022UdpServer(ssCipher(method, b64(psk), "test"));
    const sid = crypto.getRandomValues(new Uint8Array(8));
    const addr = encodeAddr("127.0.0.1", 53);
    const payload = enc.encode("dns query");
    // type 0 · timestamp · padding length 3 · padding · address · payload
    const body = cat(
      Uint8Array.of(0),
      u64(now()),
      Uint8Array.of(0, 3),
      new Uint8Array(3),
      addr,
      payload,
    );
    const got = server.open(specAesClientPacket(psk, sid, 0, body));
    assertEquals(got.addr, { host: "127.0.0.1", port: 53 });
    assertEquals(got.payload, payload);
    assertEquals(got.session.clientId, sid);

    const reply = got.session.seal(encodeAddr("127.0.0.1", 53), enc.encode("dns answer"));
    const [ssid, spid, rbody] = specAesOpen(psk, reply);
    assert(ssid.some((b, i) => b !== sid[i]), "the server must not reuse the client's session ID");
    assertEquals(spid, 0);
    assertEquals(rbody[0], 1); // server packet
    const ts = Number(new DataView(rbody.buffer, rbody.byteOffset).getBigUint64(1));
    assert(Math.abs(ts - now()) <= 2);
    assertEquals(rbody.subarray(9, 17), sid); // the client's session ID
    assertEquals(rbody.subarray(17, 19), Uint8Array.of(0, 0)); // no padding
    assertEquals(rbody.subarray(19), cat(encodeAddr("127.0.0.1", 53), enc.encode("dns answer")));

    // The same packet again, an old timestamp, a client-typed body from the wrong side: dropped.
    assertThrows(() => server.open(specAesClientPacket(psk, sid, 0, body)), SsAuthError);
    const stale = cat(Uint8Array.of(0), u64(now() - 120), Uint8Array.of(0, 0), addr, payload);
    assertThrows(() => server.open(specAesClientPacket(psk, sid, 1, stale)), SsAuthError);
    const typed1 = cat(Uint8Array.of(1), u64(now()), Uint8Array.of(0, 0), addr, payload);
    assertThrows(() => server.open(specAesClientPacket(psk, sid, 2, typed1)), SsAuthError);
    const tampered = specAesClientPacket(psk, sid, 3, body);
    tampered[20] ^= 1;
    assertThrows(() => server.open(tampered), SsAuthError);
    // Too short, random bytes of a plausible size: refused the same way.
    assertThrows(() => server.open(new Uint8Array(20)), SsAuthError);
    assertThrows(() => server.open(crypto.getRandomValues(new Uint8Array(200))), SsAuthError);
    // Packet 4 still opens: the failures above did not poison the session.
    assertEquals(server.open(specAesClientPacket(psk, sid, 4, body)).payload, payload);
  });
}

Deno.test("ss2022 udp chacha20: XChaCha20-Poly1305 packets per spec §4.1, both ways", () => {
  const psk = crypto.getRandomValues(new Uint8Array(32));
  const cipher = ssCipher("2022-blake3-chacha20-poly1305", b64(psk), "test");
  const server = new Ss2022UdpServer(cipher);
  const sid = crypto.getRandomValues(new Uint8Array(8));
  const addr = encodeAddr("example.com", 443);
  const nonce = crypto.getRandomValues(new Uint8Array(24));
  const plain = cat(
    sid,
    u64(7),
    Uint8Array.of(0),
    u64(now()),
    Uint8Array.of(0, 0),
    addr,
    enc.encode("hi"),
  );
  const packet = cat(nonce, xchacha20poly1305(psk, nonce).encrypt(plain));
  const got = server.open(packet);
  assertEquals(got.addr, { host: "example.com", port: 443 });
  assertEquals(new TextDecoder().decode(got.payload), "hi");

  const reply = got.session.seal(encodeAddr("1.2.3.4", 443), enc.encode("yo"));
  const body = xchacha20poly1305(psk, reply.subarray(0, 24)).decrypt(reply.subarray(24));
  assertEquals(body[16], 1);
  assertEquals(body.subarray(25, 33), sid);
  assertEquals(body.subarray(33, 35), Uint8Array.of(0, 0));
  assertEquals(body.subarray(35), cat(encodeAddr("1.2.3.4", 443), enc.encode("yo")));
  assertThrows(() => server.open(packet), SsAuthError); // replayed
});

Deno.test("ss2022 udp: our client and server talk; replies to another session are refused", () => {
  for (const m of ["2022-blake3-aes-128-gcm", "2022-blake3-chacha20-poly1305"]) {
    const psk = crypto.getRandomValues(new Uint8Array(m.includes("128") ? 16 : 32));
    const c = ssCipher(m, b64(psk), "test");
    const server = new Ss2022UdpServer(c);
    const a = new Ss2022UdpClient(c), b = new Ss2022UdpClient(c);
    const target = encodeAddr("127.0.0.1", 9);
    for (let i = 0; i < 5; i++) {
      const got = server.open(a.seal(target, Uint8Array.of(i)));
      assertEquals(got.payload, Uint8Array.of(i));
      const back = a.open(got.session.seal(target, Uint8Array.of(100 + i)));
      assertEquals(back.payload, Uint8Array.of(100 + i));
      // Client b must not accept what was sealed for a's session.
      assertThrows(() => b.open(got.session.seal(target, Uint8Array.of(1))), SsAuthError);
    }
  }
});

Deno.test("ss2022 udp: the replay window takes new and reordered IDs once, refuses old ones", () => {
  const w = new ReplayWindow();
  for (const id of [0, 1, 2, 5, 4, 3]) assert(w.accept(id), `id ${id}`);
  for (const id of [0, 3, 5]) assert(!w.accept(id), `dup ${id}`);
  assert(w.accept(40)); // same word range crossing
  assert(w.accept(33) && w.accept(39) && !w.accept(39));
  assert(w.accept(100_000)); // a jump far ahead clears the window
  assert(!w.accept(40)); // now far too old
  assert(w.accept(99_000) && !w.accept(99_000)); // within the window: once
  assert(!w.accept(100_000 - 2048));
  for (let id = 100_001; id < 110_000; id++) assert(w.accept(id));
  assert(!w.accept(100_500));
});

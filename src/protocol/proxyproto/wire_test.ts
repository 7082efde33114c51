/**
 * PROXY protocol: the codec (v1/v2 parsing — complete, partial, malformed — and encoding), the
 * stream reader, and the service-side wrapper (ProxiedConn, deadline, handler, sending).
 */
import { assert, assertEquals, assertRejects, assertThrows } from "../../../tests/lib/assert.ts";
import { BufferedConn } from "../../core/bufconn.ts";
import { type Addr, type Conn } from "../../core/conn.ts";
import { ProtocolError } from "../../core/errors.ts";
import { Logger } from "../../core/logger.ts";
import {
  acceptProxyHeader,
  originalDestination,
  ProxiedConn,
  ProxyProtocolHandler,
  sendProxyHeader,
} from "./proxied.ts";
import {
  encodeHeader,
  encodeV1,
  encodeV2,
  parseHeader,
  type ParseResult,
  type ProxyHeader,
  readProxyHeader,
  V2_SIGNATURE,
} from "./wire.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const tcp = (hostname: string, port: number): Addr => ({ transport: "tcp", hostname, port });

function concat(...parts: (Uint8Array | string | number[])[]): Uint8Array {
  const bs = parts.map((p) =>
    typeof p === "string" ? enc.encode(p) : p instanceof Uint8Array ? p : new Uint8Array(p)
  );
  const out = new Uint8Array(bs.reduce((n, b) => n + b.length, 0));
  let off = 0;
  for (const b of bs) {
    out.set(b, off);
    off += b.length;
  }
  return out;
}

function header(r: ParseResult): ProxyHeader {
  if (r.kind !== "header") throw new Error(`expected a header, got ${JSON.stringify(r)}`);
  return r.header;
}

/** A v2 header: signature, ver/cmd, fam/proto, then `body` with its length. */
function v2(verCmd: number, famProto: number, body: Uint8Array | number[]): Uint8Array {
  const b = body instanceof Uint8Array ? body : new Uint8Array(body);
  return concat(V2_SIGNATURE, [verCmd, famProto, b.length >> 8, b.length & 0xff], b);
}

// ---- v1 ----

Deno.test("proxyproto v1: TCP4 line, bytes after it are not part of the header", () => {
  const line = "PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\n";
  const h = header(parseHeader(enc.encode(line + "GET / HTTP/1.1\r\n")));
  assertEquals(h, {
    version: 1,
    command: "proxy",
    source: tcp("192.0.2.10", 56324),
    destination: tcp("198.51.100.1", 443),
    length: line.length,
  });
});

Deno.test("proxyproto v1: TCP6 line, addresses in canonical form", () => {
  const line = "PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::ffff:10.0.0.1 65535 0\r\n";
  const h = header(parseHeader(enc.encode(line)));
  assertEquals(h.source, tcp("2001:db8::1", 65535));
  assertEquals(h.destination, tcp("10.0.0.1", 0));
  assertEquals(h.length, line.length);
});

Deno.test("proxyproto v1: UNKNOWN (bare and with trailing fields) keeps socket addresses", () => {
  for (const line of ["PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"]) {
    assertEquals(header(parseHeader(enc.encode(line + "x"))), {
      version: 1,
      command: "local",
      length: line.length,
    });
  }
});

Deno.test("proxyproto v1: partial lines and signature prefixes ask for more", () => {
  assertEquals(parseHeader(new Uint8Array(0)), { kind: "incomplete", need: 1, signature: false });
  assertEquals(parseHeader(enc.encode("PRO")), { kind: "incomplete", need: 4, signature: false });
  const r = parseHeader(enc.encode("PROXY TCP4 1.2.3.4"));
  assertEquals(r.kind === "incomplete" && r.signature, true);
});

Deno.test("proxyproto v1: other protocols are not headers", () => {
  for (const s of ["GET / HTTP/1.1\r\n", "POST /", "PROXY", "\x05\x01\x00", "PROXYTCP4"]) {
    const r = parseHeader(enc.encode(s));
    // "PROXY" alone is still a prefix of "PROXY "; everything else is decided at once.
    if (s === "PROXY") assertEquals(r.kind, "incomplete");
    else assertEquals(r, { kind: "none" }, s);
  }
  assertEquals(parseHeader(new Uint8Array([0x16, 0x03, 0x01])), { kind: "none" });
});

Deno.test("proxyproto v1: malformed lines are rejected", () => {
  const bad = [
    "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", // LF without CR
    "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
    "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
    "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
    "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
    "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
    "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
    "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
    "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
    "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
    "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
    "PROXY \r\n",
  ];
  for (const s of bad) assertThrows(() => parseHeader(enc.encode(s)), ProtocolError);
});

Deno.test("proxyproto v1: a line longer than 107 bytes is rejected before its end", () => {
  const long = "PROXY UNKNOWN " + "x".repeat(100);
  assertThrows(() => parseHeader(enc.encode(long)), ProtocolError, "longer than 107");
  // Exactly 107 bytes with CRLF is allowed.
  const max = "PROXY UNKNOWN " + "x".repeat(107 - 16) + "\r\n";
  assertEquals(max.length, 107);
  assertEquals(header(parseHeader(enc.encode(max))).length, 107);
});

// ---- v2 ----

Deno.test("proxyproto v2: PROXY INET with TLVs skipped", () => {
  const tlvs = [0x04, 0, 3, 0, 0, 0, 0x01, 0, 2, 0x68, 0x32]; // NOOP(3), ALPN "h2"
  const body = [192, 0, 2, 10, 198, 51, 100, 1, 0xdc, 0x04, 0x01, 0xbb, ...tlvs];
  const hdr = v2(0x21, 0x11, body);
  const h = header(parseHeader(concat(hdr, "payload")));
  assertEquals(h, {
    version: 2,
    command: "proxy",
    source: tcp("192.0.2.10", 56324),
    destination: tcp("198.51.100.1", 443),
    length: hdr.length,
  });
});

Deno.test("proxyproto v2: PROXY INET6, and DGRAM gives udp addresses", () => {
  const src = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1];
  const dst = [...new Array(15).fill(0), 1];
  const hdr = v2(0x21, 0x21, [...src, ...dst, 0x30, 0x39, 0x00, 0x50]);
  const h = header(parseHeader(hdr));
  assertEquals(h.source, tcp("2001:db8::1", 12345));
  assertEquals(h.destination, tcp("::1", 80));
  assertEquals(h.length, 16 + 36);
  const u = header(parseHeader(v2(0x21, 0x12, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2])));
  assertEquals(u.source, { transport: "udp", hostname: "1.2.3.4", port: 1 });
});

Deno.test("proxyproto v2: LOCAL, UNSPEC and UNIX keep socket addresses; body skipped", () => {
  const local = v2(0x20, 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2, 0x04, 0, 0]);
  assertEquals(header(parseHeader(concat(local, "x"))), {
    version: 2,
    command: "local",
    length: local.length,
  });
  const bare = v2(0x20, 0x00, []);
  assertEquals(header(parseHeader(bare)).length, 16);
  assertEquals(header(parseHeader(v2(0x21, 0x00, [9, 9]))).command, "local");
  const unix = v2(0x21, 0x31, new Uint8Array(216));
  assertEquals(header(parseHeader(unix)), { version: 2, command: "local", length: 232 });
});

Deno.test("proxyproto v2: partial headers ask for exactly what is missing", () => {
  assertEquals(parseHeader(V2_SIGNATURE.subarray(0, 5)), {
    kind: "incomplete",
    need: 6,
    signature: false,
  });
  assertEquals(parseHeader(V2_SIGNATURE), { kind: "incomplete", need: 16, signature: true });
  const full = v2(0x21, 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]);
  assertEquals(parseHeader(full.subarray(0, 20)), {
    kind: "incomplete",
    need: 28,
    signature: true,
  });
  // A CR LF that does not go on as the signature is the client's own data.
  assertEquals(parseHeader(enc.encode("\r\nGET")), { kind: "none" });
});

Deno.test("proxyproto v2: bad version, command, family and short address blocks", () => {
  const addr4 = [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2];
  assertThrows(() => parseHeader(v2(0x11, 0x11, addr4)), ProtocolError, "version");
  assertThrows(() => parseHeader(v2(0x22, 0x11, addr4)), ProtocolError, "command");
  assertThrows(() => parseHeader(v2(0x21, 0x41, addr4)), ProtocolError, "family");
  assertThrows(() => parseHeader(v2(0x21, 0x13, addr4)), ProtocolError, "family");
  assertThrows(() => parseHeader(v2(0x21, 0x11, [1, 2, 3, 4])), ProtocolError, "too short");
  assertThrows(() => parseHeader(v2(0x21, 0x21, addr4)), ProtocolError, "too short");
  assertThrows(() => parseHeader(v2(0x21, 0x31, addr4)), ProtocolError, "too short");
});

// ---- encoding ----

Deno.test("proxyproto encode: v1 TCP4, TCP6, mixed families and non-IP hosts", () => {
  assertEquals(
    dec.decode(encodeV1(tcp("127.0.0.1", 40000), tcp("127.0.0.2", 8080))),
    "PROXY TCP4 127.0.0.1 127.0.0.2 40000 8080\r\n",
  );
  // Dual-stack sockets report IPv4 peers as mapped IPv6: still TCP4.
  assertEquals(
    dec.decode(encodeV1(tcp("::ffff:10.1.2.3", 1), tcp("::ffff:10.1.2.4", 2))),
    "PROXY TCP4 10.1.2.3 10.1.2.4 1 2\r\n",
  );
  assertEquals(
    dec.decode(encodeV1(tcp("2001:db8::1", 1), tcp("::1", 2))),
    "PROXY TCP6 2001:db8::1 ::1 1 2\r\n",
  );
  assertEquals(
    dec.decode(encodeV1(tcp("10.0.0.1", 1), tcp("::1", 2))),
    "PROXY TCP6 ::ffff:10.0.0.1 ::1 1 2\r\n",
  );
  assertEquals(dec.decode(encodeV1(tcp("example.com", 1), tcp("::1", 2))), "PROXY UNKNOWN\r\n");
});

Deno.test("proxyproto encode: v2 bytes for INET and INET6, LOCAL for non-IP hosts", () => {
  assertEquals(
    [...encodeV2(tcp("192.0.2.10", 56324), tcp("198.51.100.1", 443))],
    [...V2_SIGNATURE, 0x21, 0x11, 0, 12, 192, 0, 2, 10, 198, 51, 100, 1, 0xdc, 0x04, 0x01, 0xbb],
  );
  const six = encodeV2(tcp("2001:db8::1", 1), tcp("::1", 2));
  assertEquals([...six.subarray(12, 16)], [0x21, 0x21, 0, 36]);
  assertEquals(six.length, 52);
  assertEquals([...encodeV2(tcp("a.test", 1), tcp("b.test", 2))], [...V2_SIGNATURE, 0x20, 0, 0, 0]);
});

Deno.test("proxyproto encode: every encoded header parses back to its addresses", () => {
  const pairs: [Addr, Addr][] = [
    [tcp("127.0.0.1", 54321), tcp("127.0.0.1", 8080)],
    [tcp("2001:db8::5", 65535), tcp("fe80::1", 0)],
    [tcp("10.0.0.1", 7), tcp("2001:db8::9", 9)],
  ];
  for (const version of [1, 2] as const) {
    for (const [src, dst] of pairs) {
      const bytes = encodeHeader(version, src, dst);
      const h = header(parseHeader(bytes));
      assertEquals(h.version, version);
      assertEquals(h.length, bytes.length);
      // Mixed families travel as IPv4-mapped IPv6 and come back as IPv4 text.
      assertEquals(h.source, src);
      assertEquals(h.destination, dst);
    }
  }
});

// ---- stream reader ----

/** A Conn that yields `chunks` one per read, then end of stream (or blocks until closed). */
class ChunkConn implements Conn {
  private closed = false;
  private wake?: () => void;
  constructor(private readonly chunks: Uint8Array[], private readonly hang = false) {}
  readonly localAddr = tcp("127.0.0.1", 1);
  readonly remoteAddr = tcp("127.0.0.1", 2);
  async read(p: Uint8Array): Promise<number | null> {
    if (this.closed) throw new Deno.errors.BadResource("closed");
    const c = this.chunks.shift();
    if (c) {
      const n = Math.min(p.length, c.length);
      p.set(c.subarray(0, n));
      if (n < c.length) this.chunks.unshift(c.subarray(n));
      return n;
    }
    if (!this.hang) return null;
    await new Promise<void>((r) => this.wake = r);
    return this.read(p);
  }
  /** Delivers `b` to a pending (or the next) read. */
  push(b: Uint8Array): void {
    this.chunks.push(b);
    this.wake?.();
  }
  write(p: Uint8Array): Promise<number> {
    return Promise.resolve(p.length);
  }
  closeWrite(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {
    this.closed = true;
    this.wake?.();
  }
}

async function readAll(c: Conn): Promise<string> {
  let s = "";
  const buf = new Uint8Array(1024);
  for (;;) {
    const n = await c.read(buf);
    if (n === null) return s;
    s += dec.decode(buf.subarray(0, n));
  }
}

const chunksOf = (...ss: (string | Uint8Array)[]) =>
  ss.map((s) => typeof s === "string" ? enc.encode(s) : s);

Deno.test("proxyproto reader: a v1 header split over reads; the rest stays readable", async () => {
  const bc = new BufferedConn(
    new ChunkConn(chunksOf("PRO", "XY TCP4 1.2.3.4 ", "5.6.7.8 1000 2000\r\nhel", "lo")),
  );
  const h = await readProxyHeader(bc);
  assertEquals(h?.source, tcp("1.2.3.4", 1000));
  assertEquals(h?.destination, tcp("5.6.7.8", 2000));
  assertEquals(await readAll(bc), "hello");
});

Deno.test("proxyproto reader: a v2 header byte by byte", async () => {
  const hdr = encodeV2(tcp("192.0.2.1", 5), tcp("192.0.2.2", 6));
  const bytes = concat(hdr, "data");
  const bc = new BufferedConn(new ChunkConn([...bytes].map((b) => new Uint8Array([b]))));
  const h = await readProxyHeader(bc);
  assertEquals(h?.source, tcp("192.0.2.1", 5));
  assertEquals(await readAll(bc), "data");
});

Deno.test("proxyproto reader: no header consumes nothing", async () => {
  for (const first of ["GET / HTTP/1.1\r\n\r\n", "\x05\x01\x00", "P", "PROX", "\r\n"]) {
    // "P", "PROX" and "\r\n" then end of stream: could have been a signature, but was not.
    const bc = new BufferedConn(new ChunkConn(chunksOf(first)));
    assertEquals(await readProxyHeader(bc), null, JSON.stringify(first));
    assertEquals(await readAll(bc), first);
  }
  assertEquals(await readProxyHeader(new BufferedConn(new ChunkConn([]))), null);
  // "PRO" then a byte that breaks the signature: decided without waiting for more.
  const bc = new BufferedConn(new ChunkConn(chunksOf("PRO", "BE"), true));
  assertEquals(await readProxyHeader(bc), null);
  const buf = new Uint8Array(16);
  const n = await bc.read(buf);
  assertEquals(dec.decode(buf.subarray(0, n ?? 0)), "PROBE");
});

Deno.test("proxyproto reader: truncated and garbage headers are protocol errors", async () => {
  const truncated = [
    chunksOf("PROXY TCP4 1.2.3.4"),
    [V2_SIGNATURE, new Uint8Array([0x21, 0x11, 0])],
    [encodeV2(tcp("1.2.3.4", 1), tcp("1.2.3.4", 2)).subarray(0, 20)],
  ];
  for (const chunks of truncated) {
    await assertRejects(
      () => readProxyHeader(new BufferedConn(new ChunkConn(chunks))),
      ProtocolError,
      "truncated",
    );
  }
  await assertRejects(
    () => readProxyHeader(new BufferedConn(new ChunkConn(chunksOf("PROXY garbage\r\n")))),
    ProtocolError,
  );
  await assertRejects(
    () => readProxyHeader(new BufferedConn(new ChunkConn(chunksOf("PROXY " + "A".repeat(200))))),
    ProtocolError,
    "longer than",
  );
});

Deno.test("proxyproto reader: a 64 KiB v2 header (TLVs) is read whole", async () => {
  const tlvLen = 65535 - 12 - 3;
  const body = new Uint8Array(65535);
  body.set([10, 0, 0, 1, 10, 0, 0, 2, 0, 80, 0, 81, 0xe0, tlvLen >> 8, tlvLen & 0xff]);
  const hdr = v2(0x21, 0x11, body);
  const chunks: Uint8Array[] = [];
  for (let off = 0; off < hdr.length; off += 1000) chunks.push(hdr.subarray(off, off + 1000));
  const bc = new BufferedConn(new ChunkConn([...chunks, enc.encode("after")]));
  const h = await readProxyHeader(bc);
  assert(h);
  assertEquals(h.length, 16 + 65535);
  assertEquals(h.source, tcp("10.0.0.1", 80));
  assertEquals(await readAll(bc), "after");
});

// ---- service side ----

Deno.test("proxyproto accept: a header's source becomes remoteAddr; data follows", async () => {
  const raw = new ChunkConn(chunksOf("PROXY TCP4 192.0.2.7 192.0.2.8 4321 80\r\nGET /"));
  const { conn, header } = await acceptProxyHeader(raw, 1000);
  assert(conn instanceof ProxiedConn);
  assertEquals(header?.version, 1);
  assertEquals(conn.remoteAddr, tcp("192.0.2.7", 4321));
  // The socket's own local address stays (handlers bind on it); the announced one is separate.
  assertEquals(conn.localAddr, raw.localAddr);
  assertEquals(originalDestination(conn), tcp("192.0.2.8", 80));
  assertEquals(originalDestination(new BufferedConn(conn)), tcp("192.0.2.8", 80));
  assertEquals(originalDestination(raw), raw.localAddr);
  assertEquals(await readAll(conn), "GET /");
});

Deno.test("proxyproto accept: LOCAL, UNKNOWN and no header keep the socket's addresses", async () => {
  const cases: [Uint8Array[], number | null][] = [
    [[concat(encodeV2(tcp("a.test", 1), tcp("b.test", 2)), "x")], 2],
    [chunksOf("PROXY UNKNOWN\r\nx"), 1],
    [chunksOf("x"), null],
  ];
  for (const [chunks, version] of cases) {
    const raw = new ChunkConn(chunks);
    const { conn, header } = await acceptProxyHeader(raw, 1000);
    assertEquals(header?.version ?? null, version);
    assert(!(conn instanceof ProxiedConn));
    assertEquals(conn.remoteAddr, raw.remoteAddr);
    assertEquals(await readAll(conn), "x");
  }
});

Deno.test("proxyproto accept: a peer stalling inside a header times out", async () => {
  const raw = new ChunkConn(chunksOf("PROXY TCP4 1.2.3.4 "), true);
  await assertRejects(() => acceptProxyHeader(raw, 50), ProtocolError, "timed out");
});

Deno.test("proxyproto accept: a silent client is served without header after the wait", async () => {
  const raw = new ChunkConn([], true);
  const { conn, header, waited } = await acceptProxyHeader(raw, 30);
  assertEquals(header, null);
  assertEquals(waited, true);
  // The read started while waiting is handed over: bytes sent later are not lost.
  const buf = new Uint8Array(16);
  const r = conn.read(buf);
  raw.push(enc.encode("EHLO x"));
  assertEquals(dec.decode(buf.subarray(0, (await r) ?? 0)), "EHLO x");
  raw.push(enc.encode("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n")); // too late to count as a header
  assertEquals(dec.decode(buf.subarray(0, (await conn.read(buf)) ?? 0)), "PROXY TCP4 1.2.3");
  conn.close();
});

Deno.test("proxyproto handler: the inner handler sees the client; bad headers stop there", async () => {
  const seen: Addr[] = [];
  const inner = {
    handle(c: Conn) {
      seen.push(c.remoteAddr);
      return Promise.resolve();
    },
  };
  const h = new ProxyProtocolHandler(inner, new Logger("t"), 1000);
  const ctx = { log: new Logger("t") };
  await h.handle(new ChunkConn([encodeV2(tcp("2001:db8::7", 9), tcp("::1", 80))]), ctx);
  await h.handle(new ChunkConn(chunksOf("PROXY TCP9 x\r\n")), ctx);
  await h.handle(new ChunkConn(chunksOf("hello")), ctx);
  assertEquals(seen, [tcp("2001:db8::7", 9), tcp("127.0.0.1", 2)]);
});

Deno.test("proxyproto send: the header announces the client and where it connected", async () => {
  const written: Uint8Array[] = [];
  const target = new ChunkConn([]);
  target.write = (p: Uint8Array) => {
    written.push(p.slice());
    return Promise.resolve(p.length);
  };
  const client = new ProxiedConn(new ChunkConn([]), tcp("192.0.2.7", 4321), tcp("192.0.2.8", 80));
  await sendProxyHeader(target, 1, client);
  await sendProxyHeader(target, 2, new ChunkConn([]));
  assertEquals(dec.decode(written[0]), "PROXY TCP4 192.0.2.7 192.0.2.8 4321 80\r\n");
  assertEquals(header(parseHeader(written[1])).source, tcp("127.0.0.1", 2));
  assertEquals(header(parseHeader(written[1])).destination, tcp("127.0.0.1", 1));
});

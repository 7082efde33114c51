/** Unit tests: message heads (wire.ts) and body framing (body.ts). */
import { assert, assertEquals, assertRejects, assertThrows } from "../../../tests/lib/assert.ts";
import { BufferedConn } from "../../core/bufconn.ts";
import type { Conn } from "../../core/conn.ts";
import { ProtocolError } from "../../core/errors.ts";
import { copyBody, parseChunkSize, requestFraming, responseFraming } from "./body.ts";
import {
  HeaderList,
  HttpError,
  latin1Decode,
  latin1Encode,
  parseRequestHead,
  parseResponseHead,
  readHeadBytes,
  serializeRequestHead,
} from "./wire.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const ADDR = { transport: "tcp", hostname: "127.0.0.1", port: 1 };

/** A Conn that yields the given chunks, then end of stream; collects writes. */
class MemConn implements Conn {
  readonly written: Uint8Array[] = [];
  private readonly q: Uint8Array[];
  constructor(chunks: (string | Uint8Array)[]) {
    this.q = chunks.map((c) => typeof c === "string" ? latin1Encode(c) : c);
  }
  read(p: Uint8Array): Promise<number | null> {
    const h = this.q.shift();
    if (!h) return Promise.resolve(null);
    const n = Math.min(p.length, h.length);
    p.set(h.subarray(0, n));
    if (n < h.length) this.q.unshift(h.subarray(n));
    return Promise.resolve(n);
  }
  write(p: Uint8Array): Promise<number> {
    this.written.push(p.slice());
    return Promise.resolve(p.length);
  }
  closeWrite = () => Promise.resolve();
  close() {}
  localAddr = ADDR;
  remoteAddr = ADDR;
  text(): string {
    return latin1Decode(Uint8Array.from(this.written.flatMap((w) => [...w])));
  }
}

const bc = (...chunks: (string | Uint8Array)[]) => new BufferedConn(new MemConn(chunks));

Deno.test("readHeadBytes: head split across reads, leading CRLF skipped, body left", async () => {
  const c = bc("\r\nGET http://h/ HT", "TP/1.1\r\nHost: h\r", "\n\r\nBODY");
  const raw = await readHeadBytes(c, "request", 1024);
  assertEquals(latin1Decode(raw!), "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n");
  assertEquals(dec.decode(await c.readFull(4)), "BODY");
});

Deno.test("readHeadBytes: bare LF line endings are accepted", async () => {
  const raw = await readHeadBytes(bc("GET / HTTP/1.0\nA: b\n\nX"), "request", 1024);
  const req = parseRequestHead(raw!);
  assertEquals([req.method, req.target, req.version, req.headers.get("a")], [
    "GET",
    "/",
    "HTTP/1.0",
    "b",
  ]);
});

Deno.test("readHeadBytes: EOF before anything is null; inside the head is 400", async () => {
  assertEquals(await readHeadBytes(bc(), "request", 1024), null);
  assertEquals(await readHeadBytes(bc("\r\n"), "request", 1024), null);
  const e = await assertRejects(() => readHeadBytes(bc("GET / HTTP/1.1\r\nA:"), "request", 1024));
  assert(e instanceof HttpError && e.status === 400, String(e));
});

Deno.test("readHeadBytes: non-HTTP bytes are refused at once (no LF needed)", async () => {
  for (const junk of ["\x16\x03\x01\x02\x00", "\x00\xff\xfe", "GET/x", "  GET"]) {
    const e = await assertRejects(() => readHeadBytes(bc(junk), "request", 1024));
    assert(e instanceof HttpError && e.status === 400, `${JSON.stringify(junk)}: ${e}`);
  }
  const r = await assertRejects(() => readHeadBytes(bc("SSH-2.0-x\r\n\r\n"), "response", 1024));
  assert(r instanceof HttpError, String(r));
});

Deno.test("readHeadBytes: oversized head is 431", async () => {
  const line = "GET http://h/ HTTP/1.1\r\nX: " + "a".repeat(5000) + "\r\n\r\n";
  const e = await assertRejects(() => readHeadBytes(bc(line), "request", 4096));
  assert(e instanceof HttpError && e.status === 431, String(e));
});

Deno.test("parseRequestHead: fields, obs-fold, latin-1 bytes survive a round trip", () => {
  const raw = latin1Encode(
    "POST http://h:81/p?q HTTP/1.1\r\nHost: h\r\nX-A: one\r\n  two\r\nX-U: caf\xe9\r\n\r\n",
  );
  const req = parseRequestHead(raw);
  assertEquals(req.headers.get("x-a"), "one two");
  assertEquals(req.headers.get("X-U"), "caf\xe9");
  const again = parseRequestHead(serializeRequestHead(req));
  assertEquals(again.headers.entries, req.headers.entries);
});

Deno.test("parseRequestHead: malformed lines are 400", () => {
  for (
    const bad of [
      "GET / HTTP/2.0\r\n\r\n",
      "GET  / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nNo colon\r\n\r\n",
      "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
      "GET / HTTP/1.1\r\n: x\r\n\r\n",
      "GET / HTTP/1.1\r\nA: x\ry\r\n\r\n",
    ]
  ) {
    const e = assertThrows(() => parseRequestHead(latin1Encode(bad)), HttpError);
    assertEquals((e as HttpError).status, 400, bad);
  }
});

Deno.test("parseResponseHead: status, reason, fields", () => {
  const r = parseResponseHead(enc.encode("HTTP/1.1 204 No Content\r\nA: 1\r\n\r\n"));
  assertEquals([r.version, r.status, r.reason, r.headers.get("a")], [
    "HTTP/1.1",
    204,
    "No Content",
    "1",
  ]);
  assertEquals(parseResponseHead(enc.encode("HTTP/1.0 200\r\n\r\n")).reason, "");
  assertThrows(() => parseResponseHead(enc.encode("HTTP/1.1 20 x\r\n\r\n")), HttpError);
});

Deno.test("framing: request and response rules", () => {
  const h = (...e: [string, string][]) => new HeaderList(e);
  assertEquals(requestFraming(h()), { kind: "none" });
  assertEquals(requestFraming(h(["Content-Length", "0"])), { kind: "none" });
  assertEquals(requestFraming(h(["Content-Length", "12"])), { kind: "length", length: 12 });
  assertEquals(requestFraming(h(["Content-Length", "5, 5"])), { kind: "length", length: 5 });
  assertEquals(requestFraming(h(["Transfer-Encoding", "Chunked"])), { kind: "chunked" });
  for (
    const bad of [
      h(["Content-Length", "5"], ["Content-Length", "6"]),
      h(["Content-Length", "-1"]),
      h(["Transfer-Encoding", "gzip"]),
      h(["Transfer-Encoding", "chunked"], ["Content-Length", "3"]),
    ]
  ) {
    const e = assertThrows(() => requestFraming(bad), HttpError);
    assertEquals((e as HttpError).status, 400);
  }
  const cl = h(["Content-Length", "9"]);
  assertEquals(responseFraming("HEAD", 200, cl), { kind: "none" });
  for (const s of [100, 204, 304]) assertEquals(responseFraming("GET", s, cl), { kind: "none" });
  assertEquals(responseFraming("GET", 200, cl), { kind: "length", length: 9 });
  assertEquals(responseFraming("GET", 200, h()), { kind: "close" });
  assertEquals(responseFraming("GET", 200, h(["Transfer-Encoding", "gzip"])), { kind: "close" });
  assertEquals(
    responseFraming("GET", 200, h(["Transfer-Encoding", "chunked"], ["Content-Length", "9"])),
    { kind: "chunked" },
  );
});

Deno.test("copyBody: counted body stops at its end; prefix coalesced", async () => {
  const src = bc("hello", " world", "NEXT");
  const dst = new MemConn([]);
  const n = await copyBody(src, dst, { kind: "length", length: 11 }, { prefix: enc.encode("H|") });
  assertEquals([n, dst.text()], [11, "H|hello world"]);
  assertEquals(dec.decode(await src.readFull(4)), "NEXT");
  await assertRejects(
    () => copyBody(bc("abc"), new MemConn([]), { kind: "length", length: 5 }),
    ProtocolError,
  );
});

Deno.test("copyBody: chunked passes through canonically, trailers kept, next message left", async () => {
  const src = bc("5;ext=1\r\nhel", "lo\r\n0", "06\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT");
  const dst = new MemConn([]);
  const n = await copyBody(src, dst, { kind: "chunked" });
  assertEquals(n, 11);
  assertEquals(dst.text(), "5\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n");
  assertEquals(dec.decode(await src.readFull(4)), "NEXT");
  for (const bad of ["zz\r\n", "5\r\nhelloXX\r\n", "5\r\nhel"]) {
    await assertRejects(() => copyBody(bc(bad), new MemConn([]), { kind: "chunked" }));
  }
  assertEquals(parseChunkSize(enc.encode("1A \r\n")), 26);
});

Deno.test("copyBody: until-close body", async () => {
  const dst = new MemConn([]);
  assertEquals(await copyBody(bc("a", "bc"), dst, { kind: "close" }), 3);
  assertEquals(dst.text(), "abc");
});

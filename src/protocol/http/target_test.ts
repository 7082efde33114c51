/** Unit tests: targets, Gost-Target, Basic credentials, hop-by-hop rules, probeResist. */
import { assert, assertEquals, assertThrows } from "../../../tests/lib/assert.ts";
import { ConfigError } from "../../core/errors.ts";
import { basicAuthValue, parseBasicAuth } from "./auth.ts";
import { upstreamRequest } from "./forward.ts";
import { stripHopByHop, wantsClose } from "./hop.ts";
import { parseProbeResist } from "./probe.ts";
import { crc32 } from "../../core/crc32.ts";
import {
  decodeServerName,
  encodeServerName,
  knockMatch,
  parseAbsoluteTarget,
  parseAuthority,
} from "./target.ts";
import {
  HeaderList,
  HttpError,
  latin1Decode,
  latin1Encode,
  parseRequestHead,
  serializeRequestHead,
} from "./wire.ts";

const enc = new TextEncoder();

Deno.test("targets: absolute-form, authority, IPv6, bad input", () => {
  assertEquals(parseAbsoluteTarget("http://Example.com:8080/a/b?c=d#f"), {
    host: "Example.com",
    port: 8080,
    hostHeader: "Example.com:8080",
    scheme: "http",
    path: "/a/b?c=d",
  });
  assertEquals(parseAbsoluteTarget("http://u:p@h?x")?.path, "/?x");
  assertEquals(parseAbsoluteTarget("http://u:p@h?x")?.hostHeader, "h");
  assertEquals(parseAbsoluteTarget("HTTP://h")?.port, 80);
  assertEquals(parseAbsoluteTarget("/relative"), null);
  assertEquals(parseAuthority("[::1]:443", 80), {
    host: "::1",
    port: 443,
    hostHeader: "[::1]:443",
  });
  assertEquals(parseAuthority("h", 80).port, 80);
  for (const bad of ["h:0", "h:99999", "h:x", "[::1", "a b:1", ":80", "::1:80", "h/x:1"]) {
    assertThrows(() => parseAuthority(bad, 80), HttpError, undefined);
  }
  assert(knockMatch("Knock.Example", ["x", "knock.example"]));
  assert(!knockMatch("", ["x"]));
});

Deno.test("Gost-Target: encode/decode round trip, checksum enforced", () => {
  assertEquals(crc32(enc.encode("123456789")), 0xcbf43926);
  const v = encodeServerName("example.com:443");
  assertEquals(decodeServerName(v), "example.com:443");
  assertEquals(decodeServerName(v.slice(0, -2) + "AA"), undefined);
  assertEquals(decodeServerName("!!"), undefined);
});

Deno.test("basic auth: parse, colons in password, UTF-8, junk", () => {
  assertEquals(parseBasicAuth(basicAuthValue("a@b", "p:ss")), {
    username: "a@b",
    password: "p:ss",
  });
  assertEquals(parseBasicAuth(basicAuthValue("jörg", "")), { username: "jörg", password: "" });
  assertEquals(parseBasicAuth("basic " + btoa("u:p")), { username: "u", password: "p" });
  for (const bad of [undefined, "", "Bearer x", "Basic !!!", "Basic " + btoa("nocolon")]) {
    assertEquals(parseBasicAuth(bad), undefined);
  }
});

Deno.test("hop-by-hop: stripped, Connection-named fields too, persistence rules", () => {
  const h = new HeaderList([
    ["Connection", "keep-alive, X-Private"],
    ["X-Private", "1"],
    ["Proxy-Authorization", "Basic x"],
    ["Proxy-Connection", "keep-alive"],
    ["Keep-Alive", "timeout=5"],
    ["TE", "trailers"],
    ["Upgrade", "websocket"],
    ["Gost-Target", "x"],
    ["X-Gost-Target", "x"],
    ["Gost-Record", "x"],
    ["Transfer-Encoding", "chunked"],
    ["Accept", "*/*"],
  ]);
  stripHopByHop(h);
  assertEquals(h.entries, [["Transfer-Encoding", "chunked"], ["Accept", "*/*"]]);
  const c = (v: string) => new HeaderList([["Connection", v]]);
  assertEquals(wantsClose("HTTP/1.1", new HeaderList()), false);
  assertEquals(wantsClose("HTTP/1.1", c("Close")), true);
  assertEquals(wantsClose("HTTP/1.0", new HeaderList()), true);
  assertEquals(wantsClose("HTTP/1.0", c("Keep-Alive")), false);
  assertEquals(
    wantsClose("HTTP/1.0", new HeaderList([["Proxy-Connection", "keep-alive"]])),
    false,
  );
});

Deno.test("upstreamRequest: origin-form, Host from the URL, hop-by-hop removed", () => {
  const req = parseRequestHead(latin1Encode(
    "GET http://o.test:81/x?y HTTP/1.1\r\nHost: wrong\r\nProxy-Authorization: Basic eA==\r\n" +
      "Proxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n",
  ));
  const out = upstreamRequest(req, parseAbsoluteTarget(req.target)!);
  assertEquals(
    latin1Decode(serializeRequestHead(out)),
    "GET /x?y HTTP/1.1\r\nHost: o.test:81\r\nAccept: */*\r\n\r\n",
  );
  const ws = parseRequestHead(latin1Encode(
    "GET http://o/ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
  ));
  const wout = upstreamRequest(ws, parseAbsoluteTarget(ws.target)!);
  assertEquals(wout.headers.get("connection"), "Upgrade");
  assertEquals(wout.headers.get("upgrade"), "websocket");
  const old = parseRequestHead(latin1Encode("GET http://o/ HTTP/1.0\r\n\r\n"));
  assertEquals(
    upstreamRequest(old, parseAbsoluteTarget(old.target)!).headers.get("connection"),
    "close",
  );
});

Deno.test("probeResist: valid values parse, invalid ones are ConfigErrors", () => {
  assertEquals(parseProbeResist("code:404", "w"), { type: "code", status: 404 });
  assertEquals(parseProbeResist("web:example.com:8080/a", "w"), {
    type: "web",
    host: "example.com",
    port: 8080,
    hostHeader: "example.com:8080",
    path: "/a",
  });
  assertEquals(parseProbeResist("web:http://e.test", "w").type, "web");
  assertEquals(parseProbeResist("host:127.0.0.1:80", "w"), { type: "host", addr: "127.0.0.1:80" });
  assertEquals(parseProbeResist("file:/tmp/x.html", "w"), { type: "file", path: "/tmp/x.html" });
  for (
    const bad of ["404", "code:abc", "code:99", "web:https://e.test", "host:nohost", "x:1", "file:"]
  ) {
    assertThrows(() => parseProbeResist(bad, "w"), ConfigError);
  }
});

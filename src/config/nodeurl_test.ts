import { assertEquals, assertThrows } from "../../tests/lib/assert.ts";
import { parseNodeURL } from "./nodeurl.ts";

Deno.test("node URL: full grammar", () => {
  const u = parseNodeURL("socks5+wss://us%40er:p%3Ass@example.com:1080/a:1,b:2?udp=true&ttl=5s");
  assertEquals(u.scheme, "socks5+wss");
  assertEquals(u.protocol, "socks5");
  assertEquals(u.transport, "wss");
  assertEquals(u.username, "us@er");
  assertEquals(u.password, "p:ss");
  assertEquals(u.host, "example.com");
  assertEquals(u.port, 1080);
  assertEquals(u.targets, ["a:1", "b:2"]);
  assertEquals(u.params, { udp: "true", ttl: "5s" });
});

Deno.test("node URL: empty host, no scheme, bare port, IPv6", () => {
  assertEquals(parseNodeURL(":8080").host, "");
  assertEquals(parseNodeURL(":8080").scheme, "");
  assertEquals(parseNodeURL("8080").port, 8080);
  const v6 = parseNodeURL("http://[::1]:3128");
  assertEquals(v6.host, "::1");
  assertEquals(v6.port, 3128);
  assertEquals(parseNodeURL("tcp://:2222/[::1]:22").targets, ["[::1]:22"]);
});

Deno.test("node URL: port range", () => {
  const u = parseNodeURL("tcp://:8000-8003/x:1");
  assertEquals([u.port, u.portEnd], [8000, 8003]);
});

Deno.test("node URL: shadowsocks method:password and SIP002 base64", () => {
  const a = parseNodeURL("ss://aes-128-gcm:secret@:8338");
  assertEquals([a.username, a.password], ["aes-128-gcm", "secret"]);
  const b = parseNodeURL(`ss://${btoa("chacha20-ietf-poly1305:pw")}@127.0.0.1:8388`);
  assertEquals([b.username, b.password], ["chacha20-ietf-poly1305", "pw"]);
});

Deno.test("node URL: errors name the problem", () => {
  assertThrows(() => parseNodeURL("socks5://:99999"), Error, "port out of range");
  assertThrows(() => parseNodeURL("socks5://host"), Error, "missing port");
  assertThrows(() => parseNodeURL("http://::1:80"), Error, "brackets");
  assertThrows(() => parseNodeURL("http://[::1:80"), Error, "unterminated");
  assertThrows(() => parseNodeURL("tcp://:9-1"), Error, "invalid port range");
  assertThrows(() => parseNodeURL("http://u:%zz@:80"), Error, "percent-encoding");
  assertThrows(() => parseNodeURL("a++b://:80"), Error, "invalid scheme");
});

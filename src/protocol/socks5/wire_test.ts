import { BufferedConn } from "../../core/bufconn.ts";
import type { Conn } from "../../core/conn.ts";
import { ProtocolError } from "../../core/errors.ts";
import {
  decodeAddr,
  encodeAddr,
  formatIPv6,
  normalizeIP,
  parseIPv6,
  SocksAddrError,
} from "../socks/addr.ts";
import {
  decodeUdpDatagram,
  encodeMethodReply,
  encodeReply,
  encodeUdpDatagram,
  encodeUserPassReply,
  readGreeting,
  readRequest,
  readUserPass,
} from "./wire.ts";

function eq(a: unknown, b: unknown, msg = "") {
  const sa = JSON.stringify(a instanceof Uint8Array ? [...a] : a);
  const sb = JSON.stringify(b instanceof Uint8Array ? [...b] : b);
  if (sa !== sb) throw new Error(`${msg} expected ${sb}, got ${sa}`);
}

async function rejects(f: () => Promise<unknown>, cls: new (...a: any[]) => Error, re?: RegExp) {
  try {
    await f();
  } catch (e) {
    if (!(e instanceof cls)) throw new Error(`wrong error type: ${e}`);
    if (re && !re.test((e as Error).message)) throw new Error(`wrong message: ${e}`);
    return e;
  }
  throw new Error("did not throw");
}

/** A Conn that yields the given chunks, then end of stream. */
function fakeConn(...chunks: number[][]): BufferedConn {
  const q = chunks.map((c) => Uint8Array.from(c));
  const addr = { transport: "tcp", hostname: "127.0.0.1", port: 1 };
  const c: Conn = {
    read(p) {
      const h = q.shift();
      if (!h) return Promise.resolve(null);
      p.set(h);
      return Promise.resolve(h.length);
    },
    write: (p) => Promise.resolve(p.length),
    closeWrite: () => Promise.resolve(),
    close() {},
    localAddr: addr,
    remoteAddr: addr,
  };
  return new BufferedConn(c);
}

Deno.test("addr: IPv4, IPv6, domain round trip", () => {
  eq(encodeAddr("1.2.3.4", 80), [1, 1, 2, 3, 4, 0, 80]);
  eq(encodeAddr("", 0), [1, 0, 0, 0, 0, 0, 0]);
  eq(encodeAddr("::1", 443), [4, ...new Array(15).fill(0), 1, 1, 187]);
  eq(encodeAddr("::ffff:127.0.0.1", 1), [1, 127, 0, 0, 1, 0, 1], "mapped v6 → v4");
  eq(encodeAddr("example.com", 8080), [3, 11, ...new TextEncoder().encode("example.com"), 31, 144]);
  for (const [host, port] of [["10.0.0.1", 1], ["2001:db8::1", 65535], ["a.b", 0]] as const) {
    eq(decodeAddr(encodeAddr(host, port)).addr, { host, port });
  }
});

Deno.test("addr: decode errors", () => {
  const reason = (b: number[]) => {
    try {
      decodeAddr(Uint8Array.from(b));
    } catch (e) {
      if (e instanceof SocksAddrError) return e.reason;
      throw e;
    }
    return "ok";
  };
  eq(reason([9, 1, 2, 3, 4, 0, 0]), "atyp");
  eq(reason([3, 0, 0, 80]), "empty-domain");
  eq(reason([1, 1, 2, 3]), "truncated");
  eq(reason([4, 0, 0]), "truncated");
  eq(reason([]), "truncated");
  try {
    encodeAddr("x".repeat(256), 1);
    throw new Error("no throw");
  } catch (e) {
    eq((e as SocksAddrError).reason, "too-long");
  }
});

Deno.test("addr: IPv6 parsing and canonical text", () => {
  eq(formatIPv6(parseIPv6("2001:0DB8:0:0:0:0:0:1")!), "2001:db8::1");
  eq(formatIPv6(parseIPv6("::")!), "::");
  eq(formatIPv6(parseIPv6("1::")!), "1::");
  eq(formatIPv6(parseIPv6("1:0:1:0:0:1:0:0")!), "1:0:1::1:0:0", "longest run wins");
  eq(formatIPv6(parseIPv6("1:0:2:3:4:5:6:7")!), "1:0:2:3:4:5:6:7", "single zero kept");
  eq(formatIPv6(parseIPv6("fe80::1%eth0")!), "fe80::1");
  eq(formatIPv6(parseIPv6("64:ff9b::1.2.3.4")!), "64:ff9b::102:304");
  for (const bad of ["1:2", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "g::", "1.2.3.4"]) {
    eq(parseIPv6(bad), null, bad);
  }
  eq(normalizeIP("::ffff:10.1.2.3"), "10.1.2.3");
  eq(normalizeIP("0:0::1"), "::1");
  eq(normalizeIP("example.com"), "example.com");
});

Deno.test("wire: greeting, user/pass, request", async () => {
  eq(await readGreeting(fakeConn([5, 2, 0], [2])), [0, 2], "split across reads");
  eq(await readGreeting(fakeConn([5, 0])), []);
  await rejects(() => readGreeting(fakeConn([4, 1, 0])), ProtocolError, /version/);
  await rejects(() => readGreeting(fakeConn([5, 255, 0, 1, 2])), ProtocolError, /end of stream/);
  const up = await readUserPass(fakeConn([1, 1, 117, 3, 112, 119, 100]));
  eq(up, { username: "u", password: "pwd" });
  await rejects(() => readUserPass(fakeConn([5, 1, 117, 0])), ProtocolError, /version/);
  const req = await readRequest(
    fakeConn([5, 1, 0, 3, 9, ...new TextEncoder().encode("localhost"), 0, 80]),
  );
  eq(req, { cmd: 1, addr: { host: "localhost", port: 80 } });
  const e = await rejects(() => readRequest(fakeConn([5, 1, 0, 7, 0, 0])), SocksAddrError);
  eq((e as SocksAddrError).reason, "atyp");
  await rejects(() => readRequest(fakeConn([5, 1])), ProtocolError, /end of stream/);
});

Deno.test("wire: replies", () => {
  eq(encodeMethodReply(0xff), [5, 0xff]);
  eq(encodeUserPassReply(true), [1, 0]);
  eq(encodeUserPassReply(false), [1, 1]);
  eq(encodeReply(5), [5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
  eq(encodeReply(0, "127.0.0.1", 1080), [5, 0, 0, 1, 127, 0, 0, 1, 4, 56]);
  eq(encodeReply(0, "::1", 1).length, 22);
});

Deno.test("wire: UDP datagram header", () => {
  const d = encodeUdpDatagram("127.0.0.1", 53, Uint8Array.of(9, 8, 7));
  eq(d, [0, 0, 0, 1, 127, 0, 0, 1, 0, 53, 9, 8, 7]);
  const back = decodeUdpDatagram(d);
  eq(back.frag, 0);
  eq(back.addr, { host: "127.0.0.1", port: 53 });
  eq(back.data, [9, 8, 7]);
  eq(decodeUdpDatagram(Uint8Array.of(0, 0, 1, 3, 1, 120, 0, 1)).frag, 1);
  let threw = false;
  try {
    decodeUdpDatagram(Uint8Array.of(0, 0, 0));
  } catch (e) {
    threw = e instanceof ProtocolError;
  }
  eq(threw, true);
});

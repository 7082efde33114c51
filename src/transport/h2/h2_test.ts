import { assert, assertEquals, assertRejects } from "../../../tests/lib/assert.ts";
import type { Conn } from "../../core/conn.ts";
import { ProtocolError } from "../../core/errors.ts";
import { Logger } from "../../core/logger.ts";
import { H2Pool, request } from "./client.ts";
import { serveH2 } from "./server.ts";
import { H2StreamConn } from "./stream.ts";
import { plain } from "./tls.ts";

const T = { sanitizeOps: false, sanitizeResources: false };
const enc = new TextEncoder();
const dec = new TextDecoder();

/** An h2c echo server: every stream is answered 200 and echoed. Counts connections. */
function echoServer() {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const state = { conns: 0, results: [] as Promise<number>[] };
  (async () => {
    for await (const c of l) {
      state.conns++;
      state.results.push(
        serveH2(c, (stream) => {
          stream.respond({ ":status": 200 });
          stream.pipe(stream);
        }),
      );
    }
  })();
  return { addr: `127.0.0.1:${(l.addr as Deno.NetAddr).port}`, state, close: () => l.close() };
}

async function echoOnce(c: Conn, text: string): Promise<string> {
  await c.write(enc.encode(text));
  await c.closeWrite();
  let out = "";
  const b = new Uint8Array(1024);
  for (;;) {
    const n = await c.read(b);
    if (n === null) break;
    out += dec.decode(b.subarray(0, n));
  }
  c.close();
  return out;
}

async function openTunnel(pool: H2Pool, conn: Conn, addr: string): Promise<Conn> {
  const ref = await pool.session(conn, { addr, timeout: 5000 });
  const r = await request(ref.session, { ":method": "CONNECT", ":authority": "t:1" }, {
    timeout: 5000,
    waitResponse: true,
  });
  assertEquals(r.status, 200);
  return new H2StreamConn(r.stream, ref.addrs, ref.sole ? () => ref.session.close() : undefined);
}

Deno.test({
  name: "h2 pool: many streams, concurrent first dials included, share one connection",
  ...T,
  fn: async () => {
    const srv = echoServer();
    const pool = new H2Pool(plain, false, new Logger("t"), "h2c");
    try {
      const outs = await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          const c = await openTunnel(pool, await pool.dial(srv.addr, { timeout: 5000 }), srv.addr);
          return echoOnce(c, `m${i}`);
        }),
      );
      outs.forEach((o, i) => assertEquals(o, `m${i}`));
      assertEquals(srv.state.conns, 1);
      assert(pool.live(srv.addr), "the session stays for the next dial");
      pool.live(srv.addr)!.session.close();
    } finally {
      srv.close();
    }
  },
});

Deno.test({
  name: "h2 pool: over a given stream (hop 2+) the session is its own and ends with the stream",
  ...T,
  fn: async () => {
    const srv = echoServer();
    const pool = new H2Pool(plain, false, new Logger("t"), "h2c");
    try {
      const raw = await Deno.connect({
        hostname: "127.0.0.1",
        port: Number(srv.addr.split(":")[1]),
      });
      const c = await openTunnel(pool, raw, srv.addr);
      assertEquals(await echoOnce(c, "solo"), "solo");
      assertEquals(pool.live(srv.addr), undefined, "not pooled");
      // The server sees the session end once the stream is done.
      assertEquals(await srv.state.results[0], 1);
    } finally {
      srv.close();
    }
  },
});

Deno.test({
  name: "h2 server: garbage and a truncated preface are ProtocolErrors",
  ...T,
  fn: async () => {
    for (const input of ["GET / HTTP/1.1\r\n\r\n", "PRI * HTTP/2.0\r\n"]) {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const c = await Deno.connect({ hostname: "127.0.0.1", port: (l.addr as Deno.NetAddr).port });
      const s = await l.accept();
      await c.write(enc.encode(input));
      await c.closeWrite();
      await assertRejects(() => serveH2(s, () => {}), ProtocolError);
      c.close();
      l.close();
    }
  },
});

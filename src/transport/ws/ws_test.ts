import { assert, assertEquals, assertRejects } from "../../../tests/lib/assert.ts";
import { Params } from "../../config/params.ts";
import { ProtocolError } from "../../core/errors.ts";
import { OP_BINARY, unmask, writeFrameHeader } from "./frame.ts";
import { wsClient, wsOptionsFromParams, wsServer } from "./handshake.ts";
import type { WsConn } from "./conn.ts";

const clientOpts = (md: Record<string, string> = {}) =>
  wsOptionsFromParams(new Params(md), "client");
const serverOpts = (md: Record<string, string> = {}) =>
  wsOptionsFromParams(new Params(md), "server");

function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

async function readN(c: { read(p: Uint8Array): Promise<number | null> }, n: number) {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const k = await c.read(out.subarray(got));
    if (k === null) break;
    got += k;
  }
  return out.subarray(0, got);
}

Deno.test("ws frame: unmask matches a byte-wise XOR at every offset and key position", () => {
  const key = new Uint8Array([0x12, 0x34, 0x56, 0x78]);
  const src = bytes(1000);
  for (const off of [0, 1, 2, 3, 5]) {
    for (const pos of [0, 1, 2, 3]) {
      const buf = new Uint8Array(1100);
      buf.set(src, off);
      const view = buf.subarray(off, off + src.length);
      const next = unmask(view, key, pos);
      assertEquals(next, (pos + src.length) & 3);
      for (let i = 0; i < src.length; i++) {
        if (view[i] !== (src[i] ^ key[(pos + i) & 3])) {
          throw new Error(`off ${off} pos ${pos} @${i}`);
        }
      }
    }
  }
});

Deno.test("ws frame: header lengths 7/16/64-bit", () => {
  const h = new Uint8Array(14);
  assertEquals(writeFrameHeader(h, OP_BINARY, 125), 2);
  assertEquals([h[0], h[1]], [0x82, 125]);
  assertEquals(writeFrameHeader(h, OP_BINARY, 126), 4);
  assertEquals([h[1], h[2], h[3]], [126, 0, 126]);
  assertEquals(writeFrameHeader(h, OP_BINARY, 65536, new Uint8Array(4)), 14);
  assertEquals([...h.subarray(1, 10)], [0xff, 0, 0, 0, 0, 0, 1, 0, 0]);
});

Deno.test("ws: our server ← Deno's WebSocket client (random masks, text and binary)", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  const served = (async () => {
    const raw = await l.accept();
    const c = await wsServer(raw, serverOpts());
    const got = await readN(c, 70_000 + 5);
    await c.write(got); // echo as one binary message
    await c.closeWrite();
    assertEquals(await c.read(new Uint8Array(10)), null); // the client's Close
    c.close();
    return got;
  })();
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  ws.binaryType = "arraybuffer";
  const payload = bytes(70_000, 9);
  const echoed = new Promise<Uint8Array>((resolve, reject) => {
    ws.onmessage = (e) => resolve(new Uint8Array(e.data as ArrayBuffer));
    ws.onerror = () => reject(new Error("websocket error"));
  });
  await new Promise((r) => (ws.onopen = r));
  ws.send(payload);
  ws.send("hello");
  const back = await echoed;
  const closed = new Promise<void>((r) => (ws.onclose = () => r()));
  ws.close();
  const got = await served;
  await closed;
  assertEquals(got.length, 70_005);
  assertEquals(new TextDecoder().decode(got.subarray(70_000)), "hello");
  assertEquals(back.length, 70_005);
  assert(back.subarray(0, 70_000).every((v, i) => v === payload[i]), "echo differs");
  l.close();
});

Deno.test("ws: our client → Deno.serve upgradeWebSocket echo, 2 MB, keepalive pings", async () => {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    (req) => {
      if (new URL(req.url).pathname !== "/p") return new Response("no", { status: 404 });
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.binaryType = "arraybuffer";
      socket.onmessage = (e) => socket.send(e.data);
      return response;
    },
  );
  const port = server.addr.port;
  const raw = await Deno.connect({ hostname: "127.0.0.1", port });
  const c: WsConn = await wsClient(
    raw,
    clientOpts({ path: "/p", keepalive: "true", ttl: "50ms" }),
    `127.0.0.1:${port}`,
    5000,
  );
  const data = bytes(2 << 20, 4);
  const reading = readN(c, data.length);
  // Idle for several ping intervals while a read waits: pongs keep the connection alive.
  await new Promise((r) => setTimeout(r, 300));
  for (let off = 0; off < data.length; off += 30000) {
    await c.write(data.subarray(off, off + 30000));
  }
  const back = await reading;
  assertEquals(back.length, data.length);
  assert(back.every((v, i) => v === data[i]), "echo differs");
  c.close();
  // A wrong path is refused with the server's status.
  const raw2 = await Deno.connect({ hostname: "127.0.0.1", port });
  await assertRejects(
    () => wsClient(raw2, clientOpts({ path: "/x" }), `127.0.0.1:${port}`, 5000),
    ProtocolError,
    "upgrade refused: 404",
  );
  raw2.close();
  ac.abort();
  await server.finished;
});

Deno.test("ws: close() after our Close waits for the peer's end, so unread bytes do not reset data in flight", async () => {
  const { WsConn } = await import("./conn.ts");
  const { OP_CLOSE } = await import("./frame.ts");
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const peer = await Deno.connect({ hostname: "127.0.0.1", port: (l.addr as Deno.NetAddr).port });
  const raw = await l.accept();
  l.close();
  const c = new WsConn(raw, { client: false });
  // The peer's Close (masked, as a client's) arrives but nothing above reads it: a TLS layer
  // that stopped at close_notify does exactly that.
  const close = new Uint8Array(8);
  const h = writeFrameHeader(close, OP_CLOSE, 2, new Uint8Array([1, 2, 3, 4]));
  close.set([0x03 ^ 1, 0xe8 ^ 2], h);
  await peer.write(close.subarray(0, h + 2));
  const data = bytes(256 * 1024, 5);
  await c.write(data);
  await c.closeWrite();
  c.close();
  // Only now does the peer read: had the socket been closed with the Close frame unread, the
  // reset would have thrown the queued frames away (ConnectionReset here).
  await new Promise((r) => setTimeout(r, 50));
  // 256 KiB in one binary frame (10-byte header), then our Close frame (2 + 2 bytes).
  const got = await readN(peer, 10 + data.length + 4);
  peer.close();
  assertEquals(got.length, 10 + data.length + 4);
  assertEquals(got.subarray(10, 10 + data.length), data);
});

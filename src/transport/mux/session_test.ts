import { assert, assertEquals, assertRejects } from "../../../tests/lib/assert.ts";
import type { Conn } from "../../core/conn.ts";
import { ProtocolError } from "../../core/errors.ts";
import { CMD_FIN, CMD_NOP, CMD_PSH, CMD_SYN, CMD_UPD, decodeHeader, encodeFrame } from "./frame.ts";
import type { MuxConfig } from "./config.ts";
import { MuxSession } from "./session.ts";
import type { MuxStream } from "./stream.ts";

/** A connected loopback TCP pair. */
async function tcpPair(): Promise<[Deno.TcpConn, Deno.TcpConn]> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [a, b] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: (l.addr as Deno.NetAddr).port }),
    l.accept(),
  ]);
  l.close();
  return [a, b as Deno.TcpConn];
}

async function sessions(
  config: Partial<MuxConfig>,
): Promise<{ client: MuxSession; server: MuxSession; close(): Promise<void> }> {
  const [a, b] = await tcpPair();
  const client = new MuxSession(a, { client: true, config });
  const server = new MuxSession(b, { client: false, config });
  return {
    client,
    server,
    async close() {
      client.close();
      server.close();
      await Promise.all([client.done, server.done]);
    },
  };
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) {
    crypto.getRandomValues(out.subarray(off, Math.min(n, off + 65536)));
  }
  return out;
}

async function readAll(c: Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(40000);
  for (;;) {
    const n = await c.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
    total += n;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const ch of chunks) {
    out.set(ch, off);
    off += ch.length;
  }
  return out;
}

async function writeChunks(c: Conn, data: Uint8Array, chunk: number): Promise<void> {
  for (let off = 0; off < data.length; off += chunk) {
    let o = off;
    const end = Math.min(data.length, off + chunk);
    while (o < end) o += await c.write(data.subarray(o, end));
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Echo server: every accepted stream is echoed back until its FIN, then half-closed. */
function serveEcho(s: MuxSession): void {
  (async () => {
    for (;;) {
      let st: MuxStream;
      try {
        st = await s.acceptStream();
      } catch {
        return;
      }
      (async () => {
        const buf = new Uint8Array(50000);
        try {
          for (;;) {
            const n = await st.read(buf);
            if (n === null) break;
            let o = 0;
            while (o < n) o += await st.write(buf.subarray(o, n));
          }
          await st.closeWrite();
        } catch { /* session ended */ }
      })();
    }
  })();
}

for (const version of [1, 2] as const) {
  Deno.test(`mux v${version}: 16 concurrent streams, 1 MiB each way, byte-exact`, async () => {
    const { client, server, close } = await sessions({ version });
    try {
      serveEcho(server);
      const payloads = Array.from({ length: 16 }, () => randomBytes(1 << 20));
      const results = await Promise.all(payloads.map(async (p, i) => {
        const st = await client.openStream();
        const [, back] = await Promise.all([
          writeChunks(st, p, [1000, 65536, 100000, 7][i % 4]).then(() => st.closeWrite()),
          readAll(st),
        ]);
        st.close();
        return back;
      }));
      for (let i = 0; i < payloads.length; i++) {
        assert(equalBytes(results[i], payloads[i]), `stream ${i} differs`);
      }
    } finally {
      await close();
    }
  });

  Deno.test(`mux v${version}: stream IDs, both sides open, half-close both ways`, async () => {
    const { client, server, close } = await sessions({ version });
    try {
      const c1 = await client.openStream();
      const c2 = await client.openStream();
      assertEquals([c1.id, c2.id], [3, 5]);
      const s1 = await server.openStream();
      assertEquals(s1.id, 2);
      const a1 = await server.acceptStream();
      const a2 = await server.acceptStream();
      assertEquals([a1.id, a2.id], [3, 5]);
      const b1 = await client.acceptStream();
      assertEquals(b1.id, 2);

      const enc = new TextEncoder();
      await c1.write(enc.encode("ping"));
      await c1.closeWrite();
      assertEquals(new TextDecoder().decode(await readAll(a1)), "ping");
      // The peer's FIN ended reading only: writing back still works.
      await a1.write(enc.encode("pong"));
      await a1.closeWrite();
      assertEquals(new TextDecoder().decode(await readAll(c1)), "pong");
      await assertRejects(() => c1.write(enc.encode("x")));
      assertEquals(client.numStreams, 2); // c1 is done on both sides and forgotten
      c1.close();
      a1.close();

      // Closing a stream fails its pending read; the session keeps serving others.
      const pending = a2.read(new Uint8Array(10));
      a2.close();
      await assertRejects(() => pending);
      await s1.write(enc.encode("from server"));
      const buf = new Uint8Array(64);
      const n = await b1.read(buf);
      assertEquals(new TextDecoder().decode(buf.subarray(0, n!)), "from server");
    } finally {
      await close();
    }
  });
}

Deno.test("mux v2: the window stops a writer whose reader does not read", async () => {
  const { client, server, close } = await sessions({ version: 2, maxStreamBuffer: 65536 });
  try {
    const c = await client.openStream();
    const s = await server.acceptStream();
    const data = randomBytes(1 << 20);
    let written = false;
    const w = c.write(data).then(() => written = true);
    // Let the writer run until it blocks on the initial 256 KiB peer window.
    await new Promise((r) => setTimeout(r, 300));
    assert(!written, "a 1 MiB write finished although nothing was read");
    // deno-lint-ignore no-explicit-any
    const buffered = (s as any).buffered as number;
    assert(buffered <= 262144, `receiver holds ${buffered} bytes, more than the window`);
    const got = new Uint8Array(data.length);
    let off = 0;
    while (off < got.length) off += (await s.read(got.subarray(off)))!;
    await w;
    assert(equalBytes(got, data));
  } finally {
    await close();
  }
});

/** A session on one end and the raw socket on the other, to inspect and inject frames. */
async function rawPeer(config: Partial<MuxConfig>, client = false) {
  const [a, b] = await tcpPair();
  const sess = new MuxSession(a, { client, config });
  const frames: { ver: number; cmd: number; sid: number; data: Uint8Array }[] = [];
  let buf = new Uint8Array(0);
  let ended = false;
  const reader = (async () => {
    const tmp = new Uint8Array(65536);
    try {
      for (;;) {
        const n = await b.read(tmp);
        if (n === null) break;
        const nb = new Uint8Array(buf.length + n);
        nb.set(buf);
        nb.set(tmp.subarray(0, n), buf.length);
        buf = nb;
        while (buf.length >= 8) {
          const h = decodeHeader(buf);
          if (buf.length < 8 + h.length) break;
          frames.push({ ver: h.ver, cmd: h.cmd, sid: h.sid, data: buf.slice(8, 8 + h.length) });
          buf = buf.slice(8 + h.length);
        }
      }
    } catch { /* closed */ }
    ended = true;
  })();
  return {
    sess,
    raw: b,
    frames,
    get ended() {
      return ended;
    },
    async send(...f: Uint8Array[]) {
      for (const x of f) {
        let o = 0;
        while (o < x.length) o += await b.write(x.subarray(o));
      }
    },
    async close() {
      sess.close();
      try {
        b.close();
      } catch { /* closed */ }
      await sess.done;
      await reader;
    },
    reader,
  };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert(cond(), `timed out waiting for ${what}`);
}

Deno.test("mux: writes are split at maxFrameSize; FIN follows the data", async () => {
  const p = await rawPeer({ version: 1, maxFrameSize: 1000 });
  try {
    await p.send(encodeFrame(1, CMD_SYN, 3));
    const st = await p.sess.acceptStream();
    const data = randomBytes(4500);
    await st.write(data);
    await st.closeWrite();
    await until(() => p.frames.some((f) => f.cmd === CMD_FIN), "FIN");
    const psh = p.frames.filter((f) => f.cmd === CMD_PSH);
    assertEquals(psh.map((f) => f.data.length), [1000, 1000, 1000, 1000, 500]);
    assert(psh.every((f) => f.sid === 3 && f.ver === 1));
    const joined = new Uint8Array(4500);
    psh.forEach((f, i) => joined.set(f.data, i * 1000));
    assert(equalBytes(joined, data));
    assertEquals(p.frames[p.frames.length - 1].cmd, CMD_FIN);
  } finally {
    await p.close();
  }
});

Deno.test("mux v2: reader announces consumption with UPD frames", async () => {
  const p = await rawPeer({ version: 2, maxStreamBuffer: 65536 });
  try {
    await p.send(encodeFrame(2, CMD_SYN, 3));
    const st = await p.sess.acceptStream();
    await p.send(encodeFrame(2, CMD_PSH, 3, new Uint8Array(100)));
    const buf = new Uint8Array(100000);
    assertEquals(await st.read(buf), 100);
    // The first read is announced at once.
    await until(() => p.frames.some((f) => f.cmd === CMD_UPD), "first UPD");
    let upd = p.frames.filter((f) => f.cmd === CMD_UPD);
    const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 8);
    assertEquals(dv(upd[0].data).getUint32(0, true), 100);
    assertEquals(dv(upd[0].data).getUint32(4, true), 65536);
    // Then whenever half the window has been consumed since the last one.
    for (let i = 0; i < 4; i++) await p.send(encodeFrame(2, CMD_PSH, 3, new Uint8Array(10000)));
    let got = 0;
    while (got < 40000) got += (await st.read(buf))!;
    await until(() => p.frames.filter((f) => f.cmd === CMD_UPD).length === 2, "second UPD");
    upd = p.frames.filter((f) => f.cmd === CMD_UPD);
    assertEquals(dv(upd[1].data).getUint32(0, true), 40100);
  } finally {
    await p.close();
  }
});

Deno.test("mux: keepalive NOPs are sent; a silent peer is dropped", async () => {
  const p = await rawPeer({ version: 1, keepAliveInterval: 40, keepAliveTimeout: 200 });
  try {
    await until(() => p.frames.some((f) => f.cmd === CMD_NOP), "NOP");
    await p.sess.done;
    assert(p.sess.error?.message.includes("no frame received"), p.sess.error?.message);
    await until(() => p.ended, "socket close");
  } finally {
    await p.close();
  }
});

const BAD_FRAMES: [string, 1 | 2, Uint8Array, string][] = [
  ["wrong version", 1, encodeFrame(2, CMD_NOP, 0), "version 2 on a v1"],
  ["UPD on v1", 1, encodeFrame(1, CMD_UPD, 3, new Uint8Array(8)), "UPD frame on a v1"],
  ["UPD of 4 bytes", 2, encodeFrame(2, CMD_UPD, 3, new Uint8Array(4)), "UPD frame with 4"],
  ["unknown command", 1, encodeFrame(1, 9, 3), "unknown command"],
  ["NOP with payload", 1, encodeFrame(1, CMD_NOP, 0, new Uint8Array(3)), "NOP frame with 3"],
  ["SYN with payload", 2, encodeFrame(2, CMD_SYN, 3, new Uint8Array(1)), "SYN frame with 1"],
];

for (const [name, version, frame, msg] of BAD_FRAMES) {
  Deno.test(`mux: a bad frame (${name}) ends the session cleanly`, async () => {
    const p = await rawPeer({ version });
    try {
      await p.send(encodeFrame(version, CMD_SYN, 5));
      const st = await p.sess.acceptStream();
      const pendingRead = st.read(new Uint8Array(10));
      const pendingAccept = p.sess.acceptStream();
      await p.send(frame);
      await p.sess.done;
      assert(p.sess.error instanceof ProtocolError, String(p.sess.error));
      assert(p.sess.error.message.includes(msg), p.sess.error.message);
      await assertRejects(() => pendingRead);
      await assertRejects(() => pendingAccept);
      await assertRejects(() => st.write(new Uint8Array(1)));
      await assertRejects(() => p.sess.openStream());
      await until(() => p.ended, "socket close");
    } finally {
      await p.close();
    }
  });
}

Deno.test("mux: a truncated frame and a peer that closes end the session", async () => {
  const p = await rawPeer({ version: 1 });
  try {
    await p.send(encodeFrame(1, CMD_PSH, 3, new Uint8Array(100)).subarray(0, 50));
    p.raw.close();
    await p.sess.done;
    assert(p.sess.error?.message.includes("inside a frame"), p.sess.error?.message);
  } finally {
    await p.close();
  }
});

Deno.test("mux: data for unknown streams is skipped; duplicate SYN ignored", async () => {
  const p = await rawPeer({ version: 1 });
  try {
    await p.send(
      encodeFrame(1, CMD_PSH, 99, new Uint8Array(500)),
      encodeFrame(1, CMD_FIN, 99),
      encodeFrame(1, CMD_SYN, 7),
      encodeFrame(1, CMD_SYN, 7),
      encodeFrame(1, CMD_PSH, 7, new TextEncoder().encode("hello")),
      encodeFrame(1, CMD_FIN, 7),
    );
    const st = await p.sess.acceptStream();
    assertEquals(st.id, 7);
    assertEquals(new TextDecoder().decode(await readAll(st)), "hello");
    assertEquals(p.sess.numStreams, 1);
    assert(!p.sess.isClosed);
  } finally {
    await p.close();
  }
});

Deno.test("mux: closing the session fails streams and closes the socket", async () => {
  const { client, server, close } = await sessions({ version: 1 });
  try {
    const c = await client.openStream();
    const s = await server.acceptStream();
    const r = s.read(new Uint8Array(10));
    client.close();
    await assertRejects(() => c.write(new Uint8Array(1)));
    await assertRejects(() => r); // the server session saw the socket close
    await server.done;
  } finally {
    await close();
  }
});

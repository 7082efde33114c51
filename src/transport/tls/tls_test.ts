import { assert, assertEquals, assertRejects } from "../../../tests/lib/assert.ts";
import type { Conn } from "../../core/conn.ts";
import { ProtocolError } from "../../core/errors.ts";
import { tlsClient } from "./client.ts";
import { selfSignedCert } from "./selfsigned.ts";
import { TLSServer } from "./server.ts";

async function tcpPair(): Promise<[Deno.TcpConn, Deno.TcpConn]> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [a, b] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: (l.addr as Deno.NetAddr).port }),
    l.accept(),
  ]);
  l.close();
  a.setNoDelay(true);
  (b as Deno.TcpConn).setNoDelay(true);
  return [a, b as Deno.TcpConn];
}

/** Echoes until end of stream, then half-closes. */
async function echo(c: Conn): Promise<number> {
  const buf = new Uint8Array(65536);
  let total = 0;
  for (;;) {
    const n = await c.read(buf);
    if (n === null) break;
    total += n;
    for (let o = 0; o < n;) o += await c.write(buf.subarray(o, n));
  }
  await c.closeWrite();
  return total;
}

/** Writes `size` bytes (then half-closes) while reading the echo back to end of stream. */
async function pump(c: Conn, size: number): Promise<number> {
  const chunk = new Uint8Array(65536).fill(7);
  const w = (async () => {
    for (let off = 0; off < size; off += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, size - off));
      for (let o = 0; o < part.length;) o += await c.write(part.subarray(o));
    }
    await c.closeWrite();
  })();
  let got = 0;
  const buf = new Uint8Array(65536);
  for (;;) {
    const n = await c.read(buf);
    if (n === null) break;
    got += n;
  }
  await w;
  return got;
}

Deno.test("tls: 160 MB echo both ways with half-close reaches end of stream on both sides", async () => {
  // Deno 2.9.6's TLSSocket lost its end of stream after heavy two-way traffic when paused.
  const srv = new TLSServer(await selfSignedCert());
  const [a, b] = await tcpPair();
  const [client, server] = await Promise.all([
    tlsClient(a, { secure: false }, "127.0.0.1:443", 5000),
    srv.handshake(b),
  ]);
  const size = 160 << 20;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      client.close();
      server.close();
      reject(new Error("no end of stream within 30 s"));
    }, 30_000);
  });
  const [echoed, got] = await Promise.race([
    Promise.all([echo(server), pump(client, size)]),
    stuck,
  ]);
  clearTimeout(timer);
  assertEquals(echoed, size);
  assertEquals(got, size);
  client.close();
  server.close();
});

Deno.test("tls: secure=true (native client) verifies against ca=; a wrong name fails", async () => {
  const cert = await selfSignedCert();
  const srv = new TLSServer(cert);
  {
    const [a, b] = await tcpPair();
    const [client, server] = await Promise.all([
      tlsClient(a, { secure: true, ca: cert.cert }, "127.0.0.1:443", 5000),
      srv.handshake(b),
    ]);
    const [echoed, got] = await Promise.all([echo(server), pump(client, 100_000)]);
    assertEquals([echoed, got], [100_000, 100_000]);
    client.close();
    server.close();
  }
  {
    const [a, b] = await tcpPair();
    const s = srv.handshake(b).catch((e) => e);
    await assertRejects(() =>
      tlsClient(a, { secure: true, ca: cert.cert, serverName: "wrong.test" }, "x:1", 5000)
    );
    assert((await s) instanceof Error, "the server saw no failure");
  }
});

Deno.test("tls: a client that sends nothing times out; one that closes fails at once", async () => {
  const srv = new TLSServer(await selfSignedCert());
  const [a, b] = await tcpPair();
  await assertRejects(() => srv.handshake(b, 200), ProtocolError, "timed out after 200 ms");
  a.close();
  const [c, d] = await tcpPair();
  const p = srv.handshake(d, 10_000);
  await c.write(new Uint8Array([0x16, 0x03, 0x01, 0x00, 0x50, 0x01]));
  c.close();
  await assertRejects(() => p, ProtocolError, "closed during the tls handshake");
});

Deno.test("tls: TLS over TLS over TLS, echo with half-close (1000 B and 4 MB)", async () => {
  // The layers' records and close_notify were lost at the half-close ("write after end"), and
  // a layer below closed its socket before the peer's close_notify arrived (a reset).
  const srv = new TLSServer(await selfSignedCert());
  for (const size of [1000, 4 << 20]) {
    let [a, b]: [Conn, Conn] = await tcpPair();
    for (let i = 0; i < 3; i++) {
      [a, b] = await Promise.all([
        tlsClient(a, { secure: false }, "127.0.0.1:443", 5000),
        srv.handshake(b),
      ]);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stuck = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${size} B: no end of stream within 30 s`)),
        30_000,
      );
    });
    const [echoed, got] = await Promise.race([Promise.all([echo(b), pump(a, size)]), stuck])
      .finally(() => clearTimeout(timer));
    assertEquals([echoed, got], [size, size], `${size} B`);
    a.close();
    b.close();
  }
});

/**
 * The relay handler and connector in-process over loopback sockets: forward mode (a service
 * with targets ignores the client's address), connector ↔ handler for TCP and UDP, and the
 * deferred header's flush rules.
 */
import { assertEquals, assertRejects } from "../../../tests/lib/assert.ts";
import { BufferedConn } from "../../core/bufconn.ts";
import type { Conn } from "../../core/conn.ts";
import { DialError } from "../../core/errors.ts";
import { Logger } from "../../core/logger.ts";
import { Params } from "../../config/params.ts";
import { DefaultRouter } from "../../chain/router.ts";
import { targetGroup } from "../../chain/group.ts";
import type { Auther } from "../../access/auth.ts";
import { DeferredConn } from "./conn.ts";
import { RelayConnector } from "./connector.ts";
import { RelayHandler } from "./handler.ts";
import { encodeHeader } from "./wire.ts";

const log = new Logger("test");
const enc = new TextEncoder();
const dec = new TextDecoder();

/** A TCP echo server. */
function echoServer(): { port: number; close(): void } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const c of l) {
      conns.push(c);
      (async () => {
        const b = new Uint8Array(65536);
        try {
          for (let n; (n = await c.read(b)) !== null;) await c.write(b.subarray(0, n));
          await c.closeWrite();
        } catch { /* closed */ }
      })();
    }
  })().catch(() => {});
  return {
    port: (l.addr as Deno.NetAddr).port,
    close() {
      l.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

/** Runs `handler` on a loopback listener. */
function serve(handler: RelayHandler): { port: number; close(): void } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done: Promise<void>[] = [];
  (async () => {
    for await (const c of l) done.push(handler.handle(c, { log }).catch(() => {}));
  })().catch(() => {});
  return { port: (l.addr as Deno.NetAddr).port, close: () => l.close() };
}

function handler(opts: { targets?: string[]; auther?: Auther; params?: Record<string, string> }) {
  const targets = opts.targets ?? [];
  return new RelayHandler({
    service: "test",
    params: new Params(opts.params ?? {}, "test"),
    auther: opts.auther,
    router: new DefaultRouter({ timeout: 5000, retries: 0 }),
    targets,
    forwarder: targets.length
      ? targetGroup("test", targets.map((addr, i) => ({ name: `t${i}`, addr })))
      : undefined,
    log,
  });
}

function connector(
  params: Record<string, string> = {},
  auth?: { username: string; password: string },
) {
  return new RelayConnector({
    node: "relay-test",
    addr: "",
    params: new Params(params, "node"),
    auth,
    log,
  });
}

async function readAll(c: Conn, want: number): Promise<Uint8Array> {
  const out = new Uint8Array(want);
  let n = 0;
  while (n < want) {
    const r = await c.read(out.subarray(n));
    if (r === null) break;
    n += r;
  }
  return out.subarray(0, n);
}

Deno.test("relay handler: forward mode ignores the client's address and uses its target", async () => {
  const echo = echoServer();
  const srv = serve(handler({ targets: [`127.0.0.1:${echo.port}`] }));
  try {
    for (const params of [{}, { nodelay: "true" }] as Record<string, string>[]) {
      const raw = await Deno.connect({ hostname: "127.0.0.1", port: srv.port });
      // The client names a port nobody listens on: a forwarder does not care.
      const c = await connector(params).connect(raw, "tcp", "127.0.0.1:1", { timeout: 5000 });
      await c.write(enc.encode("forwarded"));
      assertEquals(dec.decode(await readAll(c, 9)), "forwarded");
      c.close();
    }
  } finally {
    srv.close();
    echo.close();
  }
});

Deno.test("relay connector ↔ handler: auth accepted and refused; UDP frames", async () => {
  const echo = echoServer();
  const auther: Auther = { verify: (u, p) => Promise.resolve(u === "u" && p === "p") };
  const srv = serve(handler({ auther }));
  const udpEcho = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  (async () => {
    for (;;) {
      const [d, from] = await udpEcho.receive();
      await udpEcho.send(d, from);
    }
  })().catch(() => {});
  try {
    const target = `127.0.0.1:${echo.port}`;
    let raw = await Deno.connect({ hostname: "127.0.0.1", port: srv.port });
    let c = await connector({}, { username: "u", password: "p" }).connect(raw, "tcp", target, {
      timeout: 5000,
    });
    await c.write(enc.encode("hello"));
    assertEquals(dec.decode(await readAll(c, 5)), "hello");
    c.close();

    // nodelay: a refusal fails connect() itself, as "not-allowed".
    raw = await Deno.connect({ hostname: "127.0.0.1", port: srv.port });
    const e = await assertRejects(
      () =>
        connector({ nodelay: "true" }, { username: "u", password: "x" }).connect(
          raw,
          "tcp",
          target,
          {
            timeout: 5000,
          },
        ),
      DialError,
      "unauthorized",
    );
    assertEquals((e as DialError).code, "not-allowed");
    raw.close();

    // Deferred: the refusal shows at the first read.
    raw = await Deno.connect({ hostname: "127.0.0.1", port: srv.port });
    c = await connector({}, { username: "u", password: "x" }).connect(raw, "tcp", target, {
      timeout: 5000,
    });
    await c.write(enc.encode("x"));
    await assertRejects(() => c.read(new Uint8Array(10)), DialError, "unauthorized");
    c.close();

    // UDP: each write is one datagram, each read one datagram back.
    const udpTarget = `127.0.0.1:${(udpEcho.addr as Deno.NetAddr).port}`;
    raw = await Deno.connect({ hostname: "127.0.0.1", port: srv.port });
    c = await connector({}, { username: "u", password: "p" }).connect(raw, "udp", udpTarget, {
      timeout: 5000,
    });
    for (const size of [5, 0, 1500, 40000]) {
      const d = new Uint8Array(size).map((_, i) => i & 0xff);
      await c.write(d);
      const got = new Uint8Array(65536);
      const n = await c.read(got);
      assertEquals(n, size);
      assertEquals([...got.subarray(0, size)], [...d]);
    }
    c.close();
  } finally {
    srv.close();
    echo.close();
    udpEcho.close();
  }
});

Deno.test("relay DeferredConn: header glued to the first write, alone after the delay, before FIN", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  const header = encodeHeader({ code: 1, addr: { host: "a.b", port: 80 } });
  try {
    // 1. First write within the delay: header and payload arrive together, in order.
    let client = await Deno.connect({ hostname: "127.0.0.1", port });
    let server = await l.accept();
    let d = new DeferredConn(client, client, header, 10_000);
    await d.write(enc.encode("data"));
    let got = await readAll(server, header.length + 4);
    assertEquals([...got], [...header, ...enc.encode("data")]);
    d.close();
    server.close();

    // 2. No write: the header goes out alone once the delay passes.
    client = await Deno.connect({ hostname: "127.0.0.1", port });
    server = await l.accept();
    d = new DeferredConn(client, client, header, 20);
    got = await readAll(server, header.length);
    assertEquals([...got], [...header]);
    await d.write(enc.encode("later"));
    assertEquals(dec.decode(await readAll(server, 5)), "later");
    d.close();
    server.close();

    // 3. Half-close before any write: the header still precedes the FIN.
    client = await Deno.connect({ hostname: "127.0.0.1", port });
    server = await l.accept();
    d = new DeferredConn(client, client, header, 10_000);
    await d.closeWrite();
    const sb = new BufferedConn(server);
    got = await readAll(sb, header.length + 1);
    assertEquals([...got], [...header]); // then end of stream
    d.close();
    server.close();
  } finally {
    l.close();
  }
});

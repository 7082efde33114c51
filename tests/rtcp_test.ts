/**
 * Remote forwarding: `rtcp://` / `rudp://` through a SOCKS5 last hop make the far end listen and
 * forward what arrives there back to a local target.
 *   - far end dost (`socks5?bind=true`): MUX-BIND (smux) for TCP, UDP-TUN for UDP;
 *   - far end dante: standard BIND, renewed after each connection.
 */
import { assert, assertEquals, assertStringIncludes } from "./lib/assert.ts";
import {
  freePort,
  IT,
  needs,
  runDost,
  sha256,
  startDost,
  startEcho,
  startUdpEcho,
  until,
  waitForLog,
} from "./lib/harness.ts";
import { startDante } from "./lib/peers.ts";

/** Connects to 127.0.0.1:port, retrying while nothing listens there yet (a re-bind). */
async function connectRetry(port: number, ms = 10_000): Promise<Deno.TcpConn> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await Deno.connect({ hostname: "127.0.0.1", port });
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Sends `data` on a new connection to `port`, half-closes, and returns everything read until
 * EOF (an echo through the tunnel returns `data` and then ends).
 */
async function echoThrough(port: number, data: Uint8Array): Promise<Uint8Array> {
  const c = await connectRetry(port);
  const timer = setTimeout(() => c.close(), 20_000);
  try {
    const writer = (async () => {
      for (let off = 0; off < data.length;) off += await c.write(data.subarray(off));
      await c.closeWrite();
    })();
    const chunks: Uint8Array[] = [];
    let total = 0;
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await c.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
      total += n;
    }
    await writer;
    const out = new Uint8Array(total);
    let off = 0;
    for (const ch of chunks) {
      out.set(ch, off);
      off += ch.length;
    }
    return out;
  } finally {
    clearTimeout(timer);
    try {
      c.close();
    } catch { /* closed */ }
  }
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) {
    crypto.getRandomValues(out.subarray(off, Math.min(n, off + 65536)));
  }
  return out;
}

Deno.test({
  name: "rtcp: dost far end (MUX-BIND): 5 concurrent connections echo byte-exact",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const S = freePort();
    const R = freePort();
    const far = await startDost(["-D", "-L", `socks5://127.0.0.1:${S}?bind=true`]);
    let near;
    try {
      near = await startDost([
        "-D",
        "-L",
        `rtcp://127.0.0.1:${R}/127.0.0.1:${echo.port}`,
        "-F",
        `socks5://127.0.0.1:${S}`,
      ]);
      await waitForLog(near, /rtcp: listening on 127\.0\.0\.1:\d+ at the far end/, 10_000);
      const payloads = Array.from({ length: 5 }, (_, i) => randomBytes((i + 1) * 300_000));
      const back = await Promise.all(payloads.map((p) => echoThrough(R, p)));
      for (let i = 0; i < payloads.length; i++) {
        assertEquals(back[i].length, payloads[i].length, `connection ${i} length`);
        assertEquals(await sha256(back[i]), await sha256(payloads[i]), `connection ${i} bytes`);
      }
      // The far dost listened (MUX-BIND); the near one dialed the target.
      await waitForLog(far, /mbind 127\.0\.0\.1:\d+: listening on 127\.0\.0\.1:\d+/, 10_000);
      await waitForLog(near, new RegExp(`forward to 127\\.0\\.0\\.1:${echo.port}`), 10_000);
    } finally {
      await near?.stop();
      await far.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "rtcp: the far-end session is re-established after the far dost restarts",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const S = freePort();
    const R = freePort();
    const farArgs = ["-L", `socks5://127.0.0.1:${S}?bind=true`];
    let far = await startDost(farArgs);
    let near;
    try {
      near = await startDost([
        "-L",
        `rtcp://127.0.0.1:${R}/127.0.0.1:${echo.port}`,
        "-F",
        `socks5://127.0.0.1:${S}`,
      ]);
      await waitForLog(near, /rtcp: listening on .* at the far end/, 10_000);
      const one = new TextEncoder().encode("before restart");
      assertEquals(await echoThrough(R, one), one);
      far.child.kill("SIGKILL");
      await far.status;
      await waitForLog(near, /rtcp: far-end listener .* lost/, 10_000);
      far = await startDost(farArgs);
      await until(() => (near!.logs().match(/at the far end/g)?.length ?? 0) >= 2);
      const two = new TextEncoder().encode("after restart");
      assertEquals(await echoThrough(R, two), two);
    } finally {
      await near?.stop();
      await far.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "rtcp: a far end without bind=true is reported with a clear warning",
  ...IT,
  fn: async () => {
    const S = freePort();
    const far = await startDost(["-L", `socks5://127.0.0.1:${S}`]);
    let near;
    try {
      near = await startDost([
        "-L",
        `rtcp://127.0.0.1:${freePort()}/127.0.0.1:9`,
        "-F",
        `socks5://127.0.0.1:${S}`,
      ]);
      await waitForLog(near, /rtcp: cannot listen on .* at the far end: .*not allowed/, 10_000);
      assertStringIncludes(near.logs(), "bind=true");
    } finally {
      await near?.stop();
      await far.stop();
    }
  },
});

Deno.test({
  name: "rtcp: dante far end (standard BIND): sequential connections re-bind the port",
  ...IT,
  ...needs("danted"),
  fn: async () => {
    const echo = startEcho();
    const dante = await startDante();
    const R = freePort();
    let near;
    try {
      near = await startDost([
        "-D",
        "-L",
        `rtcp://127.0.0.1:${R}/127.0.0.1:${echo.port}`,
        "-F",
        `socks5://127.0.0.1:${dante.port}`,
      ]);
      await waitForLog(near, /does not support MUX-BIND/, 10_000);
      await waitForLog(near, /rtcp: listening on 127\.0\.0\.1:\d+ at the far end/, 10_000);
      for (const [i, size] of [[1, 100_000], [2, 1_000], [3, 250_000]]) {
        const data = randomBytes(size);
        const back = await echoThrough(R, data);
        assertEquals(back.length, data.length, `connection ${i} length`);
        assertEquals(await sha256(back), await sha256(data), `connection ${i} bytes`);
      }
      const forwards = near.logs().match(/forward to 127\.0\.0\.1/g)?.length ?? 0;
      assertEquals(forwards, 3);
    } finally {
      await near?.stop();
      await dante.stop();
      echo.close();
    }
  },
});

/** A UDP client socket that collects what comes back. */
function udpClient() {
  const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const got: string[] = [];
  (async () => {
    for (;;) {
      const [d] = await sock.receive();
      got.push(new TextDecoder().decode(d));
    }
  })().catch(() => {});
  return {
    got,
    send: (port: number, msg: string) =>
      sock.send(new TextEncoder().encode(msg), { transport: "udp", hostname: "127.0.0.1", port }),
    close: () => sock.close(),
  };
}

Deno.test({
  name: "rudp: dost far end (UDP-TUN bind): datagrams of two peers echo back",
  ...IT,
  fn: async () => {
    const echo = startUdpEcho();
    const S = freePort();
    const R = freePort();
    const far = await startDost(["-D", "-L", `socks5://127.0.0.1:${S}?bind=true`]);
    let near;
    const a = udpClient();
    const b = udpClient();
    try {
      near = await startDost([
        "-D",
        "-L",
        `rudp://127.0.0.1:${R}/127.0.0.1:${echo.port}`,
        "-F",
        `socks5://127.0.0.1:${S}`,
      ]);
      await waitForLog(near, /rudp: listening on 127\.0\.0\.1:\d+ at the far end/, 10_000);
      await waitForLog(far, /udp-tun 127\.0\.0\.1:\d+: bound on 127\.0\.0\.1:\d+/, 10_000);
      const big = "z".repeat(1200);
      const wantA = ["a-1", "a-2", big];
      const wantB = ["b-1", "b-2"];
      // UDP may drop: resend whatever has not come back yet, a few times.
      for (let attempt = 0; attempt < 5; attempt++) {
        for (const m of wantA) if (!a.got.includes(m)) await a.send(R, m);
        for (const m of wantB) if (!b.got.includes(m)) await b.send(R, m);
        const done = () =>
          wantA.every((m) => a.got.includes(m)) && wantB.every((m) => b.got.includes(m));
        if (await until(done, 2000)) break;
      }
      for (const m of wantA) assert(a.got.includes(m), `peer a: ${m.slice(0, 10)} not echoed`);
      for (const m of wantB) assert(b.got.includes(m), `peer b: ${m} not echoed`);
      assert(!a.got.some((m) => m.startsWith("b-")), "peer a received peer b's datagrams");
      // One session per far-end peer, each forwarded to the target.
      await until(() => (near!.logs().match(/udp session .* -> 127\.0\.0\.1/g)?.length ?? 0) >= 2);
      assertEquals(near.logs().match(/udp session .* -> 127\.0\.0\.1:\d+ \(via/g)?.length, 2);
    } finally {
      a.close();
      b.close();
      await near?.stop();
      await far.stop();
      echo.close();
    }
  },
});

/** Runs the SOCKS5 greeting and one request by hand; returns the conn and the reply bytes. */
async function rawRequest(
  port: number,
  cmd: number,
  bindPort: number,
): Promise<{ conn: Deno.TcpConn; rep: number; port: number }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(Uint8Array.of(5, 1, 0));
  const m = new Uint8Array(2);
  let got = 0;
  while (got < 2) got += (await conn.read(m.subarray(got)))!;
  await conn.write(Uint8Array.of(5, cmd, 0, 1, 127, 0, 0, 1, bindPort >> 8, bindPort & 255));
  const r = new Uint8Array(10);
  got = 0;
  while (got < 10) {
    const n = await conn.read(r.subarray(got));
    if (n === null) break;
    got += n;
  }
  return { conn, rep: r[1], port: (r[8] << 8) | r[9] };
}

Deno.test({
  name: "socks5 server: MUX-BIND streams start with the peer's address, raw with comp=true",
  ...IT,
  fn: async () => {
    const { MuxSession } = await import("../src/transport/mux/session.ts");
    for (const comp of [false, true]) {
      const S = freePort();
      const far = await startDost([
        "-L",
        `socks5://127.0.0.1:${S}?bind=true${comp ? "&comp=true" : ""}`,
      ]);
      const P = freePort();
      const { conn, rep, port } = await rawRequest(S, 0xf2, P);
      const session = new MuxSession(conn, { client: false });
      try {
        assertEquals([rep, port], [0, P]);
        const peer = await Deno.connect({ hostname: "127.0.0.1", port: P });
        await peer.write(new TextEncoder().encode("hi"));
        const st = await session.acceptStream();
        assertEquals(st.id, 3); // the SOCKS server is the smux client
        const want = comp ? 2 : 12;
        const buf = new Uint8Array(want);
        let got = 0;
        while (got < want) got += (await st.read(buf.subarray(got)))!;
        if (comp) {
          assertEquals(new TextDecoder().decode(buf), "hi");
        } else {
          const lp = (peer.localAddr as Deno.NetAddr).port;
          assertEquals([...buf.subarray(0, 10)], [5, 0, 0, 1, 127, 0, 0, 1, lp >> 8, lp & 255]);
          assertEquals(new TextDecoder().decode(buf.subarray(10)), "hi");
        }
        await st.write(new TextEncoder().encode("back"));
        const b2 = new Uint8Array(4);
        got = 0;
        while (got < 4) got += (await peer.read(b2.subarray(got)))!;
        assertEquals(new TextDecoder().decode(b2), "back");
        peer.close();
      } finally {
        session.close();
        await far.stop();
      }
    }
  },
});

Deno.test({
  name: "socks5 server: refusals and a garbage mux session leave the server serving",
  ...IT,
  fn: async () => {
    const S = freePort();
    const off = await startDost(["-L", `socks5://127.0.0.1:${freePort()}`]);
    const far = await startDost(["-D", "-L", `socks5://127.0.0.1:${S}?bind=true`]);
    try {
      const offPort = Number(off.logs().match(/listening on 127\.0\.0\.1:(\d+)/)![1]);
      // bind=false: MUX-BIND and UDP-TUN bind mode are not allowed (0x02); UDP relay neither.
      for (const [cmd, p] of [[0xf2, freePort()], [0xf3, freePort()], [0xf3, 0]]) {
        const r = await rawRequest(offPort, cmd, p);
        assertEquals(r.rep, 2, `cmd ${cmd.toString(16)} port ${p}`);
        r.conn.close();
      }
      // A port that is taken: general failure.
      const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const busy = await rawRequest(S, 0xf2, (taken.addr as Deno.NetAddr).port);
      assertEquals(busy.rep, 1);
      busy.conn.close();
      taken.close();
      // Garbage instead of smux frames ends that session (and its listener) cleanly.
      const P = freePort();
      const g = await rawRequest(S, 0xf2, P);
      assertEquals(g.rep, 0);
      await g.conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
      const end = await g.conn.read(new Uint8Array(100)).catch(() => null);
      assertEquals(end, null);
      g.conn.close();
      await waitForLog(far, /mux session .* ended: mux: frame version 71/, 10_000);
      // The port is free again and the server still serves MUX-BIND.
      const again = await rawRequest(S, 0xf2, P);
      assertEquals([again.rep, again.port], [0, P]);
      again.conn.close();
    } finally {
      await far.stop();
      await off.stop();
    }
  },
});

Deno.test({
  name: "rtcp/rudp: a last node that cannot bind is a start-up error",
  ...IT,
  fn: async () => {
    for (const scheme of ["rtcp", "rudp"]) {
      const r = await runDost([
        "-L",
        `${scheme}://127.0.0.1:${freePort()}/127.0.0.1:9`,
        "-F",
        "http://127.0.0.1:3128",
      ]);
      assertEquals(r.code, 1);
      assertStringIncludes(r.stderr, `${scheme} needs the chain's last node to listen for it`);
    }
  },
});

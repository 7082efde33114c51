/**
 * Connection load for the bench, run as its own process so its event loop is not the driver's.
 *
 *   deno run --allow-net load.ts conns KIND PROXY_PORT TARGET_PORT WORKERS SECONDS
 *     WORKERS loops of: connect → handshake (KIND) → 1-byte round trip to the echo → EOF from
 *     the echo (run it with `once`) → close.
 *     Prints one JSON line {ok, errors, seconds, rate, firstError}.
 *   deno run --allow-net load.ts idle KIND PROXY_PORT TARGET_PORT COUNT
 *     Opens COUNT tunnels (handshake + 1-byte round trip each) and keeps them open; prints one
 *     JSON line {open, errors, firstError} when done, then waits to be killed.
 *
 * KIND: socks5 (no auth, CONNECT 127.0.0.1:TARGET), socks5auth (user/pass from DOST_LOAD_AUTH=
 * user:pass), http (CONNECT), direct (plain TCP: forwarders).
 */
type Kind = "socks5" | "socks5auth" | "http" | "direct";
/** `user:pass` for KIND socks5auth (RFC 1929), from the environment (read only for that kind). */
const authPair = () => (Deno.env.get("DOST_LOAD_AUTH") ?? "").split(":");
const HOST = "127.0.0.1";
const enc = new TextEncoder();

async function writeAll(c: Deno.Conn, b: Uint8Array): Promise<void> {
  for (let off = 0; off < b.length;) off += await c.write(b.subarray(off));
}

async function readN(c: Deno.Conn, n: number): Promise<Uint8Array> {
  const b = new Uint8Array(n);
  for (let got = 0; got < n;) {
    const r = await c.read(b.subarray(got));
    if (r === null) throw new Error(`EOF after ${got}/${n} bytes`);
    got += r;
  }
  return b;
}

async function handshake(c: Deno.Conn, kind: Kind, target: number): Promise<void> {
  if (kind === "socks5" || kind === "socks5auth") {
    const auth = kind === "socks5auth";
    await writeAll(c, new Uint8Array([5, 1, auth ? 2 : 0]));
    const m = await readN(c, 2);
    if (m[0] !== 5 || m[1] !== (auth ? 2 : 0)) throw new Error(`socks5 method reply ${m}`);
    if (auth) {
      const [u, p] = authPair().map((x) => enc.encode(x ?? ""));
      await writeAll(c, new Uint8Array([1, u.length, ...u, p.length, ...p]));
      const st = await readN(c, 2);
      if (st[1] !== 0) throw new Error("socks5 authentication failed");
    }
    await writeAll(c, new Uint8Array([5, 1, 0, 1, 127, 0, 0, 1, target >> 8, target & 255]));
    const h = await readN(c, 5);
    if (h[1] !== 0) throw new Error(`socks5 CONNECT reply ${h[1]}`);
    // The 5th byte is the first byte of the bound address (or its length for a domain).
    const rest = h[3] === 1 ? 3 + 2 : h[3] === 4 ? 15 + 2 : h[4] + 2;
    await readN(c, rest);
  } else if (kind === "http") {
    await writeAll(
      c,
      enc.encode(`CONNECT ${HOST}:${target} HTTP/1.1\r\nHost: ${HOST}:${target}\r\n\r\n`),
    );
    const buf = new Uint8Array(1024);
    let head = "";
    while (!head.includes("\r\n\r\n")) {
      // One byte at a time: nothing past the header may be consumed (the proxy sends none
      // before we write, but stay exact).
      const r = await c.read(buf.subarray(0, 1));
      if (r === null) throw new Error("EOF in CONNECT response");
      head += String.fromCharCode(buf[0]);
      if (head.length > 4096) throw new Error("CONNECT response too long");
    }
    if (!/^HTTP\/1\.[01] 200/.test(head)) throw new Error(`CONNECT: ${head.split("\r\n")[0]}`);
  }
}

/** A tunnel through the proxy to the echo, after a 1-byte round trip. */
async function tunnel(kind: Kind, proxy: number, target: number): Promise<Deno.TcpConn> {
  const c = await Deno.connect({ hostname: HOST, port: proxy });
  const timer = setTimeout(() => {
    try {
      c.close();
    } catch { /* closed */ }
  }, 10_000);
  try {
    c.setNoDelay(true);
    await handshake(c, kind, target);
    await writeAll(c, new Uint8Array([0x78]));
    const b = await readN(c, 1);
    if (b[0] !== 0x78) throw new Error("echo mismatch");
    return c;
  } catch (e) {
    try {
      c.close();
    } catch { /* closed */ }
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

const [mode, kindArg, proxyArg, targetArg, a, b] = Deno.args;
const kind = kindArg as Kind;
const proxy = Number(proxyArg), target = Number(targetArg);
let firstError: string | undefined;
const noteError = (e: unknown) => {
  firstError ??= e instanceof Error ? e.message : String(e);
};

if (mode === "conns") {
  const workers = Number(a), seconds = Number(b);
  let ok = 0, errors = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(Array.from({ length: workers }, async () => {
    while (performance.now() < end) {
      try {
        const c = await tunnel(kind, proxy, target);
        try {
          // The echo (`once` mode) closes after one byte: wait for that EOF to come back
          // through the proxy, so the client end never holds TIME_WAIT (see echo.ts).
          const timer = setTimeout(() => c.close(), 10_000);
          const n = await c.read(new Uint8Array(1)).finally(() => clearTimeout(timer));
          if (n !== null) throw new Error("data after the echo");
          ok++;
        } finally {
          try {
            c.close();
          } catch { /* closed by the timer */ }
        }
      } catch (e) {
        errors++;
        noteError(e);
        if (errors > 1000 && ok === 0) break; // nothing works: stop early
      }
    }
  }));
  const secs = (performance.now() - start) / 1000;
  console.log(JSON.stringify({ ok, errors, seconds: secs, rate: ok / secs, firstError }));
  Deno.exit(0);
} else if (mode === "idle") {
  const count = Number(a);
  const conns: Deno.TcpConn[] = [];
  let errors = 0, next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next < count) {
      next++;
      try {
        conns.push(await tunnel(kind, proxy, target));
      } catch (e) {
        errors++;
        noteError(e);
      }
    }
  }));
  console.log(JSON.stringify({ open: conns.length, errors, firstError }));
  // Hold the tunnels until the driver kills this process.
  setInterval(() => {}, 1 << 30);
} else {
  console.error("usage: load.ts conns|idle KIND PROXY_PORT TARGET_PORT …");
  Deno.exit(2);
}

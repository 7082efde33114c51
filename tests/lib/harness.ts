/**
 * Test harness: start dost as a real process, local origins (TCP echo, HTTP, UDP echo), and
 * real clients (curl). Everything binds to 127.0.0.1 on free ports and is stopped by the test.
 */

const ROOT = new URL("../../", import.meta.url).pathname;
const dec = new TextDecoder();

/** The V8 flags `deno task start` uses (a small young generation keeps idle RSS low). */
export const DOST_V8_FLAGS = ["--v8-flags=--max-semi-space-size=1"];

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): number {
  // Below the kernel's ephemeral range (32768–60999 by default), so the outgoing connections
  // of other tests cannot take the port between this check and the server's bind. Ports are
  // handed out in a shuffled order per process and checked by binding TCP and UDP.
  for (let tries = 0; tries < 2000; tries++) {
    const port = nextCandidate();
    try {
      const l = Deno.listen({ hostname: "127.0.0.1", port });
      l.close();
    } catch {
      continue;
    }
    try {
      const u = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port });
      u.close();
    } catch (e) {
      // Without --unstable-net there is no UDP check; a UDP clash then shows as a test error.
      if (!(e instanceof TypeError)) continue;
    }
    return port;
  }
  throw new Error("no free port in 20000-32767");
}

const PORT_LO = 20000;
const PORT_SPAN = 12768; // 20000–32767
let portCursor = PORT_LO + Math.floor(Math.random() * PORT_SPAN);

function nextCandidate(): number {
  // A stride coprime with the span walks every port once before repeating.
  portCursor = PORT_LO + ((portCursor - PORT_LO + 7919) % PORT_SPAN);
  return portCursor;
}

/** Whether an executable is on PATH (for peers that may be missing). */
export function have(cmd: string): boolean {
  try {
    const r = new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
      .outputSync();
    return r.success;
  } catch {
    return false;
  }
}

/** Marks a test ignored with a printed reason when a peer program is missing. */
export function needs(...cmds: string[]): { ignore: boolean } {
  const missing = cmds.filter((c) => !have(c));
  if (missing.length) {
    console.error(`SKIP: needs ${missing.join(", ")} (run scripts/setup-peers.sh)`);
  }
  return { ignore: missing.length > 0 };
}

/** A running dost process. */
export interface DostProcess {
  child: Deno.ChildProcess;
  /** Everything written to stderr so far. */
  logs(): string;
  /** SIGTERM and wait (SIGKILL after 3 s). */
  stop(): Promise<void>;
  /** Resolves with the exit status when the process ends. */
  status: Promise<Deno.CommandStatus>;
}

/** Runs dost to completion (for flag tests): exit code, stdout, stderr. */
export async function runDost(
  args: string[],
  opts: { timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-env",
      "--allow-ffi",
      "--unstable-net",
      "main.ts",
      ...args,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  });
  const child = cmd.spawn();
  const t = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, opts.timeoutMs ?? 20_000);
  const out = await child.output();
  clearTimeout(t);
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * Starts dost with `args` and waits until every service logs "listening on".
 * `extraPerms` adds Deno permission flags; `noFfi` leaves out `--allow-ffi` (UDP then uses
 * Deno's UDP API instead of FFI sockets).
 */
export async function startDost(
  args: string[],
  opts: { services?: number; extraPerms?: string[]; noFfi?: boolean } = {},
): Promise<DostProcess> {
  const want = opts.services ?? args.filter((a) => a === "-L").length;
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-env",
      "--allow-sys",
      ...(opts.noFfi ? [] : ["--allow-ffi"]),
      "--unstable-net",
      ...DOST_V8_FLAGS,
      ...(opts.extraPerms ?? []),
      "main.ts",
      ...args,
    ],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
    stdin: "null",
  });
  const child = cmd.spawn();
  let text = "";
  let ready!: () => void;
  let failed!: (e: Error) => void;
  const readyP = new Promise<void>((res, rej) => {
    ready = res;
    failed = rej;
  });
  const status = child.status;
  (async () => {
    const r = child.stderr.getReader();
    for (;;) {
      const { value, done } = await r.read().catch(() => ({ value: undefined, done: true }));
      if (done) break;
      text += dec.decode(value);
      if ((text.match(/listening on/g)?.length ?? 0) >= want) ready();
    }
    failed(new Error(`dost exited before it was ready:\n${text}`));
  })();
  const timer = setTimeout(() => failed(new Error(`dost not ready after 20 s:\n${text}`)), 20_000);
  try {
    await readyP;
  } catch (e) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await status;
    throw e;
  } finally {
    clearTimeout(timer);
  }
  return {
    child,
    logs: () => text,
    status,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      const k = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 3000);
      await status;
      clearTimeout(k);
    },
  };
}

/** A TCP echo server in this process. */
export function startEcho(): { port: number; close(): void } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const c of l) {
      conns.add(c);
      (async () => {
        const buf = new Uint8Array(65536);
        try {
          for (;;) {
            const n = await c.read(buf);
            if (n === null) break;
            let off = 0;
            while (off < n) off += await c.write(buf.subarray(off, n));
          }
          await c.closeWrite();
        } catch { /* peer went away */ }
        conns.delete(c);
        try {
          c.close();
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

/** A UDP echo server in this process (needs --unstable-net). */
export function startUdpEcho(): { port: number; close(): void } {
  const u = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  (async () => {
    for (;;) {
      const [data, from] = await u.receive();
      await u.send(data, from);
    }
  })().catch(() => {});
  return { port: (u.addr as Deno.NetAddr).port, close: () => u.close() };
}

/**
 * An HTTP origin: `GET /x` → `hello /x`; `POST` echoes the body; `/big?n=N` sends N bytes;
 * `/headers` returns the request headers as JSON.
 */
export function startOrigin(): { port: number; close(): Promise<void> } {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    async (req) => {
      const url = new URL(req.url);
      if (url.pathname === "/headers") {
        return Response.json(Object.fromEntries(req.headers));
      }
      if (url.pathname === "/big") {
        const n = Number(url.searchParams.get("n") ?? "1048576");
        return new Response(new Uint8Array(n).fill(97));
      }
      if (req.method === "POST" || req.method === "PUT") {
        return new Response(await req.arrayBuffer());
      }
      return new Response(`hello ${url.pathname}`);
    },
  );
  return {
    port: server.addr.port,
    async close() {
      ac.abort();
      await server.finished;
    },
  };
}

/** Runs curl with `args` (always `-s -S --max-time 20`). */
export async function curl(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("curl", {
    args: ["-s", "-S", "--max-time", "20", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Connects to 127.0.0.1:port, sends `data`, and reads until EOF or `max` bytes or `ms`. */
export async function rawExchange(
  port: number,
  data: Uint8Array | string,
  opts: { max?: number; ms?: number; closeWrite?: boolean } = {},
): Promise<Uint8Array> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const chunks: Uint8Array[] = [];
  let total = 0;
  const t = setTimeout(() => {
    try {
      c.close();
    } catch { /* closed */ }
  }, opts.ms ?? 5000);
  try {
    if (bytes.length) {
      let off = 0;
      while (off < bytes.length) off += await c.write(bytes.subarray(off));
    }
    if (opts.closeWrite) await c.closeWrite();
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await c.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
      total += n;
      if (opts.max && total >= opts.max) break;
    }
  } catch { /* reset or closed by the timer: return what arrived */ }
  clearTimeout(t);
  try {
    c.close();
  } catch { /* closed */ }
  const out = new Uint8Array(total);
  let off = 0;
  for (const ch of chunks) {
    out.set(ch, off);
    off += ch.length;
  }
  return out;
}

/** sha256 hex of bytes. */
export async function sha256(b: Uint8Array): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", b as BufferSource));
  return [...h].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** A UDP port that was free a moment ago on 127.0.0.1 (for listeners of UDP services). */
export function freeUdpPort(): number {
  const u = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (u.addr as Deno.NetAddr).port;
  u.close();
  return port;
}

/** A port free for both TCP and UDP on 127.0.0.1 (DNS servers bind both). */
export function freeDualPort(): number {
  for (;;) {
    const port = freeUdpPort();
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return port;
    } catch { /* taken for TCP: try another */ }
  }
}

/** Options for integration tests that start processes and sockets. */
export const IT = { sanitizeOps: false, sanitizeResources: false };

/**
 * Connects to 127.0.0.1:port, writes `data` (concurrently with reading, so a server that stops
 * reading cannot block us; optionally half-closing), and reads until the server closes.
 * `closedByPeer` is false when the safety timer had to cut the connection.
 */
export async function talk(
  port: number,
  data: Uint8Array | string,
  opts: { closeWrite?: boolean; safetyMs?: number } = {},
): Promise<{ text: string; bytes: Uint8Array; closedByPeer: boolean }> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  let timedOut = false;
  const t = setTimeout(() => {
    timedOut = true;
    c.close();
  }, opts.safetyMs ?? 10_000);
  const writer = (async () => {
    for (let off = 0; off < bytes.length;) off += await c.write(bytes.subarray(off));
    if (opts.closeWrite) await c.closeWrite();
  })().catch(() => {/* the server closed on us: expected for oversized input */});
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  try {
    for (;;) {
      const n = await c.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
  } catch {
    // A reset (server closed with unread input) counts as the server closing.
  }
  await writer;
  clearTimeout(t);
  try {
    c.close();
  } catch { /* closed by the timer */ }
  const all = new Uint8Array(chunks.reduce((s, ch) => s + ch.length, 0));
  let off = 0;
  for (const ch of chunks) {
    all.set(ch, off);
    off += ch.length;
  }
  return { text: dec.decode(all), bytes: all, closedByPeer: !timedOut };
}

/** Polls `cond` every 10 ms for up to `ms`; resolves with whether it became true. */
export async function until(cond: () => boolean, ms = 5000): Promise<boolean> {
  for (const end = Date.now() + ms; !cond();) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/** Waits until dost has logged `what` (a log line may trail the socket close it reports). */
export async function waitForLog(
  dost: { logs(): string } | (() => string),
  what: string | RegExp,
  ms = 5000,
): Promise<void> {
  const logs = typeof dost === "function" ? dost : () => dost.logs();
  const seen = () => typeof what === "string" ? logs().includes(what) : what.test(logs());
  if (!(await until(seen, ms))) {
    throw new Error(`dost never logged ${String(what)}; log:\n${logs()}`);
  }
}

/**
 * dost benchmark driver (`deno task bench` → scripts/bench/run.sh → this file, `deno run -A`).
 *
 * All on 127.0.0.1 with free ports, in one run:
 *  a. throughput with iperf3 (-t 5): direct; one bare Deno forwarder (the runtime's ceiling);
 *     dost tcp:// forward; dost SOCKS5; dost HTTP CONNECT; microsocks; dante. SOCKS5 and HTTP
 *     rows run the unmodified iperf3 client under proxychains4 (LD_PRELOAD hooks connect(), so
 *     iperf3's own control and data sockets do the handshake): every row except "direct" is the
 *     same shape, iperf3 -c → one hop → iperf3 -s, and all proxies are measured the same way.
 *  b. new connections per second: 16 workers of connect → handshake → CONNECT to an echo →
 *     1-byte round trip → close, for 4 s (scripts/bench/load.ts, its own process).
 *  c. RSS per idle tunnel: VmRSS of the proxy before and with 5,000 idle tunnels open.
 *  d. UDP forwarding: datagrams/s of 1,200 B echoed through dost `udp://` with 64 in flight, and
 *     the same client straight to the echo (scripts/bench/udp.ts is both echo and load).
 *  e. chain throughput: iperf3 (under proxychains4) through a 3-hop all-dost chain (front SOCKS5
 *     → http → socks5 → socks4a hops, four dost processes) against one dost SOCKS5 hop measured
 *     in the same run (issue 4's target: the chain keeps ≥ 0.5× the single hop).
 *  f. traffic limit: 10 MiB through dost SOCKS5 with limiter.out=1MB and with limiter.in=1MB;
 *     wall time against issue 5's 9–11 s target.
 *  g. access rules: conn/s with 10k users, 10k bypass entries and 5k permissions loaded.
 *  h. Shadowsocks: iperf3 through dost, shadowsocks-libev and v2ray client → server pairs per
 *     AEAD cipher (throughput and per CPU-second), and ssu datagrams/s through UDP pairs.
 *  i. transports: iperf3 through dost client → server pairs over plain TCP and TLS (socks5,
 *     relay), and 100 parallel streams over one mwss session against 100 wss connections.
 *  j. AEAD backends: MB/s sealing 16 KiB chunks with OpenSSL (FFI) and node:crypto.
 *
 * Prints a table and the ratios against the targets, and writes the numbers as JSON to .bench/.
 * Missing peers print "skipped (not installed)"; a dost protocol whose handler is not there yet
 * prints "skipped (dost handler missing)".
 *
 * Throughput and conn/s rows run --rounds=N times (default 2), interleaved, and report the best
 * run; the other runs are listed beside it.
 *
 * Options: --quick (1 s iperf3 runs, 1 s conn runs, 1 round, 1,000 idle tunnels: a smoke test),
 *          --only=throughput,conns,idle,udp,chain,limit,access,ss,transports,aead   --rounds=N
 */

const ROOT = new URL("../../", import.meta.url).pathname;
const BENCH = `${ROOT}scripts/bench/`;
const HOST = "127.0.0.1";
const dec = new TextDecoder();

const quick = Deno.args.includes("--quick");
const only = Deno.args.find((a) => a.startsWith("--only="))?.slice(7).split(",");
const IPERF_SECS = quick ? 1 : 5;
const CONN_SECS = quick ? 1 : 4;
const CONN_WORKERS = 16;
const IDLE_COUNT = quick ? 1000 : 5000;
const IDLE_TARGET_KB = 20;
const ROUNDS = Number(
  Deno.args.find((a) => a.startsWith("--rounds="))?.slice(9) ?? (quick ? 1 : 2),
);

// ---------------------------------------------------------------------------------------------
// processes

interface Proc {
  name: string;
  child: Deno.ChildProcess;
  pid: number;
  exited: boolean;
  status: Promise<Deno.CommandStatus>;
  /** The last ~8 KB of stdout+stderr. */
  tail(): string;
  stop(): Promise<void>;
}

const procs = new Set<Proc>();

function spawn(name: string, cmd: string, args: string[], cwd = ROOT): Proc {
  const child = new Deno.Command(cmd, {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const drain = async (s: ReadableStream<Uint8Array>) => {
    try {
      for await (const chunk of s) {
        text += dec.decode(chunk);
        if (text.length > 16384) text = text.slice(-8192);
      }
    } catch { /* closed */ }
  };
  drain(child.stdout);
  drain(child.stderr);
  const p: Proc = {
    name,
    child,
    pid: child.pid,
    exited: false,
    status: child.status,
    tail: () => text.slice(-8192),
    async stop() {
      if (!p.exited) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
        const t = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch { /* gone */ }
        }, 3000);
        await p.status;
        clearTimeout(t);
      }
      procs.delete(p);
    },
  };
  child.status.then(() => p.exited = true);
  procs.add(p);
  return p;
}

async function stopAll(): Promise<void> {
  await Promise.all([...procs].map((p) => p.stop()));
}

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(sig, async () => {
    console.error(`\nbench: ${sig}, stopping everything`);
    await stopAll();
    Deno.exit(130);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): number {
  const l = Deno.listen({ hostname: HOST, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function have(cmd: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/**
 * Waits until something listens on 127.0.0.1:port (seen in /proc/net/tcp, without connecting:
 * a probe connection through a forwarder would reach the target, and iperf3's one-test-at-a-time
 * server takes it for a client), or throws with the process's output if it exits.
 */
async function waitPort(port: number, p: Proc, ms = 20_000): Promise<void> {
  const want = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (p.exited) throw new StartError(p.name, p.tail());
    const table = Deno.readTextFileSync("/proc/net/tcp");
    for (const line of table.split("\n")) {
      const f = line.trim().split(/\s+/);
      if (f[1] === want && f[3] === "0A") return; // local address, state LISTEN
    }
    await sleep(50);
  }
  throw new StartError(p.name, `not listening on ${port} after ${ms} ms\n${p.tail()}`);
}

class StartError extends Error {
  constructor(readonly who: string, readonly output: string) {
    super(`${who} failed to start: ${output.trim().split("\n").slice(-3).join(" | ")}`);
  }
}

class Skip extends Error {}

/** VmRSS in KB of one process. */
function rssKB(pid: number): number {
  const s = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? NaN);
}

/** utime+stime of a process (all its threads) in seconds. */
function cpuSecs(pid: number): number {
  const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // fields 14, 15 (USER_HZ = 100 on Linux)
}

// ---------------------------------------------------------------------------------------------
// the things under test

type Kind = "socks5" | "socks5auth" | "http" | "direct";

interface Server {
  port: number;
  proc: Proc;
  /** The pid whose RSS/CPU is the server's (all of it for single-process servers). */
  pid: number;
  singleProcess: boolean;
}

const DOST_PERMS = [
  "--allow-net",
  "--allow-read",
  "--allow-env",
  "--allow-sys",
  "--allow-ffi", // UDP forwarding uses FFI sockets when granted
  "--unstable-net",
  // As `deno task start` runs it: a 1 MiB young generation keeps idle RSS low (README).
  `--v8-flags=${Deno.env.get("DOST_V8_FLAGS") ?? "--max-semi-space-size=1"}`,
];

const HANDLER_FILE: Record<string, string> = {
  socks5: "src/protocol/socks5/handler.ts",
  http: "src/protocol/http/handler.ts",
  tcp: "src/protocol/forward/handler.ts",
};

async function startDost(scheme: "socks5" | "http" | "tcp", target?: number): Promise<Server> {
  try {
    await Deno.stat(ROOT + HANDLER_FILE[scheme]);
  } catch {
    throw new Skip("skipped (dost handler missing)");
  }
  const port = freePort();
  const url = scheme === "tcp"
    ? `tcp://${HOST}:${port}/${HOST}:${target}`
    : `${scheme}://${HOST}:${port}`;
  const proc = spawn(`dost ${scheme}`, Deno.execPath(), [
    "run",
    ...DOST_PERMS,
    "main.ts",
    "-L",
    url,
  ]);
  try {
    await waitPort(port, proc);
  } catch (e) {
    await proc.stop();
    if (e instanceof StartError && /not supported|unknown (handler|scheme)/i.test(e.output)) {
      throw new Skip("skipped (dost handler missing)");
    }
    throw e;
  }
  return { port, proc, pid: proc.pid, singleProcess: true };
}

async function startBare(target: number): Promise<Server> {
  const port = freePort();
  const proc = spawn("bare forwarder", Deno.execPath(), [
    "run",
    "--allow-net",
    `${BENCH}bare_forward.ts`,
    String(port),
    String(target),
  ]);
  await waitPort(port, proc);
  return { port, proc, pid: proc.pid, singleProcess: true };
}

async function startMicrosocks(): Promise<Server> {
  if (!have("microsocks")) throw new Skip("skipped (not installed)");
  const port = freePort();
  const proc = spawn("microsocks", "microsocks", ["-i", HOST, "-p", String(port)]);
  await waitPort(port, proc);
  return { port, proc, pid: proc.pid, singleProcess: true };
}

let tmpDir: string | undefined;
function tmp(): string {
  return tmpDir ??= Deno.makeTempDirSync({ prefix: "dost-bench-" });
}

async function startDante(): Promise<Server> {
  if (!have("danted")) throw new Skip("skipped (not installed)");
  const port = freePort();
  const conf = `${tmp()}/danted-${port}.conf`;
  const root = Deno.uid?.() === 0;
  Deno.writeTextFileSync(
    conf,
    [
      "logoutput: stderr",
      `internal: ${HOST} port = ${port}`,
      `external: ${HOST}`,
      "clientmethod: none",
      "socksmethod: none",
      ...(root ? ["user.privileged: root", "user.unprivileged: nobody"] : []),
      "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }",
      "socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 command: bind connect udpassociate bindreply udpreply }",
      "",
    ].join("\n"),
  );
  const proc = spawn("dante", "danted", ["-f", conf, "-N", "1"]);
  await waitPort(port, proc);
  return { port, proc, pid: proc.pid, singleProcess: false };
}

/** An echo server process; `once`: echo one read, then close (see echo.ts). */
async function startEcho(once = false): Promise<Server> {
  const port = freePort();
  const proc = spawn(once ? "echo (once)" : "echo", Deno.execPath(), [
    "run",
    "--allow-net",
    `${BENCH}echo.ts`,
    String(port),
    ...(once ? ["once"] : []),
  ]);
  await waitPort(port, proc);
  return { port, proc, pid: proc.pid, singleProcess: true };
}

// ---------------------------------------------------------------------------------------------
// measurements

interface Result {
  name: string;
  value?: number;
  unit: string;
  note?: string;
  /** Every successful run's value (the row's value is the best). */
  runs?: number[];
  failures?: number;
  /** Extra numbers (CPU, errors, …). */
  extra?: Record<string, number | string>;
}

const results: Record<string, Result[]> = {
  throughput: [],
  conns: [],
  idle: [],
  udp: [],
  chain: [],
  limit: [],
  access: [],
  ss: [],
  ssu: [],
  transports: [],
  aead: [],
};

async function runCmd(
  cmd: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .spawn();
  const t = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, timeoutMs);
  const out = await child.output();
  clearTimeout(t);
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function proxychainsConf(kind: "socks5" | "http", port: number): string {
  const file = `${tmp()}/proxychains-${kind}-${port}.conf`;
  Deno.writeTextFileSync(
    file,
    [
      "strict_chain",
      "quiet_mode",
      "tcp_read_time_out 15000",
      "tcp_connect_time_out 8000",
      "[ProxyList]",
      `${kind} ${HOST} ${port}`,
      "",
    ].join("\n"),
  );
  return file;
}

/** iperf3 client to the server at `iperfPort`, connecting to `port` (optionally via a proxy). */
async function iperf(
  port: number,
  via?: { kind: "socks5" | "http"; port: number },
): Promise<number> {
  const client = ["-c", HOST, "-p", String(port), "-t", String(IPERF_SECS), "-J"];
  const [cmd, args] = via
    ? ["proxychains4", ["-q", "-f", proxychainsConf(via.kind, via.port), "iperf3", ...client]]
    : ["iperf3", client];
  const out = await runCmd(cmd, args, (IPERF_SECS + 30) * 1000);
  let j: any;
  try {
    j = JSON.parse(out.stdout);
  } catch {
    throw new Error(`iperf3 gave no JSON (exit ${out.code}): ${(out.stderr || out.stdout).trim()}`);
  }
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  const bps = j.end?.sum_received?.bits_per_second;
  if (typeof bps !== "number") throw new Error("iperf3 JSON has no end.sum_received");
  return bps;
}

function errText(e: unknown): string {
  if (e instanceof Skip) return e.message;
  return `failed: ${(e instanceof Error ? e.message : String(e)).split("\n")[0].slice(0, 200)}`;
}

/** One measurement of one row; starts and stops whatever it needs. */
interface RowSpec {
  name: string;
  run: () => Promise<{ value: number; note?: string; extra?: Record<string, number | string> }>;
}

/**
 * Measures every row `ROUNDS` times, interleaved (A B C A B C: slow phases of a shared machine
 * hit all rows alike), and keeps each row's best run: noise from other load only lowers numbers.
 */
async function measureRows(
  section: string,
  unit: string,
  specs: RowSpec[],
  show: (v: number) => string,
): Promise<void> {
  const list = results[section];
  const skipped = new Set<string>();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const spec of specs) {
      if (skipped.has(spec.name)) continue;
      let row = list.find((r) => r.name === spec.name);
      if (!row) list.push(row = { name: spec.name, unit, runs: [], failures: 0 });
      let line: string;
      try {
        const r = await spec.run();
        row.runs!.push(r.value);
        if (row.value === undefined || r.value > row.value) {
          row.value = r.value;
          row.note = r.note;
          row.extra = r.extra;
        }
        line = `${show(r.value)}${r.note ? ` ${r.note}` : ""}`;
      } catch (e) {
        if (e instanceof Skip) skipped.add(spec.name);
        else row.failures!++;
        if (row.value === undefined) row.note = errText(e);
        line = errText(e);
      }
      console.error(`  [${round}/${ROUNDS}] ${spec.name}: ${line}`);
    }
  }
  for (const row of list) {
    if (row.value !== undefined && row.failures) {
      row.note = `${row.note ? `${row.note}; ` : ""}${row.failures} of ${ROUNDS} runs failed`;
    }
  }
}

/** Runs `body` with the server `start` gives, printing the server's last output on failure. */
async function withServer<T>(
  start: () => Promise<Server>,
  body: (s: Server) => Promise<T>,
): Promise<T> {
  const s = await start();
  try {
    return await body(s);
  } catch (e) {
    const logs = s.proc.tail().trim();
    if (logs) {
      console.error(`  ${s.proc.name} output:\n    ${logs.split("\n").slice(-8).join("\n    ")}`);
    }
    throw e;
  } finally {
    await s.proc.stop();
  }
}

async function throughput(): Promise<void> {
  const names = [
    "iperf3 direct (no hop)",
    "bare Deno forwarder",
    "dost tcp:// forward",
    "dost SOCKS5",
    "dost HTTP CONNECT",
    "microsocks",
    "dante",
  ];
  if (!have("iperf3")) {
    for (const name of names) {
      results.throughput.push({ name, unit: "Gbit/s", note: "skipped (not installed: iperf3)" });
    }
    return;
  }
  const iperfPort = freePort();
  const server = spawn("iperf3 -s", "iperf3", ["-s", "-B", HOST, "-p", String(iperfPort)]);
  await waitPort(iperfPort, server);
  const pc = have("proxychains4");

  /** iperf3 through `start`'s server (a forwarder, or a proxy `via` proxychains4). */
  const through =
    (start: () => Promise<Server>, via?: "socks5" | "http", peer?: string) => async () => {
      if (peer && !have(peer)) throw new Skip("skipped (not installed)");
      if (via && !pc) throw new Skip("skipped (not installed: proxychains4)");
      return await withServer(start, async (s) => {
        const cpu0 = s.singleProcess ? cpuSecs(s.pid) : NaN;
        const bps = via ? await iperf(iperfPort, { kind: via, port: s.port }) : await iperf(s.port);
        const cpu = s.singleProcess ? cpuSecs(s.pid) - cpu0 : NaN;
        const gb = bps * IPERF_SECS / 8 / 1e9;
        return { value: bps / 1e9, extra: isNaN(cpu) ? {} : { cpuSecPerGB: cpu / gb } };
      });
    };
  const starts: [() => Promise<Server>, "socks5" | "http" | undefined, string?][] = [
    [() => startBare(iperfPort), undefined],
    [() => startDost("tcp", iperfPort), undefined],
    [() => startDost("socks5"), "socks5"],
    [() => startDost("http"), "http"],
    [startMicrosocks, "socks5", "microsocks"],
    [startDante, "socks5", "danted"],
  ];
  console.error(`throughput (iperf3 -t ${IPERF_SECS}, ${ROUNDS} rounds):`);
  try {
    await measureRows("throughput", "Gbit/s", [
      { name: names[0], run: async () => ({ value: await iperf(iperfPort) / 1e9 }) },
      ...starts.map(([start, via, peer], i) => ({
        name: names[i + 1],
        run: through(start, via, peer),
      })),
    ], (v) => `${v.toFixed(2)} Gbit/s`);
  } finally {
    await server.stop();
  }
}

async function loadRun(args: string[], timeoutMs: number): Promise<any> {
  const out = await runCmd(
    Deno.execPath(),
    ["run", "--allow-net", "--allow-env=DOST_LOAD_AUTH", `${BENCH}load.ts`, ...args],
    timeoutMs,
  );
  const line = out.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`load.ts (exit ${out.code}): ${(out.stderr || out.stdout).trim().slice(-300)}`);
  }
}

type Target = { name: string; kind: Kind; start: (echo: number) => Promise<Server> };

function targets(): Target[] {
  return [
    { name: "bare Deno forwarder", kind: "direct", start: (e) => startBare(e) },
    { name: "dost tcp:// forward", kind: "direct", start: (e) => startDost("tcp", e) },
    { name: "dost SOCKS5", kind: "socks5", start: () => startDost("socks5") },
    { name: "dost HTTP CONNECT", kind: "http", start: () => startDost("http") },
    { name: "microsocks", kind: "socks5", start: () => startMicrosocks() },
    { name: "dante", kind: "socks5", start: () => startDante() },
  ];
}

async function conns(echo: number): Promise<void> {
  console.error(`new connections/s (${CONN_WORKERS} workers, ${CONN_SECS} s, ${ROUNDS} rounds):`);
  await measureRows(
    "conns",
    "conn/s",
    targets().map((t) => ({
      name: t.name,
      run: () =>
        withServer(() => t.start(echo), async (s) => {
          const r = await loadRun(
            [
              "conns",
              t.kind,
              String(s.port),
              String(echo),
              String(CONN_WORKERS),
              String(CONN_SECS),
            ],
            (CONN_SECS + 30) * 1000,
          );
          if (!r.ok) throw new Error(r.firstError ?? "no connection succeeded");
          const note = r.errors ? `${r.errors} errors (first: ${r.firstError})` : undefined;
          return { value: r.rate, note, extra: { errors: r.errors } };
        }),
    })),
    (v) => `${v.toFixed(0)} conn/s`,
  );
}

/** Opens `count` idle tunnels in a load.ts process; resolves once they are open. */
async function openIdle(
  kind: Kind,
  port: number,
  echo: number,
  count: number,
): Promise<{ proc: Proc; open: number; errors: number; firstError?: string }> {
  const proc = spawn("idle clients", Deno.execPath(), [
    "run",
    "--allow-net",
    `${BENCH}load.ts`,
    "idle",
    kind,
    String(port),
    String(echo),
    String(count),
  ]);
  const end = Date.now() + 60_000;
  for (;;) {
    const m = /^\{.*"open".*\}$/m.exec(proc.tail());
    if (m) return { proc, ...JSON.parse(m[0]) };
    if (proc.exited || Date.now() > end) {
      await proc.stop();
      throw new Error(`idle clients: ${proc.tail().trim().slice(-300) || "timed out"}`);
    }
    await sleep(100);
  }
}

async function idle(): Promise<void> {
  console.error(`RSS per idle tunnel (${IDLE_COUNT} tunnels):`);
  for (const t of targets()) {
    if (t.name === "dante") {
      results.idle.push({
        name: t.name,
        unit: "KB/tunnel",
        note: "n/a (one process per few clients)",
      });
      continue;
    }
    let s: Server | undefined;
    let echo: Server | undefined;
    let clients: Proc | undefined;
    try {
      echo = await startEcho();
      s = await t.start(echo.port);
      // Warm up (JIT, buffer pools) with a few tunnels, then measure the baseline.
      const warm = await openIdle(t.kind, s.port, echo.port, 50);
      await warm.proc.stop();
      await sleep(500);
      const before = rssKB(s.pid);
      const r = await openIdle(t.kind, s.port, echo.port, IDLE_COUNT);
      clients = r.proc;
      await sleep(1500);
      const after = rssKB(s.pid);
      if (r.open === 0) throw new Error(r.firstError ?? "no tunnel opened");
      let note = r.errors
        ? `${r.errors} of ${IDLE_COUNT} failed (first: ${r.firstError})`
        : undefined;
      if (t.kind === "direct" && t.name.startsWith("bare")) {
        note = `${note ? `${note}; ` : ""}allocates 2 × 64 KiB buffers per tunnel up front`;
      }
      results.idle.push({
        name: t.name,
        value: (after - before) / r.open,
        unit: "KB/tunnel",
        note,
        extra: { beforeKB: before, afterKB: after, open: r.open },
      });
    } catch (e) {
      results.idle.push({ name: t.name, unit: "KB/tunnel", note: errText(e) });
    } finally {
      // Tear down from the echo end, so the server sides close first and the TIME_WAIT state
      // stays on listening ports (thousands of client-side ones would use up ephemeral ports).
      await echo?.proc.stop();
      if (clients) await sleep(500);
      await clients?.stop();
      await s?.proc.stop();
    }
    const r = results.idle[results.idle.length - 1];
    console.error(
      `  ${t.name}: ${r.value !== undefined ? `${r.value.toFixed(1)} KB/tunnel` : ""}${
        r.note ? ` ${r.note}` : ""
      }`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// d. UDP forwarding (self-contained: scripts/bench/udp.ts is the echo server and the load)

const UDP_ARGS = ["run", "--allow-net", "--unstable-net", `${BENCH}udp.ts`];
const UDP_SECS = quick ? 1 : 3;
const UDP_WINDOW = 64;
const UDP_TARGET = 50_000;

/** Waits until `re` appears in a process's output; returns its first group. */
async function waitOutput(p: Proc, re: RegExp, ms = 20_000): Promise<string> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    const m = re.exec(p.tail());
    if (m) return m[1];
    if (p.exited) throw new StartError(p.name, p.tail());
    await sleep(20);
  }
  throw new StartError(p.name, `no ${re} in its output after ${ms} ms\n${p.tail()}`);
}

/** One udp.ts client run against 127.0.0.1:port. */
async function udpLoad(port: number): Promise<{ rate: number; lossPct: number; total: number }> {
  const args = [...UDP_ARGS, "client", String(port), String(UDP_WINDOW), String(UDP_SECS)];
  const r = await runCmd(Deno.execPath(), args, (UDP_SECS + 30) * 1000);
  let j: any = {};
  try {
    j = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}");
  } catch { /* reported below */ }
  if (!j.rate) {
    throw new Error(j.error ?? `udp client: ${(r.stdout + r.stderr).trim().slice(-300)}`);
  }
  return j;
}

/**
 * Runs `load` against a dost `udp://` forward to `echoPort`; the rate plus dost's CPU time per
 * echoed datagram.
 */
async function viaDostUdp(
  echoPort: number,
  load: (port: number) => Promise<{ rate: number; total: number; lossPct?: number }>,
): Promise<{ value: number; extra: Record<string, number> }> {
  const dost = spawn("dost udp", Deno.execPath(), [
    "run",
    ...DOST_PERMS,
    "main.ts",
    "-L",
    `udp://${HOST}:0/${HOST}:${echoPort}`,
  ]);
  try {
    const port = Number(await waitOutput(dost, /listening on [^\s]*:(\d+)/));
    const cpu0 = cpuSecs(dost.pid);
    const j = await load(port);
    const usPerDatagram = ((cpuSecs(dost.pid) - cpu0) * 1e6) / j.total;
    const extra: Record<string, number> = { usPerDatagram };
    if (j.lossPct !== undefined) extra.lossPct = j.lossPct;
    return { value: j.rate, extra };
  } finally {
    await dost.stop();
  }
}

async function udpForward(): Promise<void> {
  const echo = spawn("udp echo", Deno.execPath(), [...UDP_ARGS, "echo"]);
  try {
    const echoPort = Number(await waitOutput(echo, /port (\d+)/));
    console.error(
      `UDP forward (${UDP_WINDOW} × 1,200 B in flight, ${UDP_SECS} s, ${ROUNDS} rounds):`,
    );
    await measureRows("udp", "datagrams/s", [
      {
        name: "UDP echo direct (no hop)",
        run: async () => {
          const j = await udpLoad(echoPort);
          return { value: j.rate, extra: { lossPct: j.lossPct } };
        },
      },
      {
        name: "dost udp:// forward",
        run: () => viaDostUdp(echoPort, udpLoad),
      },
    ], (v) => `${v.toFixed(0)} datagrams/s`);
  } finally {
    await echo.stop();
  }
  await udpForwardC();
}

/**
 * The same echo measurement with a C client and a C echo (scripts/bench/udpperf.c, built with
 * the system's cc): Deno peers cost ~36 µs of CPU per echo themselves and, on 2 cores, cap what
 * any forwarder can show. Skipped when no C compiler is installed.
 */
async function udpForwardC(): Promise<void> {
  const bin = `${ROOT}.bench/udpperf`;
  const built = have("cc") &&
    (await runCmd("cc", ["-O2", "-o", bin, `${BENCH}udpperf.c`], 60_000)).code === 0;
  const echoPort = freePort();
  const echo = built ? spawn("udp echo (C)", bin, ["echo", String(echoPort)]) : undefined;
  const load = async (port: number) => {
    const r = await runCmd(bin, [
      "client",
      String(port),
      String(UDP_SECS),
      String(UDP_WINDOW),
      "1200",
    ], (UDP_SECS + 30) * 1000);
    const [got, secs, rate] = r.stdout.trim().split(/\s+/).map(Number);
    if (!rate) throw new Error(`udpperf: ${(r.stdout + r.stderr).trim().slice(-200)}`);
    return { rate, total: got, secs };
  };
  try {
    await measureRows("udp", "datagrams/s", [
      {
        name: "UDP echo direct, C peers",
        run: async () => {
          if (!echo) throw new Skip("skipped (no C compiler)");
          return { value: (await load(echoPort)).rate };
        },
      },
      {
        name: "dost udp:// forward, C peers",
        run: () => {
          if (!echo) throw new Skip("skipped (no C compiler)");
          return viaDostUdp(echoPort, load);
        },
      },
    ], (v) => `${v.toFixed(0)} datagrams/s`);
  } finally {
    await echo?.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// e. chain throughput (self-contained): a 3-hop all-dost chain against one dost SOCKS5 hop

const CHAIN_TARGET = 0.5;
const CHAIN_SINGLE = "dost SOCKS5 (single hop)";
const CHAIN_3HOP = "dost 3-hop chain";

/** A chain of dost processes: `hops` listeners, then a front SOCKS5 service with -F to each. */
async function startDostChain(hops: ("http" | "socks5" | "socks4")[]): Promise<Server[]> {
  const started: Server[] = [];
  const dost = async (label: string, args: string[], port: number) => {
    const proc = spawn(label, Deno.execPath(), ["run", ...DOST_PERMS, "main.ts", ...args]);
    started.push({ port, proc, pid: proc.pid, singleProcess: true });
    await waitPort(port, proc);
  };
  try {
    const forwards: string[] = [];
    for (const scheme of hops) {
      const port = freePort();
      await dost(`dost ${scheme} hop`, ["-L", `${scheme}://${HOST}:${port}`], port);
      // socks4 listeners serve socks4a; the connector resolves nothing (the hop does). The
      // socks5 hop runs without gost's TLS method: this row measures relaying, not TLS.
      const node = `${scheme === "socks4" ? "socks4a" : scheme}://${HOST}:${port}`;
      forwards.push("-F", scheme === "socks5" ? `${node}?notls=true` : node);
    }
    const front = freePort();
    await dost("dost chain front", ["-L", `socks5://${HOST}:${front}`, ...forwards], front);
    // The front first: it is what clients connect to.
    return [started.pop()!, ...started];
  } catch (e) {
    await Promise.all(started.map((s) => s.proc.stop()));
    throw e;
  }
}

async function chainThroughput(): Promise<void> {
  const skip = !have("iperf3")
    ? "skipped (not installed: iperf3)"
    : !have("proxychains4")
    ? "skipped (not installed: proxychains4)"
    : undefined;
  if (skip) {
    for (const name of [CHAIN_SINGLE, CHAIN_3HOP]) {
      results.chain.push({ name, unit: "Gbit/s", note: skip });
    }
    return;
  }
  const iperfPort = freePort();
  const server = spawn("iperf3 -s", "iperf3", ["-s", "-B", HOST, "-p", String(iperfPort)]);
  await waitPort(iperfPort, server);
  /** iperf3 via proxychains4 to the first server; CPU is summed over all of them. */
  const measure = async (servers: Server[]) => {
    try {
      const cpu0 = servers.reduce((t, s) => t + cpuSecs(s.pid), 0);
      const bps = await iperf(iperfPort, { kind: "socks5", port: servers[0].port });
      const cpu = servers.reduce((t, s) => t + cpuSecs(s.pid), 0) - cpu0;
      const gb = bps * IPERF_SECS / 8 / 1e9;
      return { value: bps / 1e9, extra: { cpuSecPerGB: cpu / gb, processes: servers.length } };
    } catch (e) {
      for (const s of servers) {
        const logs = s.proc.tail().trim();
        if (logs) {
          console.error(
            `  ${s.proc.name} output:\n    ${logs.split("\n").slice(-8).join("\n    ")}`,
          );
        }
      }
      throw e;
    } finally {
      await Promise.all(servers.map((s) => s.proc.stop()));
    }
  };
  console.error(`chain throughput (iperf3 -t ${IPERF_SECS}, ${ROUNDS} rounds):`);
  try {
    await measureRows("chain", "Gbit/s", [
      { name: CHAIN_SINGLE, run: async () => await measure([await startDost("socks5")]) },
      {
        name: CHAIN_3HOP,
        run: async () => await measure(await startDostChain(["http", "socks5", "socks4"])),
      },
    ], (v) => `${v.toFixed(2)} Gbit/s`);
  } finally {
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// f. traffic limit: wall time of 10 MiB through a SOCKS5 service limited to 1 MB/s (gost's MB is
// 1024² bytes; the bucket starts with one second's burst, so ~9 s is the expected figure).

const LIMIT_BYTES = 10 << 20;
const LIMIT_RANGE: [number, number] = [9, 11];

/** Moves LIMIT_BYTES through dost `socks5://…?limiter.<dir>=1MB`; resolves with seconds. */
async function limitTransfer(dir: "in" | "out"): Promise<number> {
  try {
    await Deno.stat(ROOT + HANDLER_FILE.socks5);
  } catch {
    throw new Skip("skipped (dost handler missing)");
  }
  const target = Deno.listen({ hostname: HOST, port: 0 });
  const targetPort = (target.addr as Deno.NetAddr).port;
  // The far end: sends LIMIT_BYTES (out) or counts them in (in), timing its last byte.
  const far = (async () => {
    const c = await target.accept();
    try {
      const buf = new Uint8Array(65536);
      if (dir === "out") {
        for (let sent = 0; sent < LIMIT_BYTES;) {
          sent += await c.write(buf.subarray(0, Math.min(buf.length, LIMIT_BYTES - sent)));
        }
        await c.closeWrite();
        return 0;
      }
      let got = 0;
      while (got < LIMIT_BYTES) {
        const n = await c.read(buf);
        if (n === null) break;
        got += n;
      }
      if (got !== LIMIT_BYTES) throw new Error(`target got ${got} of ${LIMIT_BYTES} bytes`);
      return performance.now();
    } finally {
      c.close();
      target.close();
    }
  })();
  const port = freePort();
  const proc = spawn(`dost socks5 limiter.${dir}`, Deno.execPath(), [
    "run",
    ...DOST_PERMS,
    "main.ts",
    "-L",
    `socks5://${HOST}:${port}?limiter.${dir}=1MB`,
  ]);
  try {
    await waitPort(port, proc);
    // Wall time as a client sees it: from connect, handshake included.
    const t = performance.now();
    const c = await Deno.connect({ hostname: HOST, port });
    try {
      const readN = async (n: number) => {
        const b = new Uint8Array(n);
        for (let off = 0; off < n;) {
          const r = await c.read(b.subarray(off));
          if (r === null) throw new Error("dost closed during the SOCKS5 handshake");
          off += r;
        }
        return b;
      };
      await c.write(new Uint8Array([5, 1, 0]));
      await readN(2);
      await c.write(new Uint8Array([5, 1, 0, 1, 127, 0, 0, 1, targetPort >> 8, targetPort & 255]));
      const reply = await readN(10);
      if (reply[1] !== 0) throw new Error(`SOCKS5 CONNECT failed: reply ${reply[1]}`);
      const buf = new Uint8Array(65536);
      if (dir === "out") {
        let got = 0;
        while (got < LIMIT_BYTES) {
          const n = await c.read(buf);
          if (n === null) break;
          got += n;
        }
        if (got !== LIMIT_BYTES) throw new Error(`client got ${got} of ${LIMIT_BYTES} bytes`);
        const secs = (performance.now() - t) / 1000;
        await far;
        return secs;
      }
      for (let sent = 0; sent < LIMIT_BYTES;) {
        sent += await c.write(buf.subarray(0, Math.min(buf.length, LIMIT_BYTES - sent)));
      }
      await c.closeWrite();
      return ((await far) - t) / 1000;
    } finally {
      try {
        c.close();
      } catch { /* closed */ }
    }
  } finally {
    try {
      target.close();
    } catch { /* closed */ }
    await proc.stop();
  }
}

async function limitBench(): Promise<void> {
  for (const dir of ["out", "in"] as const) {
    const name = `SOCKS5 limiter.${dir}=1MB, 10 MiB`;
    try {
      const secs = await limitTransfer(dir);
      results.limit.push({
        name,
        value: secs,
        unit: "s",
        extra: { mibPerSec: LIMIT_BYTES / (1 << 20) / secs },
      });
      console.error(`limit: ${name}: ${secs.toFixed(2)} s`);
    } catch (e) {
      results.limit.push({ name, unit: "s", note: e instanceof Skip ? e.message : errText(e) });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// report

function fmt(v: number | undefined, digits: number): string {
  return v === undefined || !isFinite(v) ? "-" : v.toFixed(digits);
}

function get(section: string, name: string): number | undefined {
  return results[section].find((r) => r.name.startsWith(name))?.value;
}

function report(): string {
  const lines: string[] = [];
  const W = 34;
  const head = (title: string, cols: string[], notes: string[] = []) => {
    lines.push("", title, ...notes);
    lines.push(`  ${"".padEnd(W)}${cols.map((c) => c.padStart(12)).join("")}`);
  };
  const fmtRow = (r: Result, digits: number, extraCols: string[]) => {
    if (r.value === undefined) {
      lines.push(`  ${r.name.padEnd(W)}${r.note ?? "-"}`);
      return;
    }
    const others = (r.runs ?? []).length > 1
      ? `  runs: ${r.runs!.map((v) => fmt(v, digits)).join(", ")}`
      : "";
    lines.push(
      `  ${r.name.padEnd(W)}${fmt(r.value, digits).padStart(12)}${
        extraCols.map((c) => c.padStart(12)).join("")
      }${others}${r.note ? `  ${r.note}` : ""}`,
    );
  };

  if (results.throughput.length) {
    head(
      `a. Throughput (best of ${ROUNDS}), iperf3 -t ${IPERF_SECS}: iperf3 -c → one hop → iperf3 -s; proxies via proxychains4`,
      ["Gbit/s", "CPU s/GB", "÷ direct"],
      [
        '  shape: every row but "direct" is iperf3 -c → ONE hop (forwarder or proxy) → iperf3 -s.',
        "  SOCKS5/HTTP rows run the iperf3 client under proxychains4 (LD_PRELOAD hooks connect(): iperf3's",
        "  own control and data sockets do the handshake), so proxies get no extra relay in front of them.",
        "  CPU s/GB: the hop's own CPU time (user+sys) per GB moved (n/a for dante: many processes).",
      ],
    );
    const direct = get("throughput", "iperf3 direct");
    for (const r of results.throughput) {
      fmtRow(r, 2, [
        fmt(r.extra?.cpuSecPerGB as number | undefined, 2),
        direct && r.value ? fmt(r.value / direct, 2) : "-",
      ]);
    }
  }
  if (results.conns.length) {
    head(
      `b. New connections/s (best of ${ROUNDS}): ${CONN_WORKERS} workers × (connect, handshake, CONNECT to echo, 1-byte round trip, close), ${CONN_SECS} s`,
      ["conn/s"],
    );
    for (const r of results.conns) fmtRow(r, 0, []);
  }
  if (results.idle.length) {
    head(
      `c. Memory per idle tunnel: proxy VmRSS growth with ${IDLE_COUNT} idle tunnels open`,
      ["KB/tunnel", "before MB", "after MB"],
    );
    for (const r of results.idle) {
      fmtRow(r, 1, [
        fmt((r.extra?.beforeKB as number) / 1024, 1),
        fmt((r.extra?.afterKB as number) / 1024, 1),
      ]);
    }
  }

  if (results.udp.length) {
    head(
      `d. UDP forward (best of ${ROUNDS}): 1,200 B datagrams echoed, ${UDP_WINDOW} in flight, ${UDP_SECS} s`,
      ["dgram/s", "loss %", "µs CPU/dgr"],
      ["  µs CPU/dgr: the forwarder's CPU time per echoed datagram (2 receives + 2 sends)."],
    );
    for (const r of results.udp) {
      fmtRow(r, 0, [
        fmt(r.extra?.lossPct as number | undefined, 2),
        fmt(r.extra?.usPerDatagram as number | undefined, 1),
      ]);
    }
  }

  if (results.chain.length) {
    head(
      `e. Chain throughput (best of ${ROUNDS}), iperf3 -t ${IPERF_SECS} via proxychains4 → front SOCKS5`,
      ["Gbit/s", "CPU s/GB", "÷ 1 hop"],
      [
        "  3-hop chain: front socks5 -F http -F socks5 -F socks4a, four dost processes in a row;",
        "  CPU s/GB: all of the row's dost processes together per GB moved.",
      ],
    );
    const single = get("chain", CHAIN_SINGLE);
    for (const r of results.chain) {
      fmtRow(r, 2, [
        fmt(r.extra?.cpuSecPerGB as number | undefined, 2),
        single && r.value ? fmt(r.value / single, 2) : "-",
      ]);
    }
  }

  if (results.limit.length) {
    head(
      `f. Traffic limit: wall time of 10 MiB through dost SOCKS5 at 1 MB/s (target ${
        LIMIT_RANGE[0]
      }–${LIMIT_RANGE[1]} s)`,
      ["seconds", "MiB/s", "verdict"],
    );
    for (const r of results.limit) {
      // Judged on the figure as printed (0.01 s): one second's burst puts the ideal at 9.00 s.
      const shown = r.value === undefined ? undefined : Math.round(r.value * 100) / 100;
      const ok = shown !== undefined && shown >= LIMIT_RANGE[0] && shown <= LIMIT_RANGE[1];
      fmtRow(r, 2, [
        fmt(r.extra?.mibPerSec as number | undefined, 2),
        r.value === undefined ? "-" : ok ? "PASS" : "FAIL",
      ]);
    }
  }

  if (results.access.length) {
    head(
      `g. Connection setup with access rules: ${CONN_WORKERS} workers × (connect, SOCKS5 user/pass, CONNECT, 1-byte round trip, close)`,
      ["conn/s"],
    );
    for (const r of results.access) fmtRow(r, 0, []);
  }

  // ratios and targets
  const ratio = (a?: number, b?: number) => (a !== undefined && b ? a / b : undefined);
  const rows: [string, number | undefined, string, ((v: number) => boolean) | undefined][] = [];
  const s5 = get("throughput", "dost SOCKS5");
  rows.push([
    "SOCKS5 throughput ÷ bare forwarder",
    ratio(s5, get("throughput", "bare Deno")),
    "≥ 0.90",
    (v) => v >= 0.9,
  ]);
  rows.push([
    "SOCKS5 throughput ÷ dante",
    ratio(s5, get("throughput", "dante")),
    "≥ 1.00",
    (v) => v >= 1,
  ]);
  rows.push([
    "SOCKS5 throughput ÷ microsocks",
    ratio(s5, get("throughput", "microsocks")),
    "≥ 1.00",
    (v) => v >= 1,
  ]);
  rows.push([
    "HTTP CONNECT throughput ÷ bare forwarder",
    ratio(get("throughput", "dost HTTP"), get("throughput", "bare Deno")),
    "",
    undefined,
  ]);
  rows.push([
    "tcp:// forward throughput ÷ bare forwarder",
    ratio(get("throughput", "dost tcp"), get("throughput", "bare Deno")),
    "",
    undefined,
  ]);
  const c5 = get("conns", "dost SOCKS5");
  rows.push([
    "SOCKS5 conn/s ÷ bare forwarder",
    ratio(c5, get("conns", "bare Deno")),
    "",
    undefined,
  ]);
  rows.push(["SOCKS5 conn/s ÷ dante", ratio(c5, get("conns", "dante")), "", undefined]);
  rows.push(["SOCKS5 conn/s ÷ microsocks", ratio(c5, get("conns", "microsocks")), "", undefined]);
  const kb = get("idle", "dost SOCKS5");
  rows.push([
    `SOCKS5 KB per idle tunnel ÷ ${IDLE_TARGET_KB} KB target`,
    ratio(kb, IDLE_TARGET_KB),
    "≤ 1.00",
    (v) => v <= 1,
  ]);
  rows.push([
    "SOCKS5 KB per idle tunnel ÷ microsocks",
    ratio(kb, get("idle", "microsocks")),
    "",
    undefined,
  ]);

  // The C-peer row is the fair one (Deno peers saturate the cores themselves); else the other.
  const udp = get("udp", "dost udp:// forward, C peers") ?? get("udp", "dost udp:// forward");
  rows.push([
    `UDP forward datagrams/s ÷ ${UDP_TARGET} target`,
    ratio(udp, UDP_TARGET),
    "≥ 1.00",
    (v) => v >= 1,
  ]);
  rows.push([
    "UDP forward ÷ direct echo",
    ratio(
      udp,
      get("udp", "UDP echo direct, C peers") ?? get("udp", "UDP echo direct (no hop)"),
    ),
    "",
    undefined,
  ]);

  rows.push([
    "3-hop chain ÷ single-hop SOCKS5 throughput",
    ratio(get("chain", CHAIN_3HOP), get("chain", CHAIN_SINGLE)),
    `≥ ${CHAIN_TARGET.toFixed(2)}`,
    (v) => v >= CHAIN_TARGET,
  ]);

  for (const m of SS_METHODS) {
    const d = results.ss.find((r) => r.name === `dost ${m}`);
    for (const peer of ["shadowsocks-libev", "v2ray"]) {
      const p = results.ss.find((r) => r.name === `${peer} ${m}`);
      rows.push([`ss ${m} ÷ ${peer}`, ratio(d?.value, p?.value), "≥ 1.00", (v) => v >= 1]);
      rows.push([
        `ss ${m} per CPU-s ÷ ${peer}`,
        ratio(
          d?.extra?.gbitPerCpuSec as number | undefined,
          p?.extra?.gbitPerCpuSec as number | undefined,
        ),
        "≥ 1.00",
        (v) => v >= 1,
      ]);
    }
  }
  rows.push([
    `ssu datagrams/s ÷ ${UDP_TARGET} target`,
    ratio(get("ssu", "dost ssu"), UDP_TARGET),
    "≥ 1.00",
    (v) => v >= 1,
  ]);
  for (
    const [a, b, t] of [
      ["socks5+tls pair", "socks5 pair, plain TCP", 0.8],
      ["relay+tls pair", "relay pair, plain TCP", 0.8],
      ["mwss, 100 streams", "wss, 100 connections", 0.7],
    ] as const
  ) {
    rows.push([
      `${a} ÷ ${b}`,
      ratio(get("transports", a), get("transports", b)),
      `≥ ${t.toFixed(2)}`,
      (v) => v >= t,
    ]);
  }
  rows.push([
    "conn/s with 25k rules ÷ without (< 5% slower)",
    ratio(get("access", ACCESS_LOADED), get("access", ACCESS_PLAIN)),
    "≥ 0.95",
    (v) => v >= 0.95,
  ]);

  if (results.ss.length) {
    head(
      `h. Shadowsocks pairs (best of ${ROUNDS}), iperf3 -t ${IPERF_SECS} via proxychains4 → the pair's client`,
      ["Gbit/s", "Gbit/CPU-s"],
      ["  Gbit/CPU-s: gigabits moved per CPU-second of the client and server together."],
    );
    for (const r of results.ss) {
      fmtRow(r, 2, [fmt(r.extra?.gbitPerCpuSec as number | undefined, 2)]);
    }
  }
  if (results.ssu.length) {
    head(
      `h. ssu pairs (best of ${ROUNDS}): ${SSU_SIZE} B datagrams echoed, ${UDP_WINDOW} in flight, C peers`,
      ["dgram/s", "µs CPU/dgr"],
      ["  µs CPU/dgr: client and server CPU per echoed datagram."],
    );
    for (const r of results.ssu) {
      fmtRow(r, 0, [fmt(r.extra?.usPerDatagram as number | undefined, 1)]);
    }
  }

  if (results.transports.length) {
    head(
      `i. Transport pairs (best of ${ROUNDS}), iperf3 -t ${IPERF_SECS} via proxychains4 → dost client → dost server`,
      ["Gbit/s", "Gbit/CPU-s"],
    );
    for (const r of results.transports) {
      fmtRow(r, 2, [fmt(r.extra?.gbitPerCpuSec as number | undefined, 2)]);
    }
  }

  if (results.aead.length) {
    head(`j. AEAD backends (best of ${ROUNDS}): sealing 16 KiB chunks in one process`, ["MB/s"]);
    for (const r of results.aead) fmtRow(r, 0, []);
  }

  lines.push("", "Ratios (dost ÷ peer)");
  lines.push(`  ${"".padEnd(44)}${"ratio".padStart(8)}${"target".padStart(10)}  verdict`);
  for (const [name, v, target, ok] of rows) {
    const verdict = v === undefined ? "no data" : ok ? (ok(v) ? "PASS" : "FAIL") : "";
    lines.push(`  ${name.padEnd(44)}${fmt(v, 2).padStart(8)}${target.padStart(10)}  ${verdict}`);
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------
// h. Shadowsocks pairs: iperf3 (under proxychains4) through client → server pairs of dost,
// shadowsocks-libev (ss-local → ss-server) and v2ray (socks in, shadowsocks out → shadowsocks in)
// for each AEAD cipher; and ssu: 1,400 B datagrams echoed through UDP pairs (dost udp:// -F ssu,
// ss-tunnel -u, v2ray dokodemo-door) with the C echo and client. CPU is both processes together.

const SS_METHODS = ["aes-128-gcm", "aes-256-gcm", "chacha20-ietf-poly1305"];
const SS_PW = "bench-pass";
const SSU_SIZE = 1400;
type SsImpl = "dost" | "shadowsocks-libev" | "v2ray";

/** Waits until something is bound to UDP 127.0.0.1:port. */
async function waitUdpPort(port: number, p: Proc, ms = 20_000): Promise<void> {
  const want = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (p.exited) throw new StartError(p.name, p.tail());
    for (const line of Deno.readTextFileSync("/proc/net/udp").split("\n")) {
      if (line.trim().split(/\s+/)[1] === want) return;
    }
    await sleep(50);
  }
  throw new StartError(p.name, `not bound to udp ${port} after ${ms} ms\n${p.tail()}`);
}

function v2rayConfig(name: string, inbound: unknown, outbound: unknown): string {
  const file = `${tmp()}/v2ray-${name}-${freePort()}.json`;
  Deno.writeTextFileSync(
    file,
    JSON.stringify({ log: { loglevel: "warning" }, inbounds: [inbound], outbounds: [outbound] }),
  );
  return file;
}

/**
 * Starts a shadowsocks client → server pair. `udpTarget` unset: the client is a SOCKS5 proxy on
 * the returned port (TCP); set: the client forwards UDP on the returned port to that target.
 */
async function startSsPair(
  impl: SsImpl,
  method: string,
  udpTarget?: number,
): Promise<{ port: number; servers: Server[] }> {
  const sPort = freePort(), cPort = freePort();
  const started: Server[] = [];
  const run = async (label: string, cmd: string, args: string[], port: number, udp = false) => {
    const proc = spawn(label, cmd, args);
    started.push({ port, proc, pid: proc.pid, singleProcess: true });
    await (udp ? waitUdpPort(port, proc) : waitPort(port, proc));
  };
  const dost = ["run", ...DOST_PERMS, "main.ts"];
  const auth = `${method}:${encodeURIComponent(SS_PW)}`;
  try {
    if (impl === "dost") {
      if (udpTarget === undefined) {
        await run("dost ss server", Deno.execPath(), [
          ...dost,
          "-L",
          `ss://${auth}@${HOST}:${sPort}`,
        ], sPort);
        await run("dost ss client", Deno.execPath(), [
          ...dost,
          "-L",
          `socks5://${HOST}:${cPort}`,
          "-F",
          `ss://${auth}@${HOST}:${sPort}`,
        ], cPort);
      } else {
        await run(
          "dost ssu server",
          Deno.execPath(),
          [...dost, "-L", `ssu+udp://${auth}@${HOST}:${sPort}`],
          sPort,
          true,
        );
        await run(
          "dost ssu client",
          Deno.execPath(),
          [
            ...dost,
            "-L",
            `udp://${HOST}:${cPort}/${HOST}:${udpTarget}`,
            "-F",
            `ssu+udp://${auth}@${HOST}:${sPort}`,
          ],
          cPort,
          true,
        );
      }
    } else if (impl === "shadowsocks-libev") {
      if (!have("ss-server") || !have("ss-local")) throw new Skip("skipped (not installed)");
      const u = udpTarget === undefined ? [] : ["-u"];
      await run("ss-server", "ss-server", [
        "-s",
        HOST,
        "-p",
        String(sPort),
        "-k",
        SS_PW,
        "-m",
        method,
        ...u,
      ], sPort);
      if (udpTarget === undefined) {
        await run("ss-local", "ss-local", [
          "-s",
          HOST,
          "-p",
          String(sPort),
          "-b",
          HOST,
          "-l",
          String(cPort),
          "-k",
          SS_PW,
          "-m",
          method,
        ], cPort);
      } else {
        await run("ss-tunnel", "ss-tunnel", [
          "-s",
          HOST,
          "-p",
          String(sPort),
          "-b",
          HOST,
          "-l",
          String(cPort),
          "-L",
          `${HOST}:${udpTarget}`,
          "-k",
          SS_PW,
          "-m",
          method,
          "-u",
        ], cPort);
      }
    } else {
      if (!have("v2ray")) throw new Skip("skipped (not installed)");
      const server = v2rayConfig("server", {
        listen: HOST,
        port: sPort,
        protocol: "shadowsocks",
        settings: { method, password: SS_PW, network: "tcp,udp" },
      }, { protocol: "freedom" });
      const inbound = udpTarget === undefined
        ? { listen: HOST, port: cPort, protocol: "socks", settings: { auth: "noauth", udp: false } }
        : {
          listen: HOST,
          port: cPort,
          protocol: "dokodemo-door",
          settings: { address: HOST, port: udpTarget, network: "udp" },
        };
      const client = v2rayConfig("client", inbound, {
        protocol: "shadowsocks",
        settings: { servers: [{ address: HOST, port: sPort, method, password: SS_PW }] },
      });
      await run("v2ray server", "v2ray", ["-config", server], sPort);
      await run("v2ray client", "v2ray", ["-config", client], cPort, udpTarget !== undefined);
    }
    return { port: cPort, servers: started };
  } catch (e) {
    await Promise.all(started.map((s) => s.proc.stop()));
    throw e;
  }
}

async function ssBench(): Promise<void> {
  const skip = !have("iperf3")
    ? "skipped (not installed: iperf3)"
    : !have("proxychains4")
    ? "skipped (not installed: proxychains4)"
    : undefined;
  const impls: SsImpl[] = ["dost", "shadowsocks-libev", "v2ray"];
  if (skip) {
    for (const m of SS_METHODS) {
      for (const i of impls) results.ss.push({ name: `${i} ${m}`, unit: "Gbit/s", note: skip });
    }
  } else {
    const iperfPort = freePort();
    const server = spawn("iperf3 -s", "iperf3", ["-s", "-B", HOST, "-p", String(iperfPort)]);
    await waitPort(iperfPort, server);
    console.error(`shadowsocks pairs (iperf3 -t ${IPERF_SECS}, ${ROUNDS} rounds):`);
    try {
      for (const m of SS_METHODS) {
        await measureRows(
          "ss",
          "Gbit/s",
          impls.map((impl) => ({
            name: `${impl} ${m}`,
            run: async () => {
              const pair = await startSsPair(impl, m);
              try {
                const cpu0 = pair.servers.reduce((t, s) => t + cpuSecs(s.pid), 0);
                const bps = await iperf(iperfPort, { kind: "socks5", port: pair.port });
                const cpu = pair.servers.reduce((t, s) => t + cpuSecs(s.pid), 0) - cpu0;
                const gbit = bps * IPERF_SECS / 1e9;
                return { value: bps / 1e9, extra: { gbitPerCpuSec: gbit / cpu } };
              } finally {
                await Promise.all(pair.servers.map((s) => s.proc.stop()));
              }
            },
          })),
          (v) => `${v.toFixed(2)} Gbit/s`,
        );
      }
    } finally {
      await server.stop();
    }
  }
  // ssu: datagrams echoed through the pair by the C peers (the Deno peers would cap it).
  const bin = `${ROOT}.bench/udpperf`;
  const built = have("cc") &&
    (await runCmd("cc", ["-O2", "-o", bin, `${BENCH}udpperf.c`], 60_000)).code === 0;
  const echoPort = freePort();
  const echo = built ? spawn("udp echo (C)", bin, ["echo", String(echoPort)]) : undefined;
  if (echo) await sleep(200);
  const method = "aes-128-gcm";
  console.error(`ssu pairs (${method}, ${SSU_SIZE} B, ${UDP_WINDOW} in flight, ${UDP_SECS} s):`);
  try {
    await measureRows(
      "ssu",
      "datagrams/s",
      impls.map((impl) => ({
        name: `${impl} ssu ${method}`,
        run: async () => {
          if (!echo) throw new Skip("skipped (no C compiler)");
          const pair = await startSsPair(impl, method, echoPort);
          try {
            const cpu0 = pair.servers.reduce((t, s) => t + cpuSecs(s.pid), 0);
            const r = await runCmd(bin, [
              "client",
              String(pair.port),
              String(UDP_SECS),
              String(UDP_WINDOW),
              String(SSU_SIZE),
            ], (UDP_SECS + 30) * 1000);
            const [got, , rate] = r.stdout.trim().split(/\s+/).map(Number);
            if (!rate) throw new Error(`udpperf: ${(r.stdout + r.stderr).trim().slice(-200)}`);
            const cpu = pair.servers.reduce((t, s) => t + cpuSecs(s.pid), 0) - cpu0;
            return { value: rate, extra: { usPerDatagram: cpu * 1e6 / got } };
          } finally {
            await Promise.all(pair.servers.map((s) => s.proc.stop()));
          }
        },
      })),
      (v) => `${v.toFixed(0)} datagrams/s`,
    );
  } finally {
    await echo?.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// i. Stream transports: iperf3 (under proxychains4) through dost client → server pairs over
// plain TCP, TLS and WebSocket; and 100 parallel iperf3 streams over one mwss session against
// 100 separate wss connections.

const TRANSPORT_PAIRS: { name: string; client: string; server: string; parallel?: number }[] = [
  {
    name: "socks5 pair, plain TCP",
    client: "socks5://H:S?notls=true",
    server: "socks5://H:S?notls=true",
  },
  { name: "socks5+tls pair", client: "socks5+tls://H:S", server: "socks5+tls://H:S" },
  { name: "relay pair, plain TCP", client: "relay://H:S", server: "relay://H:S" },
  { name: "relay+tls pair", client: "relay+tls://H:S", server: "relay+tls://H:S" },
  {
    name: "wss, 100 connections",
    client: "socks5+wss://H:S",
    server: "socks5+wss://H:S",
    parallel: 100,
  },
  {
    name: "mwss, 100 streams",
    client: "socks5+mwss://H:S",
    server: "socks5+mwss://H:S",
    parallel: 100,
  },
];

/** iperf3 -P `parallel` (JSON: the summed receive rate) through a SOCKS5 proxy. */
async function iperfParallel(port: number, via: number, parallel: number): Promise<number> {
  const client = [
    "-c",
    HOST,
    "-p",
    String(port),
    "-t",
    String(IPERF_SECS),
    "-P",
    String(parallel),
    "-J",
  ];
  const out = await runCmd(
    "proxychains4",
    ["-q", "-f", proxychainsConf("socks5", via), "iperf3", ...client],
    (IPERF_SECS + 60) * 1000,
  );
  let j: any;
  try {
    j = JSON.parse(out.stdout);
  } catch {
    throw new Error(
      `iperf3 gave no JSON (exit ${out.code}): ${(out.stderr || out.stdout).trim().slice(-200)}`,
    );
  }
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  return j.end.sum_received.bits_per_second;
}

async function transportBench(): Promise<void> {
  if (!have("iperf3") || !have("proxychains4")) {
    for (const t of TRANSPORT_PAIRS) {
      results.transports.push({
        name: t.name,
        unit: "Gbit/s",
        note: "skipped (iperf3/proxychains4)",
      });
    }
    return;
  }
  const iperfPort = freePort();
  const server = spawn("iperf3 -s", "iperf3", ["-s", "-B", HOST, "-p", String(iperfPort)]);
  await waitPort(iperfPort, server);
  console.error(`transport pairs (iperf3 -t ${IPERF_SECS}, ${ROUNDS} rounds):`);
  try {
    await measureRows(
      "transports",
      "Gbit/s",
      TRANSPORT_PAIRS.map((t) => ({
        name: t.name,
        run: async () => {
          const sPort = freePort(), cPort = freePort();
          const at = (u: string) => u.replace("H:S", `${HOST}:${sPort}`);
          const srv = spawn(`dost ${t.name} server`, Deno.execPath(), [
            "run",
            ...DOST_PERMS,
            "main.ts",
            "-L",
            at(t.server),
          ]);
          const cli = spawn(`dost ${t.name} client`, Deno.execPath(), [
            "run",
            ...DOST_PERMS,
            "main.ts",
            "-L",
            `socks5://${HOST}:${cPort}?notls=true`,
            "-F",
            at(t.client),
          ]);
          try {
            await waitPort(sPort, srv);
            await waitPort(cPort, cli);
            const cpu0 = cpuSecs(srv.pid) + cpuSecs(cli.pid);
            const bps = t.parallel
              ? await iperfParallel(iperfPort, cPort, t.parallel)
              : await iperf(iperfPort, { kind: "socks5", port: cPort });
            const cpu = cpuSecs(srv.pid) + cpuSecs(cli.pid) - cpu0;
            return { value: bps / 1e9, extra: { gbitPerCpuSec: bps * IPERF_SECS / 1e9 / cpu } };
          } finally {
            await Promise.all([srv.stop(), cli.stop()]);
          }
        },
      })),
      (v) => `${v.toFixed(2)} Gbit/s`,
    );
  } finally {
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// j. AEAD backends: MB/s sealing 16 KiB Shadowsocks chunks, in this process, for each backend
// dost can pick at start-up (OpenSSL through FFI, node:crypto): the figures behind the choice.

async function aeadBench(): Promise<void> {
  const { newAead } = await import("../../src/crypto/aead.ts");
  const { libcrypto } = await import("../../ffi/libcrypto.ts");
  const backends = libcrypto() ? ["openssl", "node"] as const : ["node"] as const;
  const algos = ["aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"] as const;
  const rows = backends.flatMap((b) => algos.map((a) => ({ b, a })));
  await measureRows(
    "aead",
    "MB/s",
    rows.map(({ b, a }) => ({
      name: `${b} ${a}`,
      run: () => {
        const key = new Uint8Array(a === "aes-128-gcm" ? 16 : 32);
        const seal = newAead(a, key, true, b);
        const plain = new Uint8Array(16383),
          out = new Uint8Array(16383 + 16),
          nonce = new Uint8Array(12);
        const until = performance.now() + (quick ? 300 : 1000);
        let n = 0;
        while (performance.now() < until) {
          for (let i = 0; i < 16; i++, n++) {
            nonce[0] = n;
            seal.seal(nonce, plain, out);
          }
        }
        const secs = (performance.now() - until + (quick ? 300 : 1000)) / 1000;
        return Promise.resolve({ value: n * 16383 / secs / 1e6 });
      },
    })),
    (v) => `${v.toFixed(0)} MB/s`,
  );
}

// ---------------------------------------------------------------------------------------------
// g. access rules: connection setup with 10,000 users, 10,000 bypass entries, 5,000 permissions

const ACCESS_RULES = 10_000;
const ACCESS_PLAIN = "SOCKS5 user/pass, no rules";
const ACCESS_LOADED = "SOCKS5, 10k users+bypass, 5k perms";

/** Writes the rule files; returns the extra URL parameters that load them. */
function accessRules(): string {
  const dir = tmp();
  const users = [...Array(ACCESS_RULES - 1).keys()].map((i) => `user${i} pass${i}`);
  Deno.writeTextFileSync(`${dir}/secrets.txt`, [...users, "bench pw"].join("\n") + "\n");
  // None of these match 127.0.0.1: every connection walks the whole list.
  const bypass = [...Array(ACCESS_RULES).keys()].map((i) =>
    i % 2 ? `10.${(i >> 8) & 255}.${i & 255}.0/24` : `*.blocked-${i}.test`
  );
  Deno.writeTextFileSync(`${dir}/bypass.txt`, bypass.join("\n") + "\n");
  // Permissions have no file form and one argv string holds at most 128 KiB: half as many.
  const perms = [...Array(ACCESS_RULES / 2 - 1).keys()].map((i) => `tcp:h${i}.test:80`);
  perms.push(`tcp:127.0.0.1:*`);
  return `secrets=${dir}/secrets.txt&bypass=${dir}/bypass.txt&whitelist=${
    encodeURIComponent(perms.join(" "))
  }`;
}

async function startDostAccess(query: string, auth: string): Promise<Server> {
  const port = freePort();
  const proc = spawn("dost socks5 (access)", Deno.execPath(), [
    "run",
    ...DOST_PERMS,
    "main.ts",
    "-L",
    `socks5://${auth}${HOST}:${port}${query ? `?${query}` : ""}`,
  ]);
  try {
    await waitPort(port, proc);
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return { port, proc, pid: proc.pid, singleProcess: true };
}

async function accessBench(echo: number): Promise<void> {
  console.error(`access rules: conn/s with ${ACCESS_RULES} rules of each kind vs none:`);
  Deno.env.set("DOST_LOAD_AUTH", "bench:pw");
  const query = accessRules();
  const run = (start: () => Promise<Server>) => () =>
    withServer(start, async (srv) => {
      const r = await loadRun(
        [
          "conns",
          "socks5auth",
          String(srv.port),
          String(echo),
          String(CONN_WORKERS),
          String(CONN_SECS),
        ],
        (CONN_SECS + 30) * 1000,
      );
      if (!r.ok) throw new Error(r.firstError ?? "no connection succeeded");
      return { value: r.rate, note: r.errors ? `${r.errors} errors` : undefined };
    });
  await measureRows("access", "conn/s", [
    { name: ACCESS_PLAIN, run: run(() => startDostAccess("", "bench:pw@")) },
    { name: ACCESS_LOADED, run: run(() => startDostAccess(query, "")) },
  ], (v) => `${v.toFixed(0)} conn/s`);
}

// ---------------------------------------------------------------------------------------------
// main

const t0 = performance.now();
let exitCode = 0;
try {
  const want = (s: string) => !only || only.includes(s);
  if (want("throughput")) await throughput();
  if (want("conns")) {
    const echo = await startEcho(true);
    try {
      await conns(echo.port);
    } finally {
      await echo.proc.stop();
    }
  }
  if (want("idle")) await idle();
  if (want("udp")) await udpForward();
  if (want("chain")) await chainThroughput();
  if (want("limit")) await limitBench();
  if (want("ss")) await ssBench();
  if (want("transports")) await transportBench();
  if (want("aead")) await aeadBench();
  if (want("access")) {
    const echo = await startEcho(true);
    try {
      await accessBench(echo.port);
    } finally {
      await echo.proc.stop();
    }
  }
} catch (e) {
  console.error(`bench: ${e instanceof Error ? e.stack : e}`);
  exitCode = 1;
} finally {
  await stopAll();
  if (tmpDir) Deno.removeSync(tmpDir, { recursive: true });
}

const cores = navigator.hardwareConcurrency;
const header = `dost bench: deno ${Deno.version.deno}, ${cores} cores, loopback, ${
  ((performance.now() - t0) / 1000).toFixed(0)
} s${quick ? " (--quick)" : ""}; shared machine: numbers are noisy`;
const text = `${header}\n${report()}\n`;
console.log(`\n${text}`);
try {
  Deno.mkdirSync(`${ROOT}.bench`, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  Deno.writeTextFileSync(
    `${ROOT}.bench/bench-${stamp}.json`,
    JSON.stringify(
      { date: new Date().toISOString(), deno: Deno.version.deno, cores, quick, results },
      null,
      2,
    ),
  );
  Deno.writeTextFileSync(`${ROOT}.bench/last.txt`, text);
} catch { /* read-only checkout: the table above is the result */ }
Deno.exit(exitCode);

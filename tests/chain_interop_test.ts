/**
 * Chains against real peers and a bulk all-dost chain (issue 4's proofs):
 *   - dost → squid (HTTP CONNECT, Basic auth) → dante (SOCKS5, username auth) → origin;
 *   - dost → microsocks (no auth, and user/pass);
 *   - three all-dost hops (http, socks5, socks4a) moving 100 MB each way, checked by sha256.
 */
import { assertEquals, assertMatch, assertStringIncludes } from "./lib/assert.ts";
import {
  curl,
  freePort,
  IT,
  needs,
  sha256,
  startDost,
  startOrigin,
  waitForLog,
} from "./lib/harness.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A spawned peer process: stopped by its own pid, its stderr kept for failure messages. */
interface Peer {
  port: number;
  exited(): boolean;
  output(): string;
  stop(): Promise<void>;
}

function spawnPeer(cmd: string, args: string[], port: number, onStop?: () => void): Peer {
  const child = new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const dec = new TextDecoder();
  for (const s of [child.stdout, child.stderr]) {
    (async () => {
      for await (const chunk of s) text = (text + dec.decode(chunk)).slice(-8192);
    })().catch(() => {});
  }
  let exited = false;
  child.status.then(() => exited = true);
  const peer: Peer = {
    port,
    exited: () => exited,
    output: () => text,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const k = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 5000);
      await child.status;
      clearTimeout(k);
      onStop?.();
    },
  };
  return peer;
}

/**
 * Waits until 127.0.0.1:port is in LISTEN state (read from /proc/net/tcp, so no probe
 * connection reaches the peer), or throws with the peer's output when it exits or times out.
 */
async function waitListening(peer: Peer, name: string, ms = 20_000): Promise<void> {
  const want = `0100007F:${peer.port.toString(16).toUpperCase().padStart(4, "0")}`;
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (peer.exited()) throw new Error(`${name} exited:\n${peer.output()}`);
    for (const line of Deno.readTextFileSync("/proc/net/tcp").split("\n")) {
      const f = line.trim().split(/\s+/);
      if (f[1] === want && f[3] === "0A") return;
    }
    await sleep(50);
  }
  await peer.stop();
  throw new Error(`${name} not listening on ${peer.port} after ${ms} ms:\n${peer.output()}`);
}

async function run(cmd: string, args: string[], stdin?: string): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: exit ${out.code}: ${dec.decode(out.stderr)}`);
  }
  return dec.decode(out.stdout);
}

/**
 * squid on a free port requiring Basic auth (`user`/`pass`, via basic_ncsa_auth and an
 * `openssl passwd -apr1` htpasswd file), allowing CONNECT to any port from loopback.
 */
async function startSquid(user: string, pass: string): Promise<Peer> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "dost-squid-" });
  // squid started as root drops to its cache_effective_user: it must read and write here.
  await Deno.chmod(dir, 0o777);
  const hash = (await run("openssl", ["passwd", "-apr1", "-stdin"], `${pass}\n`)).trim();
  await Deno.writeTextFile(`${dir}/htpasswd`, `${user}:${hash}\n`, { mode: 0o644 });
  await Deno.writeTextFile(
    `${dir}/squid.conf`,
    [
      `http_port 127.0.0.1:${port}`,
      "pid_filename none",
      "cache deny all",
      `cache_log ${dir}/cache.log`,
      "access_log none",
      "cache_store_log none",
      `coredump_dir ${dir}`,
      "shutdown_lifetime 0 seconds",
      `auth_param basic program /usr/lib/squid/basic_ncsa_auth ${dir}/htpasswd`,
      "auth_param basic children 2",
      "acl authed proxy_auth REQUIRED",
      "acl lo src 127.0.0.0/8",
      "http_access allow lo authed",
      "http_access deny all",
      "",
    ].join("\n"),
  );
  const peer = spawnPeer(
    "squid",
    ["-N", "-f", `${dir}/squid.conf`],
    port,
    () => Deno.removeSync(dir, { recursive: true }),
  );
  await waitListening(peer, "squid");
  return peer;
}

/** dante on a free port with SOCKS5 username auth (checked against system users). */
async function startDanteUserAuth(): Promise<Peer> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "dost-dante-" });
  const conf = `${dir}/danted.conf`;
  await Deno.writeTextFile(
    conf,
    [
      "logoutput: stderr",
      `internal: 127.0.0.1 port = ${port}`,
      "external: 127.0.0.1",
      "clientmethod: none",
      "socksmethod: username",
      // Checking system passwords needs root's view of /etc/shadow.
      "user.privileged: root",
      "user.unprivileged: nobody",
      "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }",
      "socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 command: connect }",
      "",
    ].join("\n"),
  );
  const peer = spawnPeer(
    "danted",
    ["-f", conf, "-N", "1"],
    port,
    () => Deno.removeSync(dir, { recursive: true }),
  );
  await waitListening(peer, "danted");
  return peer;
}

/** A throwaway system user (dante's `username` method checks system passwords). */
async function makeSystemUser(): Promise<{ name: string; pass: string; remove(): Promise<void> }> {
  const name = `dosttest-${crypto.randomUUID().slice(0, 8)}`;
  const pass = `pw-${crypto.randomUUID().slice(0, 12)}`;
  await run("useradd", ["-M", "-s", "/usr/sbin/nologin", name]);
  try {
    await run("chpasswd", [], `${name}:${pass}\n`);
  } catch (e) {
    await run("userdel", [name]).catch(() => {});
    throw e;
  }
  return { name, pass, remove: () => run("userdel", [name]).then(() => {}) };
}

/** The squid/dante test creates a system user: it needs root as well as the peers. */
function needsRootAnd(...cmds: string[]): { ignore: boolean } {
  if (Deno.uid?.() === 0) return needs(...cmds);
  console.error("SKIP: needs root (creates a throwaway system user for dante)");
  return { ignore: true };
}

Deno.test({
  name: "chain interop: dost → squid (Basic auth) → dante (SOCKS5 username auth) → origin",
  ...IT,
  ...needsRootAnd("squid", "danted", "openssl", "useradd"),
  fn: async () => {
    const origin = startOrigin();
    const user = await makeSystemUser();
    const peers: Peer[] = [];
    const procs = [];
    try {
      const squid = await startSquid("sq-user", "sq:pw");
      peers.push(squid);
      const dante = await startDanteUserAuth();
      peers.push(dante);
      const [a, bad] = [freePort(), freePort()];
      const danteNode = `socks5://${user.name}:${user.pass}@127.0.0.1:${dante.port}`;
      procs.push(
        await startDost([
          "-L",
          `http://127.0.0.1:${a}`,
          "-F",
          `http://sq-user:sq%3Apw@127.0.0.1:${squid.port}`,
          "-F",
          danteNode,
        ]),
      );
      const r = await curl([
        "--proxy",
        `http://127.0.0.1:${a}`,
        `http://127.0.0.1:${origin.port}/x`,
      ]);
      assertEquals(r.stdout, "hello /x", `${r.stderr}\nsquid:\n${squid.output()}`);
      // Bulk through both peers: a 5 MB body arrives whole.
      const big = await curl([
        "--proxy",
        `http://127.0.0.1:${a}`,
        "-o",
        "/dev/null",
        "-w",
        "%{size_download}",
        `http://127.0.0.1:${origin.port}/big?n=5000000`,
      ]);
      assertEquals(big.stdout, "5000000", big.stderr);

      // A wrong squid password: squid answers 407 and dost names hop 1.
      const front = await startDost([
        "-L",
        `http://127.0.0.1:${bad}`,
        "-F",
        `http://sq-user:wrong@127.0.0.1:${squid.port}`,
        "-F",
        danteNode,
      ]);
      procs.push(front);
      const f = await curl([
        "--proxy",
        `http://127.0.0.1:${bad}`,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        `http://127.0.0.1:${origin.port}/x`,
      ]);
      assertEquals(f.stdout === "200", false, "a wrong squid password must not get through");
      await waitForLog(
        front,
        new RegExp(`hop 1 \\(http://127\\.0\\.0\\.1:${squid.port}\\): .*407`),
      );

      // A wrong dante password: squid's CONNECT works, dante refuses the login on hop 2.
      const bad2 = freePort();
      const front2 = await startDost([
        "-L",
        `http://127.0.0.1:${bad2}`,
        "-F",
        `http://sq-user:sq%3Apw@127.0.0.1:${squid.port}`,
        "-F",
        `socks5://${user.name}:wrong@127.0.0.1:${dante.port}`,
      ]);
      procs.push(front2);
      const f2 = await curl([
        "--proxy",
        `http://127.0.0.1:${bad2}`,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        `http://127.0.0.1:${origin.port}/x`,
      ]);
      assertEquals(f2.stdout === "200", false, "a wrong dante password must not get through");
      await waitForLog(
        front2,
        `hop 2 (socks5://127.0.0.1:${dante.port}): socks5: authentication failed`,
      );
    } finally {
      for (const p of procs) await p.stop();
      for (const p of peers) await p.stop();
      await user.remove();
      await origin.close();
    }
  },
});

Deno.test({
  name: "chain interop: dost → microsocks, without and with user/pass",
  ...IT,
  ...needs("microsocks"),
  fn: async () => {
    const origin = startOrigin();
    const peers: Peer[] = [];
    const procs = [];
    try {
      const mPort = freePort();
      const m = spawnPeer("microsocks", ["-i", "127.0.0.1", "-p", String(mPort)], mPort);
      peers.push(m);
      await waitListening(m, "microsocks");
      const maPort = freePort();
      const ma = spawnPeer(
        "microsocks",
        ["-i", "127.0.0.1", "-p", String(maPort), "-u", "muser", "-P", "m:pass"],
        maPort,
      );
      peers.push(ma);
      await waitListening(ma, "microsocks -u");

      const [a, b] = [freePort(), freePort()];
      procs.push(
        await startDost(["-L", `http://127.0.0.1:${a}`, "-F", `socks5://127.0.0.1:${mPort}`]),
      );
      procs.push(
        await startDost([
          "-L",
          `http://127.0.0.1:${b}`,
          "-F",
          `socks5://muser:m%3Apass@127.0.0.1:${maPort}`,
        ]),
      );
      const r = await curl([
        "--proxy",
        `http://127.0.0.1:${a}`,
        `http://127.0.0.1:${origin.port}/x`,
      ]);
      assertEquals(r.stdout, "hello /x", r.stderr);
      const r2 = await curl([
        "--proxy",
        `http://127.0.0.1:${b}`,
        `http://127.0.0.1:${origin.port}/auth`,
      ]);
      assertEquals(r2.stdout, "hello /auth", r2.stderr);
    } finally {
      for (const p of procs) await p.stop();
      for (const p of peers) await p.stop();
      await origin.close();
    }
  },
});

/** `n` deterministic pseudo-random bytes (xorshift32), so a failure is reproducible. */
function pseudoRandom(n: number, seed = 0x9e3779b9): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  const words = new Uint32Array(out.buffer, 0, n >>> 2);
  let x = seed;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  for (let i = words.length * 4; i < n; i++) out[i] = i;
  return out;
}

/**
 * An origin for bulk checks: `GET /blob` sends `blob`; `PUT /up` reads the whole body and
 * answers "<length> <sha256>".
 */
function startBlobOrigin(blob: Uint8Array<ArrayBuffer>): { port: number; close(): Promise<void> } {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    async (req) => {
      const url = new URL(req.url);
      if (url.pathname === "/blob") return new Response(blob);
      if (url.pathname === "/up" && req.body) {
        const body = new Uint8Array(Number(req.headers.get("content-length") ?? 0));
        let off = 0;
        for await (const chunk of req.body) {
          if (off + chunk.length > body.length) return new Response("too long", { status: 400 });
          body.set(chunk, off);
          off += chunk.length;
        }
        return new Response(`${off} ${await sha256(body.subarray(0, off))}`);
      }
      return new Response("not found", { status: 404 });
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

Deno.test({
  name: "chain: three all-dost hops (http, socks5, socks4a) move 100 MB each way byte-exact",
  ...IT,
  fn: async () => {
    const SIZE = 100 * 1024 * 1024;
    const blob = pseudoRandom(SIZE);
    const want = await sha256(blob);
    const origin = startBlobOrigin(blob);
    const dir = await Deno.makeTempDir({ prefix: "dost-chain-" });
    const [front, h, s5, s4] = [freePort(), freePort(), freePort(), freePort()];
    const procs = [];
    try {
      procs.push(await startDost(["-L", `http://u:p@127.0.0.1:${h}`]));
      procs.push(await startDost(["-L", `socks5://127.0.0.1:${s5}`]));
      procs.push(await startDost(["-L", `socks4://127.0.0.1:${s4}`]));
      procs.push(
        await startDost([
          "-L",
          `socks5://127.0.0.1:${front}`,
          "-F",
          `http://u:p@127.0.0.1:${h}`,
          "-F",
          `socks5://127.0.0.1:${s5}`,
          "-F",
          `socks4a://127.0.0.1:${s4}`,
        ]),
      );
      const proxy = ["--proxy", `socks5h://127.0.0.1:${front}`];

      // Download: the file curl wrote through the chain hashes to the origin's bytes.
      const down = `${dir}/down`;
      const d = await curl([...proxy, "-o", down, `http://localhost:${origin.port}/blob`]);
      assertEquals(d.code, 0, d.stderr);
      const got = await Deno.readFile(down);
      assertEquals(got.length, SIZE);
      assertEquals(await sha256(got), want);
      await Deno.remove(down);

      // Upload: the origin hashes the PUT body it received through the chain.
      const up = `${dir}/up`;
      await Deno.writeFile(up, blob);
      const u = await curl([
        ...proxy,
        "-H",
        "Expect:",
        "-T",
        up,
        `http://localhost:${origin.port}/up`,
      ]);
      assertMatch(u.stdout, /^\d+ [0-9a-f]{64}$/, u.stderr);
      assertEquals(u.stdout, `${SIZE} ${want}`);
      assertStringIncludes(procs[3].logs(), "listening on");
    } finally {
      for (const p of procs) await p.stop();
      await origin.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

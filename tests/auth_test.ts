/**
 * Auth sources end to end: real curl through dost http and socks5 services whose users come from
 * a secrets file (live reload, corrupt edits), a shared redis-server, and an HTTP auther plugin.
 */
import { assert, assertEquals } from "./lib/assert.ts";
import { curl, freePort, IT, needs, startDost, startOrigin, waitForLog } from "./lib/harness.ts";

/** curl through `proxy` (`http://u:p@h:p` or `socks5://…`) to the origin; code and body. */
async function via(proxy: string, originPort: number): Promise<[number, string]> {
  // -f: a 407 from the HTTP proxy is a failure (exit 22), not a page.
  const r = await curl(["-f", "--proxy", proxy, `http://127.0.0.1:${originPort}/x`]);
  return [r.code, r.stdout];
}

/** Polls `f` until it resolves true (reload periods are ≥ 1 s). */
async function eventually(f: () => Promise<boolean>, ms = 8000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (await f()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

const OK: [number, string] = [0, "hello /x"];

Deno.test({
  name: "auth: secrets file on http and socks5, live reload, corrupt edit keeps old users",
  ...IT,
  ignore: needs("curl").ignore,
  fn: async () => {
    const origin = startOrigin();
    const dir = await Deno.makeTempDir();
    const file = `${dir}/secrets.txt`;
    await Deno.writeTextFile(file, "# users\nreload 1s\n\nalice  s3cret\n\tbob\tpw2\n");
    const hp = freePort();
    const sp = freePort();
    const dost = await startDost([
      "-L",
      `http://127.0.0.1:${hp}?secrets=${file}`,
      "-L",
      `socks5://127.0.0.1:${sp}?secrets=${file}`,
    ]);
    try {
      const h = (u: string) => via(`http://${u}@127.0.0.1:${hp}`, origin.port);
      const s = (u: string) => via(`socks5://${u}@127.0.0.1:${sp}`, origin.port);
      assertEquals(await h("alice:s3cret"), OK);
      assertEquals(await s("alice:s3cret"), OK);
      assertEquals(await h("bob:pw2"), OK);
      assertEquals(await s("bob:pw2"), OK);
      // Wrong password, unknown user: HTTP answers 407 (curl exits 0 with an empty body after
      // the CONNECT-less request; check the code with -w), SOCKS5 refuses the sub-negotiation.
      for (const u of ["alice:wrong", "mallory:s3cret"]) {
        const r = await curl([
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          "--proxy",
          `http://${u}@127.0.0.1:${hp}`,
          `http://127.0.0.1:${origin.port}/x`,
        ]);
        assertEquals(r.stdout, "407", `http ${u}`);
        const [code] = await s(u);
        assert(code !== 0, `socks5 ${u} should fail`);
      }

      // Adding a user takes effect within the file's `reload 1s`, without a restart.
      await Deno.writeTextFile(file, "reload 1s\nalice s3cret\nbob pw2\ncarol pw3\n");
      assert(
        await eventually(async () => (await h("carol:pw3"))[0] === 0),
        "carol was never accepted after the edit",
      );
      assertEquals(await s("carol:pw3"), OK);

      // A corrupt edit (a line with three fields) is refused: the previous users stay.
      await Deno.writeTextFile(file, "reload 1s\nalice s3cret\ndave pw4 extra\n");
      await waitForLog(dost, /line 3: expected "user \[password\]".*keeping the previous data/);
      assertEquals(await h("carol:pw3"), OK);
      assert((await h("dave:pw4"))[0] !== 0, "dave came from a refused file");
      assertEquals(await s("bob:pw2"), OK);

      // So is a deleted file.
      await Deno.remove(file);
      await waitForLog(dost, /secrets\.txt: .*No such file.*keeping the previous data/i);
      assertEquals(await s("carol:pw3"), OK);
    } finally {
      await dost.stop();
      await origin.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "auth: a missing or corrupt secrets file fails at start-up",
  ...IT,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      for (const [name, text] of [["missing", undefined], ["bad", "a b c\n"]] as const) {
        const f = `${dir}/${name}`;
        if (text) await Deno.writeTextFile(f, text);
        const p = freePort();
        const r = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            "--unstable-net",
            "main.ts",
            "-L",
            `http://127.0.0.1:${p}?secrets=${f}`,
          ],
          cwd: new URL("../", import.meta.url).pathname,
          stdout: "null",
          stderr: "piped",
        }).output();
        const err = new TextDecoder().decode(r.stderr);
        assert(r.code !== 0, `${name}: dost should not start`);
        assert(err.includes(f), `${name}: error should name the file: ${err}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Runs redis-cli against the test server. */
async function redisCli(port: number, ...args: string[]): Promise<string> {
  const r = await new Deno.Command("redis-cli", {
    args: ["-h", "127.0.0.1", "-p", String(port), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) {
    throw new Error(`redis-cli ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
  }
  return new TextDecoder().decode(r.stdout).trim();
}

Deno.test({
  name: "auth: two dost processes share one redis user base",
  ...IT,
  ignore: needs("curl", "redis-server", "redis-cli").ignore,
  fn: async () => {
    const origin = startOrigin();
    const rp = freePort();
    const redis = new Deno.Command("redis-server", {
      args: ["--port", String(rp), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const dosts: Awaited<ReturnType<typeof startDost>>[] = [];
    try {
      assert(
        await eventually(async () => {
          try {
            return (await redisCli(rp, "PING")) === "PONG";
          } catch {
            return false;
          }
        }),
        "redis-server did not start",
      );
      await redisCli(rp, "HSET", "users:x", "alice", "s3cret");
      const ports = [freePort(), freePort()];
      const q = `auther.redis=127.0.0.1:${rp}&auther.redis.key=users:x&auther.reload=1s`;
      dosts.push(await startDost(["-L", `http://127.0.0.1:${ports[0]}?${q}`]));
      dosts.push(await startDost(["-L", `socks5://127.0.0.1:${ports[1]}?${q}`]));
      const proxies = [
        (u: string) => `http://${u}@127.0.0.1:${ports[0]}`,
        (u: string) => `socks5://${u}@127.0.0.1:${ports[1]}`,
      ];
      for (const p of proxies) {
        assertEquals(await via(p("alice:s3cret"), origin.port), OK);
        assert((await via(p("bob:pw"), origin.port))[0] !== 0, "bob is not a user yet");
      }
      await redisCli(rp, "HSET", "users:x", "bob", "pw");
      for (const p of proxies) {
        assert(
          await eventually(async () => (await via(p("bob:pw"), origin.port))[0] === 0),
          `bob never accepted by ${p("")}`,
        );
      }
      // Redis going away keeps the last users (and logs it).
      redis.kill("SIGKILL");
      await redis.status;
      await waitForLog(dosts[0], /redis 127\.0\.0\.1:\d+ users:x: .*keeping the previous users/);
      assertEquals(await via(proxies[0]("bob:pw"), origin.port), OK);
    } finally {
      for (const d of dosts) await d.stop();
      try {
        redis.kill("SIGKILL");
      } catch { /* already gone */ }
      await redis.status;
      await origin.close();
    }
  },
});

Deno.test({
  name: "auth: HTTP auther plugin decides per attempt; a dead plugin denies",
  ...IT,
  ignore: needs("curl").ignore,
  fn: async () => {
    const origin = startOrigin();
    const seen: Record<string, unknown>[] = [];
    const ac = new AbortController();
    const pp = freePort();
    const plugin = Deno.serve(
      { hostname: "127.0.0.1", port: pp, signal: ac.signal, onListen: () => {} },
      async (req) => {
        const b = await req.json();
        seen.push(b);
        return Response.json({ ok: b.username === "alice" && b.password === "s3cret", id: "x" });
      },
    );
    const hp = freePort();
    const sp = freePort();
    const q = `auther.plugin=http://127.0.0.1:${pp}/auth&auther.plugin.timeout=2s`;
    const dost = await startDost([
      "-L",
      `http://127.0.0.1:${hp}?${q}`,
      "-L",
      `socks5://127.0.0.1:${sp}?${q}`,
    ]);
    try {
      assertEquals(await via(`http://alice:s3cret@127.0.0.1:${hp}`, origin.port), OK);
      assertEquals(await via(`socks5://alice:s3cret@127.0.0.1:${sp}`, origin.port), OK);
      assert((await via(`socks5://alice:nope@127.0.0.1:${sp}`, origin.port))[0] !== 0);
      assert((await via(`socks5://bob:s3cret@127.0.0.1:${sp}`, origin.port))[0] !== 0);
      const first = seen[0];
      assertEquals([first.username, first.password], ["alice", "s3cret"]);
      assert(String(first.client).startsWith("127.0.0.1:"), `client: ${first.client}`);
      assert(typeof first.service === "string" && first.service !== "", "service name sent");
      assertEquals(seen.length, 4);
      // The plugin going away denies everybody (and logs why).
      ac.abort();
      await plugin.finished;
      assert((await via(`socks5://alice:s3cret@127.0.0.1:${sp}`, origin.port))[0] !== 0);
      await waitForLog(dost, /auther plugin http:\/\/127\.0\.0\.1:\d+\/auth: .*\(denying\)/);
    } finally {
      await dost.stop();
      ac.abort();
      await origin.close();
    }
  },
});

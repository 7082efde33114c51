/** Real peers started by tests: dante (danted) on a free loopback port. */
import { freeDualPort, freePort, until } from "./harness.ts";

/**
 * Starts danted on 127.0.0.1 with no authentication and every command the tests use
 * (connect, bind, udpassociate and their replies); stops it and removes its config on stop().
 */
export async function startDante(): Promise<{ port: number; stop(): Promise<void> }> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "dost-dante-" });
  const conf = `${dir}/danted.conf`;
  const root = Deno.uid?.() === 0;
  await Deno.writeTextFile(
    conf,
    [
      "logoutput: stderr",
      `internal: 127.0.0.1 port = ${port}`,
      "external: 127.0.0.1",
      "clientmethod: none",
      "socksmethod: none",
      ...(root ? ["user.privileged: root", "user.unprivileged: nobody"] : []),
      "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }",
      "socks pass { from: 0.0.0.0/0 to: 0.0.0.0/0 command: bind connect udpassociate bindreply udpreply }",
      "",
    ].join("\n"),
  );
  const child = new Deno.Command("danted", {
    args: ["-f", conf, "-N", "1"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return { port, stop };
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await stop();
  throw new Error("danted did not start");
}

/**
 * Starts a long-running peer program and waits until it accepts TCP on 127.0.0.1:`port`
 * (shadowsocks-libev's ss-server/ss-local, …); stop() kills it.
 */
export async function startPeer(
  cmd: string,
  args: string[],
  port: number,
): Promise<{ stop(): Promise<void>; output(): string }> {
  const child = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).spawn();
  let out = "";
  const dec = new TextDecoder();
  const collect = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s) out += dec.decode(c);
  };
  const done = Promise.all([collect(child.stdout), collect(child.stderr)]).catch(() => {});
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    await done;
  };
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return { stop, output: () => out };
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await stop();
  throw new Error(`${cmd} did not start listening on ${port}: ${out.slice(-400)}`);
}

/**
 * dnsmasq on a free 127.0.0.1 port (UDP and TCP) with only the given records (`--address=…`,
 * `--host-record=…`, …), logging every query it gets; resolves once it has started.
 */
export async function startDnsmasq(
  records: string[],
): Promise<{ port: number; logs(): string; stop(): Promise<void> }> {
  const port = freeDualPort();
  const child = new Deno.Command("dnsmasq", {
    args: [
      "-k",
      "-C",
      "/dev/null",
      "--no-resolv",
      "--no-hosts",
      "--listen-address=127.0.0.1",
      "--bind-interfaces",
      `--port=${port}`,
      ...records,
      "--local-ttl=60",
      "--log-queries",
      "--log-facility=-",
      "--pid-file=",
    ],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let text = "";
  const dec = new TextDecoder();
  const pump = async (st: ReadableStream<Uint8Array>) => {
    for await (const c of st) text += dec.decode(c);
  };
  const done = Promise.all([pump(child.stdout), pump(child.stderr)]).catch(() => {});
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    await done;
  };
  if (!(await until(() => text.includes("started"), 5000))) {
    await stop();
    throw new Error(`dnsmasq did not start:\n${text}`);
  }
  return { port, logs: () => text, stop };
}

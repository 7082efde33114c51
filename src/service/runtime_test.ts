import { assert, assertEquals } from "../../tests/lib/assert.ts";
import type { Config } from "../config/model.ts";
import type { Conn, Listener } from "../core/conn.ts";
import { Logger } from "../core/logger.ts";
import { track } from "../core/scope.ts";
import { type BuildFn, Runtime } from "./runtime.ts";
import { Service } from "./service.ts";

/** A listener that never yields a connection; accept rejects once closed. */
class IdleListener implements Listener {
  closed = false;
  private reject?: (e: Error) => void;
  readonly addr = { transport: "tcp", hostname: "127.0.0.1", port: 1 };
  accept(): Promise<Conn> {
    return new Promise((_r, reject) => this.reject = reject);
  }
  close(): void {
    this.closed = true;
    this.reject?.(new Deno.errors.BadResource("closed"));
  }
}

const svc = (name: string, port: number) => ({
  name,
  addr: `:${port}`,
  handler: { type: "http" },
  listener: { type: "tcp" },
});

/** A build function recording what it was asked for; `fail` names a service that cannot build. */
function fakeBuild(log: string[], state: { fail?: string; released: number; watchers: number }) {
  const build: BuildFn = (cfg, _src, only) => {
    log.push([...only].sort().join(","));
    if (state.fail && only.has(state.fail)) {
      return Promise.reject(new Error(`cannot build ${state.fail}`));
    }
    // A watcher opened during the build belongs to the build's scope.
    track({ close: () => state.watchers-- });
    state.watchers++;
    const services = (cfg.services ?? []).filter((s) => only.has(s.name)).map((s) =>
      new Service(
        s.name,
        new IdleListener(),
        { handle: () => Promise.resolve() },
        new Logger(s.name),
      )
    );
    return Promise.resolve({ services, release: () => state.released++ });
  };
  return build;
}

Deno.test("runtime: a reload rebuilds only changed and added services; failures restore", async () => {
  const calls: string[] = [];
  const state = { fail: undefined as string | undefined, released: 0, watchers: 0 };
  const rt = new Runtime(fakeBuild(calls, state), new Logger("test"));
  const v1: Config = { services: [svc("a", 1), svc("b", 2)] };
  await rt.start(v1, new Map());
  assertEquals(calls, ["a,b"]);
  const [a1, b1] = rt.services;
  const v2: Config = { services: [svc("a", 11), svc("b", 2), svc("c", 3)] };
  const res = await rt.reload(v2, new Map());
  assertEquals(res, { kept: ["b"], stopped: ["a"], started: ["a", "c"] });
  assertEquals(calls, ["a,b", "a,c"]);
  const byName = new Map(rt.services.map((s) => [s.name, s]));
  assert(byName.get("b") === b1, "b kept its Service object");
  assert(byName.get("a") !== a1, "a was rebuilt");
  assert((a1.listener as IdleListener).closed, "the old a stopped accepting");
  // Generation 1 still has b; nothing released yet.
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(state.released, 0);
  // Removing b frees generation 1 (its scope's watcher too).
  await rt.reload({ services: [svc("a", 11), svc("c", 3)] }, new Map());
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(state.released, 1);
  assertEquals(state.watchers, 1);
  // A config whose build fails: the error is thrown and the running set is as before.
  state.fail = "d";
  const before = rt.services.map((s) => s.name).sort();
  let err = "";
  await rt.reload({ services: [svc("a", 12), svc("d", 4)] }, new Map()).catch((e) =>
    err = e.message
  );
  assertEquals(err, "cannot build d");
  assertEquals(rt.services.map((s) => s.name).sort(), before);
  assertEquals(rt.config.services?.map((s) => s.addr), [":11", ":3"]);
  await rt.shutdown(100);
});

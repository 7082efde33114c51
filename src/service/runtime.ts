/**
 * The running set of services and its live reload. A reload compares the new config with what
 * runs, service by service (src/config/fingerprint.ts): unchanged services keep running with
 * their open connections; changed and removed ones stop accepting (their open connections run
 * to their end, as in gost); changed and added ones are built from the new config. The chains,
 * named objects and watchers a build opened form a *generation*, released once none of its
 * services is running or draining. If a build fails, the previous config is restored the same
 * way, so a bad config leaves the running set as it was.
 */
import type { Sources } from "../config/cli.ts";
import { serviceFingerprint } from "../config/fingerprint.ts";
import type { Config } from "../config/model.ts";
import { errMsg } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { Scope, withScope } from "../core/scope.ts";
import type { Service } from "./service.ts";

/** How often, and how far apart (ms), a rebuild waits for a port its predecessor still holds. */
const PORT_RETRIES = 40;
const PORT_RETRY_MS = 25;

/** Builds the services of `cfg` named in `only`, plus whatever they share (chains, …). */
export type BuildFn = (
  cfg: Config,
  sources: Sources,
  only: Set<string>,
) => Promise<{ services: Service[]; release: () => void }>;

/** What one reload did, by service name. */
export interface ReloadResult {
  kept: string[];
  stopped: string[];
  started: string[];
}

/** The objects one build opened, released when its last service is gone. */
class Generation {
  private live = 0;
  constructor(private readonly release: () => void, private readonly scope: Scope) {}
  hold(): void {
    this.live++;
  }
  drop(): void {
    if (--this.live > 0) return;
    try {
      this.release();
    } finally {
      this.scope.close();
    }
  }
}

interface Running {
  svc: Service;
  fp: string;
  gen: Generation;
}

/** The services of the current config, reloadable. */
export class Runtime {
  private readonly running = new Map<string, Running>();
  /** Stopped services whose connections are still open. */
  private readonly draining = new Set<Service>();
  private current: Config = {};
  private currentSources: Sources = new Map();
  /** Reloads run one at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(private readonly build: BuildFn, private readonly log: Logger) {}

  /** The running services. */
  get services(): Service[] {
    return [...this.running.values()].map((r) => r.svc);
  }

  /** The config the running set was built from. */
  get config(): Config {
    return this.current;
  }

  /** Builds and starts every service of `cfg`; throws (with nothing left open) on failure. */
  start(cfg: Config, sources: Sources): Promise<void> {
    return this.serial(async () => {
      await this.converge(cfg, sources);
    });
  }

  /**
   * Moves the running set to `cfg`. Throws the build error after restoring the previous config
   * (the running set is then what it was, apart from services that had to be rebuilt).
   */
  reload(cfg: Config, sources: Sources): Promise<ReloadResult> {
    return this.serial(async () => {
      const before = this.current, beforeSources = this.currentSources;
      try {
        return await this.converge(cfg, sources);
      } catch (e) {
        this.log.error(`reload: ${errMsg(e)}; restoring the previous configuration`);
        try {
          await this.converge(before, beforeSources);
        } catch (e2) {
          this.log.error(`reload: restoring the previous configuration failed: ${errMsg(e2)}`);
        }
        throw e;
      }
    });
  }

  /** Stops everything: no more accepts, open connections get `graceMs`, then are closed. */
  shutdown(graceMs: number): Promise<void> {
    this.stopped = true;
    return this.serial(async () => {
      const all = [...this.services, ...this.draining];
      await Promise.all(all.map((s) => s.shutdown(graceMs)));
    });
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const p = this.queue.then(f);
    this.queue = p.catch(() => {});
    return p;
  }

  private async converge(cfg: Config, sources: Sources): Promise<ReloadResult> {
    const res: ReloadResult = { kept: [], stopped: [], started: [] };
    const want = new Map<string, string>();
    for (const s of cfg.services ?? []) want.set(s.name, serviceFingerprint(cfg, s.name)!);
    for (const [name, r] of [...this.running]) {
      if (want.get(name) === r.fp) {
        res.kept.push(name);
        continue;
      }
      this.stop(name, r);
      res.stopped.push(name);
    }
    const toStart = new Set([...want.keys()].filter((n) => !this.running.has(n)));
    if (toStart.size && !this.stopped) {
      let built: Awaited<ReturnType<BuildFn>> | undefined;
      let scope = new Scope();
      // A listener just closed frees its port only once its pending accept has been cancelled,
      // a moment later: when a rebuilt service takes over its own port, retry briefly.
      for (let attempt = 0; !built; attempt++) {
        try {
          built = await withScope(scope, () => this.build(cfg, sources, toStart));
        } catch (e) {
          scope.close();
          const busy = (e as Error)?.cause instanceof Deno.errors.AddrInUse;
          if (!busy || res.stopped.length === 0 || attempt >= PORT_RETRIES) throw e;
          await new Promise((r) => setTimeout(r, PORT_RETRY_MS));
          scope = new Scope();
        }
      }
      const gen = new Generation(built.release, scope);
      gen.hold(); // released below once every service holds it
      for (const svc of built.services) {
        gen.hold();
        this.running.set(svc.name, { svc, fp: want.get(svc.name)!, gen });
        res.started.push(svc.name);
        svc.serve().catch((e) => this.log.error(`service ${svc.name}: ${errMsg(e)}`));
      }
      gen.drop();
    }
    this.current = cfg;
    this.currentSources = sources;
    return res;
  }

  /** Stops accepting on `name`; its connections run to their end, then its generation drops. */
  private stop(name: string, r: Running): void {
    this.running.delete(name);
    r.svc.close();
    this.draining.add(r.svc);
    void r.svc.drained().then(() => {
      this.draining.delete(r.svc);
      r.gen.drop();
    });
  }
}

/**
 * The program: flags → config model → services; signals; exit codes.
 * Errors in the command line or config print one `dost: …` line and exit 1.
 */
import { buildConfigFromCLI, type Sources } from "../config/cli.ts";
import { discoverConfig } from "../config/discover.ts";
import { loadConfig, mergeCLI } from "../config/load.ts";
import type { Config } from "../config/model.ts";
import { formatConfig } from "../config/output.ts";
import { ConfigError, errMsg } from "../core/errors.ts";
import { type Level, log, setLogLevel } from "../core/logger.ts";
import { buildServiceSet } from "../service/build.ts";
import { Runtime } from "../service/runtime.ts";
import { watchConfig } from "./reload.ts";
import { HELP, parseFlags } from "./flags.ts";
import { startProfiling } from "./profiling.ts";
import { versionLine } from "./version.ts";

/** How long open connections may finish after SIGINT/SIGTERM. */
const SHUTDOWN_GRACE_MS = 5000;

function fail(msg: string): number {
  console.error(`dost: ${msg}`);
  return 1;
}

/** gost's log levels onto dost's (dost has no fatal/panic level: those log errors only). */
function logLevel(level: string): Level {
  const l = level.toLowerCase();
  if (l === "warning") return "warn";
  if (l === "fatal" || l === "panic") return "error";
  return l as Level;
}

/** A config file found in gost's (and dost's) default places, when permissions allow looking. */
function defaultConfigFile(): string | undefined {
  // Without the permissions there is nothing to look at, and asking would make Deno prompt.
  const granted = (d: Deno.PermissionDescriptor) =>
    Deno.permissions.querySync(d).state === "granted";
  if (!granted({ name: "read" })) return undefined;
  try {
    const home = granted({ name: "env", variable: "HOME" }) ? Deno.env.get("HOME") : undefined;
    return discoverConfig(Deno.cwd(), home);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      return undefined; // without --allow-read/--allow-env there is nothing to discover
    }
    throw e;
  }
}

/** Runs dost with `args`; resolves with the exit code once every service has stopped. */
export async function run(args: string[]): Promise<number> {
  const runtime = new Runtime(buildServiceSet, log);
  let stopping = false;
  let file: string | undefined;
  let extraL: string[] = [], extraF: string[] = [];
  let cliLevel: Level | undefined;
  // Live reload: SIGHUP, or the config file changing on disk.
  const reload = async (why: string) => {
    if (stopping || file === undefined) return;
    const r = loadConfig(file);
    if (!r.errors.length && r.format === "v3") mergeCLI(r.config, extraL, extraF, r.sources);
    if (!r.errors.length && !r.config.services?.length) r.errors.push(`${file}: no services`);
    if (r.errors.length) {
      log.error(`${why}: ${file} rejected, the running services stay as they are:`);
      for (const e of r.errors) log.error(`  ${e}`);
      return;
    }
    if (cliLevel === undefined) {
      setLogLevel(r.debug ? "debug" : r.config.log?.level ? logLevel(r.config.log.level) : "info");
    }
    try {
      const res = await runtime.reload(r.config, r.sources);
      const list = (xs: string[]) => xs.length ? xs.join(", ") : "none";
      log.info(
        `${why}: reloaded ${file}: started ${list(res.started)}; stopped ${
          list(res.stopped)
        }; unchanged ${list(res.kept)}`,
      );
    } catch { /* logged by the runtime, which restored the previous services */ }
  };
  try {
    // As gost: without -C and -L, a config file in the usual places is used if there is one.
    const found = args.length === 0 ? defaultConfigFile() : undefined;
    if (args.length === 0 && !found) {
      console.log(HELP);
      return 0;
    }
    const flags = parseFlags(found ? ["-C", found] : args);
    if (flags.help) {
      console.log(HELP);
      return 0;
    }
    if (flags.V) {
      console.log(versionLine());
      return 0;
    }
    if (flags.DD) setLogLevel(cliLevel = "trace");
    else if (flags.D) setLogLevel(cliLevel = "debug");
    if (flags.M !== undefined) {
      throw new ConfigError(
        `-M ${flags.M}: SO_MARK is not supported yet (it needs the FFI socket layer, --allow-ffi)`,
      );
    }
    if (flags.I !== undefined) {
      throw new ConfigError(
        `-I ${flags.I}: binding to an interface is not supported yet (it needs the FFI socket layer, --allow-ffi)`,
      );
    }
    let sources: Sources = new Map();
    let cfg: Config;
    let fileDebug = false;
    file = flags.C ?? (flags.L.length === 0 ? defaultConfigFile() : undefined);
    if (file !== undefined) {
      const r = loadConfig(file);
      if (r.errors.length) {
        const more = r.errors.length > 1 ? ` (and ${r.errors.length - 1} more problem(s))` : "";
        throw new ConfigError(r.errors[0] + more);
      }
      ({ config: cfg, debug: fileDebug, sources } = r);
      // gost v2 files win over -L/-F (gost v2); gost v3 runs both (gost v3).
      if (r.format === "v3") {
        mergeCLI(cfg, flags.L, flags.F, sources);
        [extraL, extraF] = [flags.L, flags.F];
      }
      if (!cfg.services?.length) throw new ConfigError(`${file}: no services`);
      if (cfg.log?.level && !flags.D && !flags.DD) setLogLevel(logLevel(cfg.log.level));
      if (fileDebug && !flags.DD) setLogLevel("debug");
      log.info(`config loaded from ${file}`);
    } else {
      if (flags.L.length === 0) {
        throw new ConfigError(
          flags.F.length ? "-F needs at least one -L service to use the chain" : "no service (-L)",
        );
      }
      cfg = buildConfigFromCLI(flags.L, flags.F, sources);
    }
    if (flags.D || flags.DD || fileDebug) {
      cfg.log = { ...cfg.log, level: flags.DD ? "trace" : "debug" };
    }
    if (flags.P) cfg.profiling = { addr: flags.P };
    if (flags.O) {
      console.log(formatConfig(cfg, flags.O === "json" ? "json" : "yaml"));
      return 0;
    }
    // Listening before the services start: a SIGHUP right after "listening on" is not lost.
    Deno.addSignalListener("SIGHUP", () => {
      if (file !== undefined) void reload("SIGHUP");
      else log.info("SIGHUP: no config file to reload (services come from -L/-F)");
    });
    await runtime.start(cfg, sources);
    if (cfg.profiling) startProfiling(cfg.profiling.addr, () => runtime.services);
  } catch (e) {
    if (e instanceof ConfigError) return fail(e.message);
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      return fail(`missing permission: ${errMsg(e)}`);
    }
    throw e;
  }

  let finished!: (code: number) => void;
  const done = new Promise<number>((r) => finished = r);
  const watcher = file !== undefined
    ? watchConfig(file, () => void reload("config file changed"), log)
    : undefined;
  const stop = async (sig: string) => {
    if (stopping) Deno.exit(130); // a second signal: no more waiting
    stopping = true;
    watcher?.close();
    log.info(`${sig}: shutting down (open connections get ${SHUTDOWN_GRACE_MS / 1000}s)`);
    await runtime.shutdown(SHUTDOWN_GRACE_MS);
    finished(0);
  };
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => void stop(sig));
  }
  return await done;
}

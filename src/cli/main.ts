/**
 * The program: flags → config model → services; signals; exit codes.
 * Errors in the command line or config print one `dost: …` line and exit 1.
 */
import { stringify as toYAML } from "yaml";
import { buildConfigFromCLI, type Sources } from "../config/cli.ts";
import { loadConfigFile } from "../config/load.ts";
import type { Config } from "../config/model.ts";
import { ConfigError, errMsg } from "../core/errors.ts";
import { log, setLogLevel } from "../core/logger.ts";
import { buildServices } from "../service/build.ts";
import type { Service } from "../service/service.ts";
import { HELP, parseFlags } from "./flags.ts";
import { startProfiling } from "./profiling.ts";
import { versionLine } from "./version.ts";

/** How long open connections may finish after SIGINT/SIGTERM. */
const SHUTDOWN_GRACE_MS = 5000;

function fail(msg: string): number {
  console.error(`dost: ${msg}`);
  return 1;
}

/** Runs dost with `args`; resolves with the exit code once every service has stopped. */
export async function run(args: string[]): Promise<number> {
  if (args.length === 0) {
    console.log(HELP);
    return 0;
  }
  let services: Service[];
  try {
    const flags = parseFlags(args);
    if (flags.help) {
      console.log(HELP);
      return 0;
    }
    if (flags.V) {
      console.log(versionLine());
      return 0;
    }
    if (flags.DD) setLogLevel("trace");
    else if (flags.D) setLogLevel("debug");
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
    const sources: Sources = new Map();
    let cfg: Config;
    let fileDebug = false;
    if (flags.C !== undefined) {
      // As in gost v2, the file wins over -L/-F.
      ({ config: cfg, debug: fileDebug } = loadConfigFile(flags.C, sources));
      if (fileDebug && !flags.DD) setLogLevel("debug");
    } else {
      if (flags.L.length === 0) {
        throw new ConfigError(
          flags.F.length ? "-F needs at least one -L service to use the chain" : "no service (-L)",
        );
      }
      cfg = buildConfigFromCLI(flags.L, flags.F, sources);
    }
    if (flags.D || flags.DD || fileDebug) cfg.log = { level: flags.DD ? "trace" : "debug" };
    if (flags.P) cfg.profiling = { addr: flags.P };
    if (flags.O) {
      console.log(flags.O === "json" ? JSON.stringify(cfg, null, 2) : toYAML(cfg).trimEnd());
      return 0;
    }
    services = await buildServices(cfg, sources);
    if (cfg.profiling) startProfiling(cfg.profiling.addr, services);
  } catch (e) {
    if (e instanceof ConfigError) return fail(e.message);
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      return fail(`missing permission: ${errMsg(e)}`);
    }
    throw e;
  }

  let stopping = false;
  let finished!: (code: number) => void;
  const done = new Promise<number>((r) => finished = r);
  const stop = async (sig: string) => {
    if (stopping) Deno.exit(130); // a second signal: no more waiting
    stopping = true;
    log.info(`${sig}: shutting down (open connections get ${SHUTDOWN_GRACE_MS / 1000}s)`);
    await Promise.all(services.map((s) => s.shutdown(SHUTDOWN_GRACE_MS)));
    finished(0);
  };
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => void stop(sig));
  }
  // Accept loops end on shutdown; the exit waits for the grace period in stop().
  Promise.all(services.map((s) => s.serve())).then(() => {
    if (!stopping) finished(0);
  });
  return await done;
}

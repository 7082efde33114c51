/**
 * A small levelled logger writing one line per event to stderr:
 * `2026-11-24T14:40:36.123Z info  [service-0] message key=value`.
 */

export type Level = "error" | "warn" | "info" | "debug" | "trace";
const ORDER: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };
let current: Level = "info";
const enc = new TextEncoder();

/** Sets the global level (`-D` → debug, `-DD` → trace). */
export function setLogLevel(l: Level): void {
  current = l;
}

/** True when messages of level `l` are written. */
export function enabled(l: Level): boolean {
  return ORDER[l] <= ORDER[current];
}

function emit(level: Level, scope: string, msg: string, fields?: Record<string, unknown>) {
  if (!enabled(level)) return;
  let line = `${new Date().toISOString()} ${level.padEnd(5)} ${scope ? `[${scope}] ` : ""}${msg}`;
  if (fields) {
    for (const [k, v] of Object.entries(fields)) {
      if (v !== undefined) line += ` ${k}=${typeof v === "string" ? v : JSON.stringify(v)}`;
    }
  }
  try {
    Deno.stderr.writeSync(enc.encode(line + "\n"));
  } catch {
    // stderr closed: nowhere left to report
  }
}

/** A logger bound to a scope (service or component name). */
export class Logger {
  constructor(readonly scope = "") {}
  child(scope: string): Logger {
    return new Logger(this.scope ? `${this.scope}/${scope}` : scope);
  }
  error(msg: string, f?: Record<string, unknown>): void {
    emit("error", this.scope, msg, f);
  }
  warn(msg: string, f?: Record<string, unknown>): void {
    emit("warn", this.scope, msg, f);
  }
  info(msg: string, f?: Record<string, unknown>): void {
    emit("info", this.scope, msg, f);
  }
  debug(msg: string, f?: Record<string, unknown>): void {
    emit("debug", this.scope, msg, f);
  }
  trace(msg: string, f?: Record<string, unknown>): void {
    emit("trace", this.scope, msg, f);
  }
}

/** The process-wide root logger. */
export const log = new Logger();

/** Error types shared across modules, so handlers can map failures to protocol reply codes. */

/** A configuration or command-line error: printed as one `dost: …` line, exit code 1. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** A protocol violation by the peer (garbage, truncated or oversized input). */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}

/** The target or a hop could not be reached; `code` classifies it for reply codes. */
export class DialError extends Error {
  override name = "DialError";
  constructor(
    message: string,
    readonly code: "refused" | "unreachable" | "timeout" | "not-allowed" | "other",
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Classifies a Deno network error into a DialError code. */
export function classifyNetError(e: unknown): DialError["code"] {
  if (e instanceof DialError) return e.code;
  if (e instanceof Deno.errors.ConnectionRefused) return "refused";
  if (e instanceof Deno.errors.TimedOut) return "timeout";
  const msg = String((e as Error)?.message ?? e);
  if (/refused/i.test(msg)) return "refused";
  if (/timed? ?out/i.test(msg)) return "timeout";
  if (/unreachable|no route|failed to lookup|name or service|not known|resolve/i.test(msg)) {
    return "unreachable";
  }
  return "other";
}

/** The message of any thrown value. */
export function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

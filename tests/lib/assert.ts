/**
 * Minimal assertions (JSR's @std/assert is not reachable from our machines).
 */

function fmt(v: unknown): string {
  return Deno.inspect(v, { depth: 6, colors: false });
}

/** Deep equality via structural inspection. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  const a = fmt(actual);
  const e = fmt(expected);
  if (a !== e) {
    throw new Error(`${msg ? msg + ": " : ""}values differ\n  actual:   ${a}\n  expected: ${e}`);
  }
}

export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

export function assertStringIncludes(actual: string, expected: string, msg?: string): void {
  if (!actual.includes(expected)) {
    throw new Error(
      `${msg ? msg + ": " : ""}expected ${fmt(actual)} to include ${fmt(expected)}`,
    );
  }
}

export function assertMatch(actual: string, re: RegExp, msg?: string): void {
  if (!re.test(actual)) {
    throw new Error(`${msg ? msg + ": " : ""}expected ${fmt(actual)} to match ${re}`);
  }
}

// deno-lint-ignore no-explicit-any
type Ctor = new (...args: any[]) => Error;

/** Asserts `f` throws (optionally an instance of `cls` whose message includes `includes`). */
export function assertThrows(f: () => unknown, cls?: Ctor, includes?: string): Error {
  try {
    f();
  } catch (e) {
    checkError(e, cls, includes);
    return e as Error;
  }
  throw new Error("expected function to throw");
}

/** Async version of assertThrows. */
export async function assertRejects(
  f: () => Promise<unknown>,
  cls?: Ctor,
  includes?: string,
): Promise<Error> {
  try {
    await f();
  } catch (e) {
    checkError(e, cls, includes);
    return e as Error;
  }
  throw new Error("expected promise to reject");
}

function checkError(e: unknown, cls?: Ctor, includes?: string) {
  if (cls && !(e instanceof cls)) throw new Error(`expected ${cls.name}, got ${fmt(e)}`);
  if (includes && !String((e as Error)?.message).includes(includes)) {
    throw new Error(`expected error message to include ${fmt(includes)}, got ${fmt(e)}`);
  }
}

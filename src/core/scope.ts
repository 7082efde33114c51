/**
 * Resource scopes: the watchers, probes and refresh timers a service or chain opens while it is
 * built, released together when a config reload replaces or removes it. Modules register what
 * they open with `track()`; the builder runs each build inside `withScope()`, so no constructor
 * needs a scope parameter. Builds run one at a time (the runtime serialises them), which is what
 * makes the ambient scope safe.
 */

/** Anything that can be released. */
export interface Closable {
  close(): void;
}

/** A set of resources released together. */
export class Scope {
  private readonly items = new Set<Closable>();
  private closed = false;

  /** Adds `c`; a scope that is already closed closes it at once. */
  add(c: Closable): void {
    if (this.closed) c.close();
    else this.items.add(c);
  }

  /** Number of live resources (tests). */
  get size(): number {
    return this.items.size;
  }

  /** Releases every resource (errors are ignored: one bad close must not leak the rest). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.items) {
      try {
        c.close();
      } catch { /* already released */ }
    }
    this.items.clear();
  }
}

let current: Scope | undefined;

/** Registers `c` with the scope of the build under way (if any) and returns it. */
export function track<T extends Closable>(c: T): T {
  current?.add(c);
  return c;
}

/** Runs `f` with `scope` as the ambient scope for `track()`. */
export async function withScope<T>(scope: Scope, f: () => Promise<T> | T): Promise<T> {
  const prev = current;
  current = scope;
  try {
    return await f();
  } finally {
    current = prev;
  }
}

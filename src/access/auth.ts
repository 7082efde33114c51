/**
 * User authentication shared by every handler: inline users, `secrets=` files, Redis hashes,
 * HTTP user lists and the gost v3 HTTP auther plugin, all behind one async interface (the plugin
 * asks a server per attempt, so checks cannot be synchronous).
 *
 * Semantics follow gost: a user listed with an empty password is accepted with any password,
 * and an empty user base accepts nobody (gost v3; v2 accepted everybody, which fails open).
 */
import { track } from "../core/scope.ts";

/** What a handler knows about the attempt (sent to the HTTP plugin). */
export interface AuthInfo {
  /** Client address `host:port`. */
  client?: string;
  /** Service name. */
  service?: string;
}

/** Checks credentials. */
export interface Auther {
  /**
   * Resolves true when the user/password pair is accepted. Always `await` it: a bare call is a
   * Promise, which is truthy (the method was renamed from the synchronous `authenticate` so that
   * old call sites fail to compile instead of accepting everybody).
   */
  verify(user: string, password: string, info?: AuthInfo): Promise<boolean>;
  /** Stops reloading and closes connections (Redis). */
  close?(): void;
}

const enc = new TextEncoder();

/** Compares in time that depends only on the lengths, not on where the bytes differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = enc.encode(a);
  const y = enc.encode(b);
  const len = Math.max(x.length, y.length);
  let diff = x.length ^ y.length;
  for (let i = 0; i < len; i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** user → password; an empty password accepts any password (gost). */
export type UserTable = ReadonlyMap<string, string>;

/** Checks one pair against a table in constant time with respect to the password. */
export function checkTable(users: UserTable, user: string, password: string): boolean {
  const want = users.get(user);
  // Compare against a dummy when the user is unknown, so timing does not reveal user names.
  const same = constantTimeEqual(want ?? "\0no-such-user", password);
  return want !== undefined && (want === "" || same);
}

/** A fixed user table (inline `user:pass@` or config `auths`). */
export class StaticAuther implements Auther {
  private readonly users: Map<string, string>;
  constructor(users: Iterable<[string, string]>) {
    this.users = new Map(users);
  }
  verify(user: string, password: string): Promise<boolean> {
    return Promise.resolve(checkTable(this.users, user, password));
  }
}

/** A reloadable user table (file, Redis hash, HTTP list): the last good load, if any. */
export interface UserSource {
  /** The current table; undefined until the first successful load. */
  readonly users: UserTable | undefined;
  /** Stops reloading. */
  close(): void;
}

/** Accepts a user found in any of its sources (inline table first). */
export class TableAuther implements Auther {
  constructor(private readonly sources: (UserSource | { users: UserTable })[]) {}
  verify(user: string, password: string): Promise<boolean> {
    let ok = false;
    // Every source is checked (no early exit) so timing does not reveal which one matched.
    for (const s of this.sources) if (s.users && checkTable(s.users, user, password)) ok = true;
    return Promise.resolve(ok);
  }
  close(): void {
    for (const s of this.sources) if ("close" in s) s.close();
  }
}

/** Accepts when any member accepts (gost's auther group: `handler.authers`). */
export class AutherGroup implements Auther {
  constructor(readonly members: Auther[]) {}
  async verify(user: string, password: string, info?: AuthInfo): Promise<boolean> {
    for (const a of this.members) if (await a.verify(user, password, info)) return true;
    return false;
  }
  close(): void {
    for (const a of this.members) a.close?.();
  }
}

/**
 * A user table fetched by `load` (Redis, HTTP) at start and every `period` ms (≥ 1 s; 0 loads
 * once, as gost does without `reload`). A failed load keeps the last good table and logs one
 * line per distinct error.
 */
export class PolledUserSource implements UserSource {
  users: UserTable | undefined;
  private timer?: ReturnType<typeof setInterval>;
  private lastErr = "";
  private busy = false;
  private closed = false;
  /** Settles after the first load attempt (success or not). */
  readonly ready: Promise<void>;

  constructor(
    private readonly what: string,
    private readonly load: () => Promise<Map<string, string>>,
    period: number,
    private readonly log: { warn(m: string): void; info(m: string): void; debug(m: string): void },
    private readonly onClose?: () => void,
  ) {
    this.ready = this.refresh();
    track(this); // a reload that drops the service stops the refreshes
    if (period > 0) {
      this.timer = setInterval(() => void this.refresh(), Math.max(period, 1000));
      Deno.unrefTimer(this.timer);
    }
  }

  /** Loads once now (skipped while a load is running). */
  async refresh(): Promise<void> {
    if (this.busy || this.closed) return;
    this.busy = true;
    try {
      const users = await this.load();
      if (this.closed) return;
      this.users = users;
      if (this.lastErr) this.log.info(`${this.what}: loaded again (${users.size} user(s))`);
      else this.log.debug(`${this.what}: ${users.size} user(s)`);
      this.lastErr = "";
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (msg !== this.lastErr) {
        const keep = this.users ? "keeping the previous users" : "no users yet";
        this.log.warn(`${this.what}: ${msg} (${keep})`);
        this.lastErr = msg;
      }
    } finally {
      this.busy = false;
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.onClose?.();
  }
}

/**
 * User authentication shared by every handler. Inline credentials now; file, Redis and HTTP
 * plugin sources plug in behind the same interface.
 */

/** Checks credentials. */
export interface Auther {
  /** True when the user/password pair is accepted. */
  authenticate(user: string, password: string): boolean;
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

/** A fixed user table. */
export class StaticAuther implements Auther {
  private readonly users: Map<string, string>;
  constructor(users: Iterable<[string, string]>) {
    this.users = new Map(users);
  }
  authenticate(user: string, password: string): boolean {
    const want = this.users.get(user);
    // Compare against a dummy when the user is unknown, so timing does not reveal user names.
    return constantTimeEqual(want ?? "\0no-such-user", password) && want !== undefined;
  }
}

/** Deadlines for handshakes: a peer that stalls is cut off instead of holding a task forever. */
import { closeQuietly, type Conn } from "./conn.ts";
import { ProtocolError } from "./errors.ts";

/**
 * Runs `f` (which reads from `conn`); if it has not finished within `ms`, closes `conn` so the
 * pending read fails, and rejects with a ProtocolError saying `what` timed out. `ms <= 0` = none.
 */
export async function withDeadline<T>(
  conn: Conn,
  ms: number,
  what: string,
  f: () => Promise<T>,
): Promise<T> {
  if (ms <= 0) return await f();
  let timedOut = false;
  const t = setTimeout(() => {
    timedOut = true;
    closeQuietly(conn);
  }, ms);
  try {
    return await f();
  } catch (e) {
    if (timedOut) throw new ProtocolError(`${what} timed out after ${ms} ms`);
    throw e;
  } finally {
    clearTimeout(t);
  }
}

/**
 * A service: one listener feeding one handler. Accepts in a loop (one task per connection),
 * backs off exponentially (5 ms → 1 s) on accept errors such as EMFILE, and shuts down
 * gracefully: stop accepting, let open connections finish within a grace period, then close them.
 */
import { addrString, closeQuietly, type Conn, type Listener } from "../core/conn.ts";
import { errMsg, ProtocolError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import type { Handler } from "../registry.ts";
import type { ServiceLimits } from "../access/limiter/service.ts";

export class Service {
  private readonly active = new Set<Conn>();
  private closing = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly name: string,
    readonly listener: Listener,
    readonly handler: Handler,
    readonly log: Logger,
    /** Connection, request-rate and traffic limits; undefined costs nothing. */
    readonly limits?: ServiceLimits,
  ) {}

  /** Number of connections being handled. */
  get connections(): number {
    return this.active.size;
  }

  /** Runs the accept loop until close(). */
  async serve(): Promise<void> {
    this.log.info(`listening on ${addrString(this.listener.addr)}`);
    let backoff = 0;
    while (!this.closing) {
      let conn: Conn;
      try {
        conn = await this.listener.accept();
        backoff = 0;
      } catch (e) {
        if (this.closing || e instanceof Deno.errors.BadResource) break;
        backoff = backoff ? Math.min(backoff * 2, 1000) : 5;
        this.log.warn(`accept: ${errMsg(e)}; retrying in ${backoff} ms`);
        await new Promise((r) => setTimeout(r, backoff));
        continue;
      }
      this.handleOne(conn);
    }
  }

  private async handleOne(conn: Conn): Promise<void> {
    let release: (() => void) | undefined;
    if (this.limits) {
      // Over a limit: close before reading a byte, as gost does.
      const admitted = this.limits.admit(conn, this.log);
      if (!admitted) return closeQuietly(conn);
      conn = admitted.conn;
      release = admitted.release;
    }
    this.active.add(conn);
    const client = addrString(conn.remoteAddr);
    try {
      await this.handler.handle(conn, { log: this.log.child(client) });
    } catch (e) {
      // Handlers log what matters to an operator; this catches whatever escaped them.
      const what = e instanceof ProtocolError ? "protocol error" : "error";
      this.log.debug(`${client}: ${what}: ${errMsg(e)}`);
    } finally {
      closeQuietly(conn);
      release?.();
      this.active.delete(conn);
      if (this.active.size === 0) {
        for (const w of this.idleWaiters.splice(0)) w();
      }
    }
  }

  /** Stops accepting new connections. */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    closeQuietly(this.listener);
  }

  /** Resolves once no connection is open (after `close()`, once the last one ended). */
  drained(): Promise<void> {
    if (this.active.size === 0) return Promise.resolve();
    return new Promise<void>((r) => this.idleWaiters.push(r));
  }

  /** Stops accepting, waits up to `graceMs` for open connections, then closes the rest. */
  async shutdown(graceMs: number): Promise<void> {
    this.close();
    if (this.active.size > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((r) => this.idleWaiters.push(r)),
        new Promise<void>((r) => timer = setTimeout(r, graceMs)),
      ]);
      clearTimeout(timer);
    }
    for (const c of this.active) closeQuietly(c);
  }
}

/**
 * A listener built on another one whose connections need a handshake before they are usable
 * (TLS, a WebSocket upgrade, an smux session yielding many streams).
 *
 * The inner accept loop runs in the background; each accepted connection is upgraded in its own
 * task, so a slow or bad client never holds up the others. What an upgrade yields is queued for
 * `accept()`. A failed upgrade is logged with the peer's address and the raw connection closed;
 * the listener keeps serving.
 */
import { type Addr, addrString, closeQuietly, type Conn, type Listener } from "./conn.ts";
import { errMsg } from "./errors.ts";
import type { Logger } from "./logger.ts";

/**
 * Upgrades one raw connection. Calls `emit` for every ready connection (once for TLS/WebSocket,
 * once per stream for a mux session) and may keep running (a mux session's accept loop).
 */
export type Upgrade = (raw: Conn, emit: (c: Conn) => void) => Promise<void>;

type Waiter = { resolve: (c: Conn) => void; reject: (e: Error) => void };

export class UpgradeListener implements Listener {
  private readonly ready: Conn[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly raws = new Set<Conn>();
  private closed = false;
  private acceptErr: Error | undefined;

  /** `what` names the handshake in log lines ("tls handshake", "ws upgrade", …). */
  constructor(
    private readonly inner: Listener,
    private readonly upgrade: Upgrade,
    private readonly log: Logger,
    private readonly what: string,
  ) {
    this.loop();
  }

  get addr(): Addr {
    return this.inner.addr;
  }

  private async loop(): Promise<void> {
    let backoff = 0;
    while (!this.closed) {
      let raw: Conn;
      try {
        raw = await this.inner.accept();
        backoff = 0;
      } catch (e) {
        if (this.closed || e instanceof Deno.errors.BadResource) break;
        // Transient (e.g. EMFILE): tell one waiting accept(), then retry after a pause.
        const w = this.waiters.shift();
        if (w) w.reject(e as Error);
        else this.acceptErr = e as Error;
        backoff = backoff ? Math.min(backoff * 2, 1000) : 5;
        await new Promise((r) => setTimeout(r, backoff));
        continue;
      }
      this.serveOne(raw);
    }
    this.finish();
  }

  private async serveOne(raw: Conn): Promise<void> {
    this.raws.add(raw);
    const peer = addrString(safeAddr(raw));
    try {
      await this.upgrade(raw, (c) => {
        this.raws.delete(raw); // past its handshake: it ends with its own streams
        this.push(c);
      });
    } catch (e) {
      closeQuietly(raw);
      if (!this.closed) this.log.warn(`${peer}: ${this.what} failed: ${errMsg(e)}`);
    } finally {
      this.raws.delete(raw);
    }
  }

  private push(c: Conn): void {
    if (this.closed) return closeQuietly(c);
    const w = this.waiters.shift();
    if (w) w.resolve(c);
    else this.ready.push(c);
  }

  accept(): Promise<Conn> {
    const c = this.ready.shift();
    if (c) return Promise.resolve(c);
    if (this.acceptErr) {
      const e = this.acceptErr;
      this.acceptErr = undefined;
      return Promise.reject(e);
    }
    if (this.closed) return Promise.reject(new Deno.errors.BadResource("listener closed"));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeQuietly(this.inner);
    this.finish();
  }

  private finish(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) {
      w.reject(new Deno.errors.BadResource("listener closed"));
    }
    for (const c of this.ready.splice(0)) closeQuietly(c);
    // Connections still in their handshake go with the listener; an established mux session
    // lives on until its streams end (their handlers get the shutdown grace period).
    for (const r of this.raws) closeQuietly(r);
  }
}

function safeAddr(c: Conn): Addr | undefined {
  try {
    return c.remoteAddr;
  } catch {
    return undefined;
  }
}

/**
 * Redis access for the access-control sources (auth, and later bypass/admission/hosts…):
 * npm:ioredis, which runs cleanly under Deno's node compat (loaded on first use, and so needs
 * --allow-env only when a Redis source is configured). The client connects lazily, fails
 * fast instead of queueing commands while Redis is down (a refresh is simply retried on the next
 * period) and reconnects on its own.
 */
import type { Redis } from "ioredis";

// ioredis is imported on first use only: at load time it reads process.env (its debug module),
// which would make every dost need --allow-env even without a Redis source.
let ioredis: Promise<{ Redis: typeof Redis }> | undefined;

/** Where a Redis source reads (gost's `redis: {addr, db, username, password, key}`). */
export interface RedisOptions {
  /** `host:port`. */
  addr: string;
  db?: number;
  username?: string;
  password?: string;
  /** Per-command timeout in ms. */
  timeout?: number;
}

/** A small Redis client: the commands the sources need. */
export class RedisClient {
  private readonly client: Promise<Redis>;
  private r?: Redis;
  private closed = false;
  private readonly addr: string;

  constructor(o: RedisOptions) {
    this.addr = o.addr;
    const i = o.addr.lastIndexOf(":");
    const host = (i > 0 ? o.addr.slice(0, i) : o.addr).replace(/^\[|\]$/g, "") || "127.0.0.1";
    const port = i > 0 ? Number(o.addr.slice(i + 1)) : 6379;
    const lib = ioredis ??= import("ioredis");
    this.client = lib.then(({ Redis }) => {
      const r = new Redis({
        host,
        port,
        db: o.db ?? 0,
        username: o.username || undefined,
        password: o.password || undefined,
        lazyConnect: true,
        enableOfflineQueue: true,
        maxRetriesPerRequest: 0,
        connectTimeout: o.timeout ?? 5_000,
        commandTimeout: o.timeout ?? 5_000,
        // Reconnect quickly but not in a tight loop; errors surface through the commands.
        retryStrategy: (n: number) => Math.min(n * 200, 2_000),
      });
      // Without a listener, ioredis prints every connection error; the sources log them instead.
      r.on("error", () => {});
      this.r = r;
      if (this.closed) r.disconnect();
      return r;
    });
  }

  /** HGETALL key. */
  hgetall(key: string): Promise<Record<string, string>> {
    return this.run((r) => r.hgetall(key));
  }

  /** SMEMBERS key. */
  smembers(key: string): Promise<string[]> {
    return this.run((r) => r.smembers(key));
  }

  /** Runs a command; "max retries per request" (ioredis' word for "not connected") is renamed. */
  private async run<T>(f: (r: Redis) => Promise<T>): Promise<T> {
    try {
      return await f(await this.client);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (/max retries per request/i.test(msg)) throw new Error(`cannot reach ${this.addr}`);
      throw e;
    }
  }

  close(): void {
    this.closed = true;
    this.r?.disconnect();
  }
}

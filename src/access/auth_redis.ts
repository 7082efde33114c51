/**
 * Redis user source (gost v3 auther `redis`): the hash at `key` (default `gost`, as gost's
 * loader) maps user → password, read with HGETALL at start and every reload period, so many dost
 * instances share one user base.
 */
import type { Logger } from "../core/logger.ts";
import { PolledUserSource } from "./auth.ts";
import { RedisClient, type RedisOptions } from "./redis.ts";

/** gost's default key for Redis loaders. */
export const DEFAULT_REDIS_KEY = "gost";

/** Options of a Redis user source. */
export interface RedisUserOptions extends RedisOptions {
  key?: string;
  /** Refresh period in ms (0 = load once, as gost without `reload`). */
  reload: number;
}

/** Creates the polled source; await `.ready` for the first load. */
export function redisUserSource(o: RedisUserOptions, log: Logger): PolledUserSource {
  const client = new RedisClient(o);
  const key = o.key || DEFAULT_REDIS_KEY;
  return new PolledUserSource(
    `redis ${o.addr} ${key}`,
    async () => {
      const h = await client.hgetall(key);
      const users = new Map<string, string>();
      for (const [u, p] of Object.entries(h)) if (u.trim()) users.set(u.trim(), p.trim());
      return users;
    },
    o.reload,
    log,
    () => client.close(),
  );
}

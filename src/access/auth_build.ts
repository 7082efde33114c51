/**
 * Builds a service's auther from the config model: inline `user:pass@`, named gost v3
 * `authers` (`handler.auther` / `handler.authers`), and — until config files land — the same
 * sources given as node parameters (`secrets=`, `auther.*`, dost extensions mapped onto gost's
 * AutherConfig). A user accepted by any of them passes.
 */
import type { AuthConfig, AutherConfig } from "../config/model.ts";
import { type Params, parseDuration } from "../config/params.ts";
import { ConfigError, errMsg } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import {
  type Auther,
  AutherGroup,
  PolledUserSource,
  StaticAuther,
  TableAuther,
  type UserSource,
  type UserTable,
} from "./auth.ts";
import { FileUserSource } from "./auth_file.ts";
import { HttpPluginAuther, httpUserSource } from "./auth_http.ts";
import { redisUserSource } from "./auth_redis.ts";

/** A config duration: Go syntax string or seconds; undefined stays undefined. */
function duration(v: string | number | undefined, what: string): number | undefined {
  if (v === undefined || v === "") return undefined;
  const ms = typeof v === "number" ? v * 1000 : parseDuration(v);
  if (ms === undefined || ms < 0) throw new ConfigError(`${what}: invalid duration "${v}"`);
  return ms;
}

/**
 * Reads the auth node parameters into an AutherConfig (undefined when none is given):
 * `secrets` (gost v2) / `auther.file`, `auther.reload`, `auther.redis` (+ `.db`, `.username`,
 * `.password`, `.key`), `auther.http` (+ `.timeout`), `auther.plugin` (+ `.type`, `.timeout`).
 */
export function autherConfigFromParams(params: Params, name: string): AutherConfig | undefined {
  const file = params.str(["secrets", "auther.file"]);
  const reload = params.str("auther.reload");
  const redisAddr = params.str("auther.redis");
  const redis = {
    db: params.int("auther.redis.db", 0, 0, 1 << 16),
    username: params.str("auther.redis.username"),
    password: params.str("auther.redis.password"),
    key: params.str("auther.redis.key"),
  };
  const httpUrl = params.str("auther.http");
  const httpTimeout = params.str("auther.http.timeout");
  const pluginAddr = params.str("auther.plugin");
  const pluginType = params.str("auther.plugin.type", "http");
  const pluginTimeout = params.str("auther.plugin.timeout");
  if (file === undefined && !redisAddr && !httpUrl && !pluginAddr) {
    if (reload !== undefined) {
      throw new ConfigError(`${params.where}: auther.reload needs a source (secrets, auther.*)`);
    }
    return undefined;
  }
  return {
    name,
    reload,
    file: file !== undefined ? { path: file } : undefined,
    redis: redisAddr ? { addr: redisAddr, ...redis } : undefined,
    http: httpUrl ? { url: httpUrl, timeout: httpTimeout } : undefined,
    plugin: pluginAddr ? { type: pluginType, addr: pluginAddr, timeout: pluginTimeout } : undefined,
  };
}

/** Builds one gost v3 auther; awaits the first Redis/HTTP load (failures are logged, not fatal). */
export async function buildAuther(c: AutherConfig, log: Logger, where: string): Promise<Auther> {
  const at = `${where}: auther "${c.name}"`;
  if (c.plugin) {
    // As gost: a plugin replaces every other source of the auther.
    const type = c.plugin.type ?? "grpc";
    if (type !== "http") throw new ConfigError(`${at}: plugin type "${type}" is not supported yet`);
    if (!/^https?:\/\//i.test(c.plugin.addr)) {
      throw new ConfigError(`${at}: plugin addr "${c.plugin.addr}" is not an http(s) URL`);
    }
    const timeout = duration(c.plugin.timeout, `${at}: plugin timeout`) ?? 0;
    return new HttpPluginAuther(c.plugin.addr, timeout, log);
  }
  const reload = duration(c.reload, `${at}: reload`) ?? 0;
  const sources: (UserSource | { users: UserTable })[] = [];
  const inline = new Map<string, string>();
  for (const a of c.auths ?? []) if (a.username) inline.set(a.username, a.password ?? "");
  if (inline.size) sources.push({ users: inline });
  const polled: PolledUserSource[] = [];
  try {
    if (c.file?.path) {
      try {
        sources.push(new FileUserSource(c.file.path, log, reload));
      } catch (e) {
        throw new ConfigError(`${at}: secrets ${errMsg(e)}`);
      }
    }
    if (c.redis?.addr) {
      if (c.redis.type && c.redis.type !== "hash") {
        throw new ConfigError(`${at}: redis type "${c.redis.type}" (auther users are a hash)`);
      }
      polled.push(redisUserSource({ ...c.redis, reload }, log));
    }
    if (c.http?.url) {
      const timeout = duration(c.http.timeout, `${at}: http timeout`) ?? 0;
      polled.push(httpUserSource(c.http.url, timeout, reload, log));
    }
  } catch (e) {
    for (const s of [...sources, ...polled]) if ("close" in s) s.close();
    throw e;
  }
  await Promise.all(polled.map((p) => p.ready));
  return new TableAuther([...sources, ...polled]);
}

/**
 * The auther of one service: inline credentials, named authers and the auth parameters,
 * combined so that any of them may accept. Undefined when the service has no auth at all.
 */
export async function serviceAuther(o: {
  service: string;
  where: string;
  params: Params;
  auth?: AuthConfig;
  names: string[];
  authers: AutherConfig[];
  log: Logger;
}): Promise<Auther | undefined> {
  const members: Auther[] = [];
  if (o.auth) members.push(new StaticAuther([[o.auth.username, o.auth.password ?? ""]]));
  try {
    for (const n of o.names) {
      const c = o.authers.find((a) => a.name === n);
      if (!c) throw new ConfigError(`${o.where}: auther "${n}" is not defined`);
      members.push(await buildAuther(c, o.log, o.where));
    }
    const fromParams = autherConfigFromParams(o.params, `${o.service}/params`);
    if (fromParams) members.push(await buildAuther(fromParams, o.log, o.where));
  } catch (e) {
    for (const m of members) m.close?.();
    throw e;
  }
  if (members.length === 0) return undefined;
  return members.length === 1 ? members[0] : new AutherGroup(members);
}

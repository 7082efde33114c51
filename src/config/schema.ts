/**
 * The gost v3 config schema as data: every key gost knows (x/config/config.go), in gost's output
 * order, with the value type dost checks and converts, or marked "not supported yet" when dost
 * does not implement it. One table serves the loader (unknown keys are errors, known but
 * unimplemented ones fail clearly) and the printer (`-O`, same key order as gost).
 */
import { formatDuration, parseDuration } from "./params.ts";

/** How a value is checked and converted. */
export type Field =
  | { t: "str" }
  | { t: "int" }
  | { t: "bool" }
  /** A Go duration string (`30s`); a number is nanoseconds, as Go decodes it. */
  | { t: "dur" }
  /** A list of strings; a single string is split at commas, as viper does. */
  | { t: "strs" }
  | { t: "obj"; s: Schema }
  | { t: "list"; s: Schema }
  /** Free-form `key: value` parameters, kept as written. */
  | { t: "md" }
  /** Known to gost, not implemented by dost: using it is an error naming `what`. */
  | { t: "no"; what?: string };

/** Keys in gost's output order. */
export type Schema = Record<string, Field>;

const str: Field = { t: "str" };
const int: Field = { t: "int" };
const bool: Field = { t: "bool" };
const dur: Field = { t: "dur" };
const strs: Field = { t: "strs" };
const md: Field = { t: "md" };
const no = (what?: string): Field => ({ t: "no", what });
const obj = (s: Schema): Field => ({ t: "obj", s });
const list = (s: Schema): Field => ({ t: "list", s });

const AUTH: Schema = { username: str, password: str };
const TLS_OPTIONS: Schema = { minVersion: no(), maxVersion: no(), cipherSuites: no(), alpn: no() };
/** TLS of a listener or dialer: the file and name fields reach the module as parameters. */
const TLS: Schema = {
  certFile: str,
  keyFile: str,
  caFile: str,
  secure: bool,
  serverName: str,
  options: obj(TLS_OPTIONS),
  validity: no(),
  commonName: no(),
  organization: no(),
};
const SELECTOR: Schema = { strategy: str, maxFails: int, failTimeout: dur };
const FILE: Schema = { path: str };
const REDIS: Schema = {
  addr: str,
  db: int,
  username: str,
  password: str,
  key: str,
  type: str,
};
const HTTP_LOADER: Schema = { url: str, timeout: dur };
const PLUGIN: Schema = { type: str, addr: str, tls: no(), timeout: dur, token: str };
const SOURCES_NO = {
  redis: no("Redis sources"),
  http: no("HTTP sources"),
  plugin: no("plugins"),
};

const HANDLER: Schema = {
  type: str,
  retries: int,
  chain: str,
  chainGroup: no("chain groups"),
  auther: str,
  authers: strs,
  auth: obj(AUTH),
  tls: no("handler TLS"),
  limiter: no("handler limiters"),
  observer: no("observers"),
  metadata: md,
};

const LISTENER: Schema = {
  type: str,
  chain: str,
  chainGroup: no("chain groups"),
  auther: no("listener authers (ssh)"),
  authers: no("listener authers (ssh)"),
  auth: no("listener auth (ssh)"),
  tls: obj(TLS),
  metadata: md,
};

const FORWARD_NODE: Schema = {
  name: str,
  addr: str,
  host: no(),
  network: no(),
  protocol: no(),
  path: no(),
  bypass: no("forward node bypass"),
  bypasses: no("forward node bypass"),
  http: no(),
  tls: no(),
  auth: no(),
  filter: no(),
  matcher: no(),
  metadata: no("forward node metadata"),
};

const SERVICE: Schema = {
  name: str,
  addr: str,
  interface: no("interface (needs the FFI socket layer)"),
  sockopts: no("sockopts (needs the FFI socket layer)"),
  admission: str,
  admissions: strs,
  bypass: str,
  bypasses: strs,
  resolver: str,
  hosts: str,
  limiter: str,
  climiter: str,
  rlimiter: str,
  logger: no("loggers"),
  loggers: no("loggers"),
  observer: no("observers"),
  recorders: no("recorders"),
  quotas: no("quotas"),
  handler: obj(HANDLER),
  listener: obj(LISTENER),
  forwarder: obj({ name: str, selector: obj(SELECTOR), nodes: list(FORWARD_NODE) }),
  metadata: md,
  status: no("status (read-only API data)"),
};

const NODE: Schema = {
  name: str,
  addr: str,
  host: no(),
  network: no(),
  protocol: no(),
  path: no(),
  interface: no("interface (needs the FFI socket layer)"),
  netns: no(),
  sockopts: no("sockopts (needs the FFI socket layer)"),
  bypass: no("node bypass (use the hop's bypass)"),
  bypasses: no("node bypass (use the hop's bypass)"),
  resolver: no("node resolvers"),
  hosts: no("node hosts"),
  connector: obj({ type: str, auth: obj(AUTH), tls: no("connector TLS"), metadata: md }),
  // No dost dialer authenticates (gost's ssh dialers do): an auth here would be ignored.
  dialer: obj({ type: str, auth: no("dialer auth (ssh dialers)"), tls: obj(TLS), metadata: md }),
  http: no(),
  tls: no("node TLS"),
  auth: no("node auth"),
  metadata: md,
};

const HOP: Schema = {
  name: str,
  interface: no("interface (needs the FFI socket layer)"),
  sockopts: no("sockopts (needs the FFI socket layer)"),
  selector: obj(SELECTOR),
  bypass: str,
  bypasses: strs,
  resolver: no("hop resolvers"),
  hosts: no("hop hosts"),
  nodes: list(NODE),
  reload: no("hop node sources"),
  file: no("hop node files (use metadata peer: file)"),
  ...SOURCES_NO,
  metadata: md,
};

const MATCHERS: Schema = {
  name: str,
  reverse: bool,
  whitelist: bool,
  matchers: strs,
  reload: dur,
  file: obj(FILE),
  ...SOURCES_NO,
};

const LIMITER: Schema = {
  name: str,
  limits: strs,
  reload: no("limiter sources"),
  file: no("limiter files"),
  ...SOURCES_NO,
};

/** The whole file. */
export const CONFIG: Schema = {
  services: list(SERVICE),
  chains: list({ name: str, selector: obj(SELECTOR), hops: list(HOP), metadata: md }),
  hops: list(HOP),
  authers: list({
    name: str,
    auths: list(AUTH),
    reload: dur,
    file: obj(FILE),
    redis: obj(REDIS),
    http: obj(HTTP_LOADER),
    plugin: obj(PLUGIN),
  }),
  admissions: list(MATCHERS),
  bypasses: list(MATCHERS),
  resolvers: list({
    name: str,
    nameservers: list({
      addr: str,
      chain: no("resolving through a chain"),
      prefer: str,
      clientIP: no("ECS client IP"),
      hostname: no(),
      ttl: dur,
      timeout: dur,
      async: no(),
      only: no(),
    }),
    plugin: no("plugins"),
  }),
  hosts: list({
    name: str,
    mappings: list({ ip: str, hostname: str, aliases: strs }),
    reload: dur,
    file: obj(FILE),
    ...SOURCES_NO,
  }),
  ingresses: no("ingresses"),
  routers: no("routers"),
  sds: no("service discovery"),
  recorders: no("recorders"),
  rewriters: no("rewriters"),
  caches: no("caches"),
  limiters: list(LIMITER),
  quotas: no("quotas"),
  climiters: list(LIMITER),
  rlimiters: list(LIMITER),
  observers: no("observers"),
  loggers: no("loggers"),
  tls: no("a default TLS certificate (tls)"),
  log: obj({ output: str, level: str, format: str, rotation: no("log rotation") }),
  profiling: obj({ addr: str }),
  api: no("the Web API (api)"),
  metrics: no("Prometheus metrics (metrics)"),
};

/** One problem found in a file: where (`services[2].handler.type`) and what. */
export interface Issue {
  path: string;
  message: string;
}

const sub = (path: string, key: string) => (path ? `${path}.${key}` : key);

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Shortest nanosecond count Go would accept as a real duration (1 ms). */
const MIN_NANOS = 1_000_000;

function convert(v: unknown, f: Field, path: string, issues: Issue[]): unknown {
  const bad = (want: string) => {
    issues.push({ path, message: `want ${want}, got ${JSON.stringify(v)}` });
    return undefined;
  };
  switch (f.t) {
    case "str":
      // Weakly typed, as viper decodes: `password: 123456` is the string "123456".
      if (typeof v === "string") return v;
      if (typeof v === "number" || typeof v === "boolean") return String(v);
      return bad("a string");
    case "int":
      if (typeof v === "number" && Number.isInteger(v)) return v;
      if (typeof v === "string" && /^-?\d+$/.test(v.trim())) return Number(v.trim());
      return bad("a whole number");
    case "bool":
      if (typeof v === "boolean") return v;
      if (v === "true" || v === "false") return v === "true";
      return bad("true or false");
    case "dur": {
      if (typeof v === "number") {
        // Go reads a bare number into a time.Duration as nanoseconds (gost -O json writes
        // them so); a small one is surely a mistake, so it is refused rather than obeyed.
        if (!Number.isInteger(v) || (v !== 0 && v < MIN_NANOS)) {
          return bad(`a duration with a unit such as "30s" (a bare number is nanoseconds)`);
        }
        return formatDuration(v / 1e6);
      }
      // Go's time.ParseDuration: a unit is required except for "0".
      const unitless = typeof v === "string" && /^\d+(\.\d+)?$/.test(v.trim()) &&
        v.trim() !== "0";
      if (typeof v === "string" && parseDuration(v) !== undefined && !unitless) {
        return v.trim();
      }
      return bad(`a duration such as "30s"`);
    }
    case "strs": {
      if (typeof v === "string") return v.split(",").map((s) => s.trim()).filter(Boolean);
      if (!Array.isArray(v)) return bad("a list of strings");
      const out: string[] = [];
      v.forEach((x, i) => {
        const s = convert(x, str, `${path}[${i}]`, issues);
        if (s !== undefined) out.push(s as string);
      });
      return out;
    }
    case "md":
      if (!isMap(v)) return bad("a map of parameters");
      return { ...v };
    case "obj":
      if (!isMap(v)) return bad("a map");
      return normalize(v, f.s, path, issues);
    case "list": {
      if (!Array.isArray(v)) return bad("a list");
      return v.map((x, i) => {
        const p = `${path}[${i}]`;
        if (!isMap(x)) {
          issues.push({ path: p, message: `want a map, got ${JSON.stringify(x)}` });
          return {};
        }
        return normalize(x, f.s, p, issues);
      });
    }
    case "no":
      issues.push({ path, message: `${f.what ?? "this key"} is not supported yet` });
      return undefined;
  }
}

/**
 * Checks `v` against `schema` and returns a copy with gost's key spellings (input keys are
 * case-insensitive, as viper reads them) in gost's order. Problems are appended to `issues`;
 * null values count as absent.
 */
export function normalize(
  v: Record<string, unknown>,
  schema: Schema,
  path: string,
  issues: Issue[],
): Record<string, unknown> {
  const byLower = new Map(Object.keys(schema).map((k) => [k.toLowerCase(), k]));
  const found = new Map<string, unknown>();
  for (const [k, x] of Object.entries(v)) {
    const key = byLower.get(k.toLowerCase());
    if (!key) {
      issues.push({ path: sub(path, k), message: "unknown key" });
      continue;
    }
    if (found.has(key)) {
      issues.push({ path: sub(path, k), message: `given twice (as "${key}" too)` });
      continue;
    }
    found.set(key, x);
  }
  const out: Record<string, unknown> = {};
  for (const [key, f] of Object.entries(schema)) {
    if (!found.has(key)) continue;
    const x = found.get(key);
    if (x === null || x === undefined) continue;
    const c = convert(x, f, sub(path, key), issues);
    if (c !== undefined) out[key] = c;
  }
  return out;
}

/**
 * A copy of a model object with its keys in gost's order and empty values left out (for `-O`).
 * Metadata maps keep their own order.
 */
export function ordered(
  v: Record<string, unknown>,
  schema: Schema = CONFIG,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const keys = [...Object.keys(schema), ...Object.keys(v).filter((k) => !(k in schema))];
  for (const k of keys) {
    const x = v[k];
    if (x === undefined || x === null) continue;
    const f = schema[k];
    if (f?.t === "obj" && isMap(x)) out[k] = ordered(x, f.s);
    else if (f?.t === "list" && Array.isArray(x)) {
      out[k] = x.map((e) => (isMap(e) ? ordered(e, f.s) : e));
    } else if (f?.t === "md" && isMap(x)) {
      if (Object.keys(x).length) out[k] = { ...x };
    } else out[k] = x;
  }
  return out;
}

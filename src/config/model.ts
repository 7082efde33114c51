/**
 * The configuration model: gost v3's config schema (same key names), built from the command
 * line, from gost v2 JSON and from gost v3 YAML/JSON files, so there is one path from config to
 * running services. Only what dost implements has a field here; src/config/schema.ts lists the
 * rest of gost's keys so that using one fails with "not supported yet".
 */

/** Inline credentials. */
export interface AuthConfig {
  username: string;
  password?: string;
}

/** Metadata: gost's free-form `key: value` parameters. */
export type Metadata = Record<string, unknown>;

export interface HandlerConfig {
  type: string;
  auth?: AuthConfig;
  /** Name of an entry of `authers`. */
  auther?: string;
  /** Names of `authers` entries; a user accepted by any of them passes. */
  authers?: string[];
  chain?: string;
  retries?: number;
  metadata?: Metadata;
}

export interface ListenerConfig {
  type: string;
  chain?: string;
  /** gost's TLS settings; handed to the listener as the parameters of the same names. */
  tls?: TLSConfig;
  metadata?: Metadata;
}

/** gost v3 TLSConfig (the fields dost passes on as parameters). */
export interface TLSConfig {
  certFile?: string;
  keyFile?: string;
  caFile?: string;
  secure?: boolean;
  serverName?: string;
}

export interface ForwardNodeConfig {
  name: string;
  addr: string;
}

/** Node selection of a hop or forwarder (gost v3 `selector`). */
export interface SelectorConfig {
  /** round (default) | rand(om) | fifo | hash. */
  strategy: string;
  maxFails: number;
  /** Go duration string (`30s`) or seconds. */
  failTimeout: string | number;
}

export interface ForwarderConfig {
  name?: string;
  selector?: SelectorConfig;
  nodes: ForwardNodeConfig[];
}

export interface ServiceConfig {
  name: string;
  addr: string;
  /** Names of `admissions` entries: a client any of them refuses is closed. */
  admission?: string;
  admissions?: string[];
  /** Names of `bypasses` entries: a target any of them contains is refused. */
  bypass?: string;
  bypasses?: string[];
  /** Name of a `resolvers` entry. */
  resolver?: string;
  /** Name of a `hosts` entry. */
  hosts?: string;
  /** Names of a `limiters` (traffic), `climiters` and `rlimiters` entry. */
  limiter?: string;
  climiter?: string;
  rlimiter?: string;
  handler: HandlerConfig;
  listener: ListenerConfig;
  forwarder?: ForwarderConfig;
  metadata?: Metadata;
}

export interface ConnectorConfig {
  type: string;
  auth?: AuthConfig;
  metadata?: Metadata;
}

export interface DialerConfig {
  type: string;
  auth?: AuthConfig;
  tls?: TLSConfig;
  metadata?: Metadata;
}

export interface NodeConfig {
  name: string;
  addr: string;
  connector: ConnectorConfig;
  dialer: DialerConfig;
  metadata?: Metadata;
}

export interface HopConfig {
  name: string;
  selector?: SelectorConfig;
  /** Names of `bypasses` entries: a target any of them contains skips this hop and later ones. */
  bypass?: string;
  bypasses?: string[];
  /** Empty in a chain: the hop is the top-level `hops` entry of the same name. */
  nodes: NodeConfig[];
  metadata?: Metadata;
}

export interface ChainConfig {
  name: string;
  /** Default selector of the hops that have none (gost's documented chain-level selector). */
  selector?: SelectorConfig;
  hops: HopConfig[];
  metadata?: Metadata;
}

export interface LogConfig {
  /** Only `stderr` (the default). */
  output?: string;
  /** trace | debug | info | warn | error | fatal. */
  level?: string;
  /** Only `text`. */
  format?: string;
}

/** Process-wide options that have no v3 config key (gost v2's -M / -I / -P). */
export interface ProfilingConfig {
  addr: string;
}

/** A named user base (gost v3 `authers`): inline users plus file, Redis, HTTP or plugin. */
export interface AutherConfig {
  name: string;
  auths?: AuthConfig[];
  /** Refresh period of the file/redis/http sources: Go duration string or seconds. */
  reload?: string | number;
  file?: { path: string };
  /** A hash of user → password at `key` (default `gost`). */
  redis?: {
    addr: string;
    db?: number;
    username?: string;
    password?: string;
    key?: string;
    type?: string;
  };
  /** GET returning a `user password` list. */
  http?: { url: string; timeout?: string | number };
  /** Asked per attempt; replaces the other sources. Only `type: http` is supported. */
  plugin?: { type?: string; addr: string; timeout?: string | number; token?: string };
}

/** A named bypass or admission: address patterns inline and/or from a file. */
export interface MatcherConfig {
  name: string;
  /** DEPRECATED in gost by `whitelist`; same meaning. */
  reverse?: boolean;
  whitelist?: boolean;
  matchers?: string[];
  /** How often the file is checked (Go duration); its own `reload` line wins. */
  reload?: string;
  file?: { path: string };
}

/** A nameserver of a resolver. */
export interface NameserverConfig {
  addr: string;
  prefer?: string;
  ttl?: string;
  timeout?: string;
}

export interface ResolverConfig {
  name: string;
  nameservers: NameserverConfig[];
}

export interface HostMappingConfig {
  ip: string;
  hostname: string;
  aliases?: string[];
}

export interface HostsConfig {
  name: string;
  mappings?: HostMappingConfig[];
  reload?: string;
  file?: { path: string };
}

/** A named traffic, connection or request-rate limiter: gost limit lines (`$ 100MB 100MB`). */
export interface LimiterConfig {
  name: string;
  limits: string[];
}

/** The whole configuration (top-level keys in gost's output order). */
export interface Config {
  services?: ServiceConfig[];
  chains?: ChainConfig[];
  /** Hops that chains refer to by name. */
  hops?: HopConfig[];
  authers?: AutherConfig[];
  admissions?: MatcherConfig[];
  bypasses?: MatcherConfig[];
  resolvers?: ResolverConfig[];
  hosts?: HostsConfig[];
  limiters?: LimiterConfig[];
  climiters?: LimiterConfig[];
  rlimiters?: LimiterConfig[];
  log?: LogConfig;
  profiling?: ProfilingConfig;
}

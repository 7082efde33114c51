/**
 * The configuration model: gost v3's config schema (same key names), built from the command
 * line now and from gost v2/v3 files later, so there is one path from config to running services.
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
  metadata?: Metadata;
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
  selector?: SelectorConfig;
  nodes: ForwardNodeConfig[];
}

export interface ServiceConfig {
  name: string;
  addr: string;
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
  nodes: NodeConfig[];
  metadata?: Metadata;
}

export interface ChainConfig {
  name: string;
  hops: HopConfig[];
  metadata?: Metadata;
}

export interface LogConfig {
  level?: string;
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

/** The whole configuration. */
export interface Config {
  services?: ServiceConfig[];
  authers?: AutherConfig[];
  chains?: ChainConfig[];
  log?: LogConfig;
  profiling?: ProfilingConfig;
}

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

/** The whole configuration. */
export interface Config {
  services?: ServiceConfig[];
  chains?: ChainConfig[];
  log?: LogConfig;
  profiling?: ProfilingConfig;
}

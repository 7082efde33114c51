/**
 * gost v2 JSON configuration (`-C gost.json`): `Debug`, `ServeNodes`, `ChainNodes`, `Retries`,
 * `Mark`, `Interface` and `Routes[]`, each route with its own services and its own chain. Every
 * route goes through the command-line builder, so a v2 file means exactly what the same
 * `-L`/`-F` flags mean.
 */
import { ConfigError } from "../core/errors.ts";
import { buildConfigFromCLI, type Sources } from "./cli.ts";
import type { Config } from "./model.ts";

/** Appends every list of `part` to the same list of `into` (gost's mergeConfig). */
export function mergeConfig(into: Config, part: Config): void {
  for (const [k, v] of Object.entries(part) as [keyof Config, unknown][]) {
    if (!Array.isArray(v)) continue;
    const list = ((into as Record<string, unknown[]>)[k] ??= []);
    list.push(...v);
  }
}

const ROUTE_KEYS = new Set(["ServeNodes", "ChainNodes", "Retries", "Mark", "Interface"]);
const TOP_KEYS = new Set([...ROUTE_KEYS, "Debug", "Routes"]);

/** True when parsed JSON looks like a gost v2 config (its keys are capitalised). */
export function isV2Config(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) &&
    ["ServeNodes", "ChainNodes", "Routes"].some((k) => k in v);
}

function strings(v: unknown, where: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
    throw new ConfigError(`${where}: want a list of node URLs`);
  }
  return v as string[];
}

/** Builds the config model from a parsed v2 file; `file` names it in errors. */
export function configFromV2(
  v: Record<string, unknown>,
  file: string,
  sources: Sources = new Map(),
): { config: Config; debug: boolean } {
  const config: Config = { services: [], chains: [] };
  const routes: [Record<string, unknown>, string][] = [];
  for (const k of Object.keys(v)) {
    if (!TOP_KEYS.has(k)) throw new ConfigError(`${file}: unknown key "${k}"`);
  }
  if (v.Debug !== undefined && typeof v.Debug !== "boolean") {
    throw new ConfigError(`${file}: Debug: want true or false`);
  }
  routes.push([v, file]);
  if (v.Routes !== undefined) {
    if (!Array.isArray(v.Routes)) throw new ConfigError(`${file}: Routes: want a list`);
    v.Routes.forEach((r, i) => {
      const where = `${file}: Routes[${i}]`;
      if (typeof r !== "object" || r === null || Array.isArray(r)) {
        throw new ConfigError(`${where}: want an object`);
      }
      for (const k of Object.keys(r)) {
        if (!ROUTE_KEYS.has(k)) throw new ConfigError(`${where}: unknown key "${k}"`);
      }
      routes.push([r as Record<string, unknown>, where]);
    });
  }
  for (const [r, where] of routes) {
    const serves = strings(r.ServeNodes, `${where}: ServeNodes`);
    const forwards = strings(r.ChainNodes, `${where}: ChainNodes`);
    if (r.Mark) throw new ConfigError(`${where}: Mark (SO_MARK) is not supported yet`);
    if (r.Interface) throw new ConfigError(`${where}: Interface is not supported yet`);
    const retries = r.Retries ?? 0;
    if (typeof retries !== "number" || !Number.isInteger(retries) || retries < 0) {
      throw new ConfigError(`${where}: Retries: want a whole number`);
    }
    if (serves.length === 0) {
      if (forwards.length && where !== file) {
        throw new ConfigError(`${where}: ChainNodes without ServeNodes`);
      }
      continue;
    }
    const part = buildConfigFromCLI(serves, forwards, sources, {
      chainName: `chain-${config.chains!.length}`,
      firstService: config.services!.length,
      retries,
      base: config,
    });
    mergeConfig(config, part);
  }
  if (config.services!.length === 0) throw new ConfigError(`${file}: no ServeNodes`);
  if (config.chains!.length === 0) delete config.chains;
  return { config, debug: v.Debug === true };
}

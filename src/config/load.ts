/**
 * `-C file` (and discovered files): reads a configuration file and builds the model. The format
 * is found from the content: JSON with gost v2's `ServeNodes`/`ChainNodes`/`Routes` is a v2
 * file; anything else is gost v3, as JSON (starts with `{`) or YAML.
 *
 * Loading has no side effects (no logging, no global state, nothing opened), so it can be
 * called again on the same file, e.g. to reload it, and returns a fresh model each time.
 */
import { parseDocument } from "yaml";
import { ConfigError, errMsg } from "../core/errors.ts";
import { buildConfigFromCLI, type Sources } from "./cli.ts";
import type { Config } from "./model.ts";
import { configFromV2, isV2Config, mergeConfig } from "./v2.ts";
import { configFromV3 } from "./v3.ts";

/** What loading a file gave. */
export interface LoadResult {
  /** The model; use it only when `errors` is empty. */
  config: Config;
  /** Problems, one line each, naming the file and the path inside it. */
  errors: string[];
  /** Where each service and node came from, for errors found while building them. */
  sources: Sources;
  /** gost v2 `Debug: true`. */
  debug: boolean;
  /** What the file was read as. */
  format?: "v2" | "v3";
}

/** Parses the text of `file` (YAML or JSON); throws a one-line error with the position. */
export function parseConfigText(text: string, file: string): unknown {
  if (text.trimStart().startsWith("{")) {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new ConfigError(`${file}: invalid JSON: ${errMsg(e)}`);
    }
  }
  // Merge keys (`<<: *base`) as Go's yaml.v3 reads them.
  const doc = parseDocument(text, { uniqueKeys: true, merge: true });
  const err = doc.errors[0];
  if (err) {
    const pos = err.linePos?.[0];
    const msg = err.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
    throw new ConfigError(
      `${file}:${pos ? `${pos.line}:${pos.col}` : ""} invalid YAML: ${msg}`,
    );
  }
  return doc.toJS();
}

/**
 * Loads `path`, or the JSON text itself when `path` is `{…}` (gost's inline `-C '{…}'`); never
 * throws (problems are in `errors`).
 */
export function loadConfig(path: string): LoadResult {
  const sources: Sources = new Map();
  const result: LoadResult = { config: {}, errors: [], sources, debug: false };
  let text: string;
  const inline = path.trim().startsWith("{") && path.trim().endsWith("}");
  if (inline) {
    text = path;
    path = "-C {…}";
  } else {
    try {
      text = Deno.readTextFileSync(path);
    } catch (e) {
      result.errors.push(
        e instanceof Deno.errors.NotCapable
          ? `-C "${path}": reading it needs --allow-read`
          : `-C "${path}": ${errMsg(e)}`,
      );
      return result;
    }
  }
  try {
    const raw = parseConfigText(text, path);
    if (isV2Config(raw)) {
      result.format = "v2";
      const v2 = configFromV2(raw, path, sources);
      result.config = v2.config;
      result.debug = v2.debug;
      return result;
    }
    result.format = "v3";
    const v3 = configFromV3(raw, path, sources);
    result.config = v3.config;
    result.errors.push(...v3.issues.map((i) => `${path}: ${i.path}: ${i.message}`));
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    result.errors.push(e.message);
  }
  return result;
}

/** Loads `path` into `sources`; throws a ConfigError with the first problem. */
export function loadConfigFile(path: string, sources: Sources): { config: Config; debug: boolean } {
  const r = loadConfig(path);
  if (r.errors.length) {
    const more = r.errors.length > 1 ? ` (and ${r.errors.length - 1} more problem(s))` : "";
    throw new ConfigError(r.errors[0] + more);
  }
  for (const [k, v] of r.sources) sources.set(k, v);
  return { config: r.config, debug: r.debug };
}

/** The first `<prefix>-N` not in `used`. */
function freeName(prefix: string, used: Set<string>): string {
  let n = 0;
  while (used.has(`${prefix}-${n}`)) n++;
  return `${prefix}-${n}`;
}

/**
 * gost v3 runs a file's services and the `-L`/`-F` ones together: the command line's are
 * appended to `cfg`, numbered after the file's, their named objects under free names.
 * Throws a ConfigError when a name is taken anyway.
 */
export function mergeCLI(cfg: Config, L: string[], F: string[], sources: Sources): void {
  if (!L.length) {
    if (F.length) throw new ConfigError("-F needs at least one -L service to use the chain");
    return;
  }
  const chains = new Set((cfg.chains ?? []).map((c) => c.name));
  const services = new Set((cfg.services ?? []).map((s) => s.name));
  const cli = buildConfigFromCLI(L, F, sources, {
    chainName: freeName("chain", chains),
    firstService: cfg.services?.length ?? 0,
    base: cfg,
  });
  for (const s of cli.services ?? []) {
    if (services.has(s.name)) {
      throw new ConfigError(`${sources.get(s)}: service name "${s.name}" is taken by the file`);
    }
  }
  mergeConfig(cfg, cli);
}

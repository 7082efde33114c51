/**
 * `-C file`: reads a configuration file and builds the model. gost v2 JSON is understood;
 * gost v3 YAML/JSON files are recognised and refused with a clear line until they are supported.
 */
import { ConfigError, errMsg } from "../core/errors.ts";
import type { Sources } from "./cli.ts";
import type { Config } from "./model.ts";
import { configFromV2, isV2Config } from "./v2.ts";

/** Loads `path`; throws a ConfigError naming the file and the problem. */
export function loadConfigFile(path: string, sources: Sources): { config: Config; debug: boolean } {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) {
      throw new ConfigError(`-C "${path}": reading it needs --allow-read`);
    }
    throw new ConfigError(`-C "${path}": ${errMsg(e)}`);
  }
  const trimmed = text.trimStart();
  if (trimmed.startsWith("{")) {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new ConfigError(`${path}: invalid JSON: ${errMsg(e)}`);
    }
    if (isV2Config(v)) return configFromV2(v, path, sources);
  }
  throw new ConfigError(
    `${path}: gost v3 configuration files (YAML/JSON with services/chains) are not supported yet; ` +
      "gost v2 JSON (ServeNodes, ChainNodes, Routes) is",
  );
}

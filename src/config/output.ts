/**
 * `-O yaml` / `-O json`: the config model printed as a gost v3 file, keys in gost's order and
 * empty values left out, so that loading the output with `-C` and printing again gives the
 * same text.
 */
import { stringify } from "yaml";
import type { Config } from "./model.ts";
import { ordered } from "./schema.ts";

/** The text of `cfg` as a gost v3 config in `format`. */
export function formatConfig(cfg: Config, format: "yaml" | "json"): string {
  const o = ordered(cfg as Record<string, unknown>);
  // No line folding: long values stay on one line, as gost prints them.
  return format === "json" ? JSON.stringify(o, null, 2) : stringify(o, { lineWidth: 0 }).trimEnd();
}

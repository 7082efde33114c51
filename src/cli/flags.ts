/**
 * gost's command line, parsed the way Go's `flag` package does: `-X value`, `-X=value`,
 * one or two dashes, repeatable `-L`/`-F`, boolean `-D`/`-V`, and `--` ending the flags.
 */
import { ConfigError } from "../core/errors.ts";

/** The parsed command line. */
export interface Flags {
  L: string[];
  F: string[];
  C?: string;
  D: boolean;
  /** `-DD`: trace logging. */
  DD: boolean;
  V: boolean;
  M?: number;
  I?: string;
  P?: string;
  O?: string;
  help: boolean;
}

const STRING_FLAGS = new Set(["L", "F", "C", "M", "I", "P", "O"]);
const BOOL_FLAGS = new Set(["D", "DD", "V", "h", "help"]);
/** gost v3 flags that arrive with later dost features. */
const LATER_FLAGS = new Set(["api", "metrics", "R"]);

/** Parses argv; throws ConfigError with one line on any problem. */
export function parseFlags(args: string[]): Flags {
  const f: Flags = { L: [], F: [], D: false, DD: false, V: false, help: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") break;
    if (!a.startsWith("-") || a === "-") {
      throw new ConfigError(`unexpected argument "${a}" (flags are -L, -F, -C, …; see -h)`);
    }
    const body = a.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    let value: string | undefined = eq < 0 ? undefined : body.slice(eq + 1);
    if (BOOL_FLAGS.has(name)) {
      let on = true;
      if (value !== undefined) {
        if (/^(1|t|true)$/i.test(value)) on = true;
        else if (/^(0|f|false)$/i.test(value)) on = false;
        else throw new ConfigError(`invalid boolean value "${value}" for -${name}`);
      }
      if (name === "h" || name === "help") f.help = on;
      else (f as unknown as Record<string, boolean>)[name] = on;
      continue;
    }
    if (LATER_FLAGS.has(name)) throw new ConfigError(`-${name} is not supported yet`);
    if (!STRING_FLAGS.has(name)) throw new ConfigError(`flag provided but not defined: -${name}`);
    if (value === undefined) {
      if (i + 1 >= args.length) throw new ConfigError(`flag needs an argument: -${name}`);
      value = args[++i];
    }
    switch (name) {
      case "L":
        f.L.push(value);
        break;
      case "F":
        f.F.push(value);
        break;
      case "M":
        if (!/^(0x[0-9a-f]+|\d+)$/i.test(value)) {
          throw new ConfigError(`invalid value "${value}" for -M: want an integer mark`);
        }
        f.M = Number(value);
        break;
      case "O":
        if (value !== "yaml" && value !== "json") {
          throw new ConfigError(`invalid value "${value}" for -O: want yaml or json`);
        }
        f.O = value;
        break;
      default:
        (f as unknown as Record<string, string>)[name] = value;
    }
  }
  return f;
}

/** The help text (`-h`, or no arguments). */
export const HELP = `Usage: dost [flags]

dost is a multi-protocol secure tunnel, command-line compatible with gost.

Flags:
  -L value   service to listen on, repeatable:
             [scheme://][user:pass@][host]:port[/target,…][?key=value&…]
             e.g. -L :8080 (HTTP+SOCKS4/5 auto-detect), -L socks5://user:pass@:1080,
                  -L http://:8080?probe_resist=code:404, -L tcp://:2222/127.0.0.1:22
  -F value   upstream node, repeatable; the -F nodes in order form the chain
  -C file    configuration file: gost v3 YAML/JSON or gost v2 JSON (also found as gost.yaml,
             gost.yml, gost.json or dost.* in ., /etc/gost, /etc/dost, ~/.gost, ~/.dost)
  -D         debug log (-DD: trace)
  -V         print the version and exit
  -M mark    SO_MARK for outgoing connections
  -I iface   bind outgoing connections to this network interface
  -P addr    serve process statistics over HTTP on addr (/debug/vars)
  -O format  print the configuration built from the flags as yaml or json and exit
  -h         this help

See README.md for every scheme and parameter.
`;

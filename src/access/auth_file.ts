/**
 * `secrets=` user files (gost v2) and the v3 auther `file` source: one `user password` per line,
 * `#` comments, blank lines, and the `reload 10s` directive. Reloaded live on mtime change.
 *
 * gost accepts almost any text; dost refuses what gost would read ambiguously or what cannot be
 * a user list, so a bad edit keeps the last good users instead of replacing them with junk:
 * a line with more than two fields (gost v2 takes field 2 as the password, v3 the rest of the
 * line), a NUL or invalid UTF-8 (a binary file), and a `reload` value that is not a duration.
 */
import { parseDuration } from "../config/params.ts";
import { DEFAULT_RELOAD_CHECK, FileWatcher } from "../core/filewatch.ts";
import type { Logger } from "../core/logger.ts";
import type { UserSource, UserTable } from "./auth.ts";

/** A parsed secrets file. */
export interface SecretsFile {
  users: Map<string, string>;
  /** The `reload` directive in ms, when present. */
  reload?: number;
}

/** Parses a secrets file; throws an Error naming the line for what it refuses. */
export function parseSecrets(text: string): SecretsFile {
  if (text.includes("\0") || text.includes("\uFFFD")) {
    throw new Error("not a text file (NUL or invalid UTF-8)");
  }
  const users = new Map<string, string>();
  let reload: number | undefined;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replaceAll("\t", " ").trim();
    if (line === "" || line.startsWith("#")) continue;
    const f = line.split(" ").filter((s) => s !== "");
    if (f.length > 2) {
      throw new Error(`line ${i + 1}: expected "user [password]", got ${f.length} fields`);
    }
    if (f[0] === "reload") {
      const ms = f[1] === undefined ? undefined : parseDuration(f[1]);
      if (ms === undefined) throw new Error(`line ${i + 1}: invalid reload period "${f[1] ?? ""}"`);
      reload = ms;
      continue;
    }
    users.set(f[0], f[1] ?? "");
  }
  return { users, reload };
}

/** A secrets file, watched: `users` is always the last file that parsed. */
export class FileUserSource implements UserSource {
  users: UserTable | undefined;
  private readonly watcher: FileWatcher;

  /**
   * Loads `path` now (throws a ConfigError naming the file when it is missing or refused) and
   * re-reads it when its mtime changes, checked every `reload` (the file's directive wins over
   * `defaultPeriod`, else DEFAULT_RELOAD_CHECK).
   */
  constructor(path: string, log: Logger, defaultPeriod?: number) {
    this.watcher = new FileWatcher(path, (text) => {
      const f = parseSecrets(text);
      this.users = f.users;
      this.watcher.watch(f.reload || defaultPeriod || DEFAULT_RELOAD_CHECK);
      log.debug(`${path}: ${f.users.size} user(s)`);
    }, log);
    this.watcher.loadNow();
  }

  close(): void {
    this.watcher.close();
  }
}

/**
 * Watches the config file for live reload: a filesystem watcher on its folder (editors often
 * replace a file by renaming a new one over it, which a watch on the file itself would miss),
 * debounced, firing only when the content really changed.
 */
import type { Logger } from "../core/logger.ts";
import { errMsg } from "../core/errors.ts";

/** How long changes settle before a reload (an editor's save is several events). */
const DEBOUNCE_MS = 300;

function hash(text: string): string {
  // FNV-1a: only to tell "same bytes" from "changed", not for security.
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return `${text.length}:${h >>> 0}`;
}

function read(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

/** Calls `onChange` when `path`'s content changes; close() stops watching. */
export function watchConfig(path: string, onChange: () => void, log: Logger): { close(): void } {
  const abs = path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
  const dir = abs.slice(0, abs.lastIndexOf("/")) || "/";
  let last = hash(read(abs) ?? "");
  let timer: ReturnType<typeof setTimeout> | undefined;
  let w: Deno.FsWatcher;
  try {
    w = Deno.watchFs(dir, { recursive: false });
  } catch (e) {
    log.warn(`cannot watch ${path} for changes (${errMsg(e)}); SIGHUP still reloads it`);
    return { close() {} };
  }
  (async () => {
    for await (const ev of w) {
      if (!ev.paths.some((p) => p === abs)) continue;
      clearTimeout(timer);
      timer = setTimeout(() => {
        const text = read(abs);
        if (text === undefined) return; // mid-replace or deleted: wait for the next event
        const h = hash(text);
        if (h === last) return;
        last = h;
        onChange();
      }, DEBOUNCE_MS);
    }
  })().catch(() => {});
  return {
    close() {
      clearTimeout(timer);
      try {
        w.close();
      } catch { /* closed */ }
    },
  };
}

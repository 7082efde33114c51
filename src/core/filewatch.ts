/**
 * Live reload of file sources (hop-group `ip=`/`peer=` files, secrets, bypass, hosts…): the file
 * is read at start and again whenever its mtime changes, checked on a period (gost's `reload`
 * directive, else a default). A failed reload keeps the last good data and logs one line per
 * distinct error.
 */
import { ConfigError, errMsg } from "./errors.ts";
import type { Logger } from "./logger.ts";
import { track } from "./scope.ts";

/** How often a watched file's mtime is checked when the file sets no `reload` period. */
export const DEFAULT_RELOAD_CHECK = 5_000;

/**
 * Watches a file: `apply(text)` runs at start (synchronously, errors thrown to the caller) and
 * again whenever the mtime changes. A failed reload keeps the last good data and logs one line
 * per distinct error.
 */
export class FileWatcher {
  private timer?: ReturnType<typeof setInterval>;
  private mtime?: number;
  private lastErr = "";
  private closed = false;
  private busy = false;

  constructor(
    readonly path: string,
    private readonly apply: (text: string) => void,
    private readonly log?: Logger,
  ) {
    track(this); // released when a reload replaces the service or chain that opened it
  }

  /** Loads the file once, synchronously; throws a ConfigError naming the file on failure. */
  loadNow(): void {
    let text: string;
    try {
      this.mtime = Deno.statSync(this.path).mtime?.getTime();
      text = Deno.readTextFileSync(this.path);
    } catch (e) {
      throw new ConfigError(`${this.path}: ${errMsg(e)}`);
    }
    try {
      this.apply(text);
    } catch (e) {
      throw new ConfigError(`${this.path}: ${errMsg(e)}`);
    }
  }

  /** (Re)starts mtime polling every `periodMs` (≥ 1 s); 0 stops it. */
  watch(periodMs: number): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.closed || periodMs <= 0) return;
    const t = setInterval(() => void this.check(), Math.max(periodMs, 1000));
    Deno.unrefTimer(t);
    this.timer = t;
  }

  /** Checks the mtime once and reloads when it changed. */
  async check(): Promise<void> {
    if (this.busy || this.closed) return;
    this.busy = true;
    try {
      const st = await Deno.stat(this.path);
      const mt = st.mtime?.getTime();
      if (mt === this.mtime) return;
      const text = await Deno.readTextFile(this.path);
      if (this.closed) return;
      this.apply(text);
      this.mtime = mt;
      this.lastErr = "";
      this.log?.info(`reloaded ${this.path}`);
    } catch (e) {
      const msg = errMsg(e);
      if (msg !== this.lastErr) {
        this.log?.warn(`reload ${this.path}: ${msg} (keeping the previous data)`);
        this.lastErr = msg;
      }
    } finally {
      this.busy = false;
    }
  }

  /** Stops polling. */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

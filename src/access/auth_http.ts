/**
 * HTTP auth sources of gost v3:
 * - the auther plugin (`plugin: {type: http, addr}`): every attempt is POSTed as JSON
 *   `{"service","username","password","client"}` and the answer's `"ok"` decides (gost also
 *   returns an `"id"`, unused here). Any failure (timeout, non-200, bad JSON) denies and logs.
 * - the HTTP loader (`http: {url, timeout}`): a GET returning a secrets-format user list,
 *   refreshed on the reload period.
 */
import type { Logger } from "../core/logger.ts";
import { type Auther, type AuthInfo, PolledUserSource } from "./auth.ts";
import { parseSecrets } from "./auth_file.ts";

/** Default request timeout in ms when none is configured. */
export const DEFAULT_PLUGIN_TIMEOUT = 10_000;

/** The gost v3 HTTP auther plugin. */
export class HttpPluginAuther implements Auther {
  private lastErr = "";

  constructor(
    private readonly url: string,
    private readonly timeout: number,
    private readonly log: Logger,
  ) {}

  async verify(user: string, password: string, info?: AuthInfo): Promise<boolean> {
    const body = JSON.stringify({
      service: info?.service ?? "",
      username: user,
      password,
      client: info?.client ?? "",
    });
    try {
      const res = await fetch(this.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        signal: AbortSignal.timeout(this.timeout || DEFAULT_PLUGIN_TIMEOUT),
      });
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new Error(`HTTP ${res.status}`);
      }
      const v = await res.json() as { ok?: unknown };
      this.lastErr = "";
      return v?.ok === true;
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      // One warning per distinct failure; every denial is still visible at debug level.
      if (msg !== this.lastErr) this.log.warn(`auther plugin ${this.url}: ${msg} (denying)`);
      else this.log.debug(`auther plugin ${this.url}: ${msg} (denying)`);
      this.lastErr = msg;
      return false;
    }
  }
}

/** The HTTP loader: GET `url` for a secrets-format list (`reload` lines in it are ignored). */
export function httpUserSource(
  url: string,
  timeout: number,
  reload: number,
  log: Logger,
): PolledUserSource {
  return new PolledUserSource(
    `http ${url}`,
    async () => {
      const res = await fetch(url, {
        signal: AbortSignal.timeout(timeout || DEFAULT_PLUGIN_TIMEOUT),
      });
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new Error(`HTTP ${res.status}`);
      }
      return parseSecrets(await res.text()).users;
    },
    reload,
    log,
  );
}

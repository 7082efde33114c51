/**
 * The limiters of one service, built from its parameters as gost's CLI builds them:
 * `limiter.in` / `limiter.out` → traffic `$ in out`, `limiter.conn.in` / `limiter.conn.out` →
 * traffic `$$ in out`, `climiter=N` → connections `$ N`, `rlimiter=R` → requests `$ R`.
 * Checked right after accept; a refused connection is closed before any byte is read.
 */
import { addrString, type Conn } from "../../core/conn.ts";
import { ConfigError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import type { Params } from "../../config/params.ts";
import { ConnLimiter } from "./conn.ts";
import { RateLimiter } from "./rate.ts";
import { TrafficLimiter } from "./traffic.ts";

/** An admitted connection: the conn to serve (maybe traffic-limited) and its release hook. */
export interface Admitted {
  conn: Conn;
  release(): void;
}

/** Connection, request-rate and traffic limits applied to a service's accepted connections. */
export class ServiceLimits {
  constructor(
    readonly conns?: ConnLimiter,
    readonly rate?: RateLimiter,
    readonly traffic?: TrafficLimiter,
  ) {}

  /**
   * Reads the limiter parameters; undefined when none is set, so services without limits pay
   * nothing. Throws ConfigError on a malformed value.
   */
  static fromParams(params: Params, where: string): ServiceLimits | undefined {
    const fail = (key: string, e: unknown): never => {
      throw new ConfigError(`${where}: parameter "${key}": ${(e as Error).message}`);
    };
    const size = (key: string) => params.str(key)?.trim() || "0";
    const inRate = size("limiter.in");
    const outRate = size("limiter.out");
    const connIn = size("limiter.conn.in");
    const connOut = size("limiter.conn.out");
    const lines: string[] = [];
    // Zero stands in for an unset direction; gost's builder joins the two values with a
    // space, so a lone `limiter.out` ends up read as the input limit there: here it stays out.
    if (inRate !== "0" || outRate !== "0") lines.push(`$ ${inRate} ${outRate}`);
    if (connIn !== "0" || connOut !== "0") lines.push(`$$ ${connIn} ${connOut}`);
    let traffic: TrafficLimiter | undefined;
    try {
      traffic = lines.length ? TrafficLimiter.parse(lines) : undefined;
    } catch (e) {
      fail("limiter", e);
    }
    const climit = params.int("climiter", 0);
    const conns = climit > 0 ? ConnLimiter.parse([`$ ${climit}`]) : undefined;
    const rtext = params.str("rlimiter");
    let rate: RateLimiter | undefined;
    if (rtext !== undefined) {
      const r = Number(rtext.trim());
      if (rtext.trim() === "" || !Number.isFinite(r)) {
        fail("rlimiter", new Error(`invalid rate "${rtext}"`));
      }
      if (r > 0) rate = RateLimiter.parse([`$ ${r}`]);
    }
    if (!conns && !rate && !traffic) return undefined;
    return new ServiceLimits(conns, rate, traffic);
  }

  /** Checks the limits for a newly accepted conn; undefined means refuse (close it). */
  admit(conn: Conn, log: Logger): Admitted | undefined {
    const host = conn.remoteAddr.hostname;
    if (this.rate && !this.rate.allow(host)) {
      log.debug(`${addrString(conn.remoteAddr)}: request rate limit exceeded, closing`);
      return undefined;
    }
    let release = () => {};
    if (this.conns) {
      const r = this.conns.acquire(host);
      if (!r) {
        log.debug(`${addrString(conn.remoteAddr)}: connection limit reached, closing`);
        return undefined;
      }
      release = r;
    }
    return { conn: this.traffic ? this.traffic.wrap(conn) : conn, release };
  }
}

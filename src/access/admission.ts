/**
 * Admission (gost v3): decides from the client's IP whether a connection is served at all,
 * before any byte is read. `admission=a,b` refuses clients matching the IPs/CIDRs/ranges;
 * `admission=~a,b` (reversed, whitelist) admits only those. A file source (`admission=path`)
 * reloads live like bypass files.
 */
import { addrString, closeQuietly, type Conn } from "../core/conn.ts";
import type { Logger } from "../core/logger.ts";
import type { HandleContext, Handler } from "../registry.ts";
import { MatcherSource } from "./matcher.ts";

/** Decides whether a client address may use a service. */
export interface Admission {
  /** True when the client at `host` (an IP, optionally `ip:port`) is admitted. */
  admit(host: string): boolean;
  close(): void;
}

/** An admission over a MatcherSource of IPs, CIDRs and IP ranges. */
export class LocalAdmission implements Admission {
  constructor(private readonly source: MatcherSource) {}

  admit(host: string): boolean {
    if (host === "") return true;
    return this.source.matcher.match(host) === this.source.reversed;
  }

  close(): void {
    this.source.close();
  }
}

/** Builds an admission from an `admission=` value; throws a ConfigError when invalid. */
export function admissionFromParam(
  value: string,
  opts: { log?: Logger; where?: string } = {},
): LocalAdmission {
  return new LocalAdmission(new MatcherSource(value, { ...opts, ipOnly: true }));
}

/**
 * Wraps a handler so that a client the admission refuses is closed before the handler reads
 * anything. Placed inside the PROXY-protocol wrapper, it sees the client address the PROXY
 * header announced, as gost's admission listener does.
 */
export function withAdmission(handler: Handler, admission: Admission | undefined): Handler {
  if (!admission) return handler;
  return {
    handle(conn: Conn, ctx: HandleContext): Promise<void> {
      if (!admission.admit(conn.remoteAddr.hostname)) {
        ctx.log.debug(`admission: ${addrString(conn.remoteAddr)} refused`);
        closeQuietly(conn);
        return Promise.resolve();
      }
      return handler.handle(conn, ctx);
    },
  };
}

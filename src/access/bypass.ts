/**
 * Bypass (gost v3): a set of address patterns a service or hop consults per target. On a
 * service, a target it "contains" is refused (the handler answers with its protocol's "not
 * allowed"); on a hop, such a target skips that hop and the ones after it (the first hop
 * bypassing means a direct dial). In reversed (whitelist, `~`) mode it contains every target
 * that matches none of the patterns.
 */
import type { Logger } from "../core/logger.ts";
import { MatcherSource } from "./matcher.ts";

/** Decides whether a target is bypassed. */
export interface Bypass {
  /** True when `addr` (`host:port` or `host`) is bypassed for `network` ("tcp" / "udp"). */
  contains(network: string, addr: string): boolean;
  /** Stops any file watching. */
  close(): void;
}

/** A bypass over a MatcherSource (`bypass=[~]a,b` or `bypass=[~]/path/file`). */
export class LocalBypass implements Bypass {
  constructor(private readonly source: MatcherSource, private readonly log?: Logger) {}

  /** Whitelist (reversed) mode. */
  get whitelist(): boolean {
    return this.source.reversed;
  }

  contains(network: string, addr: string): boolean {
    if (addr === "") return false;
    const matched = this.source.matcher.match(addr);
    const hit = matched !== this.source.reversed;
    this.log?.trace(`bypass ${network} ${addr}: ${hit ? "bypassed" : "passed"}`);
    return hit;
  }

  close(): void {
    this.source.close();
  }
}

/** Builds a bypass from a `bypass=` parameter value; throws a ConfigError when invalid. */
export function bypassFromParam(value: string, opts: { log?: Logger; where?: string } = {}) {
  return new LocalBypass(new MatcherSource(value, opts), opts.log);
}

/**
 * A Router that applies a service's bypass and permissions before every dial, so each handler
 * gets them without code of its own: a refused target fails with DialError code "not-allowed",
 * which handlers answer with their protocol's refusal (HTTP 403, SOCKS5 0x02, SOCKS4 91).
 */
import type { Conn } from "../core/conn.ts";
import { ConfigError, DialError, errMsg } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import type { Params } from "../config/params.ts";
import type { Router } from "../chain/router.ts";
import { type Admission, admissionFromParam } from "./admission.ts";
import { type Bypass, bypassFromParam } from "./bypass.ts";
import { type Permissions, permissionsFromParams } from "./permissions.ts";

/** What a GuardedRouter checks. */
export interface TargetGuard {
  bypass?: Bypass;
  permissions?: Permissions;
}

/** Throws DialError("not-allowed") when the guard refuses `network` to `address`. */
export function checkTarget(
  g: TargetGuard,
  network: "tcp" | "udp" | "rtcp" | "rudp",
  address: string,
): void {
  // Bypass matches targets by name/address; binds (rtcp/rudp) are the permissions' business.
  if ((network === "tcp" || network === "udp") && g.bypass?.contains(network, address)) {
    throw new DialError(`${address}: refused by bypass`, "not-allowed");
  }
  if (g.permissions && !g.permissions.allows(network, address)) {
    throw new DialError(`${address}: refused by permissions`, "not-allowed");
  }
}

/** Wraps `inner` with the guard's checks (returns `inner` when there is nothing to check). */
export function guardRouter(inner: Router, g: TargetGuard): Router {
  if (!g.bypass && !g.permissions) return inner;
  return {
    get hasChain() {
      return inner.hasChain;
    },
    get names() {
      return inner.names;
    },
    allows(action: "udp" | "rtcp" | "rudp", address: string): boolean {
      try {
        checkTarget(g, action, address);
        return true;
      } catch {
        return false;
      }
    },
    dial(network: "tcp", address: string): Promise<Conn> {
      try {
        checkTarget(g, network, address);
      } catch (e) {
        return Promise.reject(e);
      }
      return inner.dial(network, address);
    },
    dialUDP(address: string): Promise<Conn> {
      try {
        checkTarget(g, "udp", address);
      } catch (e) {
        return Promise.reject(e);
      }
      return inner.dialUDP(address);
    },
  };
}

/** A service's access objects, from its parameters. */
export interface ServiceAccess extends TargetGuard {
  admission?: Admission;
}

/**
 * Reads `bypass=`, `whitelist=`, `blacklist=` and `admission=` from a service's parameters;
 * throws a ConfigError naming the parameter when one is invalid.
 */
export function serviceAccess(params: Params, where: string, log?: Logger): ServiceAccess {
  const out: ServiceAccess = {};
  const bypass = params.str("bypass");
  if (bypass !== undefined) {
    out.bypass = bypassFromParam(bypass, { log, where: `${where}: parameter "bypass"` });
  }
  const admission = params.str("admission");
  if (admission !== undefined) {
    out.admission = admissionFromParam(admission, {
      log,
      where: `${where}: parameter "admission"`,
    });
  }
  try {
    out.permissions = permissionsFromParams(params.str("whitelist"), params.str("blacklist"));
  } catch (e) {
    throw new ConfigError(`${where}: ${errMsg(e)}`);
  }
  return out;
}

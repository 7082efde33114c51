/**
 * libc through Deno FFI (`--allow-ffi`): the symbol table dost's FFI sockets use, loaded once,
 * plus errno. `libc()` returns null when FFI is not granted or libc.so.6 cannot be loaded, so
 * callers keep their Deno-API path.
 *
 * Every call is synchronous (fast calls on the JS thread) except `poll`, which is declared
 * `nonblocking` (it runs on a worker thread). A pending nonblocking call cannot be cancelled and
 * keeps the process alive, so poll must always be given a timeout.
 */

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  recvfrom: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"],
    result: "isize",
  },
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "pointer"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  /** sendmmsg with a pointer to the first header (a batch is sent from any offset). */
  sendmmsgPtr: { name: "sendmmsg", parameters: ["i32", "pointer", "u32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  /** poll on the JS thread: only ever with timeout 0 (a readiness check, never a wait). */
  pollNow: { name: "poll", parameters: ["buffer", "u64", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/** The loaded libc symbols. */
export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

// errno values (Linux, all architectures Deno runs on).
export const EINTR = 4;
export const EAGAIN = 11;
export const EACCES = 13;
export const EINVAL = 22;
export const EAFNOSUPPORT = 97;
export const EADDRINUSE = 98;
export const EADDRNOTAVAIL = 99;
export const ENETUNREACH = 101;
export const ECONNREFUSED = 111;
export const EHOSTUNREACH = 113;

let loaded: Libc | null | undefined;
let errnoView: Deno.UnsafePointerView | undefined;
/** Why libc() returned null (for a debug line). */
export let libcUnavailableReason = "";

/**
 * libc, loaded on first use; null when `--allow-ffi` is not granted (checked without prompting)
 * or libc.so.6 does not load (not glibc Linux). Decided once per process.
 */
export function libc(): Libc | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  try {
    if (Deno.build.os !== "linux") {
      libcUnavailableReason = `FFI sockets need Linux (this is ${Deno.build.os})`;
    } else if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
      libcUnavailableReason = "--allow-ffi not granted";
    } else {
      const lib = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
      // The JS thread's errno lives at a fixed address: every sync call runs on this thread.
      errnoView = new Deno.UnsafePointerView(lib.__errno_location()!);
      loaded = lib;
    }
  } catch (e) {
    libcUnavailableReason = `libc.so.6: ${e instanceof Error ? e.message : String(e)}`;
  }
  return loaded;
}

/** errno of the last failed synchronous libc call. */
export function errno(): number {
  return errnoView!.getInt32();
}

/** A Deno error class for an errno, so callers' `instanceof` checks work as with Deno's API. */
export function errnoError(what: string, code: number): Error {
  const msg = `${what}: errno ${code}${ERRNO_NAMES[code] ? ` (${ERRNO_NAMES[code]})` : ""}`;
  switch (code) {
    case EADDRINUSE:
      return new Deno.errors.AddrInUse(msg);
    case EADDRNOTAVAIL:
      return new Deno.errors.AddrNotAvailable(msg);
    case EACCES:
      return new Deno.errors.PermissionDenied(msg);
    case ECONNREFUSED:
      return new Deno.errors.ConnectionRefused(msg);
    case EINTR:
      return new Deno.errors.Interrupted(msg);
    case EAGAIN:
      return new Deno.errors.WouldBlock(msg);
    case ENETUNREACH:
      return new Deno.errors.NetworkUnreachable(msg);
    default:
      return new Error(msg);
  }
}

const ERRNO_NAMES: Record<number, string> = {
  [EINTR]: "EINTR",
  [EAGAIN]: "EAGAIN",
  [EACCES]: "EACCES",
  [EINVAL]: "EINVAL",
  [EAFNOSUPPORT]: "EAFNOSUPPORT",
  [EADDRINUSE]: "EADDRINUSE",
  [EADDRNOTAVAIL]: "EADDRNOTAVAIL",
  [ENETUNREACH]: "ENETUNREACH",
  [ECONNREFUSED]: "ECONNREFUSED",
  [EHOSTUNREACH]: "EHOSTUNREACH",
};

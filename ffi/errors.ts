/**
 * Errors raised by the libmcr wrappers.
 *
 * @module
 */

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  4: "EINTR",
  5: "EIO",
  6: "ENXIO",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  28: "ENOSPC",
  34: "ERANGE",
  38: "ENOSYS",
  61: "ENODATA",
  67: "ENOLINK",
  71: "EPROTO",
  90: "EMSGSIZE",
  93: "EPROTONOSUPPORT",
  95: "EOPNOTSUPP",
  97: "EAFNOSUPPORT",
  98: "EADDRINUSE",
  99: "EADDRNOTAVAIL",
  100: "ENETDOWN",
  101: "ENETUNREACH",
  105: "ENOBUFS",
  110: "ETIMEDOUT",
  113: "EHOSTUNREACH",
};

/** errno values the wrappers and the relay test for (Linux). */
export const Errno = {
  EPERM: 1,
  EINTR: 4,
  ENXIO: 6,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  ENODEV: 19,
  ENFILE: 23,
  EMFILE: 24,
  ENOLINK: 67,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETDOWN: 100,
  ENOBUFS: 105,
} as const;

/** Symbolic name of an errno value (`"ENODEV"`), or `"E<n>"` when unknown. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `E${errno}`;
}

/** A libmcr call failed: carries the positive errno and the C library's message. */
export class McrError extends Error {
  /** Positive errno value (e.g. 19 for ENODEV). */
  readonly errno: number;
  /** Symbolic errno name (e.g. `"ENODEV"`). */
  readonly code: string;
  /** Name of the C function that failed. */
  readonly call: string;

  /**
   * Wrap a failed libmcr call.
   * @param call C function name
   * @param ret the negative return value (-errno)
   * @param detail message the C library wrote into its error buffer
   */
  constructor(call: string, ret: number, detail: string) {
    const errno = Math.abs(ret);
    const code = errnoName(errno);
    super(`${call}: ${detail || code} (${code})`);
    this.name = "McrError";
    this.errno = errno;
    this.code = code;
    this.call = call;
  }
}

/** libmcr could not be found or loaded; `tried` lists every path attempted and why it failed. */
export class McrLoadError extends Error {
  /** Each path tried, with the reason it was rejected. */
  readonly tried: readonly { path: string; reason: string }[];

  /**
   * Report that no candidate path could be loaded.
   * @param tried paths attempted in order, with reasons
   */
  constructor(tried: { path: string; reason: string }[]) {
    super(
      "libmcr could not be loaded. Build it with `deno task build`, or set MCR_LIB to its path.\n" +
        "Tried:\n" + tried.map((t) => `  ${t.path}: ${t.reason}`).join("\n"),
    );
    this.name = "McrLoadError";
    this.tried = tried;
  }
}

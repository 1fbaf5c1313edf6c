/**
 * Process-level libmcr calls: the live-handle counter tests check, thread
 * pinning and priority, sd_notify, and the file-descriptor limit
 * (RLIMIT_NOFILE).
 *
 * @module
 */
import { check, cstr, errBuf, lib } from "./util.ts";

/** Live libmcr handles in this process (tests assert it returns to 0). */
export function liveObjects(): number {
  return Number(lib().sym.mcr_debug_live_objects());
}

/** Pin the calling thread (a worker) to one CPU. */
export function pinThread(cpu: number): void {
  const [err, errlen] = errBuf();
  check("mcr_pin_thread", lib().sym.mcr_pin_thread(cpu, err, errlen), err);
}

/**
 * Set the calling thread's (a worker's) nice value, -20..19. Raising the
 * priority (a lower value than now) needs CAP_SYS_NICE or RLIMIT_NICE.
 * @throws {McrError} EACCES or EPERM when not permitted (nothing changed), EINVAL out of range
 */
export function setThreadNice(nice: number): void {
  const [err, errlen] = errBuf();
  check("mcr_thread_nice", lib().sym.mcr_thread_nice(nice, err, errlen), err);
}

/** The calling thread's (a worker's) nice value. */
export function threadNice(): number {
  const [err, errlen] = errBuf();
  const out = new Int32Array(1);
  check("mcr_thread_get_nice", lib().sym.mcr_thread_get_nice(out, err, errlen), err);
  return out[0];
}

/**
 * Tell systemd about a state change (sd_notify(3)): "READY=1",
 * "RELOADING=1", "STOPPING=1", "STATUS=text" (several joined with "\n").
 * Returns true when sent, false when `$NOTIFY_SOCKET` is unset (not started
 * by systemd with `Type=notify`; libmcr is then not even loaded). Call it
 * from the main thread: systemd accepts messages from the main PID only.
 * @throws {McrError} when the socket exists but the message cannot be sent
 */
export function sdNotify(state: string): boolean {
  try {
    if (!Deno.env.get("NOTIFY_SOCKET")) return false;
  } catch {
    // no --allow-env: let libmcr read the environment itself
  }
  const [err, errlen] = errBuf();
  return check("mcr_sd_notify", lib().sym.mcr_sd_notify(cstr(state), err, errlen), err) > 0;
}

/** RLIMIT_NOFILE and the descriptors open now (null: unlimited, or unknown). */
export interface FdLimits {
  /** Soft limit: what open() and socket() are held to. */
  soft: number | null;
  /** Hard limit: the most the soft limit may be raised to without privileges. */
  hard: number | null;
  /** Descriptors open in this process now. */
  open: number | null;
}

/** `enum mcr_fd_limit`: where `mcr_fd_limits` writes each value. */
const FdLimit = { soft: 0, hard: 1, open: 2, count: 3 } as const;
/** UINT64_MAX: unlimited / unknown. */
const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** Read RLIMIT_NOFILE and count the open descriptors (/proc/self/fd). */
export function fdLimits(): FdLimits {
  const out = new BigUint64Array(FdLimit.count);
  const [err, errlen] = errBuf();
  check("mcr_fd_limits", lib().sym.mcr_fd_limits(out, err, errlen), err);
  const v = (i: number) => (out[i] === U64_MAX ? null : Number(out[i]));
  return { soft: v(FdLimit.soft), hard: v(FdLimit.hard), open: v(FdLimit.open) };
}

/**
 * Set the soft RLIMIT_NOFILE (null: unlimited); it may not exceed the hard limit.
 * @throws {McrError}
 */
export function setSoftFdLimit(soft: number | null): void {
  const [err, errlen] = errBuf();
  const v = soft === null ? U64_MAX : BigInt(soft);
  check("mcr_fd_set_soft_limit", lib().sym.mcr_fd_set_soft_limit(v, err, errlen), err);
}

/**
 * Process-level libmcr calls: the live-handle counter tests check, thread
 * pinning, and sd_notify.
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

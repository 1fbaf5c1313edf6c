/**
 * `InputLock`: one relay per input interface (csrc/inputlock.c).
 *
 * @module
 */
import { lib, open } from "./util.ts";

/**
 * Held while the relay captures an interface; a second process in the same
 * network namespace cannot take it (McrError `EADDRINUSE`).
 */
export class InputLock implements Disposable {
  #ptr: Deno.PointerObject | null;

  /** Take the lock of `ifindex`; throws McrError (EADDRINUSE when held elsewhere). */
  constructor(readonly ifindex: number) {
    this.#ptr = open(
      "mcr_input_lock_take",
      (out, err, n) => lib().sym.mcr_input_lock_take(ifindex, out, err, n),
    );
  }

  /** Release (idempotent). */
  close(): void {
    if (!this.#ptr) return;
    lib().sym.mcr_input_lock_release(this.#ptr);
    this.#ptr = null;
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }
}

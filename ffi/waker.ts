/**
 * `Waker`: an eventfd that cuts a blocking wait (RX poll, link monitor)
 * short; safe to wake from any thread.
 *
 * @module
 */
import { lib, open } from "./util.ts";

/** An eventfd that cuts a blocking `RxRing.poll` short; safe to wake from any thread. */
export class Waker implements Disposable {
  #ptr: Deno.PointerObject | null;
  /** The eventfd number, passed to rings as `wakeFd`. */
  readonly fd: number;

  /** Open the eventfd; throws McrError. */
  constructor() {
    this.#ptr = open("mcr_waker_open", (out, err, n) => lib().sym.mcr_waker_open(out, err, n));
    this.fd = lib().sym.mcr_waker_fd(this.#ptr);
  }

  /** Wake pollers waiting on this waker. No-op after close. */
  wake(): void {
    if (this.#ptr) lib().sym.mcr_waker_wake(this.#ptr);
  }

  /** Close the eventfd (idempotent). Close rings using it first. */
  close(): void {
    if (!this.#ptr) return;
    lib().sym.mcr_waker_close(this.#ptr);
    this.#ptr = null;
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }
}

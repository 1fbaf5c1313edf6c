/**
 * A data-path worker's priority (`worker_nice`, `worker_priority`).
 *
 * `fixed`: the worker thread takes `worker_nice` when it starts and keeps it.
 *
 * `adaptive` (the default): the worker runs at the process's priority and
 * takes `worker_nice` only while it falls behind — half a ring or more is
 * still waiting after a batch (libmcr `mcr_rx_behind`: the ring's fill at
 * that moment, not a sum of batches, which would count a worker that is
 * draining as one falling behind), or the kernel drops frames because a ring
 * was full — and goes back to the process's priority
 * {@link PRIORITY_HOLD_MS} after it last fell behind. A worker that keeps up
 * then costs other processes nothing and is not woken ahead of them for
 * every frame (which costs CPU per packet: bench/README.md), while on a host
 * busy with other processes it still gets a CPU before its rings overflow
 * (docs/guide.md "Worker priority").
 *
 * A `worker_nice` at or above the process's priority lowers the worker's
 * priority: there is nothing to raise, so it is applied at once in either
 * mode. Nothing here runs per packet: {@link WorkerPriority.update} is called
 * once per loop pass with what the pass saw.
 *
 * @module
 */
import type { PriorityMode } from "../config/schema.ts";

/** How long a raised worker keeps `worker_nice` after it last fell behind (ms). */
export const PRIORITY_HOLD_MS = 1000;

/** What a {@link WorkerPriority} needs from its thread. */
export interface PriorityHost {
  /** The nice value the thread runs at now (the process's, at start). */
  base: number;
  /** `worker_nice`. */
  nice: number;
  /** `worker_priority`. */
  mode: PriorityMode;
  /** Set the calling thread's nice value; throws when not permitted. */
  setNice: (nice: number) => void;
  /** Say once why the priority cannot be raised. */
  refused: (message: string) => void;
}

/** The priority of one worker thread (see the module doc). */
export class WorkerPriority {
  #h: PriorityHost;
  #raised = false;
  #permitted = true;
  #since = 0;
  #current: number;
  #raises = 0;

  /**
   * Applies a fixed (or lowering) `worker_nice` at once; in adaptive mode
   * checks that the priority can be raised (raises it and puts it back), so
   * that a missing privilege shows at start and not when it is needed.
   */
  constructor(host: PriorityHost) {
    this.#h = host;
    this.#current = host.base;
    if (this.adaptive) {
      if (this.#set(host.nice)) this.#set(host.base);
    } else if (host.nice !== host.base) this.#set(host.nice);
  }

  /** True when the priority follows the load (adaptive mode, a `worker_nice` that raises). */
  get adaptive(): boolean {
    return this.#h.mode === "adaptive" && this.#h.nice < this.#h.base;
  }

  /** The thread's nice value now. */
  get current(): number {
    return this.#current;
  }

  /** Times the worker took `worker_nice` because it fell behind. */
  get raises(): number {
    return this.#raises;
  }

  /** True while the worker holds the raised priority because it fell behind. */
  get raised(): boolean {
    return this.#raised;
  }

  /**
   * Once per loop pass: `behind` when the pass saw a backlog or kernel drops;
   * `now` in ms (monotonic).
   */
  update(behind: boolean, now: number): void {
    if (!this.adaptive || !this.#permitted) return;
    if (behind) {
      this.#since = now;
      if (!this.#raised && this.#set(this.#h.nice)) {
        this.#raised = true;
        this.#raises++;
      }
    } else if (this.#raised && now - this.#since >= PRIORITY_HOLD_MS) {
      // a higher nice value is always permitted
      if (this.#set(this.#h.base)) this.#raised = false;
    }
  }

  #set(nice: number): boolean {
    try {
      this.#h.setNice(nice);
      this.#current = nice;
      return true;
    } catch (e) {
      this.#permitted = false;
      this.#h.refused((e as Error).message);
      return false;
    }
  }
}

/**
 * `RxSet`: one blocking wait over many RX rings and a waker (csrc/rxset.c),
 * so that one data-path worker serves every input interface it is given.
 * Each ring is added under a tag (the caller's index for it); a wait returns
 * the number of ready entries, read as (tag, frames) pairs from `ready`.
 *
 * @module
 */
import { readU64Fields, RXSET_STATS } from "./abi.ts";
import { Errno, McrError } from "./errors.ts";
import type { RxRing } from "./rx_ring.ts";
import { check, errBuf, lib, open, view } from "./util.ts";

/** Options of an {@link RxSet}. */
export interface RxSetOptions {
  /** Tags are 0..maxTags-1 (at most 65536). */
  maxTags: number;
  /** Waker fd (`Waker.fd`), or -1. */
  wakeFd?: number;
  /** Longest adaptive gather in µs (default 250; -1 = off). */
  coalesceUs?: number;
  /** Arrival rate (all rings) above which gathering starts (default 20000 pps). */
  coalescePps?: number;
}

/** Accumulated set statistics (`struct mcr_rxset_stats`). */
export interface RxSetStats {
  /** Waits that could block (epoll_wait with a timeout). */
  polls: number;
  /** Of those, waits that returned frames. */
  wakeups: number;
  /** Adaptive gather sleeps. */
  gathers: number;
  /** Ring batches returned. */
  batches: number;
  /** Frames returned. */
  frames: number;
}

/** Words per entry of {@link RxSet.ready}: tag, then frames (or -errno). */
export const RX_READY_WORDS = 2;

/** A set of RX rings waited on together (see module doc). */
export class RxSet implements Disposable {
  #ptr: Deno.PointerObject | null;
  readonly #wait: (p: Deno.PointerObject, t: number) => number;
  readonly #rings = new Map<number, RxRing>();
  /** `struct mcr_rxset_stats`, filled by every {@link stats} call (no allocation per read). */
  readonly #statsWords = new Uint32Array(RXSET_STATS.size / 4);
  /**
   * The ready list of the last wait (zero-copy): entry k is the tag at
   * `2k` and at `2k + 1` the frames in that ring's batch, or -errno when its
   * socket reported an error (-ENETDOWN: its link went down).
   */
  readonly ready: Int32Array;

  /** Open a set; throws McrError on failure. */
  constructor(readonly opts: RxSetOptions) {
    const l = lib();
    const us = opts.coalesceUs === undefined
      ? 0
      : opts.coalesceUs < 0
      ? 0xffffffff
      : opts.coalesceUs;
    this.#ptr = open(
      "mcr_rxset_open",
      (out, err, n) =>
        l.sym.mcr_rxset_open(
          opts.maxTags,
          opts.wakeFd ?? -1,
          us,
          opts.coalescePps ?? 0,
          out,
          err,
          n,
        ),
    );
    this.ready = new Int32Array(
      view(l.sym.mcr_rxset_ready(this.#ptr), opts.maxTags * RX_READY_WORDS * 4),
    );
    this.#wait = l.sym.mcr_rxset_wait;
  }

  #p(): Deno.PointerObject {
    if (!this.#ptr) throw new Error("RxSet is closed");
    return this.#ptr;
  }

  /** Add `ring` under `tag`. */
  add(ring: RxRing, tag: number): void {
    const [err, errlen] = errBuf();
    check("mcr_rxset_add", lib().sym.mcr_rxset_add(this.#p(), ring.pointer, tag, err, errlen), err);
    this.#rings.set(tag, ring);
  }

  /** Remove the ring of `tag` (before closing it); false when there was none. */
  remove(tag: number): boolean {
    if (!this.#ptr) return false;
    this.#rings.delete(tag);
    return lib().sym.mcr_rxset_remove(this.#ptr, tag) === 0;
  }

  /** The ring added under `tag`. */
  ring(tag: number): RxRing | undefined {
    return this.#rings.get(tag);
  }

  /** Number of rings in the set. */
  get size(): number {
    return this.#rings.size;
  }

  /**
   * Block up to `timeoutMs` (-1 forever) for frames on any ring (call only
   * from a Worker); returns the number of entries in `ready` (0 on timeout
   * or wake-up).
   */
  wait(timeoutMs: number): number {
    const r = this.#wait(this.#ptr!, timeoutMs);
    if (r < 0) {
      if (r === -Errno.EINTR) return 0;
      throw new McrError("mcr_rxset_wait", r, "");
    }
    return r;
  }

  /** Accumulated statistics. */
  stats(): RxSetStats {
    check("mcr_rxset_stats", lib().sym.mcr_rxset_stats(this.#p(), this.#statsWords));
    return readU64Fields(RXSET_STATS, this.#statsWords);
  }

  /** Close the set (not its rings; idempotent). */
  close(): void {
    if (!this.#ptr) return;
    lib().sym.mcr_rxset_close(this.#ptr);
    this.#ptr = null;
    this.#rings.clear();
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }
}

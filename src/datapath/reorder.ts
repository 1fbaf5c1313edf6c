/**
 * The reorder buffer of a merged rule with `redundancy.reorder_ms`: restores
 * RTP sequence order when the paths are skewed. Without it, a datagram lost
 * on the fast path and delivered later by the slow one is forwarded after
 * the datagrams that followed it; with it, those followers wait — copied
 * out of the RX ring into the worker's hold memory — until the gap is
 * filled or `reorder_ms` after they arrived (then the gap is given up), and
 * leave in sequence order.
 *
 * Shared across workers through the rule's arbitration block (arbiter.ts
 * `H.next`): the next sequence number to send. A datagram that is the next
 * one goes straight out and moves `next` on; a later one is held; an earlier
 * one (its slot was given up) is dropped as `merge_late`. Each worker holds
 * what it received and releases it between batches (worker.ts), in order,
 * when `next` reaches it. With one worker (the default) the order is exact;
 * when a rule's paths land on different workers, a datagram released by one
 * can overtake, by the time of one submit, the one that filled the gap in
 * the other (docs/guide.md).
 *
 * Only datagrams identified by RTP sequence number are held: other payloads
 * have no order to restore and pass straight through. Memory: at most
 * {@link HOLD_SLOTS} frames of up to {@link HOLD_SLOT_BYTES} bytes per
 * worker (4 MiB, allocated when a rule first holds one); a frame longer than
 * a slot, or one that finds the memory or its rule's queue full, goes out at
 * once instead (order gives way, nothing is lost).
 *
 * @module
 */
import { RX_DESC_WORDS, RxDescWord } from "../../ffi/mod.ts";
import { H } from "./arbiter.ts";

/** Bytes of one hold slot (a full-size Ethernet frame with a VLAN tag fits). */
export const HOLD_SLOT_BYTES = 2048;
/** Hold slots per worker. */
export const HOLD_SLOTS = 2048;
/** Most frames one rule holds at a time. */
export const MAX_HELD_PER_RULE = 1024;

/**
 * Now on the clock of the RX descriptors' receive times (`tstampUs`: the
 * kernel's CLOCK_REALTIME in µs, modulo 2^32), as an int32.
 */
export function kernelNowUs(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000) % 0x100000000 | 0;
}

/** Where a datagram goes ({@link HoldQueue.place}). */
export const Place = { now: 0, hold: 1, late: 2 } as const;

/** A held datagram's parse, relative to its slot, for the release (batch.ts). */
export interface HeldFrame {
  /** Hold slot (index of its RX descriptor in {@link ReorderBuffer.desc}). */
  slot: number;
  /** IP header offset in {@link ReorderBuffer.frames}. */
  l3Offset: number;
  /** UDP payload offset in {@link ReorderBuffer.frames}. */
  payloadOffset: number;
  /** UDP payload bytes. */
  payloadLength: number;
  /** TTL (IPv6: hop limit) of the input datagram. */
  ttl: number;
  /** Forward descriptor flags (FwdFlag: an IPv6 input datagram). */
  flags: number;
  /** Kernel receive time (µs mod 2^32). */
  tUs: number;
}

/** The frames one path of a merged rule holds, in sequence order (see module doc). */
export class HoldQueue {
  /** Held sequence numbers, ascending, and their frames (same order). */
  readonly seq: number[] = [];
  /** The held frames. */
  readonly held: HeldFrame[] = [];
  /** Input section of the path (counters.ts `inBase`), for the release's counts. */
  base = 0;
  /**
   * The rule whose frames it holds, as the hot loop compiled it (match.ts
   * `CompiledRule`, when the last one was held; batch.ts sets and reads it:
   * typed loosely here so that this module does not import the matcher).
   */
  rule: unknown = null;

  /**
   * @param state the rule's arbitration block (arbiter.ts), shared by its paths and workers
   * @param reorderUs how long a datagram waits for a gap before it to be filled (µs)
   */
  constructor(readonly state: Int32Array, readonly reorderUs: number) {}

  /** Frames held. */
  get size(): number {
    return this.seq.length;
  }

  /**
   * Where the datagram with extended sequence number `seq` goes: now (it is
   * the next one: `next` moves past it), hold (a gap before it), or late
   * (its place was given up or taken).
   */
  place(seq: number): number {
    const s = this.state;
    if (Atomics.compareExchange(s, H.nextSet, 0, 1) === 0) {
      Atomics.store(s, H.next, (seq + 1) | 0);
      return Place.now;
    }
    const next = Atomics.load(s, H.next);
    const d = (seq - next) | 0;
    if (d === 0) {
      this.sent(seq);
      return Place.now;
    }
    return d > 0 ? Place.hold : Place.late;
  }

  /** `seq` was sent: `next` moves past it (another worker may have moved it further). */
  sent(seq: number): void {
    const s = this.state;
    const want = (seq + 1) | 0;
    for (;;) {
      const cur = Atomics.load(s, H.next);
      if (((want - cur) | 0) <= 0) return;
      if (Atomics.compareExchange(s, H.next, cur, want) === cur) return;
    }
  }

  /** Insert a held frame in sequence order (a copy already held is not inserted: false). */
  insert(seq: number, f: HeldFrame): boolean {
    let i = this.seq.length;
    while (i > 0 && ((this.seq[i - 1] - seq) | 0) > 0) i--;
    if (i > 0 && this.seq[i - 1] === seq) return false;
    this.seq.splice(i, 0, seq);
    this.held.splice(i, 0, f);
    return true;
  }

  /**
   * Whether the first held frame may leave at `nowUs` (kernel clock, µs mod
   * 2^32): it is the next one, or it waited `reorder_ms`, or `force`.
   */
  due(nowUs: number, force: boolean): boolean {
    if (this.seq.length === 0) return false;
    if (force) return true;
    const d = (this.seq[0] - Atomics.load(this.state, H.next)) | 0;
    return d <= 0 || ((nowUs - this.held[0].tUs) | 0) >= this.reorderUs;
  }

  /** How far the first held frame is from the next to send (< 0: another worker sent past it). */
  distance(): number {
    return (this.seq[0] - Atomics.load(this.state, H.next)) | 0;
  }

  /** Remove and return the first held frame (its sequence number is `seq[0]` before the call). */
  shift(): HeldFrame {
    this.seq.shift();
    return this.held.shift()!;
  }
}

/** A worker's hold memory: frame slots, their RX descriptors, and the queues holding any. */
export class ReorderBuffer {
  /** Frame bytes of every slot (allocated on first use). */
  frames: Uint8Array = new Uint8Array(0);
  /** One RX descriptor per slot (`RX_DESC_WORDS` words; offsets into {@link frames}). */
  readonly desc: Uint32Array = new Uint32Array(HOLD_SLOTS * RX_DESC_WORDS);
  /** Queues that hold frames now. */
  readonly active: Set<HoldQueue> = new Set();
  readonly #free: number[] = [];
  /** Slots released in the current release pass: free once the forwarder sent them. */
  readonly #sending: number[] = [];

  /** Frames held in all queues. */
  get held(): number {
    return HOLD_SLOTS - this.#free.length - this.#sending.length;
  }

  /**
   * Copy frame `len` bytes at `off` of `ring` into a free slot with its RX
   * descriptor words (`status`, `vlanTci`, wire length `wire`, `tUs`);
   * returns the slot, or -1 when none is free or the frame does not fit.
   */
  take(
    ring: Uint8Array,
    off: number,
    len: number,
    wire: number,
    status: number,
    vlanTci: number,
    tUs: number,
  ): number {
    if (this.frames.length === 0) {
      this.frames = new Uint8Array(HOLD_SLOTS * HOLD_SLOT_BYTES);
      for (let k = HOLD_SLOTS - 1; k >= 0; k--) this.#free.push(k);
    }
    if (len > HOLD_SLOT_BYTES || this.#free.length === 0) return -1;
    const slot = this.#free.pop()!;
    const at = slot * HOLD_SLOT_BYTES;
    this.frames.set(ring.subarray(off, off + len), at);
    const d = slot * RX_DESC_WORDS;
    this.desc[d + RxDescWord.offset] = at;
    this.desc[d + RxDescWord.snaplen] = len;
    this.desc[d + RxDescWord.len] = wire;
    this.desc[d + RxDescWord.status] = status;
    this.desc[d + RxDescWord.vlanTci] = vlanTci;
    this.desc[d + RxDescWord.tstampUs] = tUs;
    return slot;
  }

  /** Slot `slot` was handed to the forwarder: free it after the submit ({@link sent}). */
  leaving(slot: number): void {
    this.#sending.push(slot);
  }

  /** Slot `slot` leaves without being sent (dropped): free now. */
  drop(slot: number): void {
    this.#free.push(slot);
  }

  /** The forwarder sent what left: those slots are free again. */
  sent(): void {
    while (this.#sending.length) this.#free.push(this.#sending.pop()!);
  }
}

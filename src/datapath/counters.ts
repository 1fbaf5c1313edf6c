/**
 * Layout of the per-worker counter block: one `SharedArrayBuffer` of float64
 * slots that the worker writes in its hot loop (plain stores, no atomics: a
 * single writer) and the supervisor reads at any time without a message
 * round-trip. Float64 counts exactly up to 2^53.
 *
 * Rules and outputs own stable slot numbers assigned by the supervisor, so a
 * rule's counters survive table changes and reloads.
 *
 * @module
 */
import { DROP_COUNT } from "./packet.ts";
import { MAX_OUTPUT_SLOTS, MAX_RULE_SLOTS } from "../config/limits.ts";

/** Interface-level slots. */
export const If = {
  /** Frames taken from the ring. */
  frames: 0,
  /** Bytes of those frames (wire length). */
  bytes: 1,
  /** Frames that matched a rule. */
  matched: 2,
  /** Non-empty batches processed. */
  batches: 3,
  /** Kernel: frames handed to the ring (PACKET_STATISTICS tp_packets). */
  kernelPackets: 4,
  /** Kernel: frames dropped because the ring was full. */
  kernelDrops: 5,
  /** Kernel: V3 queue freezes. */
  kernelFreezes: 6,
  /** poll() syscalls. */
  polls: 7,
  /** Rule-table version the worker runs. */
  tableVersion: 8,
  /** Adaptive gather sleeps. */
  gathers: 9,
  /** Datagrams handed to the kernel for output. */
  sent: 10,
  /** Worker heartbeat (ms timestamp of the last loop pass). */
  heartbeat: 11,
  /** 1 while the worker's ring is open and forwarding. */
  running: 12,
} as const;

/** First drop-reason slot (indexed by `Drop` code). */
export const DROP_BASE = 32;
/** First rule slot; each rule has RULE_WORDS slots. */
export const RULE_BASE = DROP_BASE + 32;
/** Slots per rule: packets, bytes. */
export const RULE_WORDS = 2;
/** First output slot; each output has OUT_WORDS slots. */
export const OUT_BASE = RULE_BASE + MAX_RULE_SLOTS * RULE_WORDS;
/** Slots per output (see {@link Out}). */
export const OUT_WORDS = 10;
/**
 * Output slot offsets. For each output, datagrams matched by its rule =
 * packets + ringFull + errors + ttlExpired + unavailable + linkDown + tooBig
 * + queued.
 */
export const Out = {
  /** Datagrams the kernel took. */
  packets: 0,
  /** UDP payload bytes of those. */
  bytes: 1,
  /** Dropped: TX ring full (or the socket would block). */
  ringFull: 2,
  /** Dropped: send errors. */
  errors: 3,
  /** Dropped: TTL would reach 0 (decrement policy). */
  ttlExpired: 4,
  /** Dropped: the output could not be installed (no address, missing interface, ...). */
  unavailable: 5,
  /** Dropped: output link down, without carrier, or gone. */
  linkDown: 6,
  /** Dropped: longer than the output MTU with DF set. */
  tooBig: 7,
  /** Of packets: sent as IPv4 fragments. */
  fragmented: 8,
  /** Gauge: queued in a TX ring, not yet taken by the kernel. */
  queued: 9,
} as const;
/** Total float64 slots in a counter block. */
export const COUNTER_SLOTS = OUT_BASE + MAX_OUTPUT_SLOTS * OUT_WORDS;

if (DROP_COUNT > 32) throw new Error("too many drop reasons for the counter layout");

/** Allocate a zeroed counter block. */
export function newCounterBlock(): Float64Array {
  return new Float64Array(new SharedArrayBuffer(COUNTER_SLOTS * 8));
}

/**
 * Layout of a worker's counter block: one `SharedArrayBuffer` of float64
 * words that the worker (and libmcr's forwarder, in the worker's thread)
 * writes with plain stores — a single writer — and the supervisor reads at
 * any time without a message round-trip. Float64 counts exactly up to 2^53.
 *
 * Sections, each at a fixed base:
 * - the worker's own words ({@link W}): heartbeat, table version, waits;
 * - one section per input slot ({@link In}, and the drop reasons at
 *   {@link IN_DROP}): the interface's frames, kernel counts and drops as
 *   seen by this worker's ring on it. The supervisor gives each input
 *   interface a slot and each assignment of a slot a generation; the worker
 *   zeroes the section and writes the generation into `In.owner` when it
 *   starts serving it, so a reader never mistakes a slot's earlier life for
 *   the current one;
 * - rules ({@link RULE_WORDS} per rule slot) and outputs ({@link OUT_WORDS}
 *   per output slot, the first eight written by libmcr's forwarder, see
 *   {@link Out}). Rules and outputs own stable slot numbers assigned by the
 *   supervisor, so their counters survive table changes and reloads;
 * - a rule extension ({@link EXT_WORDS} per rule slot, see {@link Ext}):
 *   what a rule's `rate_limit` dropped, what its `health` analysis of
 *   RTP and MPEG-TS payloads counted, and what a path of a rule with
 *   redundant inputs received and did not forward (arbiter.ts). Only rules
 *   with those options (or a capture running: its last receive time) write
 *   it, so only their pages are touched.
 *
 * The block is allocated zeroed and only the pages of slots in use are ever
 * touched, so its size follows the rule set, not the limits.
 *
 * @module
 */
import { DROP_COUNT } from "./packet.ts";
import { MAX_INPUT_SLOTS, MAX_OUTPUT_SLOTS, MAX_RULE_SLOTS } from "../config/limits.ts";
import { OUT_COUNTER_WORDS, OutCounter } from "../../ffi/mod.ts";

/** Worker section words. */
export const W = {
  /** Worker heartbeat (ms timestamp of the last loop pass). */
  heartbeat: 0,
  /** 1 while the worker runs its loop. */
  running: 1,
  /** Rule-table version the worker runs. */
  tableVersion: 2,
  /** Waits that could block (epoll_wait with a timeout). */
  polls: 3,
  /** Adaptive gather sleeps. */
  gathers: 4,
  /** Waits that returned frames after blocking. */
  wakeups: 5,
  /** Forward descriptors that named no installed output (a bug guard). */
  invalid: 6,
  /** Outcomes of frames whose output had been cleared meanwhile. */
  orphans: 7,
  /** Supervisor messages handled (the last one's sequence number). */
  seq: 8,
  /** RX rings open. */
  rings: 9,
  /** Gauge: the worker thread's nice value now (priority.ts). */
  nice: 10,
  /** Times the worker took `worker_nice` because it fell behind (adaptive priority). */
  priorityRaises: 11,
} as const;
/** Words of the worker section. */
export const W_WORDS = 16;

/** Input section words (per input slot). */
export const In = {
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
  /** Generation of the slot assignment this section counts for (0 = none yet). */
  owner: 7,
  /** 1 while the worker's ring on the interface is open. */
  open: 8,
  /** Times the kernel reported the input link down on the ring. */
  linkDowns: 9,
  /**
   * Gauge: datagrams of this interface held back by `reorder_ms`
   * (reorder.ts); a worker that dies with some holding them has them
   * counted as `unprocessed` (src/relay/retire.ts).
   */
  held: 10,
} as const;
/** Offset of the drop reasons (indexed by `Drop` code) in an input section. */
export const IN_DROP = 32;
/** Words per input section. */
export const IN_WORDS = 64;
/** First input section. */
export const IN_BASE = W_WORDS;
/** First rule slot; each rule has RULE_WORDS words: packets, bytes. */
export const RULE_BASE = IN_BASE + MAX_INPUT_SLOTS * IN_WORDS;
/** Words per rule. */
export const RULE_WORDS = 2;
/** First output slot; each output has OUT_WORDS words (see {@link Out}). */
export const OUT_BASE = RULE_BASE + MAX_RULE_SLOTS * RULE_WORDS;
/** Words per output. */
export const OUT_WORDS = 12;
/**
 * Output words. The first eight are libmcr's `struct mcr_out_counters`
 * (the forwarder writes them straight into the block); the worker counts
 * the last four. For each output, datagrams matched by its rule = packets +
 * ringFull + errors + ttlExpired + unavailable + linkDown + tooBig + policed
 * + standby + queued.
 */
export const Out = {
  /** Datagrams the kernel took. */
  packets: OutCounter.packets,
  /** UDP payload bytes of those. */
  bytes: OutCounter.bytes,
  /** Dropped: TX ring full (or the socket would block). */
  ringFull: OutCounter.ringFull,
  /** Dropped: send errors. */
  errors: OutCounter.errors,
  /** Dropped: output link down, without carrier, or gone. */
  linkDown: OutCounter.linkDown,
  /** Dropped: longer than the output MTU with DF set. */
  tooBig: OutCounter.tooBig,
  /** Of packets: sent as IPv4 fragments. */
  fragmented: OutCounter.fragmented,
  /** Gauge: queued in a TX ring, not yet taken by the kernel. */
  queued: OutCounter.queued,
  /** Dropped: TTL would reach 0 (decrement policy). */
  ttlExpired: OUT_COUNTER_WORDS,
  /** Dropped: the output could not be installed (no address, missing interface, ...). */
  unavailable: OUT_COUNTER_WORDS + 1,
  /** Dropped: over the `rate_limit` of the output or of its rule (policer.ts). */
  policed: OUT_COUNTER_WORDS + 2,
  /** Not sent: the relay is a standby (standby.ts); what it would have handed to the output. */
  standby: OUT_COUNTER_WORDS + 3,
} as const;
/** First rule extension; each rule slot has EXT_WORDS words (see {@link Ext}). */
export const EXT_BASE = OUT_BASE + MAX_OUTPUT_SLOTS * OUT_WORDS;
/** Words per rule extension. */
export const EXT_WORDS = 24;
/**
 * Rule extension words (written only for rules with `rate_limit`, `health`
 * or redundant inputs; stream_health.ts, policer.ts, arbiter.ts). All are counts
 * except {@link Ext.rtpJitterUs}, a gauge.
 */
export const Ext = {
  /** Datagrams the rule's own `rate_limit` dropped (each also counted per output as policed). */
  policed: 0,
  /** UDP payload bytes of those. */
  policedBytes: 1,
  /** RTP: datagrams analysed as RTP (version 2, long enough). */
  rtpPackets: 2,
  /** RTP: datagrams that were not RTP version 2 (or too short for its header). */
  rtpInvalid: 3,
  /** RTP: sequence numbers missing (a late arrival that fills a gap takes one back). */
  rtpLost: 4,
  /** RTP: sequence numbers seen twice (within the reorder window). */
  rtpDuplicates: 5,
  /** RTP: datagrams that arrived after a higher sequence number (filled a gap). */
  rtpReordered: 6,
  /** RTP: restarts of the sequence analysis (new SSRC, or a jump beyond the window). */
  rtpResyncs: 7,
  /** RTP: RFC 3550 interarrival jitter, µs (a gauge). */
  rtpJitterUs: 8,
  /** MPEG-TS: 188-byte packets analysed. */
  tsPackets: 9,
  /** MPEG-TS: packets whose sync byte is not 0x47, and payloads not a multiple of 188 bytes. */
  tsSyncErrors: 10,
  /** MPEG-TS: continuity counter errors (TR 101 290 1.4). */
  tsCcErrors: 11,
  /**
   * Kernel receive time of the rule's last datagram in this worker (µs
   * modulo 2^32, as `RxDescWord.tstampUs`; 0: none yet). A timestamp, not
   * a count: the stream monitor reads it for the last-packet age.
   */
  lastRxUs: 12,
  /** A path of a redundant rule (arbiter.ts): copies dropped as already forwarded. */
  mergedDuplicates: 13,
  /** A path of a redundant rule: datagrams too far behind to judge (`merge_late`). */
  mergeLate: 14,
  /** A path of a `failover` rule: datagrams dropped while another path was active. */
  inactive: 15,
  /**
   * A path of a redundant rule: datagrams it received (matched its input),
   * forwarded or not: the rule's packets + mergedDuplicates + mergeLate + inactive.
   */
  received: 16,
  /** A path of a redundant rule: UDP payload bytes of those. */
  receivedBytes: 17,
} as const;
/** Extension words that are not counts (never summed into retired counts). */
export const EXT_GAUGES: readonly number[] = [Ext.rtpJitterUs, Ext.lastRxUs];
/** Total float64 words in a counter block. */
export const COUNTER_SLOTS = EXT_BASE + MAX_RULE_SLOTS * EXT_WORDS;

/** Base of rule slot `slot`'s extension words. */
export function extBase(slot: number): number {
  return EXT_BASE + slot * EXT_WORDS;
}

if (DROP_COUNT > IN_WORDS - IN_DROP) throw new Error("too many drop reasons for the layout");
if (OUT_COUNTER_WORDS + 4 !== OUT_WORDS) throw new Error("output layout does not match libmcr");

/** Base of input slot `slot`'s section. */
export function inBase(slot: number): number {
  return IN_BASE + slot * IN_WORDS;
}

/**
 * Zero rule slot `slot`'s extension words in `c` if any is set: a fill
 * would touch the pages of every rule's extension, which only rules with
 * options ever write.
 */
export function zeroExt(c: Float64Array, slot: number): void {
  const e = extBase(slot);
  for (let k = e; k < e + EXT_WORDS; k++) {
    if (c[k] !== 0) {
      c.fill(0, e, e + EXT_WORDS);
      return;
    }
  }
}

/**
 * Fold rule slot `slot`'s words of a worker's last block `c` into the
 * retired sums `r`. Extension words: counts add up, the jitter keeps the
 * largest, the last receive time is dropped (it is that worker's); words
 * never written are only read (a rule without options touches no page of
 * `r`'s extension).
 */
export function retireRule(r: Float64Array, c: Float64Array, slot: number): void {
  const rb = RULE_BASE + slot * RULE_WORDS;
  for (let k = rb; k < rb + RULE_WORDS; k++) r[k] += c[k];
  const e = extBase(slot);
  for (let k = 0; k < EXT_WORDS; k++) {
    const v = c[e + k];
    if (v === 0) continue; // words never written stay untouched (no page of `r` is touched)
    if (k === Ext.rtpJitterUs) r[e + k] = Math.max(r[e + k], v);
    else if (!EXT_GAUGES.includes(k)) r[e + k] += v;
  }
}

/** Zero rule slot `slot`'s words and (if written) its extension words in `c`. */
export function zeroRule(c: Float64Array, slot: number): void {
  c.fill(0, RULE_BASE + slot * RULE_WORDS, RULE_BASE + (slot + 1) * RULE_WORDS);
  zeroExt(c, slot);
}

/** Allocate a zeroed counter block. */
export function newCounterBlock(): Float64Array {
  return new Float64Array(new SharedArrayBuffer(COUNTER_SLOTS * 8));
}

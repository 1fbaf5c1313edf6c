/**
 * The per-batch hot loop, free of FFI so it can be unit-tested and
 * micro-benchmarked (`deno bench`) on synthetic rings: parse every frame of a
 * batch, match it against the compiled rule table, count, and write one
 * forward descriptor per output datagram. A rule with `health` or `rate_limit`
 * (rule_ext.ts) also has its payload analysed (stream_health.ts) and its
 * datagrams policed (policer.ts) here, and a rule being captured its frames
 * copied (capture.ts); a rule without them pays one comparison per datagram
 * and one per output.
 *
 * No allocation per packet: the parsed-packet object, the descriptor array
 * and the counter block are created once.
 *
 * @module
 */
import { Drop, ParsedPacket, parseFrame } from "./packet.ts";
import { Ext, In, IN_DROP, Out } from "./counters.ts";
import type { Policer } from "./policer.ts";
import { Verdict } from "./arbiter.ts";
import type { RuleExt } from "./rule_ext.ts";
import {
  HOLD_SLOT_BYTES,
  type HoldQueue,
  MAX_HELD_PER_RULE,
  Place,
  ReorderBuffer,
} from "./reorder.ts";
import { MAX_OUTPUT_SLOTS } from "../config/limits.ts";
import { type CompiledRule, matchRule, matchRule6, type MatchTable } from "./match.ts";
import { FWD_DESC_WORDS, FwdDescWord, FwdFlag, RX_DESC_WORDS, RxDescWord } from "../../ffi/mod.ts";

// Descriptor words as plain constants for the hot loop (ffi/abi.ts checks them against C).
const RXW = RX_DESC_WORDS;
const RX_OFFSET = RxDescWord.offset;
const RX_SNAPLEN = RxDescWord.snaplen;
const RX_LEN = RxDescWord.len;
const RX_STATUS = RxDescWord.status;
const RX_VLAN_TCI = RxDescWord.vlanTci;
const RX_TSTAMP = RxDescWord.tstampUs;
const FWW = FWD_DESC_WORDS;
const FW_FRAME = FwdDescWord.frame;
const FW_L3 = FwdDescWord.l3Offset;
const FW_PAYLOAD_OFF = FwdDescWord.payloadOff;
const FW_PAYLOAD_LEN = FwdDescWord.payloadLen;
const FW_TMPL = FwdDescWord.tmpl;
const FW_TTL = FwdDescWord.ttl;
const FW_FLAGS = FwdDescWord.flags;
/** Descriptor flags of an IPv6 input datagram (the forwarder reads its headers as IPv6). */
const FW_IN_IPV6 = FwdFlag.IN_IPV6;

/** Processes batches of received frames into forward descriptors. */
export class BatchProcessor {
  /** Output slots currently in error (descriptors skipped and counted). */
  readonly broken: Uint8Array = new Uint8Array(MAX_OUTPUT_SLOTS);
  readonly #pkt = new ParsedPacket();
  /** Frames held for reordering (reorder.ts), shared by the rules with `reorder_ms`. */
  readonly reorder: ReorderBuffer = new ReorderBuffer();
  /** Where a full `fdesc` goes: `flush` while processing a batch, `flushHeld` while releasing. */
  #flushNow: (n: number) => void;

  /**
   * @param counters the worker's counter block (counters.ts)
   * @param fdesc forward descriptor array (C-owned in the relay)
   * @param maxDesc capacity of `fdesc` in descriptors
   * @param flush called with the number of descriptors when `fdesc` is full
   *   (the relay submits them), then filling restarts at 0
   * @param flushHeld as `flush`, while {@link release} fills `fdesc` with held frames
   */
  constructor(
    readonly counters: Float64Array,
    readonly fdesc: Uint32Array,
    readonly maxDesc: number,
    readonly flush: (n: number) => void,
    readonly flushHeld: (n: number) => void = flush,
  ) {
    this.#flushNow = flush;
  }

  /**
   * Process `n` frames described by `desc` (8 words each) in `ring`, an
   * input interface's ring: `lookup` holds its rules, `base` is its input
   * section in the counter block (counters.ts `inBase`), `linkHeader` the
   * length of its link-layer header (link_types.ts `LINK_HEADER`: 14 for
   * Ethernet, 0 for tun, WireGuard, ...). Returns the number of forward
   * descriptors left in `fdesc` to submit.
   */
  process(
    ring: Uint8Array,
    desc: Uint32Array,
    n: number,
    lookup: MatchTable,
    base: number,
    linkHeader: number,
  ): number {
    const counters = this.counters;
    const drops = base + IN_DROP;
    const pkt = this.#pkt;
    let m = 0;
    let bytes = 0;
    this.#flushNow = this.flush;
    for (let i = 0; i < n; i++) {
      const b = i * RXW;
      const wire = desc[b + RX_LEN];
      bytes += wire;
      const r = parseFrame(
        ring,
        desc[b + RX_OFFSET],
        desc[b + RX_SNAPLEN],
        wire,
        desc[b + RX_STATUS],
        desc[b + RX_VLAN_TCI],
        linkHeader,
        pkt,
      );
      if (r >= 0) {
        counters[drops + r]++;
        continue;
      }
      const v6 = pkt.family === 6;
      const rule = v6
        ? matchRule6(lookup, pkt)
        : matchRule(lookup, pkt.dst, pkt.dport, pkt.src, pkt.vlan);
      if (rule === undefined) {
        counters[drops + Drop.no_match]++;
        continue;
      }
      // redundant paths, rate limits and payload analysis (rule_ext.ts): only rules that have
      // them pay for them
      const ext = rule.ext;
      let tUs = 0;
      if (ext !== null) {
        tUs = desc[b + RX_TSTAMP];
        // a capture (capture.ts) copies the frame as received, before any arbitration or policing
        if (ext.capture !== null) ext.capture.take(ring, desc, b, linkHeader);
        counters[ext.base + Ext.lastRxUs] = tUs;
        const arb = ext.arbiter;
        if (arb !== null) {
          // a path of a redundant rule: counts and analyses what it received (redundancy's
          // per-input view), then decides whether it forwards it
          counters[ext.base + Ext.received]++;
          counters[ext.base + Ext.receivedBytes] += pkt.payloadLength;
          if (ext.analyser !== null) {
            ext.analyser.analyse(counters, ring, pkt.payloadOffset, pkt.payloadLength, tUs);
          }
          const v = arb.admit(ring, pkt.payloadOffset, pkt.payloadLength, tUs);
          if (v !== Verdict.forward) {
            this.#notForwarded(ext, drops, v);
            continue;
          }
          if (ext.hold !== null && arb.lastRtp) {
            const p = ext.hold.place(arb.lastSeq);
            if (p === Place.late) {
              this.#notForwarded(ext, drops, Verdict.late);
              continue;
            }
            if (
              p === Place.hold && this.#hold(ext.hold, rule, arb.lastSeq, ring, desc, b, base)
            ) {
              continue;
            }
          }
        }
      }
      m = this.#emit(
        m,
        rule,
        i,
        ring,
        pkt.l3Offset,
        pkt.payloadOffset,
        pkt.payloadLength,
        pkt.ttl,
        v6 ? FW_IN_IPV6 : 0,
        tUs,
        base,
      );
    }
    counters[base + In.frames] += n;
    counters[base + In.bytes] += bytes;
    counters[base + In.batches]++;
    return m;
  }

  /** Count a datagram a redundant rule's path does not forward (arbiter.ts {@link Verdict}). */
  #notForwarded(ext: RuleExt, drops: number, v: number): void {
    const counters = this.counters;
    if (v === Verdict.duplicate) {
      counters[ext.base + Ext.mergedDuplicates]++;
      counters[drops + Drop.merged_duplicate]++;
    } else if (v === Verdict.late) {
      counters[ext.base + Ext.mergeLate]++;
      counters[drops + Drop.merge_late]++;
    } else {
      counters[ext.base + Ext.inactive]++;
      counters[drops + Drop.inactive_input]++;
    }
  }

  /**
   * One matched datagram of `rule` — frame `frame` of the batch in `buf`,
   * its IP header at `l3`, its payload at `off` (`len` bytes), input TTL
   * (hop limit) `inTtl`, descriptor `flags` (FwdFlag: IPv6 input), received
   * at `tUs` — through the rule's options and onto each output: forward
   * descriptors from `m` on. Returns the new count.
   */
  #emit(
    m: number,
    rule: CompiledRule,
    frame: number,
    buf: Uint8Array,
    l3: number,
    off: number,
    len: number,
    inTtl: number,
    flags: number,
    tUs: number,
    base: number,
  ): number {
    const counters = this.counters;
    const drops = base + IN_DROP;
    counters[base + In.matched]++;
    counters[rule.counter]++;
    counters[rule.counter + 1] += len;
    const ext = rule.ext;
    let outPolice: (Policer | null)[] | null = null;
    if (ext !== null) {
      // (a path of a redundant rule analysed what it received, in process())
      if (ext.analyser !== null && ext.arbiter === null) {
        ext.analyser.analyse(counters, buf, off, len, tUs);
      }
      if (ext.police !== null && !ext.police.admit(tUs, len)) {
        counters[ext.base + Ext.policed]++;
        counters[ext.base + Ext.policedBytes] += len;
        for (let k = 0; k < rule.nOut; k++) counters[rule.outCounter[k] + Out.policed]++;
        counters[drops + Drop.policed] += rule.nOut;
        return m;
      }
      outPolice = ext.outPolice;
    }
    const fdesc = this.fdesc;
    const broken = this.broken;
    for (let k = 0; k < rule.nOut; k++) {
      const tmpl = rule.tmpl[k];
      let ttl = rule.ttl[k];
      if (ttl === 0) {
        if (inTtl <= 1) {
          counters[rule.outCounter[k] + Out.ttlExpired]++;
          counters[drops + Drop.ttl_expired]++;
          continue;
        }
        ttl = inTtl - 1;
      }
      if (broken[tmpl] !== 0) {
        counters[rule.outCounter[k] + Out.unavailable]++;
        continue;
      }
      if (outPolice !== null) {
        const p = outPolice[k];
        if (p !== null && !p.admit(tUs, len)) {
          counters[rule.outCounter[k] + Out.policed]++;
          counters[drops + Drop.policed]++;
          continue;
        }
      }
      if (m === this.maxDesc) {
        this.#flushNow(m);
        m = 0;
      }
      const d = m * FWW;
      fdesc[d + FW_FRAME] = frame;
      fdesc[d + FW_L3] = l3;
      fdesc[d + FW_PAYLOAD_OFF] = off;
      fdesc[d + FW_PAYLOAD_LEN] = len;
      fdesc[d + FW_TMPL] = tmpl;
      fdesc[d + FW_TTL] = ttl;
      fdesc[d + FW_FLAGS] = flags;
      m++;
    }
    return m;
  }

  /**
   * Hold the datagram just parsed (frame at descriptor word `b` of `desc`)
   * of `rule` in `q` until its turn (reorder.ts). False when it cannot be held (no
   * room, too long): it goes out now instead.
   */
  #hold(
    q: HoldQueue,
    rule: CompiledRule,
    seq: number,
    ring: Uint8Array,
    desc: Uint32Array,
    b: number,
    base: number,
  ): boolean {
    const rb = this.reorder;
    if (q.size >= MAX_HELD_PER_RULE) return false;
    const at = desc[b + RX_OFFSET];
    const slot = rb.take(
      ring,
      at,
      desc[b + RX_SNAPLEN],
      desc[b + RX_LEN],
      desc[b + RX_STATUS],
      desc[b + RX_VLAN_TCI],
      desc[b + RX_TSTAMP],
    );
    if (slot < 0) return false;
    const pkt = this.#pkt;
    const shift = slot * HOLD_SLOT_BYTES - at;
    const f = {
      slot,
      l3Offset: pkt.l3Offset + shift,
      payloadOffset: pkt.payloadOffset + shift,
      payloadLength: pkt.payloadLength,
      ttl: pkt.ttl,
      flags: pkt.family === 6 ? FW_IN_IPV6 : 0,
      tUs: desc[b + RX_TSTAMP],
    };
    if (!q.insert(seq, f)) {
      // already held: a copy the window no longer remembered (a window smaller than the hold)
      rb.drop(slot);
      this.#notForwarded(rule.ext!, base + IN_DROP, Verdict.duplicate);
      return true;
    }
    this.counters[base + In.held]++;
    q.base = base;
    q.rule = rule;
    rb.active.add(q);
    return true;
  }

  /**
   * Release held datagrams whose turn came (or all, with `force`: before a
   * table change or a stop) at `nowUs` (kernel clock, µs mod 2^32): forward
   * descriptors into `fdesc` whose frames are {@link reorder}'s slots.
   * Returns the number to submit with `reorder.desc`/`reorder.frames`
   * (`flushHeld` takes them when `fdesc` fills); then call `reorder.sent()`.
   */
  release(nowUs: number, force = false): number {
    const rb = this.reorder;
    let m = 0;
    this.#flushNow = this.flushHeld;
    // In sequence order across the queues (one per path) of each rule: once any of a rule's
    // queues may send, the head nearest to the rule's next sequence number goes first, so a
    // path never skips past a datagram another path of this worker holds.
    for (;;) {
      let due: ArrayBufferLike | null = null;
      for (const c of rb.active) {
        if (c.due(nowUs, force)) {
          due = c.state.buffer;
          break;
        }
      }
      if (due === null) break;
      let q: HoldQueue | null = null, best = 0;
      for (const c of rb.active) {
        if (c.state.buffer !== due) continue;
        const d = c.distance();
        if (q === null || d < best) {
          q = c;
          best = d;
        }
      }
      if (q === null) break;
      const seq = q.seq[0];
      const f = q.shift();
      if (q.size === 0) rb.active.delete(q);
      if (!force && best < 0) {
        rb.drop(f.slot); // another worker sent past it
        this.counters[q.base + In.held]--;
        this.#notForwarded((q.rule as CompiledRule).ext!, q.base + IN_DROP, Verdict.late);
        continue;
      }
      q.sent(seq);
      rb.leaving(f.slot);
      this.counters[q.base + In.held]--;
      m = this.#emit(
        m,
        q.rule as CompiledRule,
        f.slot,
        rb.frames,
        f.l3Offset,
        f.payloadOffset,
        f.payloadLength,
        f.ttl,
        f.flags,
        f.tUs,
        q.base,
      );
    }
    return m;
  }
}

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
import { MAX_OUTPUT_SLOTS } from "../config/limits.ts";
import { matchRule, type MatchTable } from "./match.ts";
import { FWD_DESC_WORDS, FwdDescWord, RX_DESC_WORDS, RxDescWord } from "../../ffi/mod.ts";

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

/** Processes batches of received frames into forward descriptors. */
export class BatchProcessor {
  /** Output slots currently in error (descriptors skipped and counted). */
  readonly broken: Uint8Array = new Uint8Array(MAX_OUTPUT_SLOTS);
  readonly #pkt = new ParsedPacket();

  /**
   * @param counters the worker's counter block (counters.ts)
   * @param fdesc forward descriptor array (C-owned in the relay)
   * @param maxDesc capacity of `fdesc` in descriptors
   * @param flush called with the number of descriptors when `fdesc` is full
   *   (the relay submits them), then filling restarts at 0
   */
  constructor(
    readonly counters: Float64Array,
    readonly fdesc: Uint32Array,
    readonly maxDesc: number,
    readonly flush: (n: number) => void,
  ) {}

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
    const fdesc = this.fdesc;
    const drops = base + IN_DROP;
    const broken = this.broken;
    const pkt = this.#pkt;
    const maxDesc = this.maxDesc;
    let m = 0;
    let bytes = 0, matched = 0;
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
      const rule = matchRule(lookup, pkt.dst, pkt.dport, pkt.src, pkt.vlan);
      if (rule === undefined) {
        counters[drops + Drop.no_match]++;
        continue;
      }
      matched++;
      counters[rule.counter]++;
      counters[rule.counter + 1] += pkt.payloadLength;
      // rate limits and payload analysis (rule_ext.ts): only rules that have them pay for them
      const ext = rule.ext;
      let outPolice: (Policer | null)[] | null = null;
      let tUs = 0;
      if (ext !== null) {
        tUs = desc[b + RX_TSTAMP];
        // a capture (capture.ts) copies the frame as received, before any policing
        if (ext.capture !== null) ext.capture.take(ring, desc, b, linkHeader);
        const len = pkt.payloadLength;
        counters[ext.base + Ext.lastRxUs] = tUs;
        if (ext.analyser !== null) {
          ext.analyser.analyse(counters, ring, pkt.payloadOffset, len, tUs);
        }
        if (ext.police !== null && !ext.police.admit(tUs, len)) {
          counters[ext.base + Ext.policed]++;
          counters[ext.base + Ext.policedBytes] += len;
          for (let k = 0; k < rule.nOut; k++) counters[rule.outCounter[k] + Out.policed]++;
          counters[drops + Drop.policed] += rule.nOut;
          continue;
        }
        outPolice = ext.outPolice;
      }
      const inTtl = pkt.ttl;
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
          if (p !== null && !p.admit(tUs, pkt.payloadLength)) {
            counters[rule.outCounter[k] + Out.policed]++;
            counters[drops + Drop.policed]++;
            continue;
          }
        }
        if (m === maxDesc) {
          this.flush(m);
          m = 0;
        }
        const d = m * FWW;
        fdesc[d + FW_FRAME] = i;
        fdesc[d + FW_L3] = pkt.l3Offset;
        fdesc[d + FW_PAYLOAD_OFF] = pkt.payloadOffset;
        fdesc[d + FW_PAYLOAD_LEN] = pkt.payloadLength;
        fdesc[d + FW_TMPL] = tmpl;
        fdesc[d + FW_TTL] = ttl;
        fdesc[d + FW_FLAGS] = 0;
        m++;
      }
    }
    counters[base + In.frames] += n;
    counters[base + In.bytes] += bytes;
    counters[base + In.matched] += matched;
    counters[base + In.batches]++;
    return m;
  }
}

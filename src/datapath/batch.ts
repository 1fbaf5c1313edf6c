/**
 * The per-batch hot loop, free of FFI so it can be unit-tested and
 * micro-benchmarked (`deno bench`) on synthetic rings: parse every frame of a
 * batch, match it against the compiled rule table, count, and write one
 * forward descriptor per output datagram.
 *
 * No allocation per packet: the parsed-packet object, the descriptor array
 * and the counter block are created once.
 *
 * @module
 */
import { Drop, ParsedPacket, parseFrame } from "./packet.ts";
import { DROP_BASE, If, Out } from "./counters.ts";
import { MAX_OUTPUT_SLOTS } from "../config/limits.ts";
import { type CompiledRule, MatchTable } from "./match.ts";
import { FWD_DESC_WORDS as FWW, RX_DESC_WORDS as RXW } from "../../ffi/mod.ts";

/** Processes batches of received frames into forward descriptors. */
export class BatchProcessor {
  /** The compiled rule lookup in force (swap whole to change rules). */
  lookup: MatchTable = new MatchTable(0);
  /** Output slots currently in error (descriptors skipped and counted). */
  readonly broken: Uint8Array = new Uint8Array(MAX_OUTPUT_SLOTS);
  readonly #pkt = new ParsedPacket();

  /**
   * @param counters the worker's counter block
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
   * Process `n` frames described by `desc` (8 words each) in `ring`.
   * Returns the number of forward descriptors left in `fdesc` to submit.
   */
  process(ring: Uint8Array, desc: Uint32Array, n: number): number {
    const counters = this.counters;
    const fdesc = this.fdesc;
    const lookup = this.lookup;
    const broken = this.broken;
    const pkt = this.#pkt;
    const maxDesc = this.maxDesc;
    let m = 0;
    let bytes = 0, matched = 0;
    for (let i = 0; i < n; i++) {
      const b = i * RXW;
      const wire = desc[b + 2];
      bytes += wire;
      const r = parseFrame(ring, desc[b], desc[b + 1], wire, desc[b + 3], desc[b + 4], pkt);
      if (r >= 0) {
        counters[DROP_BASE + r]++;
        continue;
      }
      const li = lookup.find(pkt.dst, pkt.dport);
      let rule: CompiledRule | undefined;
      if (li >= 0) {
        const list = lookup.lists[li];
        for (let j = 0; j < list.length; j++) {
          const c = list[j];
          if (c.vlan === pkt.vlan && (c.source === 0 || c.source === pkt.src)) {
            rule = c;
            break;
          }
        }
      }
      if (rule === undefined) {
        counters[DROP_BASE + Drop.no_match]++;
        continue;
      }
      matched++;
      counters[rule.counter]++;
      counters[rule.counter + 1] += pkt.payloadLength;
      const inTtl = pkt.ttl;
      for (let k = 0; k < rule.nOut; k++) {
        const tmpl = rule.tmpl[k];
        let ttl = rule.ttl[k];
        if (ttl === 0) {
          if (inTtl <= 1) {
            counters[rule.outCounter[k] + Out.ttlExpired]++;
            counters[DROP_BASE + Drop.ttl_expired]++;
            continue;
          }
          ttl = inTtl - 1;
        }
        if (broken[tmpl] !== 0) {
          counters[rule.outCounter[k] + Out.unavailable]++;
          continue;
        }
        if (m === maxDesc) {
          this.flush(m);
          m = 0;
        }
        const d = m * FWW;
        fdesc[d] = i;
        fdesc[d + 1] = pkt.l3Offset;
        fdesc[d + 2] = pkt.payloadOffset;
        fdesc[d + 3] = pkt.payloadLength;
        fdesc[d + 4] = tmpl;
        fdesc[d + 5] = ttl;
        fdesc[d + 6] = 0;
        m++;
      }
    }
    counters[If.frames] += n;
    counters[If.bytes] += bytes;
    counters[If.matched] += matched;
    counters[If.batches]++;
    return m;
  }
}

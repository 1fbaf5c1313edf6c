/**
 * Counter snapshots for rates: the counters of every rule, output and input
 * interface as `collectStats` (stats.ts) sums them, kept in typed arrays that
 * follow the tables instead of a stats object per output.
 *
 * @module
 */
import {
  In,
  IN_DROP,
  Out,
  OUT_BASE,
  OUT_WORDS,
  RULE_BASE,
  RULE_WORDS,
  W,
} from "../datapath/counters.ts";
import { Drop, DROP_NAMES } from "../datapath/packet.ts";
import type { WorkerTable } from "../datapath/messages.ts";
import { inputSums, type StatsSource, TX_DROPS } from "./stats.ts";

/** Counters of one input interface for rates (see {@link collectCounters}). */
export interface InputCounters {
  /** Its rule table: the order of `rules` and `outputs`. */
  readonly table: WorkerTable;
  /** Packets and bytes of rule k at 2k and 2k + 1 (table order). */
  readonly rules: Float64Array;
  /** Packets and bytes of every output, rule by rule in table order, two words each. */
  readonly outputs: Float64Array;
  /** Frames taken from its rings. */
  readonly frames: number;
  /** Wire bytes of those. */
  readonly bytes: number;
  /** Kernel ring drops. */
  readonly kernel_drops: number;
}

/** The counters rates are computed from (see {@link collectCounters}). */
export interface CounterSnapshot {
  /** By input interface name. */
  readonly inputs: ReadonlyMap<string, InputCounters>;
  /** Drops by reason, summed over interfaces (as {@link RelayStats} `drops`). */
  readonly drops: Record<string, number>;
}

/**
 * The counters of every rule, output and input interface, as
 * {@link collectStats} sums them, in typed arrays that follow the tables:
 * what a rate sampler keeps between samples. Two words per output instead of
 * a stats object each (a snapshot of 65,536 rules was about 45 MB), and no
 * state is decided.
 */
export function collectCounters(src: StatsSource): CounterSnapshot {
  const drops = new Float64Array(DROP_NAMES.length);
  const inputs = new Map<string, InputCounters>();
  for (const rt of src.inputs) {
    const { sumIn, sum } = inputSums(rt, src.retired);
    for (let d = 0; d < DROP_NAMES.length; d++) drops[d] += sumIn(IN_DROP + d);
    const table = rt.table;
    let n = 0;
    for (const r of table.rules) n += r.outputs.length;
    const rules = new Float64Array(2 * table.rules.length), outputs = new Float64Array(2 * n);
    let k = 0, j = 0;
    for (const r of table.rules) {
      const rb = RULE_BASE + r.slot * RULE_WORDS;
      rules[k++] = sum(rb);
      rules[k++] = sum(rb + 1);
      for (const o of r.outputs) {
        const ob = OUT_BASE + o.slot * OUT_WORDS;
        outputs[j++] = sum(ob + Out.packets);
        outputs[j++] = sum(ob + Out.bytes);
        for (const [w, d] of TX_DROPS) drops[d] += sum(ob + w);
      }
    }
    inputs.set(rt.name, {
      table,
      rules,
      outputs,
      frames: sumIn(In.frames),
      bytes: sumIn(In.bytes),
      kernel_drops: sumIn(In.kernelDrops),
    });
  }
  for (const w of src.workers) {
    drops[Drop.tx_invalid] += w.retired[W.invalid] + w.counters[W.invalid];
  }
  const byName: Record<string, number> = {};
  for (let d = 0; d < DROP_NAMES.length; d++) byName[DROP_NAMES[d]] = drops[d];
  return { inputs, drops: byName };
}

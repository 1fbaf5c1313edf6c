/**
 * Retiring a worker's counters: when a data-path worker stops or crashes,
 * its counter block's counts for the input interfaces it served (and their
 * rules and outputs) are added to the supervisor's retired sums, so that
 * every count survives the worker (stats.ts sums the retired block with the
 * live ones).
 *
 * @module
 */
import { Drop } from "../datapath/packet.ts";
import {
  In,
  IN_DROP,
  IN_WORDS,
  inBase,
  Out,
  OUT_BASE,
  OUT_WORDS,
  retireRule,
} from "../datapath/counters.ts";
import type { Input } from "./inputs.ts";
import type { DataWorker } from "./pool.ts";

/**
 * Add worker `w`'s last counter block `c` into the retired sums `r`, for the
 * input interfaces `inputs` it was a member of (a section that counts for an
 * earlier assignment of the slot is skipped; the gauges `In.open`,
 * `In.held` and `Out.queued` are not added: what it held back for
 * reordering counts as `unprocessed`).
 */
export function retireWorker(
  r: Float64Array,
  c: Float64Array,
  inputs: Iterable<Input>,
  w: DataWorker,
): void {
  for (const g of inputs) {
    const m = g.memberOf(w);
    if (!m) continue;
    const base = inBase(g.slot);
    if (c[base + In.owner] !== g.gen) continue;
    if (r[base + In.owner] !== g.gen) r.fill(0, base, base + IN_WORDS);
    for (let k = 0; k < IN_WORDS; k++) {
      if (k !== In.owner && k !== In.open && k !== In.held) r[base + k] += c[base + k];
    }
    // datagrams it held back for reordering died with it
    r[base + IN_DROP + Drop.unprocessed] += c[base + In.held];
    r[base + In.owner] = g.gen;
    m.retiredFrames += c[base + In.frames];
    for (const rule of g.table.rules) {
      retireRule(r, c, rule.slot);
      for (const o of rule.outputs) {
        const ob = OUT_BASE + o.slot * OUT_WORDS;
        for (let k = 0; k < OUT_WORDS; k++) if (k !== Out.queued) r[ob + k] += c[ob + k];
      }
    }
  }
}

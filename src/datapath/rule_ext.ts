/**
 * A rule's options beyond forwarding, as the hot loop sees them: its own
 * `rate_limit` (policer.ts), its outputs' `rate_limit`s, its `health`
 * payload analysis (stream_health.ts), for a path of a rule with redundant
 * inputs its arbitration (arbiter.ts), and a capture running on it
 * (capture.ts: `mcr ctl capture`). A rule without them has none
 * ({@link CompiledRule.ext} is null), which is all the hot loop checks for
 * it: one comparison per matched datagram and one per output.
 *
 * @module
 */
import { extBase } from "./counters.ts";
import type { TableRule } from "./messages.ts";
import { Policer } from "./policer.ts";
import type { CaptureTap } from "./capture.ts";
import { StreamAnalyser } from "./stream_health.ts";
import { Arbiter } from "./arbiter.ts";
import { HoldQueue } from "./reorder.ts";

/** The extra per-rule state of a rule with options (see module doc); one shape for every rule. */
export class RuleExt {
  /** The capture running on the rule (capture.ts `WorkerCaptures`), or null. */
  capture: CaptureTap | null = null;

  /**
   * @param base the rule's extension words in the counter block (counters.ts `Ext`)
   * @param police the rule's own limit, or null
   * @param analyser its payload analysis, or null
   * @param outPolice per output (rule order): its limit or null; null when no output has one
   * @param arbiter for a path of a rule with redundant inputs: which copies it forwards
   * @param hold for a path of a merge with `reorder_ms`: the frames it holds back (reorder.ts)
   * @param onlyCapture made for a capture on a rule without options: dropped when it stops
   */
  constructor(
    readonly base: number,
    readonly police: Policer | null,
    readonly analyser: StreamAnalyser | null,
    readonly outPolice: (Policer | null)[] | null,
    readonly arbiter: Arbiter | null = null,
    readonly hold: HoldQueue | null = null,
    readonly onlyCapture: boolean = false,
  ) {}
}

/** The {@link RuleExt} of rule `r`, or null when it has no such option. */
export function ruleExt(r: TableRule): RuleExt | null {
  const h = r.health;
  const analyser = h?.payload
    ? new StreamAnalyser(extBase(r.slot), h.payload !== "ts", h.payload !== "rtp", h.clockRate)
    : null;
  const police = r.rateLimit ? new Policer(r.rateLimit) : null;
  const outPolice = r.outputs.some((o) => o.rateLimit)
    ? r.outputs.map((o) => (o.rateLimit ? new Policer(o.rateLimit) : null))
    : null;
  const red = r.redundancy;
  const arbiter = red
    ? new Arbiter(
      red.state,
      red.window,
      red.input,
      red.mode === "failover",
      red.maxDelayUs,
      red.failoverUs,
      red.revertive,
    )
    : null;
  // a rule with `health` needs the last-packet time (Ext.lastRxUs) even without analysis
  if (!h && !analyser && !police && !outPolice && !arbiter) return null;
  const hold = arbiter && red && red.reorderUs > 0
    ? new HoldQueue(arbiter.state, red.reorderUs)
    : null;
  return new RuleExt(extBase(r.slot), police, analyser, outPolice, arbiter, hold);
}

/**
 * `RuleIndex`: what the cross-rule checks and the relay-wide limits need to
 * know about a rule set in force, kept up to date rule by rule. With it a
 * rule added at run time is validated against 65,536 others in constant
 * time (names, enabled inputs, capacity counts) instead of re-reading them all.
 *
 * @module
 */
import { inputKey } from "./ids.ts";
import { type CapacityCounts, capacityShare } from "./semantics.ts";
import type { RuleConfig } from "./types.ts";
import { isAnalysed, isMonitored } from "./stream_options.ts";
import { ruleInputs } from "./redundancy.ts";

function bump(m: Map<string, number>, k: string, by: number): void {
  const n = (m.get(k) ?? 0) + by;
  if (n > 0) m.set(k, n);
  else m.delete(k);
}

/** Index of a valid rule set: by name, by enabled input, and its capacity counts. */
export class RuleIndex {
  readonly #names = new Map<string, RuleConfig>();
  readonly #inputs = new Map<string, RuleConfig>();
  /** Enabled rules per input interface. */
  readonly #inputIfs = new Map<string, number>();
  /** References per interface name (inputs and outputs) from enabled rules. */
  readonly #ifNames = new Map<string, number>();
  #outputs = 0;
  #joins = 0;
  #analysed = 0;
  #monitored = 0;
  #redundant = 0;

  /** @param rules a valid rule set (unique names, one enabled rule per input) */
  constructor(rules: Iterable<RuleConfig> = []) {
    for (const r of rules) this.add(r);
  }

  /** Index a rule that joins the set. */
  add(r: RuleConfig): void {
    this.#change(r, 1);
  }

  /** Forget a rule that leaves the set. */
  remove(r: RuleConfig): void {
    this.#change(r, -1);
  }

  #change(r: RuleConfig, by: 1 | -1): void {
    if (by > 0) this.#names.set(r.name, r);
    else if (this.#names.get(r.name) === r) this.#names.delete(r.name);
    if (!r.enabled) return;
    for (const input of ruleInputs(r)) {
      const key = inputKey(input);
      if (by > 0) this.#inputs.set(key, r);
      else if (this.#inputs.get(key) === r) this.#inputs.delete(key);
      this.#joins += by * input.joinAddrs.length;
      bump(this.#inputIfs, input.interface, by);
      bump(this.#ifNames, input.interface, by);
    }
    this.#outputs += by * r.outputs.length;
    if (isAnalysed(r)) this.#analysed += by;
    if (isMonitored(r)) this.#monitored += by;
    if (r.inputs) this.#redundant += by;
    for (const o of r.outputs) bump(this.#ifNames, o.interface, by);
  }

  /** The rule named `name`, if any. */
  byName(name: string): RuleConfig | undefined {
    return this.#names.get(name);
  }

  /** The enabled rule consuming the input with this key (`inputKey`), if any. */
  byInput(key: string): RuleConfig | undefined {
    return this.#inputs.get(key);
  }

  /**
   * The capacity counts of the set with `value` (a rule as parsed JSON, valid
   * or not) added, counted as `capacityIssues` counts a rule list.
   */
  countsWith(value: unknown): CapacityCounts {
    const counts = {
      outputs: this.#outputs,
      inputs: this.#inputIfs.size,
      interfaces: this.#ifNames.size,
      joins: this.#joins,
      analysed: this.#analysed,
      monitored: this.#monitored,
      redundant: this.#redundant,
    };
    const share = capacityShare(value);
    if (!share) return counts;
    counts.outputs += share.outputs;
    counts.joins += share.joins;
    counts.analysed += share.analysed;
    counts.monitored += share.monitored;
    counts.redundant += share.redundant;
    for (const i of share.inputs) if (!this.#inputIfs.has(i)) counts.inputs++;
    for (const n of share.interfaces) if (!this.#ifNames.has(n)) counts.interfaces++;
    return counts;
  }
}

/**
 * Rules with an output on a link type mcr cannot send on (loopback, GRE,
 * an unknown link header: datapath/link_types.ts). Such an output is in
 * error in its worker (its template is refused, with the reason); its rule
 * is in error too, with the same reason (states.ts `ruleStateOf`: an error
 * of its own), so that a configuration mcr cannot carry out is never shown
 * "active". The rule's other outputs still relay.
 *
 * Decided from the link table: again for the rules a change adds, and for
 * the rules with an output on an interface whose link type starts or stops
 * being a problem (it appears, goes, or is re-created as another type).
 *
 * @module
 */
import { linkTypeProblem } from "../datapath/link_types.ts";
import type { LinkState } from "../datapath/link_table.ts";
import type { WorkerTable } from "../datapath/messages.ts";
import type { LinkChange } from "./links.ts";
import type { RuleSpec } from "./tables.ts";

/** What is needed of a rule: its id and its outputs' interfaces. */
interface RuleOutputs {
  readonly id: string;
  readonly outputs: readonly { readonly interface: string }[];
}

/** Why an output interface in state `s` (undefined: absent) cannot be sent on, if it cannot. */
function outputProblem(name: string, s: LinkState | undefined): string | undefined {
  return s && linkTypeProblem("output", name, s.type);
}

/** Rules whose output is on a link type mcr cannot send on (see module doc). */
export class OutputLinkTypes {
  readonly #errors = new Map<string, string>();
  /** Rules whose error changed since {@link takeChanged}: rule id → input interface. */
  #changed = new Map<string, string>();

  /** @param link the link table's state of an interface by name */
  constructor(readonly link: (name: string) => LinkState | undefined) {}

  /** Rule id → reason, now. */
  get errors(): ReadonlyMap<string, string> {
    return this.#errors;
  }

  /** Rules whose error changed since the last call, as [rule id, input interface]. */
  takeChanged(): [string, string][] {
    const c = [...this.#changed];
    this.#changed = new Map();
    return c;
  }

  #check(input: string, r: RuleOutputs): void {
    let why: string | undefined;
    for (const o of r.outputs) {
      why = outputProblem(o.interface, this.link(o.interface));
      if (why !== undefined) break;
    }
    if (this.#errors.get(r.id) === why) return;
    if (why === undefined) this.#errors.delete(r.id);
    else this.#errors.set(r.id, why);
    this.#changed.set(r.id, input);
  }

  /** The rule set is now `rules`. */
  sync(rules: readonly RuleSpec[]): void {
    const ids = new Set(rules.map((r) => r.id));
    for (const id of [...this.#errors.keys()]) if (!ids.has(id)) this.#errors.delete(id);
    for (const r of rules) this.#check(r.input.interface, r);
  }

  /** Rules `remove` left the rule set and `add` joined it (a replaced rule is in both). */
  change(add: readonly RuleSpec[], remove: readonly RuleSpec[]): void {
    for (const r of remove) this.#errors.delete(r.id);
    for (const r of add) this.#check(r.input.interface, r);
  }

  /**
   * An interface changed: when whether its link type is a problem changed too, decide again
   * for the rules of `tables` with an output on it. True when a rule's error changed.
   */
  linkChanged(c: LinkChange, tables: Iterable<WorkerTable>): boolean {
    if (outputProblem(c.name, c.prev) === outputProblem(c.name, c.next)) return false;
    let changed = false;
    for (const t of tables) {
      for (const r of t.rules) {
        if (!r.outputs.some((o) => o.interface === c.name)) continue;
        const before = this.#errors.get(r.id);
        this.#check(t.interface, r);
        changed ||= this.#errors.get(r.id) !== before;
      }
    }
    return changed;
  }
}

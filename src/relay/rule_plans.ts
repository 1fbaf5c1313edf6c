/**
 * Rule-set changes as the supervisor applies them, planned completely before
 * anything changes (all or nothing): the tables and their counter slots
 * (tables.ts), the input interfaces' slots, and the link-table slots of every
 * interface the rules name. Two ways in: a whole new rule set (start, reload:
 * {@link planRuleSet}) and a change to the set in force (a rule added or
 * removed live: {@link planRuleChange}, in time proportional to the change).
 *
 * @module
 */
import type { TableRule, WorkerTable } from "../datapath/messages.ts";
import type { Links } from "./links.ts";
import {
  diffRules,
  planTableChange,
  planTables,
  type RuleSpec,
  type SlotAllocator,
  type SlotPlan,
  type Slots,
  type TablePlan,
} from "./tables.ts";

/** What the workers of an input interface in force are sent for a change of its table. */
export interface TableDelta {
  /** New or changed rules. */
  upsert: TableRule[];
  /** Rule slots that leave. */
  remove: number[];
  /** Link-table slots of interfaces the upserted rules name. */
  links: Record<string, number>;
}

/** A planned change: commit it, then install its tables. */
export interface RulePlan {
  /** The tables that change (an empty one: the interface loses its last rule). */
  readonly tables: TablePlan;
  /** Slots of the input interfaces with rules. */
  readonly inputs: SlotPlan;
  /** What to send the workers of an input interface in force whose table is `table`. */
  delta(before: WorkerTable, table: WorkerTable): TableDelta;
  /** Make the slot changes real (nothing planned can fail after this). */
  commit(): void;
}

/** The tables in force, by input interface. */
export type Tables = ReadonlyMap<string, WorkerTable>;

/** Where a plan takes its slots from. */
export interface PlanSlots {
  /** Rule and output slots. */
  readonly rules: Slots;
  /** Input interface slots. */
  readonly inputs: SlotAllocator;
  /** Link-table slots. */
  readonly links: Links;
}

/** Interface names the tables name once `changed` replace theirs in `current`. */
export function interfacesInUse(current: Tables, changed: Tables): Set<string> {
  const names = new Set<string>();
  const add = (t: WorkerTable) => {
    if (t.rules.length > 0) names.add(t.interface);
    for (const r of t.rules) for (const o of r.outputs) names.add(o.interface);
  };
  for (const [name, t] of current) if (!changed.has(name)) add(t);
  for (const t of changed.values()) add(t);
  return names;
}

/**
 * Plan `rules` as the whole new rule set (rules and outputs that stay keep
 * their slots; tables in `current` whose rules all go become empty).
 * @throws {CapacityError} when the rules need more slots than the relay has
 */
export function planRuleSet(
  rules: readonly RuleSpec[],
  current: Tables,
  slots: PlanSlots,
  version: number,
): RulePlan {
  const tables = planTables(rules, slots.rules, version, current.keys());
  const withRules = [...tables.tables].filter(([, t]) => t.rules.length > 0).map(([n]) => n);
  const inputs = slots.inputs.plan(withRules);
  const inUse = new Set<string>();
  for (const r of rules) {
    inUse.add(r.input.interface);
    for (const o of r.outputs) inUse.add(o.interface);
  }
  for (const t of tables.tables.values()) {
    const links: Record<string, number> = {
      [t.interface]: slots.links.slot(t.interface, inUse),
    };
    for (const r of t.rules) {
      for (const o of r.outputs) links[o.interface] = slots.links.slot(o.interface, inUse);
    }
    t.links = links;
  }
  return {
    tables,
    inputs,
    delta: (before, table) => ({
      ...diffRules(before.rules, table.rules),
      links: table.links ?? {},
    }),
    commit() {
      tables.commit();
      slots.inputs.commit(inputs);
    },
  };
}

/**
 * Plan a change to the tables in force: `add` rules join (replacing a rule
 * with the same id), `remove` rules leave. Only the tables of the interfaces
 * involved change, and their workers are sent only the change.
 * @throws {CapacityError} when the change needs more slots than the relay has
 */
export function planRuleChange(
  add: readonly RuleSpec[],
  remove: readonly RuleSpec[],
  current: Tables,
  slots: PlanSlots,
  version: number,
): RulePlan {
  const tables = planTableChange(current, add, remove, slots.rules, version);
  const fresh: string[] = [], empty: string[] = [];
  for (const [name, t] of tables.tables) {
    if (t.rules.length > 0 && !current.has(name)) fresh.push(name);
    else if (t.rules.length === 0 && current.has(name)) empty.push(name);
  }
  const inputs = slots.inputs.planChange(fresh, empty);
  // Link slots of the interfaces the added rules name (the tables keep those they had);
  // the names in use are gathered only when the link table is full.
  let inUse: Set<string> | undefined;
  const used = () => inUse ??= interfacesInUse(current, tables.tables);
  const added = new Map<string, Record<string, number>>();
  for (const r of add) {
    let links = added.get(r.input.interface);
    if (!links) {
      added.set(r.input.interface, links = {});
      links[r.input.interface] = slots.links.slot(r.input.interface, used);
    }
    for (const o of r.outputs) links[o.interface] = slots.links.slot(o.interface, used);
  }
  for (const [name, t] of tables.tables) {
    const links = added.get(name);
    if (links) t.links = { ...t.links, ...links };
  }
  return {
    tables,
    inputs,
    delta: (_before, table) => ({
      ...tables.changes.get(table.interface)!,
      links: added.get(table.interface) ?? {},
    }),
    commit() {
      tables.commit();
      slots.inputs.commit(inputs);
    },
  };
}

/**
 * Rule tables: what the supervisor hands each worker (a complete, versioned
 * {@link WorkerTable} per input interface, datapath/messages.ts) and the
 * stable slot allocation behind it: a rule or output keeps its counter slot
 * (and template index) for as long as it exists, so its counters survive
 * table changes and reloads. A change is planned completely before anything
 * is committed, so it applies all or nothing.
 *
 * @module
 */
import { MAX_OUTPUT_SLOTS, MAX_RULE_SLOTS } from "../config/limits.ts";
import {
  outputKey,
  type TableOutput,
  type TableRule,
  type WorkerTable,
} from "../datapath/messages.ts";

/** The minimal rule shape tables are built from (a validated config rule). */
export interface RuleSpec {
  /** Stable id. */
  id: string;
  /** Name. */
  name: string;
  /** Input match. */
  input: { interface: string; group: number; port: number; source: number; vlan: number };
  /** Outputs (resolved TTL: number, or 0 for decrement); slots are assigned by {@link planTables}. */
  outputs: Omit<TableOutput, "slot">[];
}

/** A rule set needs more slots than the relay has; nothing was allocated. */
export class CapacityError extends Error {
  /**
   * Create the error.
   * @param kind which slots ran out
   * @param needed slots the rule set needs
   * @param capacity slots the relay has
   */
  constructor(readonly kind: string, readonly needed: number, readonly capacity: number) {
    super(`${needed} ${kind} slots needed; the relay has ${capacity}`);
    this.name = "CapacityError";
  }
}

/**
 * The slots of a complete new key set, computed by {@link SlotAllocator.plan}
 * without changing the allocator; {@link SlotAllocator.commit} makes it real.
 */
export class SlotPlan {
  /**
   * @param owner the allocator that made the plan
   * @param generation the allocator's generation when planned (a plan goes stale after a commit)
   * @param slots slot of every key of the new set
   * @param freed slots whose key is not in the new set (ascending); some may be reused by it
   * @param free the allocator's free list after the commit (ascending)
   * @param next the allocator's first never-used slot after the commit
   */
  constructor(
    readonly owner: SlotAllocator,
    readonly generation: number,
    readonly slots: ReadonlyMap<string, number>,
    readonly freed: readonly number[],
    readonly free: readonly number[],
    readonly next: number,
  ) {}
}

/**
 * Allocates stable slots: a key keeps its slot for as long as it is in use.
 * Changes are planned first and committed only when every allocator involved
 * has room, so a change that does not fit leaves everything as it was.
 *
 * A new key takes, in this order: a slot that was already free (lowest
 * first), a never-used slot, and only then a slot whose key leaves in the
 * same change. The last case (the relay is full) is the only one in which
 * one table version gives a slot to a different key than the previous
 * version; workers notice that the key behind a slot changed and restart its
 * counters (src/datapath/worker.ts `Outputs.apply`, the rule ids in `applyTable`).
 */
export class SlotAllocator {
  #byKey = new Map<string, number>();
  /** Free slots below #next, ascending. */
  #free: number[] = [];
  #next = 0;
  #generation = 0;

  /**
   * @param capacity number of slots
   * @param kind what a slot holds, for errors ("rule", "output")
   */
  constructor(readonly capacity: number, readonly kind = "") {}

  /**
   * Plan the slots of `keys`, the complete new key set (keys not in it are
   * freed). Slots of keys that leave count as free. Changes nothing.
   * @throws {CapacityError} when the set has more keys than the capacity
   */
  plan(keys: Iterable<string>): SlotPlan {
    const want = new Set(keys);
    if (want.size > this.capacity) throw new CapacityError(this.kind, want.size, this.capacity);
    const slots = new Map<string, number>();
    const fresh: string[] = [];
    for (const k of want) {
      const s = this.#byKey.get(k);
      if (s === undefined) fresh.push(k);
      else slots.set(k, s);
    }
    const freed: number[] = [];
    for (const [k, s] of this.#byKey) if (!want.has(k)) freed.push(s);
    freed.sort((a, b) => a - b);
    // Enough: free + never used + freed = capacity - kept >= fresh.
    let fi = 0, ri = 0, next = this.#next;
    for (const k of fresh) {
      if (fi < this.#free.length) slots.set(k, this.#free[fi++]);
      else if (next < this.capacity) slots.set(k, next++);
      else slots.set(k, freed[ri++]);
    }
    const free = [...this.#free.slice(fi), ...freed.slice(ri)].sort((a, b) => a - b);
    return new SlotPlan(this, this.#generation, slots, freed, free, next);
  }

  /** True when `plan` was made by this allocator since its last commit. */
  isCurrent(plan: SlotPlan): boolean {
    return plan.owner === this && plan.generation === this.#generation;
  }

  /** Apply a plan made by this allocator since its last commit. */
  commit(plan: SlotPlan): void {
    if (!this.isCurrent(plan)) {
      throw new Error("stale slot plan: the allocator changed since it was planned");
    }
    this.#byKey = new Map(plan.slots);
    this.#free = [...plan.free];
    this.#next = plan.next;
    this.#generation++;
  }

  /** Slot of `key` if allocated. */
  peek(key: string): number | undefined {
    return this.#byKey.get(key);
  }

  /** Number of slots in use. */
  get size(): number {
    return this.#byKey.size;
  }
}

/** Slot allocators for rules and outputs. */
export class Slots {
  /** Rule slots. */
  readonly rules: SlotAllocator = new SlotAllocator(MAX_RULE_SLOTS, "rule");
  /** Output slots (also the template index in every worker). */
  readonly outputs: SlotAllocator = new SlotAllocator(MAX_OUTPUT_SLOTS, "output");
}

/** New tables and the slot changes behind them, not yet committed (see {@link planTables}). */
export interface TablePlan {
  /** One table per input interface. */
  readonly tables: Map<string, WorkerTable>;
  /** Slots whose rule or output went away (their counters must start from zero when reused). */
  readonly freed: { readonly rules: readonly number[]; readonly outputs: readonly number[] };
  /** Make the slot changes real (once, and before any other change to the same slots). */
  commit(): void;
}

/**
 * Plan one table per input interface, changing nothing: rules and outputs
 * that stay keep their slots, and the slots of those that go count as free.
 * Returns tables for every interface in `interfaces` too (an interface whose
 * rules all went away gets an empty table, so its worker stops forwarding
 * them).
 * @throws {CapacityError} when the rules need more rule or output slots than the relay has
 */
export function planTables(
  rules: readonly RuleSpec[],
  slots: Slots,
  version: number,
  interfaces: Iterable<string> = [],
): TablePlan {
  const rulePlan = slots.rules.plan(rules.map((r) => r.id));
  const outPlan = slots.outputs.plan(
    rules.flatMap((r) => r.outputs.map((o) => outputKey(r.id, o))),
  );
  const tables = new Map<string, WorkerTable>();
  for (const i of interfaces) tables.set(i, { version, interface: i, rules: [] });
  for (const r of rules) {
    const outputs: TableOutput[] = r.outputs.map((o) => ({
      slot: outPlan.slots.get(outputKey(r.id, o))!,
      ...o,
    }));
    let t = tables.get(r.input.interface);
    if (!t) {
      t = { version, interface: r.input.interface, rules: [] };
      tables.set(r.input.interface, t);
    }
    t.rules.push({
      slot: rulePlan.slots.get(r.id)!,
      id: r.id,
      name: r.name,
      group: r.input.group,
      port: r.input.port,
      source: r.input.source,
      vlan: r.input.vlan,
      outputs,
    });
  }
  return {
    tables,
    freed: { rules: rulePlan.freed, outputs: outPlan.freed },
    commit() {
      if (!slots.rules.isCurrent(rulePlan) || !slots.outputs.isCurrent(outPlan)) {
        throw new Error("stale table plan: the slots changed since it was planned");
      }
      slots.rules.commit(rulePlan);
      slots.outputs.commit(outPlan);
    },
  };
}

/**
 * {@link planTables} and commit at once (for callers that keep no other state
 * about the slots, e.g. benchmarks and tests).
 * @throws {CapacityError} (nothing is changed then)
 */
export function buildTables(
  rules: readonly RuleSpec[],
  slots: Slots,
  version: number,
  interfaces: Iterable<string> = [],
): Map<string, WorkerTable> {
  const plan = planTables(rules, slots, version, interfaces);
  plan.commit();
  return plan.tables;
}

/** Fingerprint of a rule as the workers run it (a change means an upsert). */
function ruleKey(r: TableRule): string {
  let k = `${r.id}|${r.name}|${r.group}|${r.port}|${r.source}|${r.vlan}`;
  for (const o of r.outputs) {
    k += `|${o.slot},${o.interface},${o.dst},${o.port},${o.srcIp},${o.srcPort},${o.ttl},${o.tos}`;
  }
  return k;
}

/** What changed between two rule lists of one interface: rules to upsert, slots to remove. */
export function diffRules(
  before: readonly TableRule[],
  after: readonly TableRule[],
): { upsert: TableRule[]; remove: number[] } {
  const old = new Map<number, TableRule>();
  for (const r of before) old.set(r.slot, r);
  const upsert: TableRule[] = [];
  for (const r of after) {
    const o = old.get(r.slot);
    if (o !== r && (!o || ruleKey(o) !== ruleKey(r))) upsert.push(r);
    old.delete(r.slot);
  }
  return { upsert, remove: [...old.keys()] };
}

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
import type { Ip6 } from "../common/net6.ts";
import { isMulticast } from "../common/net.ts";
import { MAX_OUTPUT_SLOTS, MAX_RULE_SLOTS } from "../config/limits.ts";
import type { RateLimit } from "../datapath/policer.ts";
import {
  outputKey,
  type TableHealth,
  type TableOutput,
  type TableRedundancy,
  type TableRule,
  type WorkerTable,
} from "../datapath/messages.ts";

/** The minimal rule shape tables are built from (a validated config rule). */
export interface RuleSpec {
  /** Stable id. */
  id: string;
  /** Name. */
  name: string;
  /**
   * Input match: `group`/`prefixLen` (32: one address), `port` (0: any),
   * `source` (0: any), `vlan` (-1: untagged); `joins`: the groups the relay
   * joins for it (IGMP).
   */
  input: {
    interface: string;
    group: number;
    prefixLen: number;
    port: number;
    source: number;
    vlan: number;
    joins: readonly number[];
    /** An IPv6 input (issue 14): its group, joined with MLD (`group`: its low 32 bits). */
    group6?: Ip6;
    /** An IPv6 input's source (absent: any). */
    source6?: Ip6;
  };
  /** Outputs (resolved TTL: number, or 0 for decrement); slots are assigned by {@link planTables}. */
  outputs: Omit<TableOutput, "slot">[];
  /** The rule's own `rate_limit`, if any. */
  rateLimit?: RateLimit;
  /** Its `health` option, if any. */
  health?: TableHealth;
  /** A path of a rule with redundant inputs (relay_config.ts `ruleSpecs`): its arbitration. */
  redundancy?: TableRedundancy;
}

/**
 * Whether a spec's input is a unicast address (IPv4 only: IPv6 inputs are groups), which the
 * relay claims a UDP port for (port_claims.ts) instead of joining.
 */
export function isUnicastInput(input: RuleSpec["input"]): boolean {
  return !input.group6 && !isMulticast(input.group);
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
   * @param removed for a change plan ({@link SlotAllocator.planChange}): the keys it
   *   removes; `slots` then holds only the keys it adds or keeps. Absent for a plan of a
   *   complete key set ({@link SlotAllocator.plan}).
   */
  constructor(
    readonly owner: SlotAllocator,
    readonly generation: number,
    readonly slots: ReadonlyMap<string, number>,
    readonly freed: readonly number[],
    readonly free: readonly number[],
    readonly next: number,
    readonly removed?: readonly string[],
  ) {}
}

/** Merge two ascending lists into one ascending list. */
function mergeSorted(a: readonly number[], b: readonly number[]): number[] {
  if (b.length === 0) return a.slice();
  if (a.length === 0) return b.slice();
  const out: number[] = new Array(a.length + b.length);
  let i = 0, j = 0, k = 0;
  while (i < a.length && j < b.length) out[k++] = a[i] <= b[j] ? a[i++] : b[j++];
  while (i < a.length) out[k++] = a[i++];
  while (j < b.length) out[k++] = b[j++];
  return out;
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
    const { slots, fresh } = this.#split(want);
    const freed: number[] = [];
    for (const [k, s] of this.#byKey) if (!want.has(k)) freed.push(s);
    freed.sort((a, b) => a - b);
    return this.#allocate(fresh, slots, freed);
  }

  /**
   * Plan a change to the current key set: `add` keys join it (a key already
   * in it keeps its slot), `remove` keys leave it (unless also in `add`).
   * The same allocation as {@link plan}, in time proportional to the change
   * rather than to the set: this is how one rule is added to 65,536.
   * Changes nothing.
   * @throws {CapacityError} when the changed set has more keys than the capacity
   */
  planChange(add: Iterable<string>, remove: Iterable<string>): SlotPlan {
    const adding = new Set(add);
    const { slots, fresh } = this.#split(adding);
    const removed: string[] = [];
    const freed: number[] = [];
    for (const k of new Set(remove)) {
      if (adding.has(k)) continue;
      const s = this.#byKey.get(k);
      if (s === undefined) continue;
      removed.push(k);
      freed.push(s);
    }
    freed.sort((a, b) => a - b);
    const size = this.#byKey.size - freed.length + fresh.length;
    if (size > this.capacity) throw new CapacityError(this.kind, size, this.capacity);
    return this.#allocate(fresh, slots, freed, removed);
  }

  /** The slots `keys` already hold, and the keys that hold none yet (in order). */
  #split(keys: ReadonlySet<string>): { slots: Map<string, number>; fresh: string[] } {
    const slots = new Map<string, number>();
    const fresh: string[] = [];
    for (const k of keys) {
      const s = this.#byKey.get(k);
      if (s === undefined) fresh.push(k);
      else slots.set(k, s);
    }
    return { slots, fresh };
  }

  /** Give `fresh` keys slots (free first, then never used, then `freed`) and make the plan. */
  #allocate(
    fresh: readonly string[],
    slots: Map<string, number>,
    freed: readonly number[],
    removed?: readonly string[],
  ): SlotPlan {
    // Enough: free + never used + freed = capacity - kept >= fresh.
    let fi = 0, ri = 0, next = this.#next;
    for (const k of fresh) {
      if (fi < this.#free.length) slots.set(k, this.#free[fi++]);
      else if (next < this.capacity) slots.set(k, next++);
      else slots.set(k, freed[ri++]);
    }
    const free = mergeSorted(this.#free.slice(fi), freed.slice(ri));
    return new SlotPlan(this, this.#generation, slots, freed, free, next, removed);
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
    if (plan.removed) {
      for (const k of plan.removed) this.#byKey.delete(k);
      for (const [k, s] of plan.slots) this.#byKey.set(k, s);
    } else {
      this.#byKey = new Map(plan.slots);
    }
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
  readonly rules: SlotAllocator;
  /** Output slots (also the template index in every worker). */
  readonly outputs: SlotAllocator;

  /**
   * @param ruleCapacity rule slots (the relay's: MAX_RULE_SLOTS; tests make full relays small)
   * @param outputCapacity output slots (the relay's: MAX_OUTPUT_SLOTS)
   */
  constructor(ruleCapacity = MAX_RULE_SLOTS, outputCapacity = MAX_OUTPUT_SLOTS) {
    this.rules = new SlotAllocator(ruleCapacity, "rule");
    this.outputs = new SlotAllocator(outputCapacity, "output");
  }
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
    let t = tables.get(r.input.interface);
    if (!t) {
      t = { version, interface: r.input.interface, rules: [] };
      tables.set(r.input.interface, t);
    }
    t.rules.push(tableRule(r, rulePlan, outPlan));
  }
  return {
    tables,
    freed: { rules: rulePlan.freed, outputs: outPlan.freed },
    commit: () => commitPlans(slots, rulePlan, outPlan),
  };
}

/** What one input interface's workers must be sent for a change: rules to upsert, slots to remove. */
export interface TableChange {
  /** New or changed rules. */
  upsert: TableRule[];
  /** Rule slots that leave the table. */
  remove: number[];
}

/** A {@link TablePlan} for a change: only the tables it touches, and what to send for each. */
export interface TableChangePlan extends TablePlan {
  /** By input interface: what its workers must be sent (same keys as `tables`). */
  readonly changes: ReadonlyMap<string, TableChange>;
}

/**
 * Take up `rulePlan` and `outPlan` (a {@link TablePlan}'s `commit`).
 * @throws {Error} when the slots changed since they were planned
 */
function commitPlans(slots: Slots, rulePlan: SlotPlan, outPlan: SlotPlan): void {
  if (!slots.rules.isCurrent(rulePlan) || !slots.outputs.isCurrent(outPlan)) {
    throw new Error("stale table plan: the slots changed since it was planned");
  }
  slots.rules.commit(rulePlan);
  slots.outputs.commit(outPlan);
}

/** The table form of a rule, with the slots of `rulePlan` and `outPlan`. */
function tableRule(r: RuleSpec, rulePlan: SlotPlan, outPlan: SlotPlan): TableRule {
  return {
    slot: rulePlan.slots.get(r.id)!,
    id: r.id,
    name: r.name,
    group: r.input.group,
    prefixLen: r.input.prefixLen,
    port: r.input.port,
    source: r.input.source,
    vlan: r.input.vlan,
    ...(r.input.group6 ? { group6: r.input.group6 } : {}),
    ...(r.input.source6 ? { source6: r.input.source6 } : {}),
    outputs: r.outputs.map((o) => ({ slot: outPlan.slots.get(outputKey(r.id, o))!, ...o })),
    ...(r.rateLimit ? { rateLimit: r.rateLimit } : {}),
    ...(r.health ? { health: r.health } : {}),
    ...(r.redundancy ? { redundancy: r.redundancy } : {}),
  };
}

/**
 * Plan a change to the tables in force, changing nothing: `add` rules join
 * (a rule whose id is in force replaces it in place, keeping its slot),
 * `remove` rules leave (matched by id on their input interface). Only the
 * tables of the interfaces involved are rebuilt, and slots are planned for
 * the change alone ({@link SlotAllocator.planChange}), so adding one rule to
 * 65,536 costs little more than adding it to one. The result is what
 * {@link planTables} of the whole changed rule set would give those tables
 * (a new rule goes to the end of its table).
 * @throws {CapacityError} when the change needs more rule or output slots than the relay has
 */
export function planTableChange(
  current: ReadonlyMap<string, WorkerTable>,
  add: readonly RuleSpec[],
  remove: readonly RuleSpec[],
  slots: Slots,
  version: number,
): TableChangePlan {
  const removing = new Map<string, Set<string>>();
  const leaves = (r: RuleSpec) => {
    let ids = removing.get(r.input.interface);
    if (!ids) removing.set(r.input.interface, ids = new Set());
    ids.add(r.id);
  };
  for (const r of remove) leaves(r);
  // a rule added with an id in force replaces that rule: its old outputs leave
  for (const r of add) if (slots.rules.peek(r.id) !== undefined) leaves(r);
  // the rules that leave, as they are in force (their outputs' keys free slots)
  const gone: TableRule[] = [];
  for (const [name, ids] of removing) {
    for (const t of current.get(name)?.rules ?? []) if (ids.has(t.id)) gone.push(t);
  }
  const rulePlan = slots.rules.planChange(add.map((r) => r.id), gone.map((r) => r.id));
  const outPlan = slots.outputs.planChange(
    add.flatMap((r) => r.outputs.map((o) => outputKey(r.id, o))),
    gone.flatMap((r) => r.outputs.map((o) => outputKey(r.id, o))),
  );
  const adding = new Map<string, Map<string, TableRule>>();
  for (const r of add) {
    let m = adding.get(r.input.interface);
    if (!m) adding.set(r.input.interface, m = new Map());
    m.set(r.id, tableRule(r, rulePlan, outPlan));
  }
  const tables = new Map<string, WorkerTable>();
  const changes = new Map<string, TableChange>();
  for (const name of new Set([...removing.keys(), ...adding.keys()])) {
    const before = current.get(name);
    const ids = removing.get(name) ?? new Set<string>();
    const fresh = new Map(adding.get(name) ?? []);
    const upsert = [...fresh.values()];
    const remove: number[] = [];
    // only new rules (no id of them in force, nothing removed): append them, no scan
    const appendOnly = ids.size === 0 && upsert.every((r) => slots.rules.peek(r.id) === undefined);
    const rules: TableRule[] = appendOnly ? (before?.rules ?? []).slice() : [];
    for (const t of appendOnly ? [] : before?.rules ?? []) {
      const n = fresh.get(t.id);
      if (n) {
        rules.push(n); // replaced in place
        fresh.delete(t.id);
        if (n.slot !== t.slot) remove.push(t.slot);
      } else if (ids.has(t.id)) {
        remove.push(t.slot);
      } else {
        rules.push(t);
      }
    }
    for (const r of fresh.values()) rules.push(r);
    // a slot that leaves and is taken by a rule of the same change (a full relay) is upserted
    const taken = new Set(upsert.map((r) => r.slot));
    tables.set(name, {
      version,
      interface: name,
      rules,
      ...(before?.links ? { links: before.links } : {}),
    });
    changes.set(name, { upsert, remove: remove.filter((s) => !taken.has(s)) });
  }
  return {
    tables,
    changes,
    freed: { rules: rulePlan.freed, outputs: outPlan.freed },
    commit: () => commitPlans(slots, rulePlan, outPlan),
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
  let k = `${r.id}|${r.name}|${r.group}/${r.prefixLen}|${r.port}|${r.source}|${r.vlan}|` +
    `${r.group6 ?? ""}|${r.source6 ?? ""}`;
  for (const o of r.outputs) {
    k += `|${o.slot},${o.interface},${o.dst}/${o.hostBits},${o.port},${o.srcIp},${o.srcPort},` +
      `${o.ttl},${o.tos},${o.dst6 ?? ""},${o.srcIp6 ?? ""}`;
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

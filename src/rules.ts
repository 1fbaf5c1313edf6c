/**
 * Rule tables: what the supervisor hands a worker (a plain, structured-clone
 * friendly {@link WorkerTable} per input interface), the stable counter-slot
 * allocation behind it, and the compiled lookup the worker's hot loop uses.
 *
 * Changes are all-or-nothing: {@link planTables} computes the new tables and
 * slots without touching the allocators (a rule set that needs more slots than
 * the relay has is refused with a {@link CapacityError} before anything
 * changes); the caller commits the plan once it is sure to apply it.
 *
 * Matching: a datagram is looked up by (destination address, UDP port) in a
 * `Map` keyed by `dst * 65536 + port` (48 bits, exact in a double). The
 * candidates for a key are ordered source-specific first, so an (S,G) rule
 * takes precedence over a (*,G) rule for the same group and port, as in
 * multicast routing; exactly one rule applies to a datagram, which is one of
 * the reasons the relay never sends a datagram twice to the same output.
 * `vlan` must match too: -1 means untagged frames only.
 *
 * @module
 */
import {
  MAX_OUTPUT_SLOTS,
  MAX_RULE_SLOTS,
  OUT_BASE,
  OUT_WORDS,
  RULE_BASE,
  RULE_WORDS,
} from "./counters.ts";

/** One output as the worker needs it. Addresses are host-order u32. */
export interface TableOutput {
  /** Stable counter/template slot. */
  slot: number;
  /** Output interface name. */
  interface: string;
  /** Destination group or unicast address. */
  dst: number;
  /** Destination port. */
  port: number;
  /** Source address; 0 = the output interface's address. */
  srcIp: number;
  /** Source port; 0 = keep the input datagram's. */
  srcPort: number;
  /** Fixed TTL 1..255, or 0 for "decrement". */
  ttl: number;
  /** TOS byte (DSCP << 2). */
  tos: number;
}

/** One rule as the worker needs it. */
export interface TableRule {
  /** Stable counter slot. */
  slot: number;
  /** Stable rule id (hash of the input tuple). */
  id: string;
  /** Rule name. */
  name: string;
  /** Input group. */
  group: number;
  /** Input UDP port. */
  port: number;
  /** Required source address, 0 = any. */
  source: number;
  /** Required VLAN id, -1 = untagged only. */
  vlan: number;
  /** Outputs. */
  outputs: TableOutput[];
}

/** The complete rule table for one input interface, versioned. */
export interface WorkerTable {
  /** Monotonic table version; a worker never runs a mix of two versions. */
  version: number;
  /** Input interface these rules read from. */
  interface: string;
  /** Rules on that interface. */
  rules: TableRule[];
  /**
   * Slot in the shared link table (src/links.ts) of every interface the
   * table names (input and outputs); filled in by the supervisor.
   */
  links?: Record<string, number>;
}

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

/** Key of an output inside its rule, stable across reloads. */
export function outputKey(ruleId: string, o: RuleSpec["outputs"][number]): string {
  return `${ruleId}>${o.interface}|${o.dst}|${o.port}`;
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
 * counters (src/worker.ts `Outputs.apply`, the rule ids in `applyTable`).
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

/** A rule as the hot loop sees it. */
export interface CompiledRule {
  /** Counter index of the rule's packet count (bytes at +1). */
  readonly counter: number;
  /** Required source (0 = any). */
  readonly source: number;
  /** Required VLAN (-1 = untagged). */
  readonly vlan: number;
  /** Number of outputs. */
  readonly nOut: number;
  /** Template index per output (= output slot). */
  readonly tmpl: Int32Array;
  /** Counter base per output. */
  readonly outCounter: Int32Array;
  /** Fixed TTL per output, 0 = decrement. */
  readonly ttl: Uint8Array;
  /** True when any output decrements TTL. */
  readonly decrements: boolean;
}

/**
 * The hot-loop lookup: an open-addressing hash table (linear probing) over
 * typed arrays, keyed by (destination address, UDP port), whose values index
 * candidate lists ordered source-specific first. All arithmetic stays in
 * small integers (no heap numbers, no Map hashing of doubles).
 */
export class MatchTable {
  readonly #dst: Int32Array;
  readonly #port: Int32Array;
  readonly #val: Int32Array;
  readonly #mask: number;
  /** Candidate lists (index = value stored in the table). */
  readonly lists: CompiledRule[][] = [];

  /** @param expected number of distinct (dst, port) keys */
  constructor(expected: number) {
    let cap = 16;
    while (cap < expected * 2) cap <<= 1;
    this.#dst = new Int32Array(cap);
    this.#port = new Int32Array(cap).fill(-1);
    this.#val = new Int32Array(cap);
    this.#mask = cap - 1;
  }

  /** Slot index where (dst, port) lives or would go. */
  #probe(dst: number, port: number): number {
    const d = dst | 0;
    const h = Math.imul(d ^ Math.imul(port, 0x9e3779b1), 0x85ebca6b);
    let i = (h ^ (h >>> 15)) & this.#mask;
    for (;;) {
      const p = this.#port[i];
      if (p === -1 || (p === port && this.#dst[i] === d)) return i;
      i = (i + 1) & this.#mask;
    }
  }

  /** Candidate list for (dst, port), created when missing. */
  listFor(dst: number, port: number): CompiledRule[] {
    const i = this.#probe(dst, port);
    if (this.#port[i] === -1) {
      this.#port[i] = port;
      this.#dst[i] = dst | 0;
      this.#val[i] = this.lists.length;
      this.lists.push([]);
    }
    return this.lists[this.#val[i]];
  }

  /** Index of the candidate list for (dst, port), or -1. */
  find(dst: number, port: number): number {
    const d = dst | 0;
    const mask = this.#mask;
    const ports = this.#port;
    const h = Math.imul(d ^ Math.imul(port, 0x9e3779b1), 0x85ebca6b);
    let i = (h ^ (h >>> 15)) & mask;
    for (;;) {
      const p = ports[i];
      if (p === -1) return -1;
      if (p === port && this.#dst[i] === d) return this.#val[i];
      i = (i + 1) & mask;
    }
  }

  /** Number of distinct keys. */
  get size(): number {
    return this.lists.length;
  }
}

/** Compile a table into the hot-loop lookup. */
export function compileTable(t: WorkerTable): MatchTable {
  const m = new MatchTable(t.rules.length);
  for (const r of t.rules) {
    const n = r.outputs.length;
    const c: CompiledRule = {
      counter: RULE_BASE + r.slot * RULE_WORDS,
      source: r.source >>> 0,
      vlan: r.vlan,
      nOut: n,
      tmpl: Int32Array.from(r.outputs, (o) => o.slot),
      outCounter: Int32Array.from(r.outputs, (o) => OUT_BASE + o.slot * OUT_WORDS),
      ttl: Uint8Array.from(r.outputs, (o) => o.ttl),
      decrements: r.outputs.some((o) => o.ttl === 0),
    };
    m.listFor(r.group >>> 0, r.port).push(c);
  }
  for (const list of m.lists) {
    list.sort((a, b) => (b.source !== 0 ? 1 : 0) - (a.source !== 0 ? 1 : 0));
  }
  return m;
}

/**
 * Find the rule for a datagram, or undefined. Source-specific rules come
 * first in each candidate list.
 */
export function matchRule(
  lookup: MatchTable,
  dst: number,
  port: number,
  src: number,
  vlan: number,
): CompiledRule | undefined {
  const li = lookup.find(dst, port);
  if (li < 0) return undefined;
  const list = lookup.lists[li];
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (c.vlan === vlan && (c.source === 0 || c.source === src)) return c;
  }
  return undefined;
}

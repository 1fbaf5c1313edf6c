/**
 * Rule tables: what the supervisor hands a worker (a plain, structured-clone
 * friendly {@link WorkerTable} per input interface), the stable counter-slot
 * allocation behind it, and the compiled lookup the worker's hot loop uses.
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
import { MAX_OUTPUTS, MAX_RULES, OUT_BASE, OUT_WORDS, RULE_BASE, RULE_WORDS } from "./counters.ts";

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
  /** Outputs (resolved TTL: number, or 0 for decrement); slots are assigned by {@link buildTables}. */
  outputs: Omit<TableOutput, "slot">[];
}

/** Key of an output inside its rule, stable across reloads. */
export function outputKey(ruleId: string, o: RuleSpec["outputs"][number]): string {
  return `${ruleId}>${o.interface}|${o.dst}|${o.port}`;
}

/**
 * Allocates stable slots: the same key keeps its slot for as long as it is
 * in use, freed slots are reused (lowest first).
 */
export class SlotAllocator {
  readonly #byKey = new Map<string, number>();
  readonly #free: number[] = [];
  #next = 0;

  /** @param capacity number of slots */
  constructor(readonly capacity: number) {}

  /** Slot of `key`, allocating one if needed; throws when full. */
  get(key: string): number {
    const s = this.#byKey.get(key);
    if (s !== undefined) return s;
    let slot: number;
    if (this.#free.length) {
      this.#free.sort((a, b) => b - a);
      slot = this.#free.pop()!;
    } else if (this.#next < this.capacity) slot = this.#next++;
    else throw new Error(`slot capacity ${this.capacity} exhausted`);
    this.#byKey.set(key, slot);
    return slot;
  }

  /** Slot of `key` if allocated. */
  peek(key: string): number | undefined {
    return this.#byKey.get(key);
  }

  /** Free every slot whose key is not in `keep`; returns the freed slots. */
  retain(keep: Set<string>): number[] {
    const freed: number[] = [];
    for (const [k, s] of this.#byKey) {
      if (!keep.has(k)) {
        this.#byKey.delete(k);
        this.#free.push(s);
        freed.push(s);
      }
    }
    return freed;
  }

  /** Number of slots in use. */
  get size(): number {
    return this.#byKey.size;
  }
}

/** Slot allocators for rules and outputs. */
export class Slots {
  /** Rule slots. */
  readonly rules: SlotAllocator = new SlotAllocator(MAX_RULES);
  /** Output slots (also the template index in every worker). */
  readonly outputs: SlotAllocator = new SlotAllocator(MAX_OUTPUTS);
  /** Slots freed by the last {@link buildTables} (their counters must be reset). */
  lastFreed: { rules: number[]; outputs: number[] } = { rules: [], outputs: [] };
}

/**
 * Build one table per input interface. Slots of rules/outputs that are no
 * longer present are released. Returns tables for every interface in
 * `interfaces` too (an interface whose rules all went away gets an empty
 * table, so its worker stops forwarding them).
 */
export function buildTables(
  rules: readonly RuleSpec[],
  slots: Slots,
  version: number,
  interfaces: Iterable<string> = [],
): Map<string, WorkerTable> {
  const tables = new Map<string, WorkerTable>();
  for (const i of interfaces) tables.set(i, { version, interface: i, rules: [] });
  const keepRules = new Set<string>();
  const keepOuts = new Set<string>();
  for (const r of rules) {
    keepRules.add(r.id);
    const slot = slots.rules.get(r.id);
    const outputs: TableOutput[] = r.outputs.map((o) => {
      const k = outputKey(r.id, o);
      keepOuts.add(k);
      return { slot: slots.outputs.get(k), ...o };
    });
    let t = tables.get(r.input.interface);
    if (!t) {
      t = { version, interface: r.input.interface, rules: [] };
      tables.set(r.input.interface, t);
    }
    t.rules.push({
      slot,
      id: r.id,
      name: r.name,
      group: r.input.group,
      port: r.input.port,
      source: r.input.source,
      vlan: r.input.vlan,
      outputs,
    });
  }
  slots.lastFreed = {
    rules: slots.rules.retain(keepRules),
    outputs: slots.outputs.retain(keepOuts),
  };
  return tables;
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

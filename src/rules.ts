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
}

/** The minimal rule shape tables are built from (a validated config rule). */
export interface RuleSpec {
  /** Stable id. */
  id: string;
  /** Name. */
  name: string;
  /** Input match. */
  input: { interface: string; group: number; port: number; source: number; vlan: number };
  /** Outputs (resolved TTL: number, or 0 for decrement). */
  outputs: {
    interface: string;
    dst: number;
    port: number;
    srcIp: number;
    srcPort: number;
    ttl: number;
    tos: number;
  }[];
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

/** Lookup key for a destination address and port. */
export function matchKey(dst: number, port: number): number {
  return dst * 65536 + port;
}

/** Compile a table into the hot-loop lookup. */
export function compileTable(t: WorkerTable): Map<number, CompiledRule[]> {
  const m = new Map<number, CompiledRule[]>();
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
    const k = matchKey(r.group >>> 0, r.port);
    const list = m.get(k);
    if (list) list.push(c);
    else m.set(k, [c]);
  }
  for (const list of m.values()) {
    list.sort((a, b) => (b.source !== 0 ? 1 : 0) - (a.source !== 0 ? 1 : 0));
  }
  return m;
}

/**
 * Find the rule for a datagram, or undefined. Source-specific rules come
 * first in each candidate list.
 */
export function matchRule(
  lookup: Map<number, CompiledRule[]>,
  dst: number,
  port: number,
  src: number,
  vlan: number,
): CompiledRule | undefined {
  const list = lookup.get(dst * 65536 + port);
  if (list === undefined) return undefined;
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (c.vlan === vlan && (c.source === 0 || c.source === src)) return c;
  }
  return undefined;
}

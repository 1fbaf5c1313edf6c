/**
 * The hot-loop rule lookup: the compiled rules of one input interface and
 * {@link matchRule}, the one matcher the batch loop and the tests use.
 *
 * Matching: a datagram is looked up by (destination address, UDP port) in an
 * open-addressing table over typed arrays; the candidates for a key are
 * ordered source-specific first, so an (S,G) rule takes precedence over a
 * (*,G) rule for the same group and port, as in multicast routing; exactly
 * one rule applies to a datagram, which is one of the reasons the relay never
 * sends a datagram twice to the same output. `vlan` must match too: -1 means
 * untagged frames only.
 *
 * The table changes in place, one rule at a time ({@link MatchTable.set},
 * {@link MatchTable.delete}): adding a rule to a table of 50,000 costs what
 * adding it to an empty one does, so a live change never stalls forwarding.
 *
 * @module
 */
import { OUT_BASE, OUT_WORDS, RULE_BASE, RULE_WORDS } from "./counters.ts";
import type { TableRule } from "./messages.ts";

/** A rule as the hot loop sees it. */
export interface CompiledRule {
  /** Rule slot. */
  readonly slot: number;
  /** Rule id (a new id in the slot is another rule: its counters restart). */
  readonly id: string;
  /** Input group. */
  readonly group: number;
  /** Input port. */
  readonly port: number;
  /** Counter index of the rule's packet count (bytes at +1). */
  readonly counter: number;
  /** Required source (0 = any). */
  readonly source: number;
  /** Required VLAN (-1 = untagged). */
  readonly vlan: number;
  /** Number of outputs. */
  readonly nOut: number;
  /**
   * Template index per output (= output slot). Plain arrays of small integers
   * here: as fast to read as typed arrays, and a fifth of their memory (three
   * typed arrays per rule cost 65,536 rules about 30 MB).
   */
  readonly tmpl: readonly number[];
  /** Counter base per output. */
  readonly outCounter: readonly number[];
  /** Fixed TTL per output, 0 = decrement. */
  readonly ttl: readonly number[];
}

/** Compile one rule for the hot loop. */
export function compileRule(r: TableRule): CompiledRule {
  return {
    slot: r.slot,
    id: r.id,
    group: r.group >>> 0,
    port: r.port,
    counter: RULE_BASE + r.slot * RULE_WORDS,
    source: r.source >>> 0,
    vlan: r.vlan,
    nOut: r.outputs.length,
    tmpl: r.outputs.map((o) => o.slot),
    outCounter: r.outputs.map((o) => OUT_BASE + o.slot * OUT_WORDS),
    ttl: r.outputs.map((o) => o.ttl & 0xff),
  };
}

/** Smallest table capacity (keys), a power of two. */
const MIN_CAPACITY = 16;
/** Candidate lists left empty by deletions before the table is rebuilt without them. */
const COMPACT_AFTER = 1024;

/**
 * The hot-loop lookup: an open-addressing hash table (linear probing) over
 * typed arrays, keyed by (destination address, UDP port), whose values index
 * candidate lists ordered source-specific first. All arithmetic stays in
 * small integers (no heap numbers, no Map hashing of doubles).
 */
export class MatchTable {
  #dst: Int32Array;
  #port: Int32Array;
  #val: Int32Array;
  #mask: number;
  /** Candidate lists (index = value stored in the table). */
  lists: CompiledRule[][] = [];
  /** Key of each list. */
  #keyDst: number[] = [];
  #keyPort: number[] = [];
  /** Rules by slot. */
  readonly #bySlot = new Map<number, CompiledRule>();
  #emptyLists = 0;

  /** @param expected number of distinct (dst, port) keys expected */
  constructor(expected = 0) {
    let cap = MIN_CAPACITY;
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

  /** Rebuild the index at `cap` keys, leaving out empty lists. */
  #rebuild(cap: number): void {
    const lists = this.lists, kd = this.#keyDst, kp = this.#keyPort;
    this.#dst = new Int32Array(cap);
    this.#port = new Int32Array(cap).fill(-1);
    this.#val = new Int32Array(cap);
    this.#mask = cap - 1;
    this.lists = [];
    this.#keyDst = [];
    this.#keyPort = [];
    this.#emptyLists = 0;
    for (let k = 0; k < lists.length; k++) {
      if (lists[k].length === 0) continue;
      const i = this.#probe(kd[k], kp[k]);
      this.#port[i] = kp[k];
      this.#dst[i] = kd[k] | 0;
      this.#val[i] = this.lists.length;
      this.lists.push(lists[k]);
      this.#keyDst.push(kd[k]);
      this.#keyPort.push(kp[k]);
    }
  }

  /** Candidate list for (dst, port), created when missing. */
  #listFor(dst: number, port: number): CompiledRule[] {
    if ((this.lists.length + 1) * 2 > this.#mask + 1) this.#rebuild((this.#mask + 1) * 2);
    const i = this.#probe(dst, port);
    if (this.#port[i] === -1) {
      this.#port[i] = port;
      this.#dst[i] = dst | 0;
      this.#val[i] = this.lists.length;
      this.lists.push([]);
      this.#keyDst.push(dst | 0);
      this.#keyPort.push(port);
      return this.lists[this.#val[i]];
    }
    const list = this.lists[this.#val[i]];
    if (list.length === 0) this.#emptyLists--; // an emptied list gets a rule again
    return list;
  }

  /** Add rule `c`, or replace the rule with its slot. */
  set(c: CompiledRule): void {
    this.delete(c.slot);
    const list = this.#listFor(c.group, c.port);
    // source-specific rules first (an (S,G) rule wins over a (*,G) one)
    if (c.source !== 0) list.unshift(c);
    else list.push(c);
    this.#bySlot.set(c.slot, c);
  }

  /** Remove the rule of `slot` (if there is one). */
  delete(slot: number): void {
    const c = this.#bySlot.get(slot);
    if (!c) return;
    this.#bySlot.delete(slot);
    const li = this.find(c.group, c.port);
    const list = this.lists[li];
    const k = list.indexOf(c);
    if (k >= 0) list.splice(k, 1);
    if (
      list.length === 0 && ++this.#emptyLists > COMPACT_AFTER &&
      this.#emptyLists * 2 > this.lists.length
    ) {
      let cap = MIN_CAPACITY;
      while (cap < (this.lists.length - this.#emptyLists) * 2) cap <<= 1;
      this.#rebuild(cap);
    }
  }

  /** The rule of `slot`. */
  get(slot: number): CompiledRule | undefined {
    return this.#bySlot.get(slot);
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

  /** Number of rules. */
  get size(): number {
    return this.#bySlot.size;
  }

  /** The rules' slots. */
  slots(): IterableIterator<number> {
    return this.#bySlot.keys();
  }
}

/** Compile a whole rule list into a new lookup. */
export function compileTable(t: { rules: readonly TableRule[] }): MatchTable {
  const m = new MatchTable(t.rules.length);
  for (const r of t.rules) m.set(compileRule(r));
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

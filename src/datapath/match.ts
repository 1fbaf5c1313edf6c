/**
 * The hot-loop rule lookup: the compiled form of a worker's rule table and
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
 * @module
 */
import { OUT_BASE, OUT_WORDS, RULE_BASE, RULE_WORDS } from "./counters.ts";
import type { WorkerTable } from "./messages.ts";

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

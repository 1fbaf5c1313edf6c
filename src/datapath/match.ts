/**
 * The hot-loop rule lookup: the compiled rules of one input interface and
 * {@link matchRule}, the one matcher the batch loop and the tests use.
 *
 * Matching: exactly one rule applies to a datagram — the most specific one
 * whose input matches it — which is one of the reasons the relay never sends
 * a datagram twice to the same output. Most specific means, in this order:
 *
 * 1. the longest group prefix (one group, /32, before a /24 before a /16);
 * 2. then an exact UDP port before any port;
 * 3. then a source-specific (S,G) rule before a (*,G) one, as in multicast
 *    routing.
 *
 * `vlan` must match too (-1: untagged frames only); it is part of the match,
 * not of the order. Two enabled rules never share group, prefix, port,
 * source and VLAN (config semantics refuse it).
 *
 * The lookup: an open-addressing hash table over typed arrays keyed by
 * (destination masked to a prefix length, prefix length, port or 0 for
 * any), whose values index candidate lists ordered source-specific first;
 * and the distinct (prefix length, exact/any port) levels the rules use, in
 * the order above. A datagram is looked up once per level until a candidate
 * matches, so its cost is bounded by the number of distinct levels (at most
 * 29 lengths × 2, usually one or a few), not by the number of rules or
 * ranges; a table of only exact rules costs one probe, as before ranges.
 *
 * IPv6 rules (issue 14) name one group: they live in a second table of the
 * same kind ({@link MatchTable.v6}), keyed by the XOR of the group's four
 * words (as a /32) and the port; {@link matchRule6} compares the whole
 * addresses of the candidates. A table without IPv6 rules costs IPv4
 * datagrams nothing.
 *
 * The table changes in place, one rule at a time ({@link MatchTable.set},
 * {@link MatchTable.delete}): adding a rule to a table of 50,000 costs what
 * adding it to an empty one does, so a live change never stalls forwarding.
 *
 * @module
 */
import { OUT_BASE, OUT_WORDS, RULE_BASE, RULE_WORDS } from "./counters.ts";
import type { TableRule } from "./messages.ts";
import { type RuleExt, ruleExt } from "./rule_ext.ts";

/** A rule as the hot loop sees it. */
export interface CompiledRule {
  /** Rule slot. */
  readonly slot: number;
  /** Rule id (a new id in the slot is another rule: its counters restart). */
  readonly id: string;
  /** Input group (a range: its network address). */
  readonly group: number;
  /** Prefix length of the input group: 32 = one group. */
  readonly prefixLen: number;
  /** Input port, 0 = any. */
  readonly port: number;
  /** Counter index of the rule's packet count (bytes at +1). */
  readonly counter: number;
  /** Required source (0 = any); IPv6: 1 when source-specific (the address is in `a6`). */
  readonly source: number;
  /**
   * An IPv6 rule: its group's four words then its source's (zeros: any),
   * most significant first, as signed 32-bit integers (as `ParsedPacket.d0`..).
   * Null for an IPv4 rule.
   */
  readonly a6: readonly number[] | null;
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
  /**
   * Rate limits, payload analysis and a running capture (rule_ext.ts); null
   * for a rule without them. Set by a capture that starts or stops
   * (capture.ts), the rule's only field that changes.
   */
  ext: RuleExt | null;
}

/** Compile one rule for the hot loop. */
export function compileRule(r: TableRule): CompiledRule {
  const g6 = r.group6, s6 = r.source6;
  const a6 = g6 ? [...g6, ...(s6 ?? [0, 0, 0, 0])].map((w) => w | 0) : null;
  return {
    slot: r.slot,
    id: r.id,
    group: a6 ? fold6(a6[0], a6[1], a6[2], a6[3]) >>> 0 : r.group >>> 0,
    prefixLen: a6 ? 32 : r.prefixLen,
    port: r.port,
    counter: RULE_BASE + r.slot * RULE_WORDS,
    source: a6 ? (s6 ? 1 : 0) : r.source >>> 0,
    a6,
    vlan: r.vlan,
    nOut: r.outputs.length,
    tmpl: r.outputs.map((o) => o.slot),
    outCounter: r.outputs.map((o) => OUT_BASE + o.slot * OUT_WORDS),
    ttl: r.outputs.map((o) => o.ttl & 0xff),
    ext: ruleExt(r),
  };
}

/** The key of an IPv6 address in the table: its four words folded by XOR. */
export function fold6(w0: number, w1: number, w2: number, w3: number): number {
  return w0 ^ w1 ^ w2 ^ w3;
}

/** Smallest table capacity (keys), a power of two. */
const MIN_CAPACITY = 16;
/** Candidate lists left empty by deletions before the table is rebuilt without them. */
const COMPACT_AFTER = 1024;
/** Most distinct levels: prefix lengths 0..32, each with an exact and an any port. */
const MAX_LEVELS = 66;
/** Bits of a key's port part (the prefix length sits above them). */
const PORT_BITS = 16;

/** Network mask of a prefix length, as a signed 32-bit integer (the hot loop's form). */
function maskOf(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) | 0;
}

/**
 * The key of a level and port: prefix length above the port (0 for a level
 * that takes any port). Never -1 (the empty-slot marker).
 */
function keyOf(len: number, port: number): number {
  return (len << PORT_BITS) | port;
}

/**
 * A level's place in the matching order (higher first): prefix length, then
 * exact port before any port.
 */
function rank(len: number, anyPort: boolean): number {
  return (len << 1) | (anyPort ? 0 : 1);
}

/**
 * The hot-loop lookup (see the module doc): an open-addressing hash table
 * (linear probing) over typed arrays keyed by (masked destination, prefix
 * length and port), whose values index candidate lists ordered
 * source-specific first, and the levels to probe in order. All arithmetic
 * stays in small integers (no heap numbers, no Map hashing of doubles).
 */
export class MatchTable {
  #dst: Int32Array;
  #key: Int32Array;
  #val: Int32Array;
  #mask: number;
  /** Candidate lists (index = value stored in the table). */
  lists: CompiledRule[][] = [];
  /** Key of each list. */
  #keyDst: number[] = [];
  #keyKey: number[] = [];
  /** Rules by slot. */
  readonly #bySlot = new Map<number, CompiledRule>();
  #emptyLists = 0;
  /** Rules per level, by {@link rank}. */
  readonly #levelRules = new Map<number, number>();
  /** Number of levels in use: the first `levels` entries of the level arrays. */
  levels = 0;
  /** Per level, in matching order: the network mask applied to the destination. */
  readonly levelMask: Int32Array = new Int32Array(MAX_LEVELS);
  /** Per level: the key's prefix-length part. */
  readonly levelKey: Int32Array = new Int32Array(MAX_LEVELS);
  /** Per level: the mask applied to the port (0xffff: exact port; 0: any port). */
  readonly levelPortMask: Int32Array = new Int32Array(MAX_LEVELS);
  /** The IPv6 rules, in a table of their own (created with the first); null without any. */
  v6: MatchTable | null = null;

  /** True for the IPv6 table of another table ({@link v6}): it holds IPv6 rules itself. */
  readonly #ipv6: boolean;

  /**
   * @param expected number of distinct keys expected
   * @param ipv6 this is another table's IPv6 table
   */
  constructor(expected = 0, ipv6 = false) {
    this.#ipv6 = ipv6;
    let cap = MIN_CAPACITY;
    while (cap < expected * 2) cap <<= 1;
    this.#dst = new Int32Array(cap);
    this.#key = new Int32Array(cap).fill(-1);
    this.#val = new Int32Array(cap);
    this.#mask = cap - 1;
  }

  /** Slot index where (dst, key) lives or would go. */
  #probe(dst: number, key: number): number {
    const d = dst | 0;
    const h = Math.imul(d ^ Math.imul(key, 0x9e3779b1), 0x85ebca6b);
    let i = (h ^ (h >>> 15)) & this.#mask;
    for (;;) {
      const k = this.#key[i];
      if (k === -1 || (k === key && this.#dst[i] === d)) return i;
      i = (i + 1) & this.#mask;
    }
  }

  /** Rebuild the index at `cap` keys, leaving out empty lists. */
  #rebuild(cap: number): void {
    const lists = this.lists, kd = this.#keyDst, kk = this.#keyKey;
    this.#dst = new Int32Array(cap);
    this.#key = new Int32Array(cap).fill(-1);
    this.#val = new Int32Array(cap);
    this.#mask = cap - 1;
    this.lists = [];
    this.#keyDst = [];
    this.#keyKey = [];
    this.#emptyLists = 0;
    for (let k = 0; k < lists.length; k++) {
      if (lists[k].length === 0) continue;
      const i = this.#probe(kd[k], kk[k]);
      this.#key[i] = kk[k];
      this.#dst[i] = kd[k] | 0;
      this.#val[i] = this.lists.length;
      this.lists.push(lists[k]);
      this.#keyDst.push(kd[k]);
      this.#keyKey.push(kk[k]);
    }
  }

  /** Candidate list for (dst, key), created when missing. */
  #listFor(dst: number, key: number): CompiledRule[] {
    if ((this.lists.length + 1) * 2 > this.#mask + 1) this.#rebuild((this.#mask + 1) * 2);
    const i = this.#probe(dst, key);
    if (this.#key[i] === -1) {
      this.#key[i] = key;
      this.#dst[i] = dst | 0;
      this.#val[i] = this.lists.length;
      this.lists.push([]);
      this.#keyDst.push(dst | 0);
      this.#keyKey.push(key);
      return this.lists[this.#val[i]];
    }
    const list = this.lists[this.#val[i]];
    if (list.length === 0) this.#emptyLists--; // an emptied list gets a rule again
    return list;
  }

  /** A rule joins (+1) or leaves (-1) its level; the level arrays follow. */
  #level(c: CompiledRule, by: 1 | -1): void {
    const r = rank(c.prefixLen, c.port === 0);
    const n = (this.#levelRules.get(r) ?? 0) + by;
    if (n > 0 && n - by > 0) {
      this.#levelRules.set(r, n);
      return; // the level was there and stays
    }
    if (n > 0) this.#levelRules.set(r, n);
    else this.#levelRules.delete(r);
    const ranks = [...this.#levelRules.keys()].sort((a, b) => b - a);
    ranks.forEach((rk, k) => {
      const len = rk >> 1;
      this.levelMask[k] = maskOf(len);
      this.levelKey[k] = keyOf(len, 0);
      this.levelPortMask[k] = (rk & 1) === 1 ? 0xffff : 0;
    });
    this.levels = ranks.length;
  }

  /** Add rule `c`, or replace the rule with its slot. */
  set(c: CompiledRule): void {
    this.delete(c.slot);
    if (c.a6 !== null && !this.#ipv6) {
      (this.v6 ??= new MatchTable(0, true)).set(c);
      return;
    }
    const list = this.#listFor(c.group & maskOf(c.prefixLen), keyOf(c.prefixLen, c.port));
    // source-specific rules first (an (S,G) rule wins over a (*,G) one)
    if (c.source !== 0) list.unshift(c);
    else list.push(c);
    this.#bySlot.set(c.slot, c);
    this.#level(c, 1);
  }

  /** Remove the rule of `slot` (if there is one). */
  delete(slot: number): void {
    const c = this.#bySlot.get(slot);
    if (!c) {
      if (this.v6 !== null && this.v6.get(slot) !== undefined) {
        this.v6.delete(slot);
        if (this.v6.size === 0) this.v6 = null;
      }
      return;
    }
    this.#bySlot.delete(slot);
    this.#level(c, -1);
    const li = this.find(c.group & maskOf(c.prefixLen), keyOf(c.prefixLen, c.port));
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
    return this.#bySlot.get(slot) ?? this.v6?.get(slot);
  }

  /**
   * Index of the candidate list for a masked destination and a key (a
   * level's {@link levelKey} with the port, or 0 for any), or -1.
   */
  find(dst: number, key: number): number {
    const d = dst | 0;
    const mask = this.#mask;
    const keys = this.#key;
    const h = Math.imul(d ^ Math.imul(key, 0x9e3779b1), 0x85ebca6b);
    let i = (h ^ (h >>> 15)) & mask;
    for (;;) {
      const k = keys[i];
      if (k === -1) return -1;
      if (k === key && this.#dst[i] === d) return this.#val[i];
      i = (i + 1) & mask;
    }
  }

  /** Number of rules. */
  get size(): number {
    return this.#bySlot.size + (this.v6?.size ?? 0);
  }

  /** The rules' slots (IPv4, then IPv6). */
  *slots(): IterableIterator<number> {
    yield* this.#bySlot.keys();
    if (this.v6 !== null) yield* this.v6.slots();
  }
}

/** Compile a whole rule list into a new lookup. */
export function compileTable(t: { rules: readonly TableRule[] }): MatchTable {
  const m = new MatchTable(t.rules.length);
  for (const r of t.rules) m.set(compileRule(r));
  return m;
}

/**
 * Find the rule for a datagram, or undefined: the first level (most specific
 * first) with a candidate whose VLAN and source match. Source-specific rules
 * come first in each candidate list.
 */
export function matchRule(
  lookup: MatchTable,
  dst: number,
  port: number,
  src: number,
  vlan: number,
): CompiledRule | undefined {
  const n = lookup.levels;
  const masks = lookup.levelMask, keys = lookup.levelKey, ports = lookup.levelPortMask;
  for (let k = 0; k < n; k++) {
    const li = lookup.find(dst & masks[k], keys[k] | (port & ports[k]));
    if (li < 0) continue;
    const list = lookup.lists[li];
    for (let i = 0; i < list.length; i++) {
      const c = list[i];
      if (c.vlan === vlan && (c.source === 0 || c.source === src)) return c;
    }
  }
  return undefined;
}

/**
 * Find the IPv6 rule for a datagram of `pkt`'s destination (`d0`..`d3`),
 * source (`s0`..`s3`), port and VLAN in `lookup`'s IPv6 table, or undefined:
 * an exact port before any port, a source-specific rule before a (*,G) one.
 */
export function matchRule6(
  lookup: MatchTable,
  pkt: {
    d0: number;
    d1: number;
    d2: number;
    d3: number;
    s0: number;
    s1: number;
    s2: number;
    s3: number;
    dport: number;
    vlan: number;
  },
): CompiledRule | undefined {
  const t = lookup.v6;
  if (t === null) return undefined;
  const d0 = pkt.d0, d1 = pkt.d1, d2 = pkt.d2, d3 = pkt.d3;
  const key = fold6(d0, d1, d2, d3);
  const port = pkt.dport, vlan = pkt.vlan;
  const n = t.levels;
  const keys = t.levelKey, ports = t.levelPortMask;
  for (let k = 0; k < n; k++) {
    const li = t.find(key, keys[k] | (port & ports[k]));
    if (li < 0) continue;
    const list = t.lists[li];
    for (let i = 0; i < list.length; i++) {
      const c = list[i];
      const a = c.a6!;
      if (c.vlan !== vlan || a[0] !== d0 || a[1] !== d1 || a[2] !== d2 || a[3] !== d3) continue;
      if (
        c.source === 0 ||
        (a[4] === pkt.s0 && a[5] === pkt.s1 && a[6] === pkt.s2 && a[7] === pkt.s3)
      ) return c;
    }
  }
  return undefined;
}

/**
 * The hot-loop matcher against a reference model (issue 13, ranges): for
 * random rule sets mixing exact groups and ranges of many lengths, exact and
 * any ports, (S,G) and (*,G), VLANs — and after random removals and
 * re-additions, as live changes make them — `matchRule` picks, for every
 * datagram, exactly the rule the documented order picks: the longest group
 * prefix, then an exact port before any port, then source-specific before
 * any source, among the rules whose VLAN, source, group and port match.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { compileRule, matchRule, MatchTable } from "../../src/datapath/match.ts";
import type { TableRule } from "../../src/datapath/messages.ts";
import { parseIPv4 } from "../../src/common/net.ts";

const ip = (s: string) => parseIPv4(s)!;

// The reference's own prefix arithmetic (not the product's).
const maskOf = (len: number) =>
  len === 0 ? 0 : Number((0xffffffffn << BigInt(32 - len)) & 0xffffffffn);
const networkOf = (addr: number, len: number) => Number(BigInt(addr) & BigInt(maskOf(len)));
const inPrefix = (addr: number, net: number, len: number) =>
  networkOf(addr, len) === networkOf(net, len);

/** Addresses close to each other, so that prefixes of every length overlap. */
const ADDRS = ["239.1.1.1", "239.1.1.2", "239.1.2.1", "239.1.129.7", "239.2.0.1", "239.129.1.1"]
  .map(ip);
const LENS = [4, 8, 9, 15, 16, 17, 23, 24, 25, 30, 31, 32];
const PORTS = [0, 5000, 5001];
const SOURCES = [0, ip("10.0.0.1"), ip("10.0.0.2")];
const VLANS = [-1, 7];

/** One rule's input (the fields the matcher reads). */
interface Input {
  group: number;
  prefixLen: number;
  port: number;
  source: number;
  vlan: number;
}

const inputArb: fc.Arbitrary<Input> = fc.record({
  addr: fc.constantFrom(...ADDRS),
  prefixLen: fc.constantFrom(...LENS),
  port: fc.constantFrom(...PORTS),
  source: fc.constantFrom(...SOURCES),
  vlan: fc.constantFrom(...VLANS),
}).map(({ addr, prefixLen, port, source, vlan }) => ({
  group: networkOf(addr, prefixLen),
  prefixLen,
  port,
  source,
  vlan,
}));

/** Rule sets as configuration allows them: no two with the same input. */
const rulesArb = fc.uniqueArray(inputArb, {
  minLength: 1,
  maxLength: 40,
  selector: (i) => `${i.group}/${i.prefixLen}|${i.port}|${i.source}|${i.vlan}`,
});

/** A datagram: destination, port, source, VLAN. */
interface Datagram {
  dst: number;
  port: number;
  src: number;
  vlan: number;
}

const datagramArb: fc.Arbitrary<Datagram> = fc.record({
  dst: fc.constantFrom(...ADDRS, ip("239.1.1.3"), ip("224.0.0.251"), ip("10.1.1.1")),
  port: fc.constantFrom(5000, 5001, 5002),
  src: fc.constantFrom(ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")),
  vlan: fc.constantFrom(-1, 7, 8),
});

function tableRule(i: Input, slot: number): TableRule {
  return { slot, id: `r${slot}`, name: `r${slot}`, ...i, outputs: [] };
}

/** The reference: the slot of the most specific matching rule (documented order), or -1. */
function reference(rules: ReadonlyMap<number, Input>, d: Datagram): number {
  let best = -1, bestRank: number[] = [];
  for (const [slot, r] of rules) {
    const matches = r.vlan === d.vlan && (r.source === 0 || r.source === d.src) &&
      inPrefix(d.dst, r.group, r.prefixLen) && (r.port === 0 || r.port === d.port);
    if (!matches) continue;
    const rank = [r.prefixLen, r.port !== 0 ? 1 : 0, r.source !== 0 ? 1 : 0];
    const better = best < 0 || rank[0] > bestRank[0] ||
      (rank[0] === bestRank[0] && (rank[1] > bestRank[1] ||
        (rank[1] === bestRank[1] && rank[2] > bestRank[2])));
    // two matching rules never rank equal: they would be the same input
    if (best >= 0) assert.notDeepEqual(rank, bestRank);
    if (better) [best, bestRank] = [slot, rank];
  }
  return best;
}

function agree(table: MatchTable, rules: ReadonlyMap<number, Input>, datagrams: Datagram[]) {
  for (const d of datagrams) {
    const got = matchRule(table, d.dst, d.port, d.src, d.vlan)?.slot ?? -1;
    assert.equal(got, reference(rules, d), `datagram ${JSON.stringify(d)}`);
  }
}

Deno.test("property: matchRule picks the reference's rule, through removals and re-additions", () => {
  fc.assert(
    fc.property(
      rulesArb,
      fc.array(datagramArb, { minLength: 20, maxLength: 60 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      (inputs, datagrams, changes) => {
        const table = new MatchTable();
        const rules = new Map<number, Input>();
        inputs.forEach((i, slot) => {
          table.set(compileRule(tableRule(i, slot)));
          rules.set(slot, i);
        });
        assert.equal(table.size, inputs.length);
        agree(table, rules, datagrams);
        // live changes: each step removes a rule in force or puts a removed one back
        for (const c of changes) {
          const slot = c % inputs.length;
          if (rules.has(slot)) {
            table.delete(slot);
            rules.delete(slot);
          } else {
            table.set(compileRule(tableRule(inputs[slot], slot)));
            rules.set(slot, inputs[slot]);
          }
          agree(table, rules, datagrams.slice(0, 10));
        }
        agree(table, rules, datagrams);
        assert.equal(table.size, rules.size);
        assert.ok(table.levels <= 2 * LENS.length);
      },
    ),
    { numRuns: 400 },
  );
});

Deno.test("matchRule: the documented order on one example (exact > /24 > /16; port; (S,G))", () => {
  const rules = new Map<number, Input>([
    [0, { group: ip("239.1.0.0"), prefixLen: 16, port: 0, source: 0, vlan: -1 }],
    [1, { group: ip("239.1.0.0"), prefixLen: 16, port: 5000, source: 0, vlan: -1 }],
    [2, { group: ip("239.1.1.0"), prefixLen: 24, port: 0, source: 0, vlan: -1 }],
    [3, { group: ip("239.1.1.1"), prefixLen: 32, port: 0, source: 0, vlan: -1 }],
    [4, { group: ip("239.1.1.1"), prefixLen: 32, port: 5000, source: 0, vlan: -1 }],
    [5, { group: ip("239.1.1.1"), prefixLen: 32, port: 5000, source: ip("10.0.0.1"), vlan: -1 }],
  ]);
  const table = new MatchTable();
  for (const [slot, i] of rules) table.set(compileRule(tableRule(i, slot)));
  const at = (dst: string, port: number, src = "10.0.0.9") =>
    matchRule(table, ip(dst), port, ip(src), -1)?.slot;
  assert.equal(at("239.1.1.1", 5000, "10.0.0.1"), 5); // (S,G) exact group, exact port
  assert.equal(at("239.1.1.1", 5000), 4); // (*,G) exact group, exact port
  assert.equal(at("239.1.1.1", 6000), 3); // exact group, any port beats the /24 and /16
  assert.equal(at("239.1.1.2", 5000), 2); // the /24 (any port) beats the /16 with port 5000
  assert.equal(at("239.1.2.1", 5000), 1); // the /16: exact port beats any port
  assert.equal(at("239.1.2.1", 6000), 0);
  assert.equal(at("239.2.0.1", 5000), undefined);
  assert.equal(table.levels, 5); // /32 exact, /32 any, /24 any, /16 exact, /16 any
  // a level goes with its last rule
  table.delete(2);
  assert.equal(at("239.1.1.2", 5000), 1);
  assert.equal(table.levels, 4);
});

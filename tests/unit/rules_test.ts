import assert from "node:assert/strict";
import {
  buildTables,
  compileTable,
  matchRule,
  type RuleSpec,
  SlotAllocator,
  Slots,
} from "../../src/rules.ts";
import { parseIPv4 } from "../../src/net.ts";
import { OUT_BASE, OUT_WORDS, RULE_BASE, RULE_WORDS } from "../../src/counters.ts";

const ip = (s: string) => parseIPv4(s)!;

function rule(
  id: string,
  iface: string,
  group: string,
  port: number,
  outs: [string, string, number][],
  extra: { source?: string; vlan?: number; ttl?: number } = {},
): RuleSpec {
  return {
    id,
    name: `r-${id}`,
    input: {
      interface: iface,
      group: ip(group),
      port,
      source: extra.source ? ip(extra.source) : 0,
      vlan: extra.vlan ?? -1,
    },
    outputs: outs.map(([i, g, p]) => ({
      interface: i,
      dst: ip(g),
      port: p,
      srcIp: 0,
      srcPort: 0,
      ttl: extra.ttl ?? 1,
      tos: 0,
    })),
  };
}

Deno.test("SlotAllocator keeps slots stable and reuses freed ones lowest first", () => {
  const a = new SlotAllocator(3);
  assert.equal(a.get("a"), 0);
  assert.equal(a.get("b"), 1);
  assert.equal(a.get("c"), 2);
  assert.equal(a.get("b"), 1);
  assert.throws(() => a.get("d"), /capacity 3 exhausted/);
  assert.deepEqual(a.retain(new Set(["c"])).sort(), [0, 1]);
  assert.equal(a.get("e"), 0);
  assert.equal(a.get("f"), 1);
  assert.equal(a.get("c"), 2);
  assert.equal(a.size, 3);
});

Deno.test("buildTables groups rules per input interface and keeps slots across rebuilds", () => {
  const slots = new Slots();
  const r1 = rule("a", "eth0", "239.1.1.1", 5001, [["eth1", "239.10.1.1", 6001]]);
  const r2 = rule("b", "eth0", "239.1.1.2", 5002, [["eth1", "239.10.1.2", 6002]]);
  const r3 = rule("c", "eth2", "239.1.1.3", 5003, [["eth1", "10.0.0.9", 7000]]);
  const t1 = buildTables([r1, r2, r3], slots, 1);
  assert.deepEqual([...t1.keys()].sort(), ["eth0", "eth2"]);
  assert.equal(t1.get("eth0")!.rules.length, 2);
  assert.equal(t1.get("eth0")!.version, 1);
  const slotB = t1.get("eth0")!.rules[1].slot;
  const outB = t1.get("eth0")!.rules[1].outputs[0].slot;
  // Remove rule a, keep b: b keeps its slots; eth2 still listed.
  const t2 = buildTables([r2, r3], slots, 2, t1.keys());
  assert.equal(t2.get("eth0")!.rules[0].slot, slotB);
  assert.equal(t2.get("eth0")!.rules[0].outputs[0].slot, outB);
  // An interface that lost all rules still gets an (empty) table.
  const t3 = buildTables([r3], slots, 3, t2.keys());
  assert.equal(t3.get("eth0")!.rules.length, 0);
  assert.equal(slots.rules.size, 1);
  assert.equal(slots.outputs.size, 1);
});

Deno.test("compileTable: (S,G) rules take precedence over (*,G); vlan must match", () => {
  const slots = new Slots();
  const any = rule("any", "eth0", "239.1.1.1", 5001, [["eth1", "239.10.1.1", 6001]]);
  const ssm = rule("ssm", "eth0", "239.1.1.1", 5001, [["eth1", "239.10.1.2", 6001]], {
    source: "10.0.0.5",
  });
  const vl = rule("vl", "eth0", "239.1.1.1", 5001, [["eth1", "239.10.1.3", 6001]], { vlan: 100 });
  const t = buildTables([any, ssm, vl], slots, 1).get("eth0")!;
  const lookup = compileTable(t);
  const g = ip("239.1.1.1");
  const hitSsm = matchRule(lookup, g, 5001, ip("10.0.0.5"), -1)!;
  const hitAny = matchRule(lookup, g, 5001, ip("10.0.0.6"), -1)!;
  const hitVlan = matchRule(lookup, g, 5001, ip("10.0.0.6"), 100)!;
  assert.equal(hitSsm.counter, RULE_BASE + t.rules[1].slot * RULE_WORDS);
  assert.equal(hitAny.counter, RULE_BASE + t.rules[0].slot * RULE_WORDS);
  assert.equal(hitVlan.counter, RULE_BASE + t.rules[2].slot * RULE_WORDS);
  assert.equal(matchRule(lookup, g, 5001, ip("10.0.0.6"), 200), undefined);
  assert.equal(matchRule(lookup, g, 5002, ip("10.0.0.6"), -1), undefined);
  assert.equal(matchRule(lookup, ip("239.1.1.2"), 5001, ip("10.0.0.6"), -1), undefined);
});

Deno.test("compileTable fills template indices, counters and TTL policy per output", () => {
  const slots = new Slots();
  const r = rule("x", "eth0", "239.1.1.1", 5001, [
    ["eth1", "239.10.1.1", 6001],
    ["eth2", "239.10.1.2", 6002],
  ], { ttl: 0 });
  const t = buildTables([r], slots, 1).get("eth0")!;
  const c = matchRule(compileTable(t), ip("239.1.1.1"), 5001, 1, -1)!;
  assert.equal(c.nOut, 2);
  assert.deepEqual([...c.tmpl], t.rules[0].outputs.map((o) => o.slot));
  assert.deepEqual([...c.outCounter], t.rules[0].outputs.map((o) => OUT_BASE + o.slot * OUT_WORDS));
  assert.deepEqual([...c.ttl], [0, 0]);
  assert.equal(c.decrements, true);
});

Deno.test("MatchTable finds every key among thousands and misses absent ones", () => {
  const slots = new Slots();
  const rules: RuleSpec[] = [];
  for (let k = 0; k < 4000; k++) {
    const g = `239.${(k >> 8) & 255}.${k & 255}.${(k * 7) & 255}`;
    rules.push(rule(`k${k}`, "eth0", g, 1000 + (k % 50), [["eth1", "239.10.1.1", 6000 + k]]));
  }
  const t = buildTables(rules, slots, 1).get("eth0")!;
  const lookup = compileTable(t);
  assert.equal(lookup.size, 4000);
  for (const r of t.rules) {
    const c = matchRule(lookup, r.group, r.port, 1, -1);
    assert.equal(c?.counter, RULE_BASE + r.slot * RULE_WORDS);
    assert.equal(matchRule(lookup, r.group, r.port + 50, 1, -1), undefined);
  }
  assert.equal(matchRule(lookup, ip("224.0.0.1"), 1000, 1, -1), undefined);
});

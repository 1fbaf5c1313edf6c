import assert from "node:assert/strict";
import { buildTables, type RuleSpec, SlotAllocator, Slots } from "../../src/relay/tables.ts";
import { compileTable, matchRule } from "../../src/datapath/match.ts";
import { parseIPv4 } from "../../src/common/net.ts";
import { OUT_BASE, OUT_WORDS, RULE_BASE, RULE_WORDS } from "../../src/datapath/counters.ts";
import { MAX_OUTPUT_SLOTS, MAX_RULE_SLOTS } from "../../src/config/limits.ts";
import { isMulticast } from "../../src/common/net.ts";

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
      prefixLen: 32,
      port,
      source: extra.source ? ip(extra.source) : 0,
      vlan: extra.vlan ?? -1,
      joins: isMulticast(ip(group)) ? [ip(group)] : [],
    },
    outputs: outs.map(([i, g, p]) => ({
      interface: i,
      dst: ip(g),
      hostBits: 0,
      port: p,
      srcIp: 0,
      srcPort: 0,
      ttl: extra.ttl ?? 1,
      tos: 0,
    })),
  };
}

Deno.test("SlotAllocator keeps slots stable, plans without changing anything, reuses freed slots lowest first", () => {
  const a = new SlotAllocator(3, "test");
  const take = (...keys: string[]) => {
    const p = a.plan(keys);
    a.commit(p);
    return keys.map((k) => p.slots.get(k));
  };
  assert.deepEqual(take("a", "b", "c"), [0, 1, 2]);
  assert.deepEqual(take("c", "b", "a"), [2, 1, 0]);
  // Over capacity: refused with the numbers, nothing changes.
  assert.throws(() => a.plan(["a", "b", "c", "d"]), /4 test slots needed; the relay has 3/);
  assert.equal(a.size, 3);
  // A plan changes nothing until committed; a plan made before a commit is stale.
  const p1 = a.plan(["c"]);
  assert.deepEqual([...p1.freed], [0, 1]);
  assert.equal(a.peek("a"), 0);
  assert.deepEqual(take("c"), [2]);
  assert.equal(a.peek("a"), undefined);
  assert.throws(() => a.commit(p1), /stale/);
  // Freed slots are reused lowest first.
  assert.deepEqual(take("c", "e", "f"), [2, 0, 1]);
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

/** `n` rules on eth0 named `${tag}N`, each with `outs` outputs (distinct inputs per tag). */
function many(tag: string, n: number, outs = 1, base = 0): RuleSpec[] {
  const t = tag.charCodeAt(0) & 63;
  return Array.from({ length: n }, (_, k) =>
    rule(
      `${tag}${k}`,
      "eth0",
      `239.${t}.${(k >> 8) & 255}.${k & 255}`,
      base + 1000 + (k % 1000),
      Array.from({ length: outs }, (_, j) => ["eth1", "239.200.1.1", 2000 + j]),
    ));
}

/** rule id → slot, and output key → slot, of a set of tables. */
function slotMap(
  tables: Map<
    string,
    { rules: { id: string; slot: number; outputs: { slot: number; port: number }[] }[] }
  >,
) {
  const rules = new Map<string, number>();
  const outs = new Map<string, number>();
  for (const t of tables.values()) {
    for (const r of t.rules) {
      rules.set(r.id, r.slot);
      for (const o of r.outputs) outs.set(`${r.id}>${o.port}`, o.slot);
    }
  }
  return { rules, outs };
}

Deno.test("buildTables: replacing 2,500 of 2,501 rules applies (slots of removed rules count as free)", () => {
  const slots = new Slots();
  const keep = rule("keep", "eth0", "239.1.1.1", 5001, [["eth1", "239.10.1.1", 6001]]);
  const t1 = buildTables([keep, ...many("o", 2500)], slots, 1);
  const before = slotMap(t1);
  const t2 = buildTables([keep, ...many("n", 2500)], slots, 2, t1.keys());
  const after = slotMap(t2);
  assert.equal(t2.get("eth0")!.rules.length, 2501);
  assert.equal(after.rules.get("keep"), before.rules.get("keep"), "unchanged rule keeps its slot");
  assert.equal(after.outs.get("keep>6001"), before.outs.get("keep>6001"));
  assert.equal(new Set(after.rules.values()).size, 2501, "rule slots are distinct");
  assert.equal(new Set(after.outs.values()).size, 2501, "output slots are distinct");
  assert.equal(slots.rules.size, 2501);
  assert.equal(slots.outputs.size, 2501);
});

Deno.test("buildTables: a rule set over capacity is refused, names the limit and changes nothing", () => {
  const slots = new Slots();
  const kept = MAX_RULE_SLOTS - 96;
  const base = many("a", kept);
  const t1 = buildTables(base, slots, 1);
  const before = slotMap(t1);
  assert.throws(
    () => buildTables([...base, ...many("b", 97)], slots, 2, t1.keys()),
    new RegExp(`${MAX_RULE_SLOTS + 1} rule slots needed; the relay has ${MAX_RULE_SLOTS}`),
  );
  assert.equal(slots.rules.size, kept, "no slot was taken by the refused change");
  assert.equal(slots.outputs.size, kept);
  // Outputs over capacity: one more rule of 64 outputs than fits.
  const wide = MAX_OUTPUT_SLOTS / 64 + 1;
  assert.throws(
    () => buildTables([...many("c", wide, 64)], slots, 2, t1.keys()),
    new RegExp(`${wide * 64} output slots needed; the relay has ${MAX_OUTPUT_SLOTS}`),
  );
  assert.equal(slots.rules.size, kept);
  assert.equal(slots.outputs.size, kept);
  // A change that fits still applies, and the kept rules keep their slots.
  const t3 = buildTables([...base, ...many("d", 96)], slots, 3, t1.keys());
  const after = slotMap(t3);
  for (const [id, s] of before.rules) assert.equal(after.rules.get(id), s, id);
  for (const [k, s] of before.outs) assert.equal(after.outs.get(k), s, k);
  assert.equal(slots.rules.size, MAX_RULE_SLOTS);
});

Deno.test("buildTables: a slot freed by a change is reused in that change only when nothing else is free", () => {
  // Room to spare: the new rule gets a slot nobody used in the previous table.
  const roomy = new Slots();
  const x = rule("x", "eth0", "239.1.1.1", 5001, [["eth1", "239.10.1.1", 6001]]);
  const y = rule("y", "eth0", "239.1.1.2", 5002, [["eth1", "239.10.1.1", 6001]]);
  const t1 = buildTables([x], roomy, 1);
  const t2 = buildTables([y], roomy, 2, t1.keys());
  assert.notEqual(t2.get("eth0")!.rules[0].slot, t1.get("eth0")!.rules[0].slot);
  assert.notEqual(
    t2.get("eth0")!.rules[0].outputs[0].slot,
    t1.get("eth0")!.rules[0].outputs[0].slot,
  );
  // Full: every rule slot taken; replacing one rule reuses the slot it frees.
  const full = new Slots();
  const rest = many("f", MAX_RULE_SLOTS - 1);
  const f1 = buildTables([x, ...rest], full, 1);
  const f2 = buildTables([y, ...rest], full, 2, f1.keys());
  assert.equal(f2.get("eth0")!.rules[0].id, "y");
  assert.equal(f2.get("eth0")!.rules[0].slot, f1.get("eth0")!.rules[0].slot);
});

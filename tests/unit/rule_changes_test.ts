/**
 * Live rule changes take the incremental path (a rule added to 65,536 must
 * not re-plan them all): planTableChange, SlotAllocator.planChange and
 * Memberships.change must give what planning the whole changed rule set
 * gives — the same tables, slots, messages to the workers and memberships —
 * for any sequence of changes, including on a full relay (slot reuse).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  CapacityError,
  diffRules,
  planTableChange,
  planTables,
  type RuleSpec,
  Slots,
  type TableChange,
  type TableChangePlan,
  type TablePlan,
} from "../../src/relay/tables.ts";
import type { WorkerTable } from "../../src/datapath/messages.ts";
import { Memberships } from "../../src/relay/igmp.ts";
import type { Links } from "../../src/relay/links.ts";
import { ModelKernel } from "./lib_igmp_model.ts";

const IFACES = ["eth0", "eth1"];

/** Rule `k` of a small universe; `variant` changes its outputs (same id: a changed rule). */
function spec(k: number, variant: number): RuleSpec {
  return {
    id: `id${k}`,
    name: `r${k}`,
    input: {
      interface: IFACES[k % 2],
      group: 0xef000000 + (k % 5),
      prefixLen: 32,
      port: 5000 + k,
      source: k % 3 === 0 ? 0x0a000001 : 0,
      vlan: -1,
      joins: [0xef000000 + (k % 5)],
    },
    outputs: Array.from({ length: 1 + (variant % 3) }, (_, j) => ({
      interface: "out0",
      dst: 0xef100000 + j,
      hostBits: 0,
      port: 6000 + variant,
      srcIp: 0,
      srcPort: 0,
      ttl: 1,
      tos: 0,
    })),
  };
}

/** One step: rules to add (by universe index and variant) and indices to remove. */
const stepArb = fc.record({
  add: fc.array(fc.tuple(fc.nat(11), fc.nat(5)), { maxLength: 3 }),
  remove: fc.array(fc.nat(11), { maxLength: 3 }),
});

/** A table's rules (none for an absent table). */
const shape = (t: WorkerTable | undefined) => t?.rules ?? [];

/** A table's rules without slot numbers, as text (for comparison). */
const unslotted = (t: WorkerTable | undefined) =>
  JSON.stringify(
    shape(t).map(({ slot: _s, outputs, ...r }) => ({
      ...r,
      outputs: outputs.map(({ slot: _o, ...o }) => o),
    })),
  );

/** Every rule and output key of the tables with its slot ("r:id" → "r7", "o:id>…" → "o3"). */
function slotsOf(tables: ReadonlyMap<string, WorkerTable>): Map<string, string> {
  const m = new Map<string, string>();
  for (const t of tables.values()) {
    for (const r of t.rules) {
      m.set(`r:${r.id}`, `r${r.slot}`);
      for (const o of r.outputs) m.set(`o:${r.id}>${o.dst}:${o.port}`, `o${o.slot}`);
    }
  }
  return m;
}

Deno.test("rule changes: planTableChange gives the tables, slots and worker messages of planTables", () => {
  fc.assert(
    fc.property(
      fc.array(stepArb, { minLength: 1, maxLength: 25 }),
      fc.constantFrom([64, 64], [6, 9], [4, 5]),
      (steps, [ruleCap, outCap]) => {
        const full = new Slots(ruleCap, outCap), delta = new Slots(ruleCap, outCap);
        let rules: RuleSpec[] = []; // in force, in order
        let tables = new Map<string, WorkerTable>(); // the delta side's tables in force
        let version = 0;
        for (const step of steps) {
          // a change as the relay makes it: removals by id, additions replace or append
          const ids = new Set(rules.map((r) => r.id));
          const remove = rules.filter((r) => step.remove.some((k) => r.id === `id${k}`));
          const gone = new Set(remove.map((r) => r.id));
          const add = [...new Map(step.add.map(([k, v]) => [k, spec(k, v)])).values()];
          const next = rules.filter((r) => !gone.has(r.id) || add.some((a) => a.id === r.id))
            .map((r) => add.find((a) => a.id === r.id) ?? r);
          for (const a of add) if (!ids.has(a.id)) next.push(a);
          version++;
          let fullPlan: TablePlan;
          try {
            fullPlan = planTables(next, full, version, tables.keys());
          } catch (e) {
            assert.ok(e instanceof CapacityError);
            assert.throws(
              () => planTableChange(tables, add, remove, delta, version),
              CapacityError,
              "the change is refused when the whole set is",
            );
            continue;
          }
          const deltaPlan: TableChangePlan = planTableChange(tables, add, remove, delta, version);
          // Fresh keys may be numbered in another order (config order there, the change's
          // order here), so slot numbers are compared only within the delta side: the same
          // rules and outputs as the full plan, kept keys on the slots they had, every slot
          // held once and within the capacity, as many freed and in use as the full plan.
          assert.equal(deltaPlan.freed.rules.length, fullPlan.freed.rules.length, "rules freed");
          assert.equal(deltaPlan.freed.outputs.length, fullPlan.freed.outputs.length);
          const after = (p: Map<string, WorkerTable>) => {
            const m = new Map(tables);
            for (const [n, x] of p) m.set(n, x);
            return m;
          };
          const fullAfter = after(fullPlan.tables), deltaAfter = after(deltaPlan.tables);
          const names = new Set([...fullAfter.keys(), ...deltaAfter.keys()]);
          for (const name of names) {
            assert.equal(
              unslotted(deltaAfter.get(name)),
              unslotted(fullAfter.get(name)),
              `table of ${name}`,
            );
          }
          const was = slotsOf(tables), now = slotsOf(deltaAfter);
          for (const [key, slot] of now) {
            if (was.has(key)) assert.equal(slot, was.get(key), `${key} keeps its slot`);
            const n = Number(slot.slice(1));
            assert.ok(n < (slot[0] === "r" ? ruleCap : outCap), `${key} within the capacity`);
          }
          assert.equal(new Set(now.values()).size, now.size, "every slot held once");
          assert.equal(now.size, slotsOf(fullAfter).size, "as many slots in use");
          for (const name of names) {
            const before = shape(tables.get(name));
            const d = diffRules(before, shape(deltaAfter.get(name)));
            const c: TableChange = deltaPlan.changes.get(name) ?? { upsert: [], remove: [] };
            // the workers are sent every rule that is new or changed, and only removals
            const up = new Map(c.upsert.map((r) => [r.slot, r]));
            for (const r of d.upsert) assert.deepEqual(up.get(r.slot), r, `upsert ${r.id}`);
            assert.deepEqual([...c.remove].sort(), [...d.remove].sort(), `removed from ${name}`);
          }
          fullPlan.commit();
          deltaPlan.commit();
          tables = new Map(tables);
          for (const [name, t] of deltaPlan.tables) {
            if (t.rules.length) tables.set(name, t);
            else tables.delete(name);
          }
          rules = next;
        }
      },
    ),
    { numRuns: 300 },
  );
});

/** A link table in which every interface exists. */
const everyLink = {
  get: (n: string) => ({ ifindex: 3 + IFACES.indexOf(n), flags: 1 }),
} as unknown as Links;

Deno.test("rule changes: Memberships.change joins and leaves what sync of the changed set does", () => {
  fc.assert(
    fc.property(fc.array(stepArb, { minLength: 1, maxLength: 25 }), (steps) => {
      const ka = new ModelKernel(), kb = new ModelKernel();
      ka.maxMemberships = kb.maxMemberships = 3;
      const a = new Memberships(everyLink, { openSocket: ka.open, readLimits: ka.limits });
      const b = new Memberships(everyLink, { openSocket: kb.open, readLimits: kb.limits });
      let rules: RuleSpec[] = [];
      for (const step of steps) {
        const remove = rules.filter((r) => step.remove.some((k) => r.id === `id${k}`));
        const add = [...new Map(step.add.map(([k, v]) => [k, spec(k, v)])).values()]
          .filter((r) => !rules.some((x) => x.id === r.id) || remove.some((x) => x.id === r.id));
        rules = [...rules.filter((r) => !remove.includes(r)), ...add];
        a.sync(rules);
        b.change(add, remove);
        assert.deepEqual([...kb.keys()].sort(), [...ka.keys()].sort(), "joined in the kernel");
        const sa = a.stats(), sb = b.stats();
        assert.equal(sb.memberships, sa.memberships);
        assert.equal(sb.joined, sa.joined);
      }
      a.close();
      b.close();
      assert.equal(kb.sockets.size, 0, "nothing left open");
    }),
    { numRuns: 300 },
  );
});

/**
 * State events are computed from what changed (a changed table, outputs
 * whose errors changed, rules whose own error changed), not from a whole
 * stats snapshot: for any sequence of rule changes, reloads, link and worker
 * changes, output errors and rules' own errors (a unicast input's UDP port
 * claim refused, an output on a link type mcr cannot send on), link types
 * changing under input and output interfaces, a publish must emit exactly
 * what comparing two whole stats snapshots emits (the reference model below,
 * how events were computed before).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { StateEvents } from "../../src/relay/events.ts";
import type { RelayEvent } from "../../src/relay/events.ts";
import { inputStates, ruleErrorsOf } from "../../src/relay/states.ts";
import { OutputLinkTypes } from "../../src/relay/output_link_types.ts";
import { ARPHRD } from "../../src/datapath/link_types.ts";
import {
  collectStats,
  type InputView,
  type RelayStats,
  type StatsSource,
  type WorkerStats,
  type WorkerView,
} from "../../src/relay/stats.ts";
import { planTableChange, planTables, type RuleSpec, Slots } from "../../src/relay/tables.ts";
import { OutputErrors } from "../../src/relay/output_errors.ts";
import { logger } from "../../src/common/log.ts";
import { COUNTER_SLOTS, newCounterBlock, W } from "../../src/datapath/counters.ts";
import { IFF_LOWER_UP, IFF_UP, type LinkState } from "../../src/datapath/link_table.ts";
import type { WorkerTable } from "../../src/datapath/messages.ts";
import type { Links } from "../../src/relay/links.ts";

const IFACES = ["eth0", "eth1", "eth2"];

/** Rule `k` of a small universe; `variant` changes its name and outputs (same id). */
function spec(k: number, variant: number): RuleSpec {
  return {
    id: `id${k}`,
    name: `r${k}v${variant % 2}`,
    input: {
      interface: IFACES[k % 3],
      group: 0xef000000 + k,
      prefixLen: 32,
      port: 5000,
      source: 0,
      vlan: -1,
      joins: [0xef000000 + k],
    },
    outputs: Array.from({ length: 1 + (variant % 3) }, (_, j) => ({
      interface: `out${j}`,
      dst: 0xef100000 + j,
      hostBits: 0,
      port: 6000 + (variant % 2),
      srcIp: 0,
      srcPort: 0,
      ttl: 1,
      tos: 0,
    })),
  };
}

/** The reference: diff the states of a whole snapshot against the last ones reported. */
class SnapshotModel {
  readonly #last = new Map<string, string>();

  publish(st: RelayStats): RelayEvent[] {
    const out: RelayEvent[] = [];
    const seen = new Set<string>();
    const diff = (key: string, state: string, reason: string | undefined, ev: RelayEvent) => {
      seen.add(key);
      const v = `${state}|${reason ?? ""}`;
      if (this.#last.get(key) === v) return;
      this.#last.set(key, v);
      out.push(ev);
    };
    const why = (reason?: string) => reason ? { reason } : {};
    for (const i of st.interfaces) {
      diff(`i:${i.name}`, i.state, i.reason, {
        type: "interface",
        interface: i.name,
        state: i.state,
        ...why(i.reason),
      });
    }
    for (const w of st.workers) {
      diff(`w:${w.interface}:${w.index}`, w.state, w.reason, {
        type: "worker",
        interface: w.interface,
        index: w.index,
        state: w.state,
        ...why(w.reason),
      });
    }
    for (const r of st.rules) {
      diff(`r:${r.id}`, r.state, r.reason, {
        type: "rule",
        rule: r.name,
        id: r.id,
        state: r.state,
        ...why(r.reason),
      });
      for (const o of r.outputs) {
        const name = `${o.interface} ${o.group}:${o.port}`;
        diff(`o:${r.id}:${name}`, o.state, o.reason, {
          type: "output",
          rule: r.name,
          output: name,
          state: o.state,
          ...why(o.reason),
        });
      }
    }
    for (const k of [...this.#last.keys()]) {
      if (seen.has(k)) continue;
      this.#last.delete(k);
      if (k.startsWith("i:")) {
        out.push({ type: "interface", interface: k.slice(2), state: "removed" });
      }
    }
    return out;
  }
}

type Step =
  | { kind: "change"; add: [number, number][]; remove: number[] }
  | { kind: "reload" }
  | { kind: "link"; iface: number; link: "up" | "down" | "gone" }
  | { kind: "member"; iface: number; state: WorkerStats["state"] }
  | { kind: "error"; pick: number; worker: number; reason: string }
  | { kind: "workerFailed"; worker: number }
  | { kind: "claim"; rule: number; reason: string }
  | { kind: "linkType"; iface: number; type: number };

/** Interfaces whose link type a step may change: the inputs, then spec()'s outputs. */
const TYPED = [...IFACES, "out0", "out1", "out2"];

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant("change" as const),
    add: fc.array(fc.tuple(fc.nat(8), fc.nat(5)), { maxLength: 3 }),
    remove: fc.array(fc.nat(8), { maxLength: 2 }),
  }),
  fc.record({ kind: fc.constant("reload" as const) }),
  fc.record({
    kind: fc.constant("link" as const),
    iface: fc.nat(2),
    link: fc.constantFrom("up" as const, "down" as const, "gone" as const),
  }),
  fc.record({
    kind: fc.constant("member" as const),
    iface: fc.nat(2),
    state: fc.constantFrom(
      "running" as const,
      "starting" as const,
      "pending" as const,
      "error" as const,
    ),
  }),
  fc.record({
    kind: fc.constant("error" as const),
    pick: fc.nat(40),
    worker: fc.nat(1),
    reason: fc.constantFrom("", "", "no route", "too big"),
  }),
  fc.record({ kind: fc.constant("workerFailed" as const), worker: fc.nat(1) }),
  fc.record({
    kind: fc.constant("claim" as const),
    rule: fc.nat(8),
    reason: fc.constantFrom("", "", "port in use", "EACCES"),
  }),
  fc.record({
    kind: fc.constant("linkType" as const),
    iface: fc.nat(TYPED.length - 1),
    type: fc.constantFrom(ARPHRD.ETHER, ARPHRD.NONE, ARPHRD.LOOPBACK, ARPHRD.IPGRE),
  }),
);

/** A relay's state as the supervisor holds it, without a data path. */
class World {
  readonly slots = new Slots(64, 256);
  rules: RuleSpec[] = [];
  tables = new Map<string, WorkerTable>();
  version = 0;
  readonly links = new Map<string, LinkState>();
  readonly memberState = new Map<string, WorkerStats["state"]>();
  /** Rules' own errors (as PortClaims keeps them) and those changed since the last publish. */
  readonly ownErrors = new Map<string, string>();
  readonly ownChanged = new Map<string, string>();
  /** Rules with an output on a link type mcr cannot send on (the relay's own class). */
  readonly outputTypes = new OutputLinkTypes((n) => this.links.get(n));
  readonly ruleErrors = ruleErrorsOf(this.ownErrors, this.outputTypes.errors);
  readonly errors = new OutputErrors(
    logger("test"),
    () => [...this.tables.values()].map((t) => t.rules),
  );
  readonly workers: WorkerView[] = [0, 1].map((index) => {
    const counters = newCounterBlock();
    counters[W.heartbeat] = Date.now() + 3_600_000; // never stalled during the test
    return {
      index,
      state: "running",
      restarts: 0,
      counters,
      retired: new Float64Array(COUNTER_SLOTS),
      worker: {},
    };
  });

  constructor() {
    for (const name of IFACES) this.setLink(name, "up");
  }

  setLink(name: string, link: "up" | "down" | "gone", type?: number): void {
    const prev = this.links.get(name);
    if (link === "gone") this.links.delete(name);
    else {
      this.links.set(name, {
        ifindex: 2,
        flags: link === "up" ? IFF_UP | IFF_LOWER_UP : IFF_UP,
        mtu: 1500,
        type: type ?? prev?.type ?? ARPHRD.ETHER,
      } as LinkState);
    }
    this.outputTypes.linkChanged({ name, prev, next: this.links.get(name) }, this.tables.values());
  }

  apply(step: Step): void {
    if (step.kind === "change") {
      const add = [...new Map(step.add.map(([k, v]) => [k, spec(k, v)])).values()];
      const remove = this.rules.filter((r) =>
        step.remove.some((k) => r.id === `id${k}`) && !add.some((a) => a.id === r.id)
      );
      const plan = planTableChange(this.tables, add, remove, this.slots, ++this.version);
      plan.commit();
      for (const s of plan.freed.outputs) this.errors.deleteSlot(s);
      for (const [n, t] of plan.tables) this.tables.set(n, t);
      const gone = new Set(remove.map((r) => r.id));
      const next = this.rules.filter((r) => !gone.has(r.id)).map((r) =>
        add.find((a) => a.id === r.id) ?? r
      );
      for (const a of add) if (!next.some((r) => r.id === a.id)) next.push(a);
      this.rules = next;
      for (const r of remove) this.setOwnError(r, "");
      this.outputTypes.change(add, remove);
    } else if (step.kind === "reload") {
      const plan = planTables(this.rules, this.slots, ++this.version, this.tables.keys());
      plan.commit();
      for (const s of plan.freed.outputs) this.errors.deleteSlot(s);
      this.tables = new Map(plan.tables);
    } else if (step.kind === "link") {
      this.setLink(IFACES[step.iface], step.link);
    } else if (step.kind === "member") {
      this.memberState.set(IFACES[step.iface], step.state);
    } else if (step.kind === "error") {
      const slots = [...this.tables.values()].flatMap((t) =>
        t.rules.flatMap((r) => r.outputs.map((o) => o.slot))
      );
      if (slots.length) {
        this.errors.report(step.worker, [[slots[step.pick % slots.length], step.reason]]);
      }
    } else if (step.kind === "claim") {
      const r = this.rules.find((r) => r.id === `id${step.rule}`);
      if (r) this.setOwnError(r, step.reason);
    } else if (step.kind === "linkType") {
      const name = TYPED[step.iface];
      const l = this.links.get(name);
      this.setLink(name, l && !(l.flags & IFF_LOWER_UP) ? "down" : "up", step.type);
    } else {
      this.errors.deleteWorker(step.worker);
    }
    for (const [n, t] of [...this.tables]) if (t.rules.length === 0) this.tables.delete(n);
  }

  /** Set (reason) or clear ("") rule `r`'s own error. */
  setOwnError(r: RuleSpec, reason: string): void {
    if ((this.ownErrors.get(r.id) ?? "") === reason) return;
    if (reason) this.ownErrors.set(r.id, reason);
    else this.ownErrors.delete(r.id);
    this.ownChanged.set(r.id, r.input.interface);
  }

  /** What a publish gets about rules' own errors (the changed ones taken). */
  takeOwn() {
    const changed = [...this.ownChanged, ...this.outputTypes.takeChanged()];
    this.ownChanged.clear();
    return { errors: this.ruleErrors, changed };
  }

  source(): StatsSource {
    const inputs: InputView[] = [...this.tables.values()].map((table) => {
      const k = IFACES.indexOf(table.interface);
      return {
        name: table.interface,
        slot: k,
        gen: 1,
        table,
        fanoutId: k,
        members: [0, 1].map((index) => ({
          index,
          state: index === 0 ? this.memberState.get(table.interface) ?? "running" : "running",
          ...(this.memberState.get(table.interface) === "error" && index === 0
            ? { reason: "ring failed" }
            : {}),
          restarts: 0,
          retiredFrames: 0,
          worker: this.workers[index],
        })),
      };
    });
    return {
      inputs,
      workers: this.workers,
      retired: new Float64Array(COUNTER_SLOTS),
      links: { get: (n: string) => this.links.get(n) } as unknown as Links,
      outputErrors: this.errors.map,
      ruleErrors: this.ruleErrors,
    };
  }
}

const sorted = (evs: RelayEvent[]) => evs.map((e) => JSON.stringify(e)).sort();

Deno.test("events: a publish emits what diffing whole snapshots emits, for any sequence of changes", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(stepArb, fc.boolean()), { minLength: 1, maxLength: 30 }),
      (steps) => {
        const world = new World();
        const events = new StateEvents();
        let got: RelayEvent[] = [];
        events.on((e) => got.push(e));
        const model = new SnapshotModel();
        for (const [i, [step, publish]] of steps.entries()) {
          world.apply(step);
          if (!publish && i < steps.length - 1) continue;
          const src = world.source();
          const want = model.publish(collectStats(src));
          got = [];
          events.publish(
            inputStates(src),
            src.outputErrors,
            world.errors.takeChanged(),
            world.takeOwn(),
          );
          assert.deepEqual(sorted(got), sorted(want), `after step ${i}: ${JSON.stringify(step)}`);
        }
      },
    ),
    {
      numRuns: 150,
      examples: [
        // a rule that leaves and comes back between two publishes: its outputs get new slots
        [[
          [{ kind: "change", add: [[7, 1]], remove: [] }, true],
          [{ kind: "change", add: [], remove: [7] }, false],
          [{ kind: "change", add: [[0, 0], [7, 1]], remove: [] }, false],
        ]],
      ],
    },
  );
});

Deno.test("events: adding one rule to a large table reports that rule and its outputs only", () => {
  const world = new World();
  const events = new StateEvents();
  const got: RelayEvent[] = [];
  events.on((e) => got.push(e));
  world.apply({ kind: "change", add: [[0, 0], [3, 1]], remove: [] });
  const publish = () => {
    const src = world.source();
    events.publish(inputStates(src), src.outputErrors, world.errors.takeChanged());
  };
  publish();
  got.length = 0;
  world.apply({ kind: "change", add: [[6, 2]], remove: [] });
  publish();
  assert.deepEqual(
    got.map((e) => `${e.type} ${"rule" in e ? e.rule : ""} ${"state" in e ? e.state : ""}`),
    [
      "rule r6v0 active",
      "output r6v0 active",
      "output r6v0 active",
      "output r6v0 active",
    ],
  );
});

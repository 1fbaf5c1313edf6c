/**
 * Rates from counter deltas (src/control/rates.ts): the sampling window,
 * outputs found again after a reload reordered them, rules added between
 * samples, and the fresh sample the first request after a pause takes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { outputRate, RateTracker } from "../../src/control/rates.ts";
import type { CounterSnapshot } from "../../src/relay/counter_snapshot.ts";
import type { WorkerTable } from "../../src/datapath/messages.ts";
/** One input r0 with rule "abc" whose outputs go to r1 239.10.1.1 on `ports` (same table object). */
function fakeTable(ports: number[]): WorkerTable {
  return {
    version: 1,
    interface: "r0",
    rules: [{
      slot: 0,
      id: "abc",
      name: "cam1",
      group: 0xef010101,
      prefixLen: 32,
      port: 5001,
      source: 0,
      vlan: -1,
      outputs: ports.map((port, slot) => ({
        slot,
        interface: "r1",
        dst: 0xef0a0101,
        hostBits: 0,
        port,
        srcIp: 0,
        srcPort: 0,
        ttl: 1,
        tos: 0,
      })),
    }],
  };
}

/** Counters of `table` (see fakeTable): the rule at `packets`, its outputs at `outputs`. */
function fakeCounters(
  table: WorkerTable,
  packets: number,
  outputs: number[],
  frames: number,
  drops: number,
): CounterSnapshot {
  return {
    inputs: new Map([["r0", {
      table,
      rules: Float64Array.of(packets, packets * 100),
      outputs: Float64Array.from(outputs.flatMap((n) => [n, n * 100])),
      frames,
      bytes: frames * 142,
      kernel_drops: drops,
    }]]),
    drops: { no_match: frames - packets },
  };
}

Deno.test("RateTracker: rates are counter deltas over the sampling window", async () => {
  const table = fakeTable([6001]);
  let s = fakeCounters(table, 0, [0], 0, 0);
  const r = new RateTracker(() => s, 1000);
  r.sample();
  assert.equal(r.rates().window_s, 0);
  await new Promise((res) => setTimeout(res, 200));
  s = fakeCounters(table, 1000, [1000], 1500, 10);
  r.sample();
  const x = r.rates();
  assert.ok(x.window_s >= 0.15, "the window spans the time between the samples");
  // window_s is rounded to the millisecond: compare within 1 %.
  const near = (a: number, b: number) => assert.ok(Math.abs(a - b) <= b * 0.01, `${a} vs ${b}`);
  const pps = x.rules.get("abc")!.pps;
  near(pps * x.window_s, 1000);
  near(x.rules.get("abc")!.bps, pps * 800);
  near(outputRate(x, "abc", { interface: "r1", group: "239.10.1.1", port: 6001 }, 0)!.pps, pps);
  near(x.interfaces.get("r0")!.kernel_drops_ps * x.window_s, 10);
  near(x.drops.no_match * x.window_s, 500);
  r.stop();
});

Deno.test("RateTracker: the first request after a pause samples afresh, so its rates end now", async () => {
  const table = fakeTable([6001]);
  let s = fakeCounters(table, 0, [0], 0, 0);
  let reads = 0;
  const r = new RateTracker(() => (reads++, s), 50);
  r.sample(); // the last idle sample
  await new Promise((res) => setTimeout(res, 120));
  s = fakeCounters(table, 1000, [1000], 1500, 10);
  const x = r.rates();
  assert.equal(reads, 2, "nobody had asked: the request took a sample of its own");
  assert.ok(x.window_s >= 0.1, "from the idle sample to now");
  assert.ok(x.rules.get("abc")!.pps > 0, "the packets since the idle sample are in the rate");
  r.rates();
  assert.equal(reads, 2, "asked again at once: the rates in hand");
  r.stop();
});

Deno.test("RateTracker: an output keeps its rate when a reload reorders the outputs", async () => {
  let s = fakeCounters(fakeTable([6001, 6002]), 0, [0, 0], 0, 0);
  const r = new RateTracker(() => s, 1000);
  r.sample();
  await new Promise((res) => setTimeout(res, 20)); // a window longer than the clock's resolution
  s = fakeCounters(fakeTable([6002, 6001, 6003]), 0, [2000, 1000, 500], 0, 0);
  r.sample();
  const x = r.rates();
  const pps = (port: number, index: number) =>
    outputRate(x, "abc", { interface: "r1", group: "239.10.1.1", port }, index)!.pps;
  const near = (a: number, b: number) => assert.ok(Math.abs(a - b) <= b * 1e-9, `${a} vs ${b}`);
  assert.ok(pps(6001, 1) > 0);
  near(pps(6002, 0), 2 * pps(6001, 1));
  near(pps(6001, 0), pps(6001, 1)); // found wherever it is
  assert.equal(pps(6003, 2), 0, "a new output has no rate before its second sample");
  assert.equal(
    outputRate(x, "abc", { interface: "r9", group: "239.10.1.1", port: 6001 }, 1),
    undefined,
  );
  assert.equal(
    outputRate(x, "nope", { interface: "r1", group: "239.10.1.1", port: 6001 }, 0),
    undefined,
  );
});

Deno.test("RateTracker: a rule added between samples has no rate; the others keep theirs", async () => {
  const one = fakeTable([6001]);
  let s = fakeCounters(one, 100, [100], 100, 0);
  const r = new RateTracker(() => s, 1000);
  r.sample();
  await new Promise((res) => setTimeout(res, 200));
  const two: WorkerTable = {
    ...one,
    version: 2,
    rules: [{ ...one.rules[0], id: "new", slot: 1, port: 5002 }, one.rules[0]],
  };
  s = {
    ...fakeCounters(two, 0, [], 300, 0),
    inputs: new Map([["r0", {
      table: two,
      rules: Float64Array.of(50, 5000, 300, 30000),
      outputs: Float64Array.of(50, 5000, 300, 30000),
      frames: 300,
      bytes: 0,
      kernel_drops: 0,
    }]]),
  };
  r.sample();
  const x = r.rates();
  assert.equal(x.rules.get("new")!.pps, 0, "no earlier sample of the new rule");
  // window_s is rounded to the millisecond: compare within 1 %.
  const near = (a: number, b: number) => assert.ok(Math.abs(a - b) <= b * 0.01, `${a} vs ${b}`);
  near(x.rules.get("abc")!.pps * x.window_s, 200);
  near(x.rules.get("abc")!.bps * x.window_s, 200 * 800);
  const out = (id: string) =>
    outputRate(x, id, { interface: "r1", group: "239.10.1.1", port: 6001 }, 0)!.pps;
  assert.equal(out("new"), 0);
  near(out("abc") * x.window_s, 200);
});

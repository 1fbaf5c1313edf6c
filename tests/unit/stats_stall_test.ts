/**
 * A worker whose loop stops passing is not reported as working: its fanout
 * members, the pool entry, the interface and the rules it serves show an
 * error with the reason once its heartbeat is older than STALL_MS.
 */
import assert from "node:assert/strict";
import { collectStats, type WorkerView } from "../../src/relay/stats.ts";
import { STALL_MS } from "../../src/relay/states.ts";
import { COUNTER_SLOTS, newCounterBlock, W } from "../../src/datapath/counters.ts";
import { IFF_LOWER_UP, IFF_UP } from "../../src/datapath/link_table.ts";
import type { Links } from "../../src/relay/links.ts";

function snapshot(heartbeatAgeMs: number) {
  const counters = newCounterBlock();
  counters[W.heartbeat] = Date.now() - heartbeatAgeMs;
  const worker: WorkerView = {
    index: 0,
    state: "running",
    restarts: 0,
    counters,
    retired: new Float64Array(counters.length),
    worker: {},
  };
  const links = {
    get: () => ({ ifindex: 2, flags: IFF_UP | IFF_LOWER_UP, mtu: 1500, type: 1 }),
  } as unknown as Links;
  return collectStats({
    inputs: [{
      name: "eth0",
      slot: 0,
      gen: 1,
      fanoutId: 7,
      table: {
        version: 1,
        interface: "eth0",
        rules: [{
          id: "a",
          name: "a",
          slot: 0,
          group: 0xef010101,
          prefixLen: 32,
          port: 5000,
          source: 0,
          vlan: -1,
          outputs: [],
        }],
      },
      members: [{ index: 0, state: "running", restarts: 0, retiredFrames: 0, worker }],
    }],
    workers: [worker],
    retired: new Float64Array(COUNTER_SLOTS),
    links,
    outputErrors: new Map(),
  });
}

Deno.test("stats: a worker whose loop stopped is in error, and so are its interface and rules", () => {
  const fresh = snapshot(50);
  assert.equal(fresh.pool[0].state, "running");
  assert.equal(fresh.workers[0].state, "running");
  assert.equal(fresh.interfaces[0].state, "running");
  assert.equal(fresh.rules[0].state, "active");

  const stuck = snapshot(STALL_MS + 5000);
  assert.equal(stuck.pool[0].state, "error");
  assert.match(stuck.pool[0].reason ?? "", /worker 0: its loop has not run for 20 s \(stalled\)/);
  assert.equal(stuck.workers[0].state, "error");
  assert.equal(stuck.interfaces[0].state, "error");
  assert.equal(stuck.rules[0].state, "error");
  assert.match(stuck.rules[0].reason ?? "", /stalled/);
});

/**
 * `deno bench` of the stream monitor's look at every rule with `health`
 * (src/relay/stream_monitor.ts `tick`, every 50 ms on the relay's main
 * thread), at 1, 256 and 4096 (the most allowed, MAX_HEALTH_RULES) rules on
 * one input interface, traffic on every rule.
 *
 *     deno bench bench/stream_monitor_bench.ts
 *
 * @module
 */
import {
  COUNTER_SLOTS,
  Ext,
  extBase,
  In,
  inBase,
  newCounterBlock,
  RULE_BASE,
  RULE_WORDS,
  W_WORDS,
} from "../src/datapath/counters.ts";
import type { TableRule } from "../src/datapath/messages.ts";
import { StreamMonitor } from "../src/relay/stream_monitor.ts";
import type { InputView, StatsSource } from "../src/relay/stats.ts";
import { Links } from "../src/relay/links.ts";

for (const n of [1, 256, 4096]) {
  const counters = newCounterBlock();
  const worker = {
    index: 0,
    state: "running" as const,
    restarts: 0,
    counters,
    retired: new Float64Array(W_WORDS),
    worker: {},
  };
  const rules: TableRule[] = Array.from({ length: n }, (_, i) => ({
    slot: i,
    id: `r${i}`,
    name: `r${i}`,
    group: 0xef010000 + i,
    prefixLen: 32,
    port: 5000,
    source: 0,
    vlan: -1,
    outputs: [],
    health: { silenceMs: 1000, minPps: 100, clockRate: 90_000 },
  }));
  const input: InputView = {
    name: "eth0",
    slot: 0,
    gen: 1,
    table: { version: 1, interface: "eth0", rules },
    fanoutId: 0,
    members: [{ index: 0, state: "running", restarts: 0, retiredFrames: 0, worker }],
  };
  counters[inBase(0) + In.owner] = 1;
  const src: StatsSource = {
    inputs: [input],
    workers: [worker],
    retired: new Float64Array(COUNTER_SLOTS),
    links: new Links(),
    outputErrors: new Map(),
  };
  let now = Date.now();
  const m = new StreamMonitor(() => src, () => {}, () => now, false);
  m.refresh();
  Deno.bench({
    name: `tick/${n}-rules`,
    fn() {
      now += 50;
      for (let i = 0; i < n; i++) {
        counters[RULE_BASE + i * RULE_WORDS] += 50;
        counters[RULE_BASE + i * RULE_WORDS + 1] += 50 * 1316;
        counters[extBase(i) + Ext.lastRxUs] = ((now - 1) * 1000) % 2 ** 32;
      }
      m.tick();
    },
  });
}

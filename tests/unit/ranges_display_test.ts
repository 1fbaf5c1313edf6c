/**
 * A range rule as operators see it (issue 13): `stats` (and so `ctl stats`,
 * `top`, /metrics and events) shows the input as "239.1.0.0/16" port "any"
 * and each output as the range it maps into, or one group, with port "keep"
 * where it keeps each datagram's port; `ctl list` shows the rule as written
 * ("keep", a mapped range); the metrics carry those as labels; `--group G`
 * selects a range rule holding G; `ctl add` passes them through to the
 * relay's validation.
 */
import assert from "node:assert/strict";
import parsePrometheus from "parse-prometheus-text-format";
import { collectStats, type WorkerView } from "../../src/relay/stats.ts";
import { COUNTER_SLOTS, newCounterBlock } from "../../src/datapath/counters.ts";
import { IFF_LOWER_UP, IFF_UP } from "../../src/datapath/link_table.ts";
import type { Links } from "../../src/relay/links.ts";
import { listedRule } from "../../src/control/views.ts";
import { noRates } from "../../src/control/rates.ts";
import { listRows } from "../../src/client/format.ts";
import { buildRegistry, health } from "../../src/control/metrics.ts";
import { parseOutputSpec, ruleFromArgs } from "../../src/client/ctl.ts";
import { selectRules } from "../../src/control/selection.ts";
import { parseConfig, validateRule } from "../../src/config/mod.ts";
import { ruleSpecs } from "../../src/relay/relay.ts";
import type { StatsResult } from "../../src/control/results.ts";

const RULE = {
  name: "range",
  input: { interface: "eth0", group: "239.1.0.0/16", port: "any", joins: ["239.1.1.1"] },
  outputs: [
    { interface: "eth1", group: "239.20.0.0/16", port: "keep" },
    { interface: "eth1", group: "keep", port: 6000 },
    { interface: "eth2", group: "239.30.1.1", port: 7000 },
  ],
};

/** The relay's stats of the rule in force (one worker, counters at zero). */
function statsOfRule() {
  const config = parseConfig({ rules: [RULE] });
  const spec = ruleSpecs(config.rules)[0];
  const counters = newCounterBlock();
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
  const stats = collectStats({
    inputs: [{
      name: "eth0",
      slot: 0,
      gen: 1,
      fanoutId: 7,
      table: {
        version: 1,
        interface: "eth0",
        rules: [{
          slot: 0,
          id: spec.id,
          name: spec.name,
          group: spec.input.group,
          prefixLen: spec.input.prefixLen,
          port: spec.input.port,
          source: 0,
          vlan: -1,
          outputs: spec.outputs.map((o, slot) => ({ slot, ...o })),
        }],
      },
      members: [{ index: 0, state: "running", restarts: 0, retiredFrames: 0, worker }],
    }],
    workers: [worker],
    retired: new Float64Array(COUNTER_SLOTS),
    links,
    outputErrors: new Map([[1, new Map([[0, "output interface eth1 is down"]])]]),
  });
  return { config, stats };
}

Deno.test("stats: a range rule's input and its kept and mapped outputs", () => {
  const { stats } = statsOfRule();
  const r = stats.rules[0];
  assert.deepEqual(r.input, { interface: "eth0", group: "239.1.0.0/16", port: "any" });
  assert.deepEqual(
    r.outputs.map((o) => [o.interface, o.group, o.port]),
    [
      ["eth1", "239.20.0.0/16", "keep"],
      ["eth1", "239.1.0.0/16", 6000], // "keep" of the range: the range itself
      ["eth2", "239.30.1.1", 7000],
    ],
  );
  // health names the output as stats shows it
  const rules = stats.rules.map((r) => ({
    ...r,
    pps: 0,
    bps: 0,
    outputs: r.outputs.map((o) => ({ ...o, pps: 0, bps: 0 })),
  }));
  const problems = health({ rules, workers: [], interfaces: [] }).problems;
  assert.deepEqual(problems, [
    "rule range output eth1 239.1.0.0/16:6000: error: output interface eth1 is down",
  ]);
});

Deno.test("ctl list: a range rule as written; metrics labels", async () => {
  const { config, stats } = statsOfRule();
  const listed = listedRule({ c: config.rules[0], s: stats.rules[0] }, noRates());
  const rows = listRows(listed);
  assert.equal(rows[0][3], "eth0 239.1.0.0/16:any");
  assert.deepEqual(rows.map((row) => row[4]), [
    "eth1 239.20.0.0/16:keep",
    "eth1 keep:6000 (error)",
    "eth2 239.30.1.1:7000",
  ]);
  const result: StatsResult = {
    time: new Date().toISOString(),
    uptime_s: 1,
    rate_window_s: 1,
    rules: stats.rules.map((r) => ({
      ...r,
      pps: 0,
      bps: 0,
      outputs: r.outputs.map((o) => ({ ...o, pps: 0, bps: 0 })),
    })),
    interfaces: [],
    workers: [],
    pool: [],
    drops: stats.drops,
    drops_ps: {},
  };
  const fams = parsePrometheus(await buildRegistry(() => result).metrics()) as {
    name: string;
    metrics: { labels?: Record<string, string> }[];
  }[];
  const out = fams.find((f) => f.name === "mcr_output_packets_total")!;
  assert.deepEqual(out.metrics.map((m) => m.labels!.output), [
    "eth1 239.20.0.0/16:keep",
    "eth1 239.1.0.0/16:6000",
    "eth2 239.30.1.1:7000",
  ]);
});

Deno.test("ctl add: a range, any port and kept outputs from flags reach the validation", () => {
  assert.deepEqual(parseOutputSpec("keep:keep:eth1"), {
    group: "keep",
    port: "keep",
    interface: "eth1",
  });
  assert.deepEqual(parseOutputSpec("239.20.0.0/16:6000:eth1"), {
    group: "239.20.0.0/16",
    port: 6000,
    interface: "eth1",
  });
  const rule = ruleFromArgs(
    {
      "input-interface": "eth0",
      "input-group": "239.1.0.0/16",
      "input-port": "any",
      outputs: "keep:keep:eth1,239.20.0.0/16:6000:eth1",
    } as Parameters<typeof ruleFromArgs>[0],
    [],
  );
  const r = validateRule(rule);
  assert.deepEqual([r.input.group, r.input.port, r.outputs.length], ["239.1.0.0/16", "any", 2]);
});

Deno.test("ctl list/stats --group: a range holding the group selects its rule", () => {
  const { config, stats } = statsOfRule();
  const pick = (group: string) => [
    selectRules(config.rules, { group }).length,
    selectRules(stats.rules, { group }).length,
  ];
  assert.deepEqual(pick("239.1.77.8"), [1, 1]); // inside the input range
  assert.deepEqual(pick("239.20.3.4"), [1, 1]); // inside the range it maps into
  assert.deepEqual(pick("239.30.1.1"), [1, 1]); // its one-group output
  assert.deepEqual(pick("239.2.0.1"), [0, 0]);
});

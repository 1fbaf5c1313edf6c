/**
 * The configuration of redundant inputs (issue 16): errors that name their
 * field and say why, defaults, ids, one spec per path sharing one
 * arbitration block kept across loads, and a rule written back by ctl.
 */
import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../../src/config/mod.ts";
import { ArbiterStates, ruleSpecs } from "../../src/relay/relay_config.ts";
import { rawRule } from "../../src/relay/runtime_rules.ts";

/** The ConfigError of a rules.json text. */
function problems(rule: unknown): string[] {
  try {
    parseConfig({ rules: [rule] }, "t.json");
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.field}: ${i.message}`);
    throw e;
  }
  return [];
}

const twoPaths = [
  { interface: "a0", group: "239.1.1.1", port: 5001 },
  { interface: "b0", group: "239.2.1.1", port: 5001 },
];
const out = [{ interface: "o0", group: "239.9.9.9", port: 6001 }];

Deno.test("redundancy config: errors name the field and say why", () => {
  assert.deepEqual(problems({ inputs: twoPaths, redundancy: "merge", outputs: out }), []);
  assert.match(problems({ inputs: twoPaths, outputs: out }).join("\n"), /^redundancy: is required/);
  assert.match(
    problems({ input: twoPaths[0], inputs: twoPaths, redundancy: "merge", outputs: out })[0],
    /^inputs: a rule has either one "input" or redundant "inputs"/,
  );
  assert.match(
    problems({ input: twoPaths[0], redundancy: "failover", outputs: out })[0],
    /^redundancy: combines redundant "inputs"/,
  );
  assert.match(problems({ outputs: out })[0], /^input: is required/);
  assert.match(
    problems({ inputs: [twoPaths[0]], redundancy: "merge", outputs: out })[0],
    /^inputs: .*2/,
  );
  assert.match(
    problems({ inputs: [twoPaths[0], twoPaths[0]], redundancy: "merge", outputs: out })[0],
    /^inputs\[1\]: is the same input as inputs\[0\]/,
  );
  assert.match(
    problems({
      inputs: [twoPaths[0], { interface: "b0", group: "239.2.0.0/16", port: 5001 }],
      redundancy: "merge",
      outputs: out,
    })[0],
    /^inputs\[1\]: takes a range of groups/,
  );
  assert.match(
    problems({
      inputs: [twoPaths[0], { interface: "b0", group: "239.2.1.1", port: "any" }],
      redundancy: "merge",
      outputs: out,
    }).join("\n"),
    /inputs\[1\]: takes every port/,
  );
  assert.match(
    problems({ inputs: twoPaths, redundancy: { mode: "merge", window: 1000 }, outputs: out })[0],
    /^redundancy\.window: must be a power of two/,
  );
  assert.match(
    problems({ inputs: twoPaths, redundancy: { mode: "merge", failover_ms: 5 }, outputs: out })[0],
    /^redundancy\.failover_ms: applies to "failover"/,
  );
  assert.match(
    problems({
      inputs: twoPaths,
      redundancy: { mode: "failover", reorder_ms: 5 },
      outputs: out,
    })[0],
    /^redundancy\.reorder_ms: applies to "merge"/,
  );
  assert.match(
    problems({ inputs: twoPaths, redundancy: "both", outputs: out })[0],
    /^redundancy\.mode: must be one of/,
  );
  // an output into any of the inputs is a loop
  assert.match(
    problems({
      inputs: twoPaths,
      redundancy: "merge",
      outputs: [{ interface: "b0", group: "239.2.1.1", port: 5001 }],
    })[0],
    /^outputs\[0\]: same interface, group and port as the rule's input/,
  );
  // another rule on one of the paths' inputs clashes there
  const e = (() => {
    try {
      parseConfig({
        rules: [
          { name: "x", input: twoPaths[1], outputs: [{ ...out[0], port: 7000 }] },
          { name: "cam", inputs: twoPaths, redundancy: "merge", outputs: out },
        ],
      }, "t.json");
    } catch (e) {
      return e as ConfigError;
    }
  })();
  assert.ok(e);
  assert.equal(e.issues[0].field, "inputs[1]");
  assert.match(e.issues[0].message, /same input \(b0 239\.2\.1\.1:5001\) as enabled rule 0 "x"/);
});

Deno.test("redundancy config: defaults, ids, one spec per path sharing a block kept across loads", () => {
  const c = parseConfig(
    { rules: [{ name: "cam", inputs: twoPaths, redundancy: "failover", outputs: out }] },
    "t.json",
  );
  const r = c.rules[0];
  assert.deepEqual(r.redundancy, {
    mode: "failover",
    max_delay_ms: 50,
    window: 8192,
    failover_ms: 200,
    revertive: true,
  });
  assert.equal(r.input, r.inputs![0]);
  const states = new ArbiterStates();
  const s1 = ruleSpecs(c.rules, states);
  assert.deepEqual(s1.map((s) => [s.id, s.name, s.input.interface]), [
    [`${r.id}[0]`, "cam[0]", "a0"],
    [`${r.id}[1]`, "cam[1]", "b0"],
  ]);
  assert.equal(s1[0].redundancy!.state, s1[1].redundancy!.state);
  assert.equal(s1[1].redundancy!.failoverUs, 200_000);
  // a reload keeps the block (the window of forwarded datagrams); a removed rule drops it
  const again = parseConfig(
    { rules: [{ name: "cam", inputs: twoPaths, redundancy: "failover", outputs: out }] },
    "t.json",
  );
  assert.equal(ruleSpecs(again.rules, states)[0].redundancy!.state, s1[0].redundancy!.state);
  states.keep([]);
  assert.equal(states.size, 0);
  // written back (ctl changing the outputs of a rule from a file) it parses to the same rule
  const back = parseConfig({ rules: [rawRule(r)] }, "t.json").rules[0];
  assert.deepEqual(back, r);
});

/**
 * What `list` and `stats` answer at the scale of issue 12, computed in the
 * daemon from 65,536 synthetic rules (tests/fixtures/relay_stats.ts): a
 * filter answers exactly the rules it names (compared with a brute-force
 * selection written here), an unknown rule or a bad argument is a clear
 * error, a summary's totals and top rules agree with the rules, `auto`
 * switches to a summary above 50 rules, and a stream's header announces the
 * records that follow.
 */
import assert from "node:assert/strict";
import {
  listRecords,
  listResult,
  listView,
  parseViewArgs,
  statsRecords,
  statsResult,
  statsView,
} from "../../src/control/views.ts";
import { ControlError } from "../../src/control/protocol.ts";
import {
  AUTO_SUMMARY_RULES,
  type ListRecord,
  outputDrops,
  type RuleWithRate,
  type StatsRecord,
  SUMMARY_TOP_RULES,
} from "../../src/control/results.ts";
import {
  inputGroup,
  outputGroup,
  ruleState,
  SHARED_OUTPUT,
  SYNTHETIC_OUTPUTS,
  syntheticRelay,
} from "../fixtures/relay_stats.ts";

const N = 65_536;
const relay = syntheticRelay({ rules: N });
const clock = { time: "2026-01-01T00:00:00.000Z", uptime_s: 1 };

/** `stats` for these arguments, as one result. */
function stats(args: Record<string, unknown>) {
  return statsResult(statsView(relay.stats, relay.rates, clock, parseViewArgs("stats", args)));
}

/** The error `fn` throws (a ControlError). */
function refusal(fn: () => unknown): ControlError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ControlError, String(e));
    return e;
  }
  assert.fail("no error");
}

/** Indices k of the synthetic rules `pred` holds for (the brute-force answer). */
function expected(pred: (k: number) => boolean): string[] {
  const out: string[] = [];
  for (let k = 0; k < N; k++) if (pred(k)) out.push(`r${k}`);
  return out;
}

/** Output indices of a synthetic rule. */
const OUTPUTS = Array.from({ length: SYNTHETIC_OUTPUTS }, (_, j) => j);

Deno.test("views: one rule by name or id of 65,536; unknown names are not_found", () => {
  const one = stats({ rule: "r4242" });
  assert.deepEqual(one.rules.map((r) => r.name), ["r4242"]);
  assert.equal(one.matched, 1);
  assert.equal(one.total, N);
  assert.equal(one.rules[0].outputs.length, SYNTHETIC_OUTPUTS);
  // Only the input interface of that rule (every worker stays: the pool is the relay's).
  assert.deepEqual(one.interfaces.map((i) => i.name), [`in${4242 % 16}`]);
  const byId = stats({ rule: (4242).toString(16).padStart(16, "0") });
  assert.deepEqual(byId.rules.map((r) => r.name), ["r4242"]);
  const e = refusal(() => stats({ rule: "r65536" }));
  assert.equal(e.code, "not_found");
  assert.match(e.message, /no rule named or with id "r65536"/);
});

Deno.test("views: --interface matches the input or any output; --group the input or any output", () => {
  // in3 is the input of every 16th rule; out3 carries output j of rule k when (k + j) % 8 = 3.
  const byIn = stats({ interface: "in3" });
  assert.deepEqual(byIn.rules.map((r) => r.name), expected((k) => k % 16 === 3));
  assert.equal(byIn.matched, N / 16);
  assert.deepEqual(byIn.interfaces.map((i) => i.name), ["in3"]);
  const byOut = stats({ interface: "out3" });
  assert.deepEqual(
    byOut.rules.map((r) => r.name),
    expected((k) => OUTPUTS.some((j) => (k + j) % 8 === 3)),
  );
  // An input group names one rule; an output group the rules sending to it.
  assert.deepEqual(stats({ group: inputGroup(300) }).rules.map((r) => r.name), ["r300"]);
  assert.deepEqual(
    stats({ group: outputGroup(300, 0) }).rules.map((r) => r.name),
    expected((k) => outputGroup(k, 0) === outputGroup(300, 0)),
  );
  assert.equal(stats({ group: SHARED_OUTPUT }).matched, N);
  assert.equal(stats({ group: "239.99.99.99" }).matched, 0);
  // Filters combine (AND).
  assert.deepEqual(
    stats({ interface: "in3", group: outputGroup(300, 0) }).rules.map((r) => r.name),
    expected((k) => k % 16 === 3 && outputGroup(k, 0) === outputGroup(300, 0)),
  );
  assert.deepEqual(stats({ rule: "r300", interface: "in4" }).rules, []);
  assert.equal(stats({ rule: "r300", interface: "in4" }).matched, 0);
  // No filter: every rule, every interface.
  const all = stats({});
  assert.equal(all.rules.length, N);
  assert.equal(all.interfaces.length, 16);
});

Deno.test("views: bad arguments are bad_args naming the argument", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ group: "239.1.1" }, /args\.group must be an IPv4 address/],
    [{ group: "239.001.1.1" }, /args\.group/],
    [{ group: 5 }, /args\.group/],
    [{ interface: "eth 0" }, /args\.interface must be an interface name/],
    [{ interface: "a-very-long-interface" }, /args\.interface/],
    [{ rule: "\u001b[2J" }, /args\.rule must be a rule name or id/],
    [{ rule: "x".repeat(65) }, /args\.rule/],
    [{ sort: "size" }, /args\.sort must be one of name, pps, bps, packets, drops/],
    [{ limit: 0 }, /args\.limit must be a positive integer/],
    [{ limit: 1.5 }, /args\.limit/],
    [{ view: "tree" }, /args\.view must be one of full, summary, auto/],
    [{ stream: "yes" }, /args\.stream/],
    [{ interfce: "in3" }, /stats has no argument "interfce"/],
  ];
  for (const [args, re] of cases) {
    const e = refusal(() => stats(args));
    assert.equal(e.code, "bad_args", JSON.stringify(args));
    assert.match(e.message, re);
    assert.ok(!e.message.includes("\u001b"), "no control characters echoed");
  }
});

Deno.test("views: a summary of 65,536 rules: totals by state and interface, top rules by pps and drops", () => {
  const s = stats({ view: "summary" });
  const sum = s.summary!;
  assert.ok(sum);
  assert.equal(s.matched, N);
  assert.equal(s.rules.length, SUMMARY_TOP_RULES);
  assert.equal(s.sort, "pps");
  const byState = { active: 0, pending: 0, error: 0, disabled: 0 };
  for (let k = 0; k < N; k++) byState[ruleState(k)]++;
  assert.deepEqual(sum.by_state, byState);
  assert.equal(sum.outputs, N * SYNTHETIC_OUTPUTS);
  assert.equal(
    sum.outputs_by_state.error,
    byState.error,
    "one output in error per rule in error",
  );
  assert.equal(sum.outputs_by_state.pending, byState.pending * SYNTHETIC_OUTPUTS);
  assert.equal(sum.interfaces.length, 16);
  assert.equal(sum.interfaces.reduce((a, i) => a + i.rules, 0), N);
  assert.equal(sum.interfaces.reduce((a, i) => a + i.outputs, 0), N * SYNTHETIC_OUTPUTS);
  const all = stats({}).rules;
  const drops = (r: RuleWithRate) => r.outputs.reduce((a, o) => a + outputDrops(o), 0);
  assert.equal(sum.drops, all.reduce((a, r) => a + drops(r), 0));
  assert.ok(Math.abs(sum.pps - all.reduce((a, r) => a + r.pps, 0)) < 1);
  // Top rules by pps: the highest rates, highest first, ties by name.
  const byPps = [...all].sort((a, b) => b.pps - a.pps || (a.name < b.name ? -1 : 1));
  assert.deepEqual(s.rules.map((r) => r.name), byPps.slice(0, 10).map((r) => r.name));
  // By drops, with a limit.
  const d = stats({ view: "summary", sort: "drops", limit: 25 });
  assert.equal(d.rules.length, 25);
  const byDrops = [...all].sort((a, b) => drops(b) - drops(a) || (a.name < b.name ? -1 : 1));
  assert.deepEqual(d.rules.map((r) => r.name), byDrops.slice(0, 25).map((r) => r.name));
  assert.ok(drops(d.rules[0]) > 0);
  // A summary of a filter counts only the matching rules.
  const f = stats({ view: "summary", interface: "in5" });
  assert.equal(f.matched, N / 16);
  assert.deepEqual(f.summary!.interfaces.map((i) => i.interface), ["in5"]);
});

Deno.test("views: auto is a summary above 50 matching rules, the full answer up to 50", () => {
  assert.ok(stats({ view: "auto" }).summary);
  // One rule sends to rule 7's first output group; in7 is the input of 4,096.
  const few = stats({ view: "auto", group: outputGroup(7, 0) });
  assert.ok(few.matched! <= AUTO_SUMMARY_RULES);
  assert.equal(few.summary, undefined);
  assert.equal(few.rules.length, few.matched);
  const many = stats({ view: "auto", interface: "in7" });
  assert.ok(many.matched! > AUTO_SUMMARY_RULES);
  assert.ok(many.summary);
  // The full view with an order and a limit.
  const top = stats({ sort: "name", limit: 3 });
  assert.deepEqual(top.rules.map((r) => r.name), ["r0", "r1", "r10"]);
  assert.equal(top.summary, undefined);
});

Deno.test("views: list joins the configuration (disabled rules too); stats refuses a disabled one by name", () => {
  const r = syntheticRelay({ rules: 4096, disabledEvery: 5 });
  const list = listResult(listView(r.config, r.stats, r.rates, parseViewArgs("list", {})));
  assert.equal(list.total, 4096);
  assert.equal(list.rules.length, 4096);
  assert.equal(list.rules.filter((x) => x.state === "disabled").length, 820);
  const one = listResult(
    listView(r.config, r.stats, r.rates, parseViewArgs("list", { rule: "r10" })),
  );
  assert.deepEqual(one.rules.map((x) => [x.name, x.state, x.enabled]), [[
    "r10",
    "disabled",
    false,
  ]]);
  const sum = listResult(
    listView(r.config, r.stats, r.rates, parseViewArgs("list", { view: "summary" })),
  );
  assert.equal(sum.summary!.by_state.disabled, 820);
  // The list's drops are the outputs' drops.
  const k13 = listResult(
    listView(r.config, r.stats, r.rates, parseViewArgs("list", { rule: "r13" })),
  ).rules[0];
  assert.equal(k13.drops, 6 + 7 + 8 + 9);
  const e = refusal(() =>
    statsView(
      r.stats,
      r.rates,
      clock,
      parseViewArgs("stats", { rule: "r10" }),
      r.config.filter(
        (x) => !x.enabled,
      ),
    )
  );
  assert.equal(e.code, "not_found");
  assert.match(e.message, /rule "r10" is disabled/);
});

Deno.test("views: streamed records: a header announcing the counts, then the records in order", () => {
  const recs = [
    ...statsRecords(statsView(
      relay.stats,
      relay.rates,
      clock,
      parseViewArgs("stats", { interface: "in9", stream: true }),
    )),
  ] as StatsRecord[];
  const head = recs[0];
  assert.equal(head.kind, "stats");
  if (head.kind !== "stats") return;
  assert.deepEqual(head.records, { rules: N / 16, interfaces: 1, workers: 16, pool: 1 });
  assert.deepEqual(head.filter, { interface: "in9" });
  const kinds = recs.slice(1).map((r) => r.kind);
  assert.deepEqual(kinds, [
    ...Array(N / 16).fill("rule"),
    "interface",
    ...Array(16).fill("worker"),
    "pool",
  ]);
  assert.deepEqual(
    recs.filter((r) => r.kind === "rule").map((r) => (r as RuleWithRate).name),
    expected((k) => k % 16 === 9),
  );
  const list = [
    ...listRecords(listView(relay.config, relay.stats, relay.rates, parseViewArgs("list", {}))),
  ] as ListRecord[];
  assert.equal(list.length, N + 1);
  assert.deepEqual(list[0].kind === "list" && list[0].records, { rules: N });
});

/**
 * The monitoring files of packaging/: the Prometheus alert rules pass
 * `promtool check rules` and their unit tests (`promtool test rules`), and
 * every metric the rules and the Grafana dashboard query is one the relay
 * exports (a renamed metric fails here, not silently in a dashboard).
 */
import assert from "node:assert/strict";
import { REPO } from "../../lab/netns.ts";
import { parseConfig } from "../../src/config/mod.ts";
import { Relay } from "../../src/relay/relay.ts";
import { buildRegistry } from "../../src/control/metrics.ts";
import { HealthTracker } from "../../src/control/health.ts";
import { statsWithRates } from "../../src/control/commands.ts";
import { RateTracker } from "../../src/control/rates.ts";

const PROM = `${REPO}/packaging/prometheus`;
const DASHBOARD = `${REPO}/packaging/grafana/mcr-dashboard.json`;

/** promtool: $PROMTOOL, or on the PATH (CI extracts it from Debian's prometheus package). */
function promtool(): string | null {
  const env = Deno.env.get("PROMTOOL");
  if (env) return env;
  const r = new Deno.Command("sh", { args: ["-c", "command -v promtool"], stdout: "piped" })
    .outputSync();
  return r.success ? new TextDecoder().decode(r.stdout).trim() : null;
}
const tool = promtool();

async function run(args: string[]) {
  const out = await new Deno.Command(tool!, { args, cwd: PROM, stdout: "piped", stderr: "piped" })
    .output();
  const d = new TextDecoder();
  return { code: out.code, text: d.decode(out.stdout) + d.decode(out.stderr) };
}

Deno.test({
  name: "alert rules: promtool check rules and the rules' unit tests pass",
  ignore: tool === null,
  async fn() {
    const check = await run(["check", "rules", "mcr-alerts.yml"]);
    assert.equal(check.code, 0, check.text);
    const test = await run(["test", "rules", "mcr-alerts.test.yml"]);
    assert.equal(test.code, 0, test.text);
  },
});
if (tool === null) {
  console.warn("alert rule tests skipped: promtool not found (set PROMTOOL or install it)");
}

/** Metric names in a PromQL expression (mcr's and the process's; `up` is Prometheus's). */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b((?:mcr|process)_[a-z_]+)\b/g)].map((m) => m[1]);
}

Deno.test("the dashboard and the alert rules query only metrics the relay exports", async () => {
  // Every family is declared (# TYPE) even without series: a relay that never started will do.
  const relay = new Relay(parseConfig({ rules: [] }));
  const tracker = new HealthTracker(10_000);
  tracker.observe({ type: "reload", phase: "done", path: "rules.json" });
  const ctx = {
    relay,
    rates: new RateTracker(() => relay.counters()),
    startedAt: performance.now(),
    health: tracker,
  };
  const snap = statsWithRates(ctx);
  const text = await buildRegistry(() => snap, tracker).metrics();
  const exported = new Set(
    [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]),
  );
  // counters are queried by their _total name, which is what prom-client declares
  assert.ok(exported.has("mcr_rule_packets_total") && exported.has("process_cpu_seconds_total"));

  const dash = JSON.parse(await Deno.readTextFile(DASHBOARD));
  const exprs: string[] = dash.panels.flatMap((p: { targets: { expr: string }[] }) =>
    p.targets.map((t) => t.expr)
  );
  assert.ok(exprs.length >= 10);
  const rules = await Deno.readTextFile(`${PROM}/mcr-alerts.yml`);
  exprs.push(...[...rules.matchAll(/^\s+expr: (.+)$/gm)].map((m) => m[1]));
  const unknown = [...new Set(exprs.flatMap(metricsIn))].filter((m) => !exported.has(m));
  assert.deepEqual(unknown, [], "queried but not exported");
});

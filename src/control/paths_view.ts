/**
 * How `list` shows a rule with redundant inputs: the data path runs one
 * table rule per input (a path, `NAME[k]`, src/relay/relay_config.ts), and
 * `list` answers per configured rule — so the paths' counters are summed
 * into the rule's (what it forwarded, per output) and each path is listed
 * with what it received, contributed and did not forward.
 *
 * @module
 */
import type { RuleConfig } from "../config/types.ts";
import type { OutputStats, RuleStats } from "../relay/stats.ts";
import type { ListedPath } from "./results.ts";
import { outputRate, type Rate, type Rates } from "./rates.ts";
import { pathKey } from "../relay/relay_config.ts";

/** The paths' stats of redundant rule `c` in `byKey` (by `id|name`), in input order. */
export function pathsOf(c: RuleConfig, byKey: ReadonlyMap<string, RuleStats>): RuleStats[] {
  const out: RuleStats[] = [];
  (c.inputs ?? []).forEach((_, k) => {
    const s = byKey.get(`${pathKey(c.id, k)}|${pathKey(c.name, k)}`);
    if (s) out.push(s);
  });
  return out;
}

/** Output counters summed over the paths (an output's state: the best of its paths'). */
function sumOutputs(a: OutputStats, b: OutputStats): OutputStats {
  const sum = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (typeof v === "number") {
      (sum as Record<string, unknown>)[k] = (a[k as keyof OutputStats] as number ?? 0) + v;
    }
  }
  if (a.state !== "active" && b.state === "active") {
    sum.state = "active";
    delete sum.reason;
  }
  return sum;
}

/**
 * One {@link RuleStats} for the whole rule from its paths' (id and name the
 * rule's): counts summed; active when a path is (the others' problems in
 * `reason`).
 */
export function combinedStats(c: RuleConfig, paths: readonly RuleStats[]): RuleStats {
  const active = paths.some((p) => p.state === "active");
  const troubled = paths.filter((p) => p.state !== "active");
  const reason = troubled.map((p) =>
    `input ${p.redundancy!.input} (${p.input.interface}): ` +
    `${p.state}${p.reason ? `: ${p.reason}` : ""}`
  ).join("; ");
  return {
    id: c.id,
    name: c.name,
    state: active ? "active" : paths[0].state,
    ...(reason ? { reason } : {}),
    input: paths[0].input,
    packets: paths.reduce((a, p) => a + p.packets, 0),
    bytes: paths.reduce((a, p) => a + p.bytes, 0),
    outputs: paths[0].outputs.map((o, i) =>
      paths.slice(1).reduce((sum, p) => p.outputs[i] ? sumOutputs(sum, p.outputs[i]) : sum, o)
    ),
    ...(paths.some((p) => p.policed !== undefined)
      ? { policed: paths.reduce((a, p) => a + (p.policed ?? 0), 0) }
      : {}),
  };
}

/** The rate of the rule (summed over its paths), and of its output `i`. */
export function pathRates(
  paths: readonly RuleStats[],
  rates: Rates,
): { rule: Rate; output: (i: number) => Rate } {
  const add = (a: Rate, b: Rate | undefined) => ({
    pps: a.pps + (b?.pps ?? 0),
    bps: a.bps + (b?.bps ?? 0),
  });
  const zero = { pps: 0, bps: 0 };
  return {
    rule: paths.reduce((a, p) => add(a, rates.rules.get(p.id)), zero),
    output: (i) =>
      paths.reduce(
        (a, p) => p.outputs[i] ? add(a, outputRate(rates, p.id, p.outputs[i], i)) : a,
        zero,
      ),
  };
}

/**
 * The paths as `list` shows them. `missed` (merge): datagrams the rule
 * forwarded that this path did not deliver — forwarded by another path
 * first and never seen here: the rule's forwarded total − what this path
 * contributed − its copies of the others' (lost on the way, or late beyond
 * the window).
 */
export function listedPaths(c: RuleConfig, paths: readonly RuleStats[]): ListedPath[] {
  const total = paths.reduce((a, p) => a + p.packets, 0);
  return paths.map((p) => {
    const red = p.redundancy!;
    const i = c.inputs![red.input];
    return {
      input: red.input,
      interface: i.interface,
      group: i.group,
      port: i.port,
      ...(i.source ? { source: i.source } : {}),
      ...(i.vlan ? { vlan: i.vlan } : {}),
      state: p.state,
      ...(p.reason ? { reason: p.reason } : {}),
      active: red.active,
      received: red.received,
      contributed: p.packets,
      merged_duplicate: red.merged_duplicate,
      late: red.late,
      inactive: red.inactive,
      ...(red.mode === "merge"
        ? { missed: Math.max(0, total - p.packets - red.merged_duplicate) }
        : {}),
      ...(p.stream ? { stream: p.stream } : {}),
    };
  });
}

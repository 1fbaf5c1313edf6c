/**
 * What `list` and `stats` answer, from one snapshot: the rules selected
 * (selection.ts) in the order asked, the {@link Summary}, and the answer as
 * one result (`ListResult`, `StatsResult`) or as records for a stream.
 *
 * Pure functions over plain data: a `RelayStats` snapshot, its `Rates` and
 * the configured rules in; results out (commands.ts takes the snapshot).
 * Records are produced lazily, one rule at a time, so a stream of every
 * rule never holds more than the snapshot and one part.
 *
 * @module
 */
import type { RuleConfig } from "../config/types.ts";
import type { RelayStats, RuleStats } from "../relay/stats.ts";
import { ControlError } from "./protocol.ts";
import { outputRate, type Rates } from "./rates.ts";
import { findRules, type ParsedViewArgs, selectRules } from "./selection.ts";
import { combinedStats, listedPaths, pathRates, pathsOf } from "./paths_view.ts";
import {
  AUTO_SUMMARY_RULES,
  type InterfaceSummary,
  type InterfaceWithRate,
  type ListedRule,
  type ListRecord,
  type ListResult,
  type ListState,
  outputDrops,
  type RuleWithRate,
  type Selection,
  type SortKey,
  type StateCounts,
  type StatsRecord,
  type StatsResult,
  type Summary,
  SUMMARY_SORT,
  SUMMARY_TOP_RULES,
} from "./results.ts";

export { type ParsedViewArgs, parseViewArgs } from "./selection.ts";

/** What ordering and a summary need of one rule. */
interface Facts {
  name: string;
  state: ListState;
  input: string;
  outputStates: ListState[];
  packets: number;
  pps: number;
  bps: number;
  outPps: number;
  drops: number;
}

/** Rates as the answers show them: pps to 0.1, bps whole. */
const roundPps = (x: number) => Math.round(x * 10) / 10;

/**
 * `rules` in the order `key` gives (`name` ascending, counters descending,
 * ties by name), without touching `rules`.
 */
function ordered<T>(rules: readonly T[], facts: readonly Facts[], key: SortKey): T[] {
  const idx = Array.from(rules, (_, i) => i);
  const byName = (a: number, b: number) =>
    facts[a].name < facts[b].name ? -1 : facts[a].name > facts[b].name ? 1 : a - b;
  if (key === "name") idx.sort(byName);
  else {
    const v = new Float64Array(facts.length);
    facts.forEach((f, i) => v[i] = f[key]);
    idx.sort((a, b) => v[b] - v[a] || byName(a, b));
  }
  return idx.map((i) => rules[i]);
}

const zeroStates = (): StateCounts => ({ active: 0, pending: 0, error: 0, disabled: 0 });

/** Totals over `facts` (see {@link Summary}). */
function summarize(facts: readonly Facts[]): Summary {
  const byIf = new Map<string, InterfaceSummary>();
  const s: Summary = {
    by_state: zeroStates(),
    outputs: 0,
    outputs_by_state: zeroStates(),
    pps: 0,
    bps: 0,
    out_pps: 0,
    drops: 0,
    interfaces: [],
  };
  for (const f of facts) {
    let i = byIf.get(f.input);
    if (!i) {
      i = {
        interface: f.input,
        rules: 0,
        by_state: zeroStates(),
        outputs: 0,
        pps: 0,
        bps: 0,
        out_pps: 0,
        drops: 0,
      };
      byIf.set(f.input, i);
    }
    for (const t of [s, i]) {
      t.by_state[f.state]++;
      t.outputs += f.outputStates.length;
      t.pps += f.pps;
      t.bps += f.bps;
      t.out_pps += f.outPps;
      t.drops += f.drops;
    }
    i.rules++;
    for (const o of f.outputStates) s.outputs_by_state[o]++;
  }
  const tidy = <T extends { pps: number; bps: number; out_pps: number }>(t: T): T => ({
    ...t,
    pps: roundPps(t.pps),
    bps: Math.round(t.bps),
    out_pps: roundPps(t.out_pps),
  });
  s.interfaces = [...byIf.values()].sort((a, b) => a.interface < b.interface ? -1 : 1).map(tidy);
  return tidy(s);
}

/** The rules to answer: ordered and limited as the view asks; the summary when it is one. */
function choose<T>(
  matched: readonly T[],
  facts: (r: T) => Facts,
  a: ParsedViewArgs,
): { rules: T[]; sort: SortKey | null; summary?: Summary } {
  const summary = a.view === "summary" ||
    (a.view === "auto" && matched.length > AUTO_SUMMARY_RULES);
  const sort = a.sort ?? (summary ? SUMMARY_SORT : undefined);
  const limit = a.limit ?? (summary ? SUMMARY_TOP_RULES : Infinity);
  if (!summary && sort === undefined) return { rules: matched.slice(0, limit), sort: null };
  const all = matched.map(facts);
  let rules = sort === undefined ? matched.slice() : ordered(matched, all, sort);
  if (rules.length > limit) rules = rules.slice(0, limit);
  return { rules, sort: sort ?? null, ...(summary ? { summary: summarize(all) } : {}) };
}

/** When, since when, and over what window (the daemon's part of a stats answer). */
export interface Clock {
  /** ISO 8601 time of the snapshot. */
  time: string;
  /** Seconds since the daemon started. */
  uptime_s: number;
}

const zeroRate = { pps: 0, bps: 0 };
/** A rate as the answers show it. */
const shown = (x: { pps: number; bps: number } | undefined) => ({
  pps: roundPps((x ?? zeroRate).pps),
  bps: Math.round((x ?? zeroRate).bps),
});

/** One rule of a snapshot with its rates and its outputs'. */
export function ruleWithRate(rule: RuleStats, rates: Rates): RuleWithRate {
  return {
    ...rule,
    ...shown(rates.rules.get(rule.id)),
    outputs: rule.outputs.map((o, i) => ({
      ...o,
      ...shown(outputRate(rates, rule.id, o, i)),
    })),
  };
}

function statsFacts(rule: RuleStats, rates: Rates): Facts {
  let outPps = 0, drops = 0;
  rule.outputs.forEach((o, i) => {
    outPps += roundPps(outputRate(rates, rule.id, o, i)?.pps ?? 0);
    drops += outputDrops(o);
  });
  const r = shown(rates.rules.get(rule.id));
  return {
    name: rule.name,
    state: rule.state,
    input: rule.input.interface,
    outputStates: rule.outputs.map((o) => o.state),
    packets: rule.packets,
    pps: r.pps,
    bps: r.bps,
    outPps,
    drops,
  };
}

/** A `stats` answer before it is encoded: one result, or records. */
export interface StatsView {
  /** The selection. */
  selection: Selection;
  /** The rules to answer, in order (rates attached when encoded). */
  rules: RuleStats[];
  /** Interfaces to answer, with rates. */
  interfaces: InterfaceWithRate[];
  /** The rest of a stats result. */
  rest: Omit<StatsResult, "rules" | "interfaces" | keyof Selection>;
  /** The rates the rules are shown with. */
  rates: Rates;
}

/**
 * What `stats` answers about `snap` for `args`.
 * @param disabled names and ids of configured rules that are disabled (no counters), so that
 *   asking for one says so instead of "no rule"
 * @throws {ControlError} not_found (a rule that does not exist or is disabled)
 */
export function statsView(
  snap: RelayStats,
  rates: Rates,
  clock: Clock,
  args: ParsedViewArgs,
  disabled: readonly { id: string; name: string }[] = [],
): StatsView {
  const f = args.filter;
  if (f.rule !== undefined && findRules(snap.rules, f.rule).length === 0) {
    const off = disabled.find((r) => r.name === f.rule || r.id === f.rule);
    if (off) {
      throw new ControlError(
        "not_found",
        `rule "${off.name}" is disabled: it has no counters (\`list\` shows it)`,
      );
    }
  }
  const matched = selectRules(snap.rules, f);
  const chosen = choose(matched, (r) => statsFacts(r, rates), args);
  const filtered = f.rule !== undefined || f.interface !== undefined || f.group !== undefined;
  const inputs = new Set(matched.map((r) => r.input.interface));
  if (f.interface !== undefined) inputs.add(f.interface);
  const interfaces = snap.interfaces.filter((i) => !filtered || inputs.has(i.name)).map((i) => {
    const x = rates.interfaces.get(i.name);
    return { ...i, ...shown(x), kernel_drops_ps: roundPps(x?.kernel_drops_ps ?? 0) };
  });
  return {
    selection: {
      total: snap.rules.length,
      matched: matched.length,
      sort: chosen.sort,
      filter: f,
      ...(chosen.summary ? { summary: chosen.summary } : {}),
    },
    rules: chosen.rules,
    interfaces,
    rest: {
      time: clock.time,
      uptime_s: clock.uptime_s,
      rate_window_s: rates.window_s,
      workers: snap.workers,
      pool: snap.pool,
      drops: snap.drops,
      drops_ps: Object.fromEntries(
        Object.keys(snap.drops).map((k) => [k, roundPps(rates.drops[k] ?? 0)]),
      ),
      ...(snap.igmp ? { igmp: snap.igmp } : {}),
      ...(snap.mld?.memberships ? { mld: snap.mld } : {}),
      ...(snap.claims ? { claims: snap.claims } : {}),
      ...(snap.fds ? { fds: snap.fds } : {}),
      ...(snap.role ? { role: snap.role } : {}),
    },
    rates,
  };
}

/** A `stats` answer as one result. */
export function statsResult(v: StatsView): StatsResult {
  return {
    time: v.rest.time,
    uptime_s: v.rest.uptime_s,
    rate_window_s: v.rest.rate_window_s,
    ...v.selection,
    rules: v.rules.map((r) => ruleWithRate(r, v.rates)),
    interfaces: v.interfaces,
    workers: v.rest.workers,
    pool: v.rest.pool,
    drops: v.rest.drops,
    drops_ps: v.rest.drops_ps,
    ...(v.rest.igmp ? { igmp: v.rest.igmp } : {}),
    ...(v.rest.mld ? { mld: v.rest.mld } : {}),
    ...(v.rest.claims ? { claims: v.rest.claims } : {}),
    ...(v.rest.fds ? { fds: v.rest.fds } : {}),
    ...(v.rest.role ? { role: v.rest.role } : {}),
  };
}

/** A `stats` answer as records: the header, then rules, interfaces and workers. */
export function* statsRecords(v: StatsView): Generator<StatsRecord> {
  yield {
    kind: "stats",
    time: v.rest.time,
    uptime_s: v.rest.uptime_s,
    rate_window_s: v.rest.rate_window_s,
    ...v.selection,
    records: {
      rules: v.rules.length,
      interfaces: v.interfaces.length,
      workers: v.rest.workers.length,
      pool: v.rest.pool.length,
    },
    drops: v.rest.drops,
    drops_ps: v.rest.drops_ps,
    ...(v.rest.igmp ? { igmp: v.rest.igmp } : {}),
    ...(v.rest.mld ? { mld: v.rest.mld } : {}),
    ...(v.rest.claims ? { claims: v.rest.claims } : {}),
    ...(v.rest.fds ? { fds: v.rest.fds } : {}),
    ...(v.rest.role ? { role: v.rest.role } : {}),
  };
  for (const r of v.rules) yield { kind: "rule", ...ruleWithRate(r, v.rates) };
  for (const i of v.interfaces) yield { kind: "interface", ...i };
  for (const w of v.rest.workers) yield { kind: "worker", ...w };
  for (const w of v.rest.pool) yield { kind: "pool", ...w };
}

/** A configured rule joined with its counters (none when disabled or not yet running). */
/** A rule of the configuration with its stats (absent: disabled, or not in force yet). */
export interface Joined {
  c: RuleConfig;
  s?: RuleStats;
  /** A rule with redundant inputs: its paths' stats (`s` sums them: paths_view.ts). */
  paths?: RuleStats[];
}

/** One configured rule as `list` shows it. */
export function listedRule({ c, s, paths }: Joined, rates: Rates): ListedRule {
  const state: ListState = !c.enabled ? "disabled" : s?.state ?? "pending";
  const pr = paths ? pathRates(paths, rates) : undefined;
  const r = s ? shown(pr ? pr.rule : rates.rules.get(s.id)) : zeroRate;
  let drops = 0;
  return {
    id: c.id,
    name: c.name,
    enabled: c.enabled,
    state,
    ...(s?.reason ? { reason: s.reason } : {}),
    input: {
      interface: c.input.interface,
      group: c.input.group,
      port: c.input.port,
      ...(c.input.source ? { source: c.input.source } : {}),
      ...(c.input.vlan ? { vlan: c.input.vlan } : {}),
    },
    outputs: c.outputs.map((o, i) => {
      const so = s?.outputs[i];
      if (so) drops += outputDrops(so);
      const or = so ? shown(pr ? pr.output(i) : outputRate(rates, s!.id, so, i)) : zeroRate;
      return {
        interface: o.interface,
        group: o.group,
        port: o.port,
        ttl: o.ttl,
        dscp: o.dscp,
        state: !c.enabled ? "disabled" : so?.state ?? "pending",
        ...(so?.reason ? { reason: so.reason } : {}),
        packets: so?.packets ?? 0,
        bytes: so?.bytes ?? 0,
        ...or,
        ...(so?.policed !== undefined ? { policed: so.policed } : {}),
      };
    }),
    packets: s?.packets ?? 0,
    bytes: s?.bytes ?? 0,
    ...r,
    drops,
    ...(s?.policed !== undefined ? { policed: s.policed } : {}),
    ...(s?.stream ? { stream: s.stream } : {}),
    ...(c.redundancy ? { redundancy: c.redundancy } : {}),
    ...(paths ? { paths: listedPaths(c, paths) } : {}),
  };
}

function listFacts(j: Joined, rates: Rates): Facts {
  const l = listedRule(j, rates);
  return {
    name: l.name,
    state: l.state,
    input: l.input.interface,
    outputStates: l.outputs.map((o) => o.state),
    packets: l.packets,
    pps: l.pps,
    bps: l.bps,
    outPps: l.outputs.reduce((a, o) => a + o.pps, 0),
    drops: l.drops,
  };
}

/** A `list` answer before it is encoded. */
export interface ListView {
  /** The selection. */
  selection: Selection;
  /** The rules to answer, in order. */
  rules: Joined[];
  /** The rates they are shown with. */
  rates: Rates;
}

/**
 * What `list` answers about the configured `rules` (with the counters of
 * `snap`) for `args`.
 * @throws {ControlError} not_found (a rule that does not exist)
 */
export function listView(
  rules: readonly RuleConfig[],
  snap: RelayStats,
  rates: Rates,
  args: ParsedViewArgs,
): ListView {
  const matched = selectRules(rules, args.filter);
  const byKey = new Map(snap.rules.map((r) => [`${r.id}|${r.name}`, r]));
  const joined = matched.map((c): Joined => {
    if (c.inputs && c.enabled) {
      const paths = pathsOf(c, byKey);
      return paths.length > 0 ? { c, s: combinedStats(c, paths), paths } : { c };
    }
    const s = c.enabled ? byKey.get(`${c.id}|${c.name}`) : undefined;
    return s ? { c, s } : { c };
  });
  const chosen = choose(joined, (j) => listFacts(j, rates), args);
  return {
    selection: {
      total: rules.length,
      matched: matched.length,
      sort: chosen.sort,
      filter: args.filter,
      ...(chosen.summary ? { summary: chosen.summary } : {}),
    },
    rules: chosen.rules,
    rates,
  };
}

/** A `list` answer as one result. */
export function listResult(v: ListView): ListResult {
  return { ...v.selection, rules: v.rules.map((j) => listedRule(j, v.rates)) };
}

/** A `list` answer as records: the header, then the rules. */
export function* listRecords(v: ListView): Generator<ListRecord> {
  yield { kind: "list", ...v.selection, records: { rules: v.rules.length } };
  for (const j of v.rules) yield { kind: "rule", ...listedRule(j, v.rates) };
}

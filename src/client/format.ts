/**
 * Plain-text tables for people (`cli.ts ctl` and `cli.ts top`), and escaping
 * for what goes to a terminal: names, reasons and interfaces come from the
 * daemon (and, through it, from configurations, clients and the kernel), so
 * every one is printed with terminal controls and invisible characters
 * escaped ({@link termSafe}).
 *
 * @module
 */
import {
  type InterfaceWithRate,
  LIST_STATES,
  type ListedRule,
  outputDrops,
  type PoolWorkerInfo,
  type RuleFilter,
  type RuleWithRate,
  type Selection,
  SORT_KEYS,
  type StateCounts,
  type StatsResult,
  type Summary,
  type WorkerInfo,
} from "../control/results.ts";
import type { StreamStats } from "../relay/stats.ts";
import { lineSafe } from "./term_safe.ts";

import { mbit, num, rate } from "./numbers.ts";
import { pathLines, streamLines } from "./stream_format.ts";
import { hostPort } from "../common/net6.ts";

export { jsonTermSafe, lineSafe, termSafe } from "./term_safe.ts";
export { mbit, num, rate } from "./numbers.ts";
export { pathLines, streamLines } from "./stream_format.ts";

/** Whether a cell holds a number (right-aligned in tables). */
const numeric = (s: string) => /^[-+]?[\d.,]+[kMG]?$/.test(s);

/** The width of each column of `rows` (escaped cells), at least `min`. */
function widthsOf(rows: string[][], min: readonly number[] = []): number[] {
  const w = [...min];
  for (const r of rows) r.forEach((v, c) => w[c] = Math.max(w[c] ?? 0, v.length));
  return w;
}

/** Escaped rows as aligned lines; `header` rows at the top are never right-aligned. */
function alignRows(rows: string[][], w: readonly number[], header: number): string {
  return rows.map((r, i) =>
    r.map((v, c) => (i >= header && numeric(v) ? v.padStart(w[c]) : v.padEnd(w[c]))).join("  ")
      .trimEnd()
  ).join("\n");
}

/**
 * Align rows into columns (first row is the header). Right-aligns
 * numeric-looking cells. Cells are escaped with {@link lineSafe} first.
 */
export function table(cells: string[][]): string {
  if (cells.length === 0) return "";
  const rows = cells.map((r) => r.map((v) => lineSafe(v ?? "")));
  return alignRows(rows, widthsOf(rows), 1);
}

/**
 * A table printed while its rows arrive: rows are aligned in blocks of
 * `block`, each block at least as wide as the ones before (a column widens
 * when a later block needs it, never narrows), so memory stays one block
 * however many rows come. Cells are escaped with {@link lineSafe}.
 */
export class BlockTable {
  #rows: string[][] = [];
  #widths: number[] = [];
  #header: string[] | null;

  /**
   * Create a table.
   * @param header column titles (printed with the first block)
   * @param write where aligned text goes (without a trailing newline)
   * @param block rows per block
   */
  constructor(
    header: string[],
    readonly write: (text: string) => void,
    readonly block: number = 1000,
  ) {
    this.#header = header.map(lineSafe);
  }

  /** Add one row (printed once its block is full). */
  add(cells: string[]): void {
    this.#rows.push(cells.map((v) => lineSafe(v ?? "")));
    if (this.#rows.length >= this.block) this.flush();
  }

  /** Print the rows held so far (with the header, the first time). */
  flush(): void {
    if (this.#rows.length === 0) return;
    const rows = this.#header ? [this.#header, ...this.#rows] : this.#rows;
    this.#widths = widthsOf(rows, this.#widths);
    this.write(alignRows(rows, this.#widths, this.#header ? 1 : 0));
    this.#header = null;
    this.#rows = [];
  }

  /** Whether any row was added. */
  get started(): boolean {
    return this.#header === null || this.#rows.length > 0;
  }
}

function input(i: ListedRule["input"]): string {
  let s = `${i.interface} ${hostPort(i.group, i.port)}`;
  if (i.source) s += ` src ${i.source}`;
  if (i.vlan) s += ` vlan ${i.vlan}`;
  return s;
}

/** Columns of the `list` table. */
export const LIST_COLUMNS = ["NAME", "ID", "STATE", "INPUT", "OUTPUT", "PACKETS", "PPS"];

/** The `list` table rows of one rule: the rule with its first output, then one per output. */
export function listRows(r: ListedRule): string[][] {
  return r.outputs.map((o, i) => {
    const first = i === 0;
    return [
      first ? r.name : "",
      first ? r.id : "",
      first ? ruleStateText(r) : "",
      first ? input(r.input) : "",
      `${o.interface} ${hostPort(o.group, o.port)}${o.state === "error" ? " (error)" : ""}`,
      num(first ? r.packets : o.packets),
      rate(first ? r.pps : o.pps),
    ];
  });
}

/** Why the rules that are not active are not, one line each ("name: reason"). */
export function reasonLines(rules: readonly Pick<ListedRule, "name" | "reason">[]): string[] {
  return rules.filter((r) => r.reason).map((r) => lineSafe(`${r.name}: ${r.reason}`));
}

/** A rule's state, with its stream alarm when that is not ok ("active, silent"). */
export function ruleStateText(r: { state: string; stream?: StreamStats }): string {
  return r.stream && r.stream.alarm !== "ok" ? `${r.state}, ${r.stream.alarm}` : r.state;
}

/** Columns of the one-line-per-rule table of a summary's top rules (and of `top`). */
export const RULE_LINE_COLUMNS = [
  "RULE",
  "STATE",
  "INPUT",
  "OUTPUTS",
  "PACKETS",
  "PPS",
  "MBIT/S",
  "OUT PPS",
  "DROPS",
];

/** A rule of `list` or `stats` on one line: its outputs counted, their rates and drops summed. */
export function ruleLine(r: ListedRule | RuleWithRate): string[] {
  let outPps = 0, drops = 0, notActive = 0;
  for (const o of r.outputs) {
    outPps += o.pps;
    if ("ring_full" in o) drops += outputDrops(o);
    if (o.state !== "active") notActive++;
  }
  if ("drops" in r) drops = r.drops;
  return [
    r.name,
    ruleStateText(r),
    input(r.input),
    `${r.outputs.length}${notActive ? ` (${notActive} not active)` : ""}`,
    num(r.packets),
    rate(r.pps),
    mbit(r.bps),
    rate(outPps),
    num(drops),
  ];
}

/**
 * The rules table of a `list` or `stats` answer, as `[columns, rows of one
 * rule]`: one line per rule under a summary, else a rule and its outputs.
 */
export function ruleTable<R extends ListedRule | RuleWithRate>(
  cmd: "list" | "stats",
  summary: boolean,
): [string[], (r: R) => string[][]] {
  if (summary) return [RULE_LINE_COLUMNS, (r) => [ruleLine(r)]];
  return cmd === "list"
    ? [LIST_COLUMNS, (r) => listRows(r as ListedRule)]
    : [RULE_RATE_COLUMNS, (r) => ruleRateRows(r as RuleWithRate)];
}

/** `list` as a table (with the summary and hints of a selection, when given). */
export function formatList(rules: ListedRule[], sel?: Partial<Selection>): string {
  const head = sel ? selectionHead(sel) : [];
  const tail = sel ? selectionHint(sel, rules.length, "list") : [];
  if (rules.length === 0) return [...head, noRules(sel ?? {}), ...tail].join("\n");
  const [columns, rows] = ruleTable<ListedRule>("list", sel?.summary !== undefined);
  const reasons = [...reasonLines(rules), ...streamLines(rules), ...pathLines(rules)];
  return [
    ...head,
    table([columns, ...rules.flatMap(rows)]) +
    (reasons.length ? "\n\n" + reasons.join("\n") : ""),
    ...tail,
  ].join("\n");
}

/** A heartbeat age for a table ("-" when not running). */
function heartbeat(ms: number | null): string {
  return ms === null ? "-" : `${Math.round(ms)} ms`;
}

/**
 * `workers` as tables: the fanout members of each input interface, then
 * (when given) the data-path workers themselves, with their priority.
 */
export function formatWorkers(ws: WorkerInfo[], pool: PoolWorkerInfo[] = []): string {
  if (ws.length === 0 && pool.length === 0) return "no workers (no enabled rules)";
  const members = ws.length === 0 ? "no interfaces served (no enabled rules)" : table([
    ["INTERFACE", "INDEX", "WORKER", "STATE", "RESTARTS", "FRAMES", "HEARTBEAT"],
    ...ws.map((w) => [
      w.interface,
      String(w.index),
      String(w.worker),
      w.state,
      num(w.restarts),
      num(w.frames),
      heartbeat(w.heartbeat_age_ms),
    ]),
  ]);
  if (pool.length === 0) return members;
  const workers = table([
    ["WORKER", "STATE", "INTERFACES", "RINGS", "NICE", "RAISES", "RESTARTS", "HEARTBEAT"],
    ...pool.map((w) => [
      String(w.index) + (w.dedicated !== undefined ? ` (${w.dedicated})` : ""),
      w.state,
      num(w.interfaces),
      num(w.rings),
      w.nice === null ? "-" : String(w.nice),
      num(w.priority_raises),
      num(w.restarts),
      heartbeat(w.heartbeat_age_ms),
    ]),
  ]);
  return `${members}\n\n${workers}`;
}

/** Columns of the rules table of `stats`. */
export const RULE_RATE_COLUMNS = ["RULE", "STATE", "OUTPUT", "PACKETS", "PPS", "MBIT/S", "DROPS"];

/** The rules-table rows of one rule of `stats`: the rule, then one per output. */
export function ruleRateRows(r: RuleWithRate): string[][] {
  return [
    [r.name, ruleStateText(r), "", num(r.packets), rate(r.pps), mbit(r.bps), ""],
    ...r.outputs.map((o) => [
      "",
      o.state === "active" ? "" : o.state,
      `→ ${o.interface} ${hostPort(o.group, o.port)}`,
      num(o.packets),
      rate(o.pps),
      mbit(o.bps),
      num(outputDrops(o)),
    ]),
  ];
}

/** Rules (with outputs) as a table with rates. */
export function formatRuleRates(s: Pick<StatsResult, "rules">): string {
  const rows = [RULE_RATE_COLUMNS, ...s.rules.flatMap(ruleRateRows)];
  return rows.length > 1 ? table(rows) : "no rules";
}

/** Columns of the interfaces table of `stats`. */
export const INTERFACE_COLUMNS = [
  "INTERFACE",
  "STATE",
  "FRAMES",
  "PPS",
  "MBIT/S",
  "KDROPS",
  "KDROPS/S",
  "FREEZES",
  "RESTARTS",
];

/** The interfaces-table row of one input interface. */
export function interfaceRow(i: InterfaceWithRate): string[] {
  return [
    i.name,
    i.state,
    num(i.frames),
    rate(i.pps),
    mbit(i.bps),
    num(i.kernel_drops),
    rate(i.kernel_drops_ps),
    num(i.kernel_freezes),
    num(i.restarts),
  ];
}

/** Interfaces as a table with rates and kernel drops. */
export function formatInterfaces(s: Pick<StatsResult, "interfaces">): string {
  if (s.interfaces.length === 0) return "no input interfaces";
  return table([INTERFACE_COLUMNS, ...s.interfaces.map(interfaceRow)]);
}

/** Drops by reason on one line. */
export function formatDrops(s: Pick<StatsResult, "drops" | "drops_ps">): string {
  const d = Object.entries(s.drops).filter(([, v]) => v > 0).map(([k, v]) =>
    `${lineSafe(k)}=${num(v)}${s.drops_ps[k] ? ` (${rate(s.drops_ps[k])}/s)` : ""}`
  );
  return `drops: ${d.length ? d.join(" ") : "none"}`;
}

/** Rules (or outputs) by state for people: "3 active, 1 error" ("none" when empty). */
export function stateText(c: StateCounts): string {
  const parts = LIST_STATES.filter((s) => c[s] > 0).map((s) => `${num(c[s])} ${s}`);
  return parts.length ? parts.join(", ") : "none";
}

/** The filter for people: `interface eth0, group 239.1.1.1`. */
export function filterText(f: RuleFilter): string {
  const parts: string[] = [];
  if (f.rule !== undefined) parts.push(`rule ${f.rule}`);
  if (f.interface !== undefined) parts.push(`interface ${f.interface}`);
  if (f.group !== undefined) parts.push(`group ${f.group}`);
  return lineSafe(parts.join(", "));
}

const filtered = (f: RuleFilter | undefined) =>
  f !== undefined && (f.rule !== undefined || f.interface !== undefined || f.group !== undefined);

/** What to say when no rule is answered. */
export function noRules(sel: Partial<Selection>): string {
  return filtered(sel.filter) ? `no rules match (${filterText(sel.filter!)})` : "no rules";
}

/** The summary of a {@link Summary}: totals, then a table per input interface. */
export function formatSummary(sel: Partial<Selection> & { summary: Summary }): string {
  const s = sel.summary;
  const of = sel.total !== undefined && sel.total !== sel.matched ? ` (of ${num(sel.total)})` : "";
  const where = filtered(sel.filter) ? `, matching ${filterText(sel.filter!)}` : "";
  const lines = [
    `${num(sel.matched ?? 0)} rules${of}${where}: ${stateText(s.by_state)}`,
    `${num(s.outputs)} outputs: ${stateText(s.outputs_by_state)}`,
    `in ${rate(s.pps)} pps ${mbit(s.bps)} Mbit/s, out ${rate(s.out_pps)} pps, ` +
    `output drops ${num(s.drops)}`,
    "",
    table([
      ["INPUT", "RULES", "ACTIVE", "PENDING", "ERROR", "DISABLED", "OUTPUTS", "PPS", "MBIT/S"]
        .concat(["OUT PPS", "DROPS"]),
      ...s.interfaces.map((i) => [
        i.interface,
        num(i.rules),
        num(i.by_state.active),
        num(i.by_state.pending),
        num(i.by_state.error),
        num(i.by_state.disabled),
        num(i.outputs),
        rate(i.pps),
        mbit(i.bps),
        rate(i.out_pps),
        num(i.drops),
      ]),
    ]),
  ];
  return lines.join("\n");
}

/**
 * What comes before the rules of a `list`/`stats` answer: the summary and
 * the title of its top rules, when it is one.
 */
export function selectionHead(sel: Partial<Selection>): string[] {
  if (!sel.summary) return [];
  const by = sel.sort ?? "pps";
  return [formatSummary({ ...sel, summary: sel.summary }), "", `top rules by ${by}:`];
}

/**
 * The hint after a `list`/`stats` answer that did not show every matching
 * rule: how to see them all, one, or fewer.
 * @param shown rules answered
 */
export function selectionHint(
  sel: Partial<Selection>,
  shown: number,
  cmd: "list" | "stats",
): string[] {
  const matched = sel.matched ?? shown;
  if (shown >= matched) return [];
  const what = sel.summary
    ? `a summary of ${num(matched)} rules and the top ${num(shown)} by ${sel.sort ?? "pps"}`
    : `${num(shown)} of ${num(matched)} rules${sel.sort ? ` by ${sel.sort}` : ""}`;
  return [
    "",
    `(${what}; every rule: ctl ${cmd} --all; one rule: ctl ${cmd} NAME;`,
    ` filter: --interface IF, --group G; order: --sort ${SORT_KEYS.join("|")}; how many: ` +
    `--limit N)`,
  ];
}

/**
 * The role as `stats` and `top` show it: "role active", or "role STANDBY (sends
 * nothing)" so that a standby's output drops explain themselves.
 */
export function roleText(role: string): string {
  return role === "standby" ? "role STANDBY (sends nothing)" : `role ${role}`;
}

/** `stats` for people (with the summary and hints of a selection, when it has them). */
export function formatStatsResult(s: StatsResult): string {
  const [columns, rows] = ruleTable<RuleWithRate>("stats", s.summary !== undefined);
  const rules = s.rules.length === 0 ? noRules(s) : table([columns, ...s.rules.flatMap(rows)]);
  const streams = [...streamLines(s.rules), ...pathLines(s.rules)];
  return [
    ...selectionHead(s),
    rules,
    ...(streams.length ? ["", ...streams] : []),
    "",
    formatInterfaces(s),
    "",
    formatWorkers(s.workers),
    "",
    formatDrops(s),
    `(rates over ${s.rate_window_s} s; uptime ${s.uptime_s} s` +
    `${s.role ? `; ${roleText(s.role.role)}` : ""})`,
    ...selectionHint(s, s.rules.length, "stats"),
  ].join("\n");
}

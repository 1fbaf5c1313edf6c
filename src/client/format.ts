/**
 * Plain-text tables for people (`cli.ts ctl` and `cli.ts top`), and escaping
 * for what goes to a terminal: names, reasons and interfaces come from the
 * daemon (and, through it, from configurations, clients and the kernel), so
 * every one is printed with terminal controls and invisible characters
 * escaped ({@link termSafe}).
 *
 * @module
 */
import type { ListedRule, StatsResult, WorkerInfo } from "../control/results.ts";

/**
 * Characters a terminal acts on or that hide or reorder text: C0 controls,
 * DEL, C1 controls (U+0080–U+009F; U+009B is CSI, U+009D OSC), the Arabic
 * letter mark, zero-width spaces and joiners and the LRM/RLM marks
 * (U+200B–U+200F), line and paragraph separators and the bidirectional
 * embeddings and overrides (U+2028–U+202E), the word joiner, invisible
 * operators and bidirectional isolates (U+2060–U+206F), and the zero-width
 * no-break space (U+FEFF).
 */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/g;
/** The same without tab and newline, which plain text may keep. */
const UNSAFE_IN_TEXT =
  // deno-lint-ignore no-control-regex
  /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/g;

const escape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/**
 * `text` with every terminal control and invisible character (see UNSAFE)
 * shown as a `\uXXXX` escape, so it prints as what it is; tabs and newlines
 * are kept. Idempotent: an escaped text has nothing left to escape.
 */
export function termSafe(text: string): string {
  return text.replace(UNSAFE_IN_TEXT, escape);
}

/** {@link termSafe} for one line (a table cell, a name): tabs and newlines escaped too. */
export function lineSafe(text: string): string {
  return text.replace(UNSAFE, escape);
}

/**
 * JSON text with those characters written as `\uXXXX` escapes:
 * `JSON.stringify` escapes C0 controls but leaves C1 controls and
 * bidirectional overrides raw. The value is the same.
 */
export function jsonTermSafe(json: string): string {
  return json.replace(UNSAFE_IN_TEXT, escape);
}

/**
 * Align rows into columns (first row is the header). Right-aligns
 * numeric-looking cells. Cells are escaped with {@link lineSafe} first.
 */
export function table(cells: string[][]): string {
  if (cells.length === 0) return "";
  const rows = cells.map((r) => r.map((v) => lineSafe(v ?? "")));
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  const numeric = (s: string) => /^[-+]?[\d.,]+[kMG]?$/.test(s);
  return rows.map((r, i) =>
    r.map((v, c) => (i > 0 && numeric(v) ? v.padStart(w[c]) : v.padEnd(w[c]))).join("  ")
      .trimEnd()
  ).join("\n");
}

/** 1234567 → "1,234,567". */
export function num(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** Packets per second, compact: 950, 12.3k, 1.20M. */
export function rate(n: number): string {
  if (n < 1000) return n < 10 && n > 0 ? n.toFixed(1) : String(Math.round(n));
  if (n < 1e6) return `${(n / 1e3).toFixed(1)}k`;
  return `${(n / 1e6).toFixed(2)}M`;
}

/** Bits per second as Mbit/s with two decimals. */
export function mbit(bps: number): string {
  return (bps / 1e6).toFixed(2);
}

function input(i: ListedRule["input"]): string {
  let s = `${i.interface} ${i.group}:${i.port}`;
  if (i.source) s += ` src ${i.source}`;
  if (i.vlan) s += ` vlan ${i.vlan}`;
  return s;
}

/** `list` as a table. */
export function formatList(rules: ListedRule[]): string {
  if (rules.length === 0) return "no rules";
  const rows = [["NAME", "ID", "STATE", "INPUT", "OUTPUT", "PACKETS", "PPS"]];
  for (const r of rules) {
    r.outputs.forEach((o, i) => {
      const first = i === 0;
      rows.push([
        first ? r.name : "",
        first ? r.id : "",
        first ? r.state : "",
        first ? input(r.input) : "",
        `${o.interface} ${o.group}:${o.port}${o.state === "error" ? " (error)" : ""}`,
        num(first ? r.packets : o.packets),
        rate(first ? r.pps : o.pps),
      ]);
    });
  }
  const reasons = rules.filter((r) => r.reason).map((r) => lineSafe(`${r.name}: ${r.reason}`));
  return table(rows) + (reasons.length ? "\n\n" + reasons.join("\n") : "");
}

/** `workers` as a table. */
export function formatWorkers(ws: WorkerInfo[]): string {
  if (ws.length === 0) return "no workers (no enabled rules)";
  return table([
    ["INTERFACE", "INDEX", "STATE", "RESTARTS", "FRAMES", "HEARTBEAT"],
    ...ws.map((w) => [
      w.interface,
      String(w.index),
      w.state,
      num(w.restarts),
      num(w.frames),
      w.heartbeat_age_ms === null ? "-" : `${Math.round(w.heartbeat_age_ms)} ms`,
    ]),
  ]);
}

/** Rules (with outputs) as a table with rates. */
export function formatRuleRates(s: StatsResult): string {
  const rows = [["RULE", "STATE", "OUTPUT", "PACKETS", "PPS", "MBIT/S", "DROPS"]];
  for (const r of s.rules) {
    rows.push([r.name, r.state, "", num(r.packets), rate(r.pps), mbit(r.bps), ""]);
    for (const o of r.outputs) {
      rows.push([
        "",
        o.state === "active" ? "" : o.state,
        `→ ${o.interface} ${o.group}:${o.port}`,
        num(o.packets),
        rate(o.pps),
        mbit(o.bps),
        num(o.ring_full + o.errors + o.ttl_expired),
      ]);
    }
  }
  return rows.length > 1 ? table(rows) : "no rules";
}

/** Interfaces as a table with rates and kernel drops. */
export function formatInterfaces(s: StatsResult): string {
  if (s.interfaces.length === 0) return "no input interfaces";
  return table([
    ["INTERFACE", "STATE", "FRAMES", "PPS", "MBIT/S", "KDROPS", "KDROPS/S", "FREEZES", "RESTARTS"],
    ...s.interfaces.map((i) => [
      i.name,
      i.state,
      num(i.frames),
      rate(i.pps),
      mbit(i.bps),
      num(i.kernel_drops),
      rate(i.kernel_drops_ps),
      num(i.kernel_freezes),
      num(i.restarts),
    ]),
  ]);
}

/** Drops by reason on one line. */
export function formatDrops(s: StatsResult): string {
  const d = Object.entries(s.drops).filter(([, v]) => v > 0).map(([k, v]) =>
    `${lineSafe(k)}=${num(v)}${s.drops_ps[k] ? ` (${rate(s.drops_ps[k])}/s)` : ""}`
  );
  return `drops: ${d.length ? d.join(" ") : "none"}`;
}

/** `stats` for people. */
export function formatStatsResult(s: StatsResult): string {
  return [
    formatRuleRates(s),
    "",
    formatInterfaces(s),
    "",
    formatWorkers(s.workers),
    "",
    formatDrops(s),
    `(rates over ${s.rate_window_s} s; uptime ${s.uptime_s} s)`,
  ].join("\n");
}

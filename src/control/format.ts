/**
 * Plain-text tables for people (`cli.ts ctl` and `cli.ts top`).
 *
 * @module
 */
import type { ListedRule, StatsResult, WorkerInfo } from "./commands.ts";

/** Align rows into columns (first row is the header). Right-aligns numeric-looking cells. */
export function table(rows: string[][]): string {
  if (rows.length === 0) return "";
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
  const reasons = rules.filter((r) => r.reason).map((r) => `${r.name}: ${r.reason}`);
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
    `${k}=${num(v)}${s.drops_ps[k] ? ` (${rate(s.drops_ps[k])}/s)` : ""}`
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

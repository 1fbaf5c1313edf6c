/**
 * Results of the scale benchmarks (bench/scale.ts): their JSON shape
 * (`bench/results/scale-<stamp>.json`) and the markdown summary
 * (`bench/results/latest-scale.md`). With `--repeat N`, every figure is the
 * median over the passes and its range, "median [min–max]".
 *
 * @module
 */
import type { MachineInfo } from "./procstat.ts";
import type { MemCapReport, ProcSnapshot } from "./relay_probe.ts";
import { fmtSummary, summarize } from "./summary.ts";

/** What every scale experiment records about the relay it started. */
export interface RelayFigures {
  /** 1-based pass. */
  pass: number;
  /** Seconds from spawn to the ready file; null when it never became ready. */
  ready_s: number | null;
  /** Why it did not become ready. */
  failure?: string;
  /** Its processes when the wait for its ready file was given up (timeout only). */
  at_give_up?: ProcSnapshot;
  /** Relay processes (the process and its descendants). */
  processes: number;
  /** RSS summed over the relay's processes once ready (after the settle time), KiB. */
  rss_kib: number;
  /** Peak RSS (VmHWM) summed over them, KiB. */
  hwm_kib: number;
  /** Threads summed over them. */
  threads: number;
  /** Open file descriptors summed over them. */
  fds: number;
  /** Seconds from SIGTERM to exit. */
  stop_s: number;
  /** The memory cap's view (cgroup), when the relay ran under one. */
  cap: MemCapReport | null;
  /** Share of all CPUs busy just before the relay started (0..1). */
  background_load: number;
}

/** a) N input interfaces, one rule each, no traffic. */
export interface IdleResult extends RelayFigures {
  /** Input interfaces (= rules). */
  inputs: number;
  /** Relay CPU over the idle window, % of one core (schedstat of its threads). */
  idle_cpu_pct: number | null;
  /** The same from /proc/<pid>/stat ticks. */
  idle_cpu_stat_pct: number | null;
}

/** One stream of the traffic experiment, as counted at the receiver. */
export interface StreamCount {
  /** Input interface. */
  input: string;
  /** Datagrams its generator sent. */
  sent: number;
  /** Unique datagrams at the receiver. */
  delivered: number;
  /** Duplicates at the receiver. */
  duplicates: number;
  /** Reordered at the receiver. */
  reordered: number;
  /** Its first datagram at the receiver, s after the first datagram of any stream; null when none. */
  first_rx_s?: number | null;
}

/** b) N input interfaces, one stream each, all sent at once. */
export interface TrafficResult extends RelayFigures {
  /** Input interfaces (= rules = streams = generators). */
  inputs: number;
  /** Datagrams per second per stream. */
  stream_pps: number;
  /** Seconds of sending. */
  seconds: number;
  /**
   * Seconds between the first datagram of the first stream and the first datagram of the last
   * stream at the receiver (how nearly at once the streams started); null when none arrived.
   */
  first_arrival_spread_s: number | null;
  /** Per stream. */
  streams: StreamCount[];
  /** RSS summed over the relay's processes after the traffic, KiB. */
  rss_after_kib: number;
  /** One-way latency at the receiver over all streams (send timestamp → receive), µs. */
  latency_us?: { p50: number; p99: number; max: number };
  /** Relay CPU over the traffic (schedstat), s. */
  relay_cpu_s: number;
  /** Time the relay's threads were runnable but waiting for a CPU over the traffic (schedstat), s. */
  relay_wait_s?: number;
  /** Share of all CPUs busy from the generators' start to the receiver's end, % (senders and receiver included). */
  machine_busy_pct?: number;
  /** The relay's own final counters (second opinion): drops by reason. */
  relay_drops: Record<string, unknown> | null;
}

/** A window of steady streams at the receiver. */
export interface SteadyWindow {
  /** Longest gap between two consecutive datagrams of any steady stream, ms. */
  max_gap_ms: number | null;
  /** When that gap ended, ms after the add (add window only). */
  max_gap_end_after_add_ms?: number | null;
  /** Largest one-way latency at the receiver over the window, µs. */
  latency_max_us: number | null;
  /** Steady datagrams sent / delivered (unique) in the window. */
  sent: number;
  /** Unique at the receiver. */
  delivered: number;
}

/** c) many rules on one interface and a live `ctl add`. */
export interface RulesResult extends RelayFigures {
  /** Rules once the add is done (the configuration holds one fewer). */
  rules: number;
  /** The add, timed with CLOCK_MONOTONIC against the receiver's clock. */
  add: {
    /** Whether the relay accepted it. */
    ok: boolean;
    /** Its error, if refused. */
    error?: string;
    /** From sending the request to its reply, ms. */
    reply_ms: number | null;
    /** From sending the request to the first datagram of the new rule at the receiver, ms. */
    first_datagram_ms: number | null;
  } | null;
  /** Steady streams during the window with the add. */
  with_add: SteadyWindow | null;
  /** Steady streams during a window of the same length without an add (baseline). */
  baseline: SteadyWindow | null;
}

/** One run of bench/scale.ts. */
export interface ScaleRun {
  /** Format version. */
  schema: 1;
  /** ISO start time. */
  started: string;
  /** ISO end time. */
  finished: string;
  /** The exact command line. */
  command: string;
  /** Machine. */
  machine: MachineInfo;
  /** Deno versions. */
  deno: typeof Deno.version;
  /** Git commit (and whether the tree was dirty). */
  git: { commit: string; dirty: boolean };
  /** Settings of this run. */
  settings: Record<string, unknown>;
  /** a) results, every pass. */
  idle: IdleResult[];
  /** b) results, every pass. */
  traffic: TrafficResult[];
  /** c) results, every pass. */
  rules: RulesResult[];
  /** Share of all CPUs busy before and after the run (0..1). */
  background_load: { before: number; after: number };
}

const mib = (kib: number) => (kib / 1024).toFixed(kib >= 1024 * 100 ? 0 : 1);
const f1 = (x: number) => x.toFixed(x >= 100 ? 0 : x >= 10 ? 1 : 2);
const pct = (p: number) => (p >= 99.995 ? "100" : p.toFixed(p >= 99 ? 2 : 1));

/** Median [range] of a figure over the results that have it. */
function s<T>(rs: T[], f: (r: T) => number | null | undefined, fmt: (x: number) => string) {
  return fmtSummary(summarize(rs.map(f)), fmt);
}

/** Characters of a failure shown in a table. */
const FAILURE_CHARS = 400;

/** Table note for the passes whose relay never became ready (the first one's reason). */
function failures(rs: RelayFigures[]): string {
  const f = rs.filter((r) => r.failure);
  if (!f.length) return "";
  const g = f[0].at_give_up;
  return ` ${f.length} of ${rs.length} not ready: ${
    f[0].failure!.replaceAll("|", "\\|").slice(0, FAILURE_CHARS)
  }${
    g
      ? ` (when given up: RSS ${
        mib(g.rss_kib)
      } MiB, ${g.threads} threads, ${g.fds} fds, ${g.processes} processes)`
      : ""
  }`;
}

function groupBy<T, K>(rs: T[], key: (r: T) => K): [K, T[]][] {
  const m = new Map<K, T[]>();
  for (const r of rs) m.set(key(r), [...(m.get(key(r)) ?? []), r]);
  return [...m];
}

function loadText(rs: RelayFigures[]): string {
  return s(rs, (r) => 100 * r.background_load, (x) => x.toFixed(0)) + " %";
}

function idleTable(run: ScaleRun): string[] {
  if (!run.idle.length) return [];
  const L = [
    "## a) N input interfaces, one rule each, no traffic",
    "",
    "| input interfaces | ready after s | RSS MiB | peak RSS MiB | threads | fds | idle CPU % of a core (10 s) | background load | notes |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const [n, rs] of groupBy(run.idle, (r) => r.inputs)) {
    const ok = rs.filter((r) => r.ready_s !== null);
    const cap = rs.find((r) => r.cap?.oom_kills)?.cap;
    L.push(
      `| ${n} | ${s(ok, (r) => r.ready_s, f1)} | ${s(ok, (r) => r.rss_kib, mib)} | ${
        s(rs, (r) => r.hwm_kib || null, mib)
      } | ${s(ok, (r) => r.threads, String)} | ${s(ok, (r) => r.fds, String)} | ${
        s(ok, (r) => r.idle_cpu_pct, (x) => x.toFixed(2))
      } | ${loadText(rs)} |${failures(rs)}${
        cap ? ` killed by the ${cap.limit_mib} MiB memory cap` : ""
      } |`,
    );
  }
  L.push(
    "",
    "Goal (issue 12): 256 interfaces → RSS ≤ 200 MB, ready ≤ 3 s, idle CPU ≤ 1 % of one core.",
    "",
  );
  return L;
}

function trafficTable(run: ScaleRun): string[] {
  if (!run.traffic.length) return [];
  const L = [
    "## b) N input interfaces, one stream each, all at once",
    "",
    "| input interfaces | per stream | delivered / sent (all streams) | streams complete | worst stream | median stream | RSS MiB after | peak RSS MiB | latency p50 / p99 / max ms | relay CPU µs/pkt | relay waiting for a CPU s | machine busy during the traffic | ready after s | streams' first arrivals spread over s | background load | notes |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const [n, rs] of groupBy(run.traffic, (r) => r.inputs)) {
    const ok = rs.filter((r) => r.ready_s !== null);
    const tot = (r: TrafficResult, f: (x: StreamCount) => number) =>
      r.streams.reduce((a, x) => a + f(x), 0);
    const sp = (x: StreamCount) => (x.sent ? (100 * x.delivered) / x.sent : 0);
    const sorted = (r: TrafficResult) => r.streams.map(sp).sort((a, b) => a - b);
    L.push(
      `| ${n} | ${rs[0].stream_pps} pps × ${rs[0].seconds} s | ${
        s(ok, (r) => (100 * tot(r, (x) => x.delivered)) / Math.max(1, tot(r, (x) => x.sent)), pct)
      } % | ${
        s(ok, (r) => r.streams.filter((x) => x.sent > 0 && x.delivered === x.sent).length, String)
      } of ${n} | ${s(ok, (r) => sorted(r)[0], pct)} % | ${
        s(ok, (r) => sorted(r)[sorted(r).length >> 1], pct)
      } % | ${s(ok, (r) => r.rss_after_kib, mib)} | ${s(ok, (r) => r.hwm_kib, mib)} | ${
        (["p50", "p99", "max"] as const).map((k) =>
          s(ok, (r) => r.latency_us && r.latency_us[k] / 1000, f1)
        ).join(" / ")
      } | ${s(ok, (r) => (1e6 * r.relay_cpu_s) / Math.max(1, tot(r, (x) => x.delivered)), f1)} | ${
        s(ok, (r) => r.relay_wait_s, f1)
      } | ${s(ok, (r) => r.machine_busy_pct, (x) => x.toFixed(0))} % | ${
        s(ok, (r) => r.ready_s, f1)
      } | ${s(ok, (r) => r.first_arrival_spread_s, (x) => x.toFixed(3))} | ${loadText(rs)} |${
        failures(rs)
      } |`,
    );
  }
  L.push(
    "",
    "Goal (issue 12): 64 interfaces → RSS ≤ 150 MB and every stream forwarded (counted at the receiver).",
    "",
  );
  return L;
}

function rulesTable(run: ScaleRun): string[] {
  if (!run.rules.length) return [];
  const L = [
    "## c) many rules on one interface, a live `ctl add`",
    "",
    "| rules (after the add) | ready after s | RSS MiB | threads | fds | add: reply ms | add → first datagram at the receiver ms | steady streams: longest gap with the add ms | … it ended, ms after the add | longest gap without an add (baseline) ms | steady delivered / sent with the add | latency max with / without the add µs | background load | notes |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const [n, rs] of groupBy(run.rules, (r) => r.rules)) {
    const ok = rs.filter((r) => r.ready_s !== null);
    const refused = ok.filter((r) => r.add && !r.add.ok);
    L.push(
      `| ${n} | ${s(ok, (r) => r.ready_s, f1)} | ${s(ok, (r) => r.rss_kib, mib)} | ${
        s(ok, (r) => r.threads, String)
      } | ${s(ok, (r) => r.fds, String)} | ${s(ok, (r) => r.add?.reply_ms, f1)} | ${
        s(ok, (r) => r.add?.first_datagram_ms, f1)
      } | ${s(ok, (r) => r.with_add?.max_gap_ms, f1)} | ${
        s(ok, (r) => r.with_add?.max_gap_end_after_add_ms, f1)
      } | ${s(ok, (r) => r.baseline?.max_gap_ms, f1)} | ${
        s(ok, (r) => r.with_add && (100 * r.with_add.delivered) / Math.max(1, r.with_add.sent), pct)
      } % | ${s(ok, (r) => r.with_add?.latency_max_us, f1)} / ${
        s(ok, (r) => r.baseline?.latency_max_us, f1)
      } | ${loadText(rs)} |${failures(rs)}${
        refused.length ? ` add refused: ${refused[0].add!.error?.slice(0, FAILURE_CHARS)}` : ""
      } |`,
    );
  }
  L.push(
    "",
    "Goal (issue 12): 65,536 rules → ready ≤ 10 s, RSS ≤ 400 MB, a live `ctl add` takes effect in ≤ 100 ms with no gap in the other streams.",
    "",
  );
  return L;
}

/** Render a scale run as markdown. */
export function renderScale(run: ScaleRun, jsonPath: string): string {
  const m = run.machine;
  const passes = Math.max(
    1,
    ...[...run.idle, ...run.traffic, ...run.rules].map((r) => r.pass),
  );
  const L = [
    `# mcr scale benchmark — ${run.started}`,
    "",
    `- Command: \`${run.command}\``,
    `- Raw results: \`${jsonPath}\``,
    `- Machine: ${m.cores} cores (${m.cpuModel}), ${m.memMiB} MiB, kernel ${m.kernel}; deno ${run.deno.deno}; git ${
      run.git.commit.slice(0, 12)
    }${run.git.dirty ? " (uncommitted changes)" : ""}`,
    `- ${passes} pass${passes > 1 ? "es" : ""}${
      passes > 1 ? ': every figure is the median over the passes, "median [min–max]"' : ""
    }. RSS, threads and fds are summed over the relay's processes (the process and its descendants), read after the ready file appeared and a settle time; ready = spawn → ready file.`,
    `- Background load (share of both CPUs busy while idle) before / after the run: ${
      (100 * run.background_load.before).toFixed(1)
    } % / ${(100 * run.background_load.after).toFixed(1)} %; per experiment in the tables.`,
    `- Settings: ${JSON.stringify(run.settings)}`,
    "",
    ...idleTable(run),
    ...trafficTable(run),
    ...rulesTable(run),
  ];
  return L.join("\n");
}

/**
 * Markdown report of a benchmark run (`bench/results/latest.md`). With
 * `--repeat N` every figure is the median over the N passes with its range,
 * written "median [min–max]".
 *
 * Long file: one table per section of the report, each a short function over
 * the same few helpers; splitting them would scatter one document.
 *
 * @module
 */
import type { TrialResult } from "./trial.ts";
import type { BenchRun, Pass, RelayRun } from "./types.ts";
import { fmtSummary, summarize, type Summary } from "./summary.ts";

const MCR_VARIANTS = ["mcr-v2", "mcr-v2-nogather", "mcr-v3", "mcr"];
/** Name of the bare C reference relay (bench/floor). */
export const FLOOR_NAME = "floor (C)";
/** Rate at which relay CPU per packet is compared with the floor. */
export const FLOOR_CPU_RATE = 100_000;

type Num = number | null | undefined;

function kpps(pps: number): string {
  return (pps / 1000).toFixed(pps >= 100_000 ? 0 : 1);
}

function pct(p: number): string {
  return p >= 99.995 ? "100" : p.toFixed(p >= 99 ? 2 : 1);
}

function us2(v: number): string {
  return v.toFixed(2);
}

function us(v: Num, digits = 2): string {
  return v === null || v === undefined || !Number.isFinite(v) ? "—" : v.toFixed(digits);
}

function lat(v: number): string {
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

function rateLabel(r: number): string {
  return r === 0 ? "flat out" : `${r / 1000}k`;
}

/** The fixed-rate (or flat) trial of a run at a requested rate. */
function at(run: RelayRun | undefined, rate: number): TrialResult | undefined {
  return run?.trials.find((t) => t.spec.rate === rate);
}

function directAt(p: Pass, rate: number): TrialResult | undefined {
  return p.direct.find((t) => t.spec.rate === rate);
}

/** Added latency p50/p99 at the latency rate vs the same pass's direct baseline, µs. */
function addedLatency(
  b: BenchRun,
  p: Pass,
  run: RelayRun | undefined,
): { p50: number; p99: number } | null {
  const t = at(run, b.settings.latency_rate_pps);
  const d = directAt(p, b.settings.latency_rate_pps);
  if (!t || !d || t.delivered === 0) return null;
  return { p50: t.latency_us.p50 - d.latency_us.p50, p99: t.latency_us.p99 - d.latency_us.p99 };
}

/** Relay CPU per delivered datagram from /proc/<pid>/stat utime+stime (10 ms ticks), µs. */
function statUsPerPkt(t: TrialResult | undefined): number | null {
  return t && t.delivered > 0 ? (t.relay_cpu_stat_s / t.delivered) * 1e6 : null;
}

/** One relay (topology, workload, name) in every pass that ran it. */
interface Series {
  topology: string;
  workload: string;
  relay: string;
  kind: string;
  /** Per pass that ran it. */
  runs: { pass: Pass; run: RelayRun }[];
}

/** Every relay of the run, in the order of the first pass. */
function allSeries(b: BenchRun): Series[] {
  const out: Series[] = [];
  for (const p of b.passes) {
    for (const r of p.runs) {
      let s = out.find((x) =>
        x.topology === r.topology && x.workload === r.workload && x.relay === r.relay
      );
      if (!s) {
        s = { topology: r.topology, workload: r.workload, relay: r.relay, kind: r.kind, runs: [] };
        out.push(s);
      }
      s.runs.push({ pass: p, run: r });
    }
  }
  return out;
}

function find(b: BenchRun, topology: string, workload: string, relay: string): Series | undefined {
  return allSeries(b).find((s) =>
    s.topology === topology && s.workload === workload && s.relay === relay
  );
}

/** A figure of one relay over the passes. */
function over(s: Series, f: (run: RelayRun, pass: Pass) => Num): Summary | null {
  return summarize(s.runs.filter((x) => !x.run.skipped).map((x) => f(x.run, x.pass)));
}

/** A figure of the direct baseline over the passes. */
function overDirect(b: BenchRun, f: (p: Pass) => Num): Summary | null {
  return summarize(b.passes.map(f));
}

function skipped(s: Series): string | undefined {
  return s.runs.every((x) => x.run.skipped) ? s.runs[0]?.run.skipped : undefined;
}

function errors(s: Series): string[] {
  return s.runs.filter((x) => x.run.error).map((x) => `pass ${x.pass.index}: ${x.run.error}`);
}

function allTrials(run: RelayRun): TrialResult[] {
  return [...run.trials, ...run.bisection];
}

function total(s: Series, f: (t: TrialResult) => number): number {
  return s.runs.reduce((a, x) => a + allTrials(x.run).reduce((c, t) => c + f(t), 0), 0);
}

function maxLosslessText(s: Series): string {
  const ms = s.runs.map((x) => x.run.max_lossless).filter((m) => m !== null);
  if (!ms.length) return "—";
  const sum = summarize(ms.map((m) => m.pps));
  const text = fmtSummary(sum, kpps);
  if (ms.every((m) => m.method === "generator")) return `≥ ${text} (generator limit)`;
  const fails = summarize(ms.map((m) => m.failing_pps));
  const up = fails ? ` (fails at ${fmtSummary(fails, kpps)})` : "";
  if (ms.every((m) => m.method === "tested")) return `≥ ${text} of tested${up}`;
  return `${text}${up}`;
}

function flatText(s: Series): string {
  const off = over(s, (r) => at(r, 0)?.offered_pps);
  const del = over(s, (r) => at(r, 0)?.delivered_pps);
  const pc = over(s, (r) => at(r, 0)?.delivered_pct);
  if (!off) return "—";
  return `${fmtSummary(off, kpps)} → ${fmtSummary(del, kpps)} (${fmtSummary(pc, pct)} %)`;
}

/**
 * "relay / system − gen − sink / system above direct" µs per delivered
 * datagram. The last one compares total busy CPU per datagram with the direct
 * baseline of the same pass at the same requested rate (one output per input only).
 */
function cpuText(s: Series, rate: number): string {
  const t = (r: RelayRun) => at(r, rate);
  if (!over(s, (r) => t(r)?.sent)) return "—";
  const relay = s.kind === "smcroute"
    ? "(kernel)"
    : fmtSummary(over(s, (r) => t(r)?.relay_us_per_pkt), us2);
  const sys = fmtSummary(over(s, (r) => t(r)?.sys_us_per_pkt), us2);
  const delta = over(s, (r, p) => {
    const x = t(r);
    const d = rate > 0 && x && x.expected === x.sent ? directAt(p, rate) : undefined;
    return d && d.sys_busy_us_per_pkt !== null && x!.sys_busy_us_per_pkt !== null
      ? x!.sys_busy_us_per_pkt - d.sys_busy_us_per_pkt
      : null;
  });
  return `${relay} / ${sys} / ${fmtSummary(delta, us2)}`;
}

function mark(ok: boolean | null): string {
  return ok === null ? "" : ok ? " ✅" : " ❌ not met";
}

function latencyText(b: BenchRun, s: Series): { p50: Summary | null; p99: Summary | null } {
  return {
    p50: over(s, (r, p) => addedLatency(b, p, r)?.p50),
    p99: over(s, (r, p) => addedLatency(b, p, r)?.p99),
  };
}

function chainVariants(b: BenchRun, names: string[]): Series[] {
  return names.map((n) => find(b, "chain", "1:1", n)).filter((s): s is Series =>
    s !== undefined && !skipped(s)
  );
}

function goalRows(b: BenchRun): string[] {
  const variants = chainVariants(b, MCR_VARIANTS);
  if (!variants.length) return [];
  const lines: string[] = [];
  lines.push(
    `| goal (chain topology, 1:1, 1024-byte payloads) | target | ${
      variants.map((v) => v.relay).join(" | ")
    } |`,
  );
  lines.push(`|---|---|${variants.map(() => "---").join("|")}|`);
  const row = (goal: string, target: string, f: (s: Series) => string) =>
    lines.push(`| ${goal} | ${target} | ${variants.map(f).join(" | ")} |`);
  row("maximum lossless rate", "≥ 200 kpps", (s) => {
    const m = over(s, (r) => r.max_lossless?.pps);
    return `${maxLosslessText(s)}${mark(m ? m.median >= 200_000 : null)}`;
  });
  for (const rate of [10_000, 100_000, 200_000]) {
    row(`relay CPU per packet at ${rate / 1000} kpps`, "≤ 1.5 µs (socat ~35)", (s) => {
      const c = over(s, (r) => at(r, rate)?.relay_us_per_pkt);
      return c ? `${fmtSummary(c, us2)} µs${mark(c.median <= 1.5)}` : "—";
    });
  }
  const lr = b.settings.latency_rate_pps / 1000;
  row(`added latency p50 at ${lr} kpps`, "≤ 50 µs", (s) => {
    const l = latencyText(b, s).p50;
    return l ? `${fmtSummary(l, lat)} µs${mark(l.median <= 50)}` : "—";
  });
  row(`added latency p99 at ${lr} kpps`, "≤ 1 ms", (s) => {
    const l = latencyText(b, s).p99;
    return l ? `${fmtSummary(l, lat)} µs${mark(l.median <= 1000)}` : "—";
  });
  row("duplicates / reordered (all trials)", "0 / 0", (s) => {
    const d = total(s, (t) => t.duplicates), o = total(s, (t) => t.reordered);
    return `${d} / ${o}${mark(d === 0 && o === 0)}`;
  });
  if (b.hotloop && !b.hotloop.error) {
    const h = b.hotloop.ns_per_packet;
    const worst = Math.max(
      ...Object.entries(h).filter(([k]) => k.startsWith("process/")).map(([, v]) => v),
    );
    lines.push(
      `| TS hot loop (BatchProcessor.process, worst table size) | ≤ 100 ns/packet | ${
        variants.map(() => `${worst.toFixed(0)} ns${mark(worst <= 100)}`).join(" | ")
      } |`,
    );
  }
  return lines;
}

function ringComparison(b: BenchRun): string[] {
  const variants = chainVariants(b, ["mcr-v2", "mcr-v2-nogather", "mcr-v3"]);
  if (!variants.length) return [];
  const lr = b.settings.latency_rate_pps;
  const lines = [
    `| variant | ${lr / 1000} kpps: added latency p50 / p99 µs | ${
      lr / 1000
    } kpps: CPU µs/pkt | 100 kpps: delivered %, CPU µs/pkt | 200 kpps: delivered %, CPU µs/pkt | flat out: offered → delivered kpps | ring: frames per poll syscall, gathers |`,
    "|---|---|---|---|---|---|---|",
  ];
  for (const s of variants) {
    const l = latencyText(b, s);
    const deliv = (rate: number) => fmtSummary(over(s, (r) => at(r, rate)?.delivered_pct), pct);
    const inIf = (r: RelayRun) =>
      ((r.relay_report.stats as { interfaces?: Record<string, number>[] } | undefined)
        ?.interfaces ?? []).find((i) => (i.frames ?? 0) > 0);
    const fpp = over(s, (r) => {
      const i = inIf(r);
      return i ? (i.frames ?? 0) / Math.max(1, i.polls ?? 0) : null;
    });
    const gathers = over(s, (r) => inIf(r)?.gathers ?? null);
    lines.push(
      `| ${s.relay} | ${fmtSummary(l.p50, lat)} / ${fmtSummary(l.p99, lat)} | ${cpuText(s, lr)} | ${
        deliv(100_000)
      } %, ${cpuText(s, 100_000)} | ${deliv(200_000)} %, ${cpuText(s, 200_000)} | ${
        flatText(s)
      } | ${fmtSummary(fpp, (x) => x.toFixed(1))}, ${fmtSummary(gathers, (x) => x.toFixed(0))} |`,
    );
  }
  return lines;
}

/** mcr against the bare C reference relay: CPU per packet, its ratio, latency. */
function floorComparison(b: BenchRun): string[] {
  const floor = find(b, "chain", "1:1", FLOOR_NAME);
  if (!floor || skipped(floor)) return [];
  const others = allSeries(b).filter((s) =>
    s.topology === "chain" && s.workload === "1:1" && s.kind === "mcr" && !skipped(s)
  );
  const rate = FLOOR_CPU_RATE;
  const lines = [
    `| relay | ${rate / 1000} kpps: delivered % | ${
      rate / 1000
    } kpps: relay CPU µs/pkt (stat ticks) | (schedstat) | ratio to the floor (stat; per pass) | (schedstat) | ${
      b.settings.latency_rate_pps / 1000
    } kpps: added latency p50 / p99 µs |`,
    "|---|---|---|---|---|---|---|",
  ];
  const floorIn = (p: Pass) => p.runs.find((r) => r.relay === FLOOR_NAME && r.workload === "1:1");
  for (const s of [...others, floor]) {
    const ratio = (f: (t: TrialResult | undefined) => number | null) =>
      over(s, (r, p) => {
        const mine = f(at(r, rate)), base = f(at(floorIn(p), rate));
        return mine !== null && base ? mine / base : null;
      });
    const l = latencyText(b, s);
    lines.push(
      `| ${s.relay} | ${fmtSummary(over(s, (r) => at(r, rate)?.delivered_pct), pct)} | ${
        fmtSummary(over(s, (r) => statUsPerPkt(at(r, rate))), us2)
      } | ${fmtSummary(over(s, (r) => at(r, rate)?.relay_us_per_pkt), us2)} | ${
        s === floor ? "1" : fmtSummary(ratio(statUsPerPkt), us2)
      } | ${s === floor ? "1" : fmtSummary(ratio((t) => t?.relay_us_per_pkt ?? null), us2)} | ${
        fmtSummary(l.p50, lat)
      } / ${fmtSummary(l.p99, lat)} |`,
    );
  }
  return lines;
}

function groupTables(b: BenchRun, topology: string, workload: string): string[] {
  const series = allSeries(b).filter((s) => s.topology === topology && s.workload === workload);
  const rates = [
    ...new Set(series.flatMap((s) => s.runs.flatMap((x) => x.run.trials.map((t) => t.spec.rate)))),
  ].sort((x, y) => (x || Infinity) - (y || Infinity));
  const lines: string[] = [];
  lines.push(`### ${topology} · ${workload}`, "");
  lines.push(`${b.topologies[topology] ?? ""}; ${b.workloads[workload] ?? ""}.`, "");
  lines.push(
    `| relay | max lossless kpps (≥ ${b.settings.lossless_threshold_pct} %) | flat out: offered → delivered kpps | added latency p50 / p99 µs @ ${
      b.settings.latency_rate_pps / 1000
    }k | peak RSS MiB | duplicates / reordered / corrupt | background load before |`,
    "|---|---|---|---|---|---|---|",
  );
  for (const s of series) {
    const why = skipped(s);
    if (why) {
      lines.push(`| ${s.relay} | n/a: ${why} | | | | | |`);
      continue;
    }
    const errs = errors(s);
    const l = latencyText(b, s);
    const procs = Math.max(...s.runs.map((x) => x.run.processes));
    lines.push(
      `| ${s.relay}${errs.length ? ` (error: ${errs[0].split("\n")[0].slice(0, 80)})` : ""} | ${
        maxLosslessText(s)
      } | ${flatText(s)} | ${fmtSummary(l.p50, lat)} / ${fmtSummary(l.p99, lat)} | ${
        fmtSummary(over(s, (r) => r.peak_rss_kib / 1024), (x) => x.toFixed(1))
      }${procs > 1 ? ` (${procs} processes)` : ""} | ${total(s, (t) => t.duplicates)} / ${
        total(s, (t) => t.reordered)
      } / ${total(s, (t) => t.corrupt)} | ${
        fmtSummary(over(s, (r) => 100 * (r.background_load ?? 0)), (x) => x.toFixed(0))
      } % |`,
    );
  }
  lines.push("");
  lines.push(
    `| relay | ${rates.map((r) => `${rateLabel(r)}: delivered %`).join(" | ")} | ${
      rates.map((r) => `${rateLabel(r)}: CPU µs/pkt`).join(" | ")
    } |`,
  );
  lines.push(`|---|${rates.map(() => "---").join("|")}|${rates.map(() => "---").join("|")}|`);
  for (const s of series.filter((s) => !skipped(s))) {
    lines.push(
      `| ${s.relay} | ${
        rates.map((x) => fmtSummary(over(s, (r) => at(r, x)?.delivered_pct), pct)).join(" | ")
      } | ${rates.map((x) => cpuText(s, x)).join(" | ")} |`,
    );
  }
  lines.push("");
  lines.push("<details><summary>every trial</summary>", "");
  lines.push(
    "| relay | pass | trial | requested | offered kpps | delivered % | delivered kpps | relay µs/pkt (schedstat; stat ticks) | system − gen − sink µs/pkt | system total µs/pkt | latency p50 / p99 / max µs | dup | reord |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  );
  for (const s of series.filter((s) => !skipped(s))) {
    for (const { pass, run } of s.runs) {
      for (const t of allTrials(run)) {
        const statUs = run.kind !== "smcroute" ? statUsPerPkt(t) : null;
        lines.push(
          `| ${s.relay} | ${pass.index} | ${t.spec.purpose} | ${rateLabel(t.spec.rate)} | ${
            kpps(t.offered_pps)
          } | ${pct(t.delivered_pct)} | ${kpps(t.delivered_pps)} | ${us(t.relay_us_per_pkt)}; ${
            us(statUs)
          } | ${us(t.sys_us_per_pkt)} | ${us(t.sys_busy_us_per_pkt)} | ${lat(t.latency_us.p50)} / ${
            lat(t.latency_us.p99)
          } / ${lat(t.latency_us.max)} | ${t.duplicates} | ${t.reordered} |`,
        );
      }
    }
  }
  lines.push("", "</details>", "");
  return lines;
}

function header(b: BenchRun, jsonPath: string): string[] {
  const m = b.machine;
  const L: string[] = [];
  L.push(`# mcr benchmark — ${b.mode} mode, ${b.started}`, "");
  L.push(`- Command: \`${b.command}\``);
  L.push(`- Raw results: \`${jsonPath}\``);
  L.push(
    `- Machine: ${m.cores} cores (${m.cpuModel}), ${m.memMiB} MiB, kernel ${m.kernel}; deno ${b.deno.deno} (V8 ${b.deno.v8}); git ${
      b.git.commit.slice(0, 12)
    }${b.git.dirty ? " (uncommitted changes)" : ""}`,
  );
  L.push(`- Tools: ${Object.entries(b.tools).map(([k, v]) => `${k}: ${v || "?"}`).join("; ")}`);
  L.push(
    `- ${b.passes.length} pass${b.passes.length === 1 ? "" : "es"} over the whole plan${
      b.passes.length > 1
        ? ': every figure is the median over the passes with its range, written "median [min–max]"'
        : " (one value per figure: use `--repeat N` for a median and a range)"
    }.`,
  );
  L.push(
    `- ${b.settings.payload_bytes}-byte payloads; delivery counted by mcr-sink (never relay counters); lossless = ≥ ${b.settings.lossless_threshold_pct} % delivered; trials ${b.settings.trial_s} s (latency ${b.settings.latency_trial_s} s at ${
      b.settings.latency_rate_pps / 1000
    } kpps, bisection ${b.settings.bisect_trial_s} s).`,
  );
  L.push(
    `- Generator, relay and receiver share the ${m.cores} cores: rates and CPU figures are for this whole system, run sequentially.`,
  );
  L.push(
    `- CPU figures are µs per delivered datagram, written "relay / system − gen − sink / system above direct": relay = CPU of the relay's processes (all threads, /proc/<pid>/task/*/schedstat); system − gen − sink = all busy CPU (cores × wall − idle from /proc/stat) minus the generator's, the receiver's and the harness's own CPU; system above direct = total busy CPU per datagram minus that of the direct baseline at the same rate (the fairest figure for the kernel's forwarding, which has no process and partly runs in the generator's softirq context). See bench/README.md.`,
  );
  const bg = b.background_load;
  const passLoads = b.passes.map((p) =>
    `${(100 * p.background_load.before).toFixed(1)} / ${(100 * p.background_load.after).toFixed(1)}`
  );
  L.push(
    `- Background load (1 s idle before / after the run): ${(100 * bg.before).toFixed(1)} % / ${
      (100 * bg.after).toFixed(1)
    } % of all CPUs${
      b.passes.length > 1 ? `; per pass (before / after): ${passLoads.join(", ")} %` : ""
    }${
      Math.max(bg.before, bg.after) > 0.05
        ? " — **other work was running on the machine: figures are skewed**"
        : ""
    }.`,
    "",
  );
  const lr = b.settings.latency_rate_pps;
  const d50 = overDirect(b, (p) => directAt(p, lr)?.latency_us.p50);
  if (d50) {
    const d99 = overDirect(b, (p) => directAt(p, lr)?.latency_us.p99);
    const off = overDirect(b, (p) => directAt(p, 0)?.offered_pps);
    const del = overDirect(b, (p) => directAt(p, 0)?.delivered_pps);
    const dp = overDirect(b, (p) => directAt(p, 0)?.delivered_pct);
    L.push(
      `Direct baseline (generator → receiver over one veth, no relay): latency p50 / p99 ${
        fmtSummary(d50, lat)
      } / ${fmtSummary(d99, lat)} µs at ${lr / 1000} kpps${
        off
          ? `; flat out ${fmtSummary(off, kpps)} kpps offered, ${
            fmtSummary(del, kpps)
          } kpps delivered (${fmtSummary(dp, pct)} %)`
          : ""
      }. Added latency = relay path minus this baseline (of the same pass).`,
      "",
    );
  }
  return L;
}

/** Render the run as markdown. `jsonPath` is shown as the source of the figures. */
export function renderMarkdown(b: BenchRun, jsonPath: string): string {
  const L = header(b, jsonPath);
  const goals = goalRows(b);
  if (goals.length) L.push("## Goals", "", ...goals, "");
  const ring = ringComparison(b);
  if (ring.length) {
    L.push("## mcr RX ring modes (chain, 1:1)", "", ...ring, "");
    L.push(
      "CPU = relay / system − gen − sink / system above direct, µs per delivered datagram. `mcr-v2-nogather` sets `coalesce_pps` to its maximum so the adaptive gather never triggers.",
      "",
    );
  }
  const floor = floorComparison(b);
  if (floor.length) {
    L.push("## mcr against the floor (bare C TPACKET_V3 + TX ring relay, chain, 1:1)", "");
    L.push(...floor, "");
    L.push(
      `Relay CPU = CPU time of the relay's process over the trial (utime + stime of /proc/<pid>/stat, 10 ms ticks; schedstat of its threads, ns) ÷ datagrams delivered at the receiver. The ratio is taken within each pass (same machine state), then its median and range over the passes. The floor is bench/floor/floor-relay.c (64 KiB blocks, 1 ms retire timeout).`,
      "",
    );
  }
  L.push("## Results by topology and workload", "");
  const seen = new Set<string>();
  for (const s of allSeries(b)) {
    const k = `${s.topology}\u0000${s.workload}`;
    if (seen.has(k)) continue;
    seen.add(k);
    L.push(...groupTables(b, s.topology, s.workload));
  }
  if (allSeries(b).some((s) => s.kind === "smcroute" && !skipped(s))) {
    L.push(
      "`kernel (smcroute)` forwards each stream unchanged (the receiver joins the input group): the kernel cannot translate groups. Its relay CPU is the kernel's softirq work, visible only in the system column.",
      "",
    );
  }
  if (b.hotloop) {
    L.push(
      "## TypeScript hot loop",
      "",
      `\`${b.hotloop.command}\`${b.hotloop.error ? ` failed: ${b.hotloop.error}` : ""}`,
      "",
    );
    if (!b.hotloop.error) {
      L.push("| bench | ns/packet (p75 per batch ÷ 256) |", "|---|---|");
      for (const [k, v] of Object.entries(b.hotloop.ns_per_packet)) {
        L.push(`| ${k} | ${v.toFixed(1)} |`);
      }
      L.push("");
    }
  }
  L.push("Chart: [latest.svg](latest.svg) (delivered vs offered rate).", "");
  return L.join("\n");
}

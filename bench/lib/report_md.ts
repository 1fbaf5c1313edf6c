/**
 * Markdown report of a benchmark run (`bench/results/latest.md`).
 *
 * @module
 */
import type { TrialResult } from "./trial.ts";
import type { BenchRun, RelayRun } from "./types.ts";

const MCR_VARIANTS = ["mcr-v2", "mcr-v2-nogather", "mcr-v3", "mcr"];

function kpps(pps: number): string {
  return (pps / 1000).toFixed(pps >= 100_000 ? 0 : 1);
}

function pct(p: number): string {
  return p >= 99.995 ? "100" : p.toFixed(p >= 99 ? 2 : 1);
}

function us(v: number | null | undefined, digits = 2): string {
  return v === null || v === undefined || !Number.isFinite(v) ? "—" : v.toFixed(digits);
}

function rateLabel(r: number): string {
  return r === 0 ? "flat out" : `${r / 1000}k`;
}

/** The fixed-rate (or flat) trial of a run at a requested rate. */
function at(run: RelayRun | undefined, rate: number): TrialResult | undefined {
  return run?.trials.find((t) => t.spec.rate === rate);
}

function directAt(b: BenchRun, rate: number): TrialResult | undefined {
  return b.direct.find((t) => t.spec.rate === rate);
}

/** Added latency p50/p99 at the latency rate vs the direct baseline, µs. */
export function addedLatency(
  b: BenchRun,
  run: RelayRun | undefined,
): { p50: number; p99: number } | null {
  const t = at(run, b.settings.latency_rate_pps);
  const d = directAt(b, b.settings.latency_rate_pps);
  if (!t || !d || t.delivered === 0) return null;
  const r1 = (x: number) => Math.round(x * 10) / 10;
  return {
    p50: r1(t.latency_us.p50 - d.latency_us.p50),
    p99: r1(t.latency_us.p99 - d.latency_us.p99),
  };
}

function lat(v: number): string {
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

function allTrials(run: RelayRun): TrialResult[] {
  return [...run.trials, ...run.bisection];
}

function maxLosslessText(run: RelayRun): string {
  const m = run.max_lossless;
  if (!m) return "—";
  if (m.method === "generator") return `≥ ${kpps(m.pps)} (generator limit)`;
  const up = m.failing_pps !== null ? ` (fails at ${kpps(m.failing_pps)})` : "";
  if (m.pps === 0) {
    return `< ${m.failing_pps !== null ? kpps(m.failing_pps) : "?"} (lowest tried fails)`;
  }
  return m.method === "tested" ? `≥ ${kpps(m.pps)} of tested${up}` : `${kpps(m.pps)}${up}`;
}

function flatText(run: RelayRun | undefined): string {
  const f = at(run, 0);
  if (!f) return "—";
  return `${kpps(f.offered_pps)} → ${kpps(f.delivered_pps)} (${pct(f.delivered_pct)} %)`;
}

/**
 * "relay / system − gen − sink / system above direct" µs per delivered
 * datagram. The last one compares total busy CPU per datagram with the direct
 * baseline at the same requested rate (only for one output per input).
 */
function cpuText(b: BenchRun, t: TrialResult | undefined, kind: string): string {
  if (!t) return "—";
  const relay = kind === "smcroute" ? "(kernel)" : us(t.relay_us_per_pkt);
  const d = t.spec.rate > 0 && t.expected === t.sent ? directAt(b, t.spec.rate) : undefined;
  const delta = d && d.sys_busy_us_per_pkt !== null && t.sys_busy_us_per_pkt !== null
    ? t.sys_busy_us_per_pkt - d.sys_busy_us_per_pkt
    : null;
  return `${relay} / ${us(t.sys_us_per_pkt)} / ${us(delta)}`;
}

function mark(ok: boolean | null): string {
  return ok === null ? "" : ok ? " ✅" : " ❌ not met";
}

function goalRows(b: BenchRun): string[] {
  const variants = MCR_VARIANTS.map((n) =>
    b.runs.find((r) => r.topology === "chain" && r.workload === "1:1" && r.relay === n)
  ).filter((r): r is RelayRun => r !== undefined && !r.skipped);
  if (!variants.length) return [];
  const lines: string[] = [];
  lines.push(
    `| goal (chain topology, 1:1, 1024-byte payloads) | target | ${
      variants.map((v) => v.relay).join(" | ")
    } |`,
  );
  lines.push(`|---|---|${variants.map(() => "---").join("|")}|`);
  const row = (goal: string, target: string, f: (r: RelayRun) => string) =>
    lines.push(`| ${goal} | ${target} | ${variants.map(f).join(" | ")} |`);
  row("maximum lossless rate", "≥ 200 kpps", (r) => {
    const m = r.max_lossless;
    if (!m) return "—";
    const ok = m.pps >= 200_000;
    return `${maxLosslessText(r)}${mark(ok)}`;
  });
  for (const rate of [10_000, 100_000, 200_000]) {
    row(`relay CPU per packet at ${rate / 1000} kpps`, "≤ 1.5 µs (socat ~35)", (r) => {
      const t = at(r, rate);
      if (!t || t.relay_us_per_pkt === null) return "—";
      return `${us(t.relay_us_per_pkt)} µs${mark(t.relay_us_per_pkt <= 1.5)}`;
    });
  }
  row(`added latency p50 at ${b.settings.latency_rate_pps / 1000} kpps`, "≤ 50 µs", (r) => {
    const l = addedLatency(b, r);
    return l ? `${lat(l.p50)} µs${mark(l.p50 <= 50)}` : "—";
  });
  row(`added latency p99 at ${b.settings.latency_rate_pps / 1000} kpps`, "≤ 1 ms", (r) => {
    const l = addedLatency(b, r);
    return l ? `${lat(l.p99)} µs${mark(l.p99 <= 1000)}` : "—";
  });
  row("duplicates / reordered (all trials)", "0 / 0", (r) => {
    const d = allTrials(r).reduce((a, t) => a + t.duplicates, 0);
    const o = allTrials(r).reduce((a, t) => a + t.reordered, 0);
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
  const variants = ["mcr-v2", "mcr-v2-nogather", "mcr-v3"].map((n) =>
    b.runs.find((r) => r.topology === "chain" && r.workload === "1:1" && r.relay === n)
  ).filter((r): r is RelayRun => r !== undefined && !r.skipped);
  if (!variants.length) return [];
  const lr = b.settings.latency_rate_pps;
  const lines = [
    `| variant | ${lr / 1000} kpps: added latency p50 / p99 µs | ${
      lr / 1000
    } kpps: CPU µs/pkt | 100 kpps: delivered %, CPU µs/pkt | 200 kpps: delivered %, CPU µs/pkt | flat out: offered → delivered kpps | ring: frames per poll syscall, gathers |`,
    "|---|---|---|---|---|---|---|",
  ];
  for (const r of variants) {
    const l = addedLatency(b, r);
    const t100 = at(r, 100_000), t200 = at(r, 200_000);
    const ifs =
      (r.relay_report.stats as { interfaces?: Record<string, number>[] } | undefined)?.interfaces ??
        [];
    const inIf = ifs.find((i) => (i.frames ?? 0) > 0);
    const ring = inIf
      ? `${((inIf.frames ?? 0) / Math.max(1, inIf.polls ?? 0)).toFixed(1)}, ${inIf.gathers ?? 0}`
      : "—";
    lines.push(
      `| ${r.relay} | ${l ? `${lat(l.p50)} / ${lat(l.p99)}` : "—"} | ${
        cpuText(b, at(r, lr), r.kind)
      } | ${t100 ? `${pct(t100.delivered_pct)} %, ${cpuText(b, t100, r.kind)}` : "—"} | ${
        t200 ? `${pct(t200.delivered_pct)} %, ${cpuText(b, t200, r.kind)}` : "—"
      } | ${flatText(r)} | ${ring} |`,
    );
  }
  return lines;
}

function groupTables(b: BenchRun, topology: string, workload: string): string[] {
  const runs = b.runs.filter((r) => r.topology === topology && r.workload === workload);
  const rates = [...new Set(runs.flatMap((r) => r.trials.map((t) => t.spec.rate)))].sort((x, y) =>
    (x || Infinity) - (y || Infinity)
  );
  const lines: string[] = [];
  lines.push(`### ${topology} · ${workload}`, "");
  lines.push(`${b.topologies[topology] ?? ""}; ${b.workloads[workload] ?? ""}.`, "");
  lines.push(
    `| relay | max lossless kpps (≥ ${b.settings.lossless_threshold_pct} %) | flat out: offered → delivered kpps | added latency p50 / p99 µs @ ${
      b.settings.latency_rate_pps / 1000
    }k | peak RSS MiB | duplicates / reordered / corrupt | background load before |`,
    "|---|---|---|---|---|---|---|",
  );
  for (const r of runs) {
    if (r.skipped) {
      lines.push(`| ${r.relay} | n/a: ${r.skipped} | | | | | |`);
      continue;
    }
    const l = addedLatency(b, r);
    const ts = allTrials(r);
    lines.push(
      `| ${r.relay}${r.error ? ` (error: ${r.error.split("\n")[0].slice(0, 80)})` : ""} | ${
        maxLosslessText(r)
      } | ${flatText(r)} | ${l ? `${lat(l.p50)} / ${lat(l.p99)}` : "—"} | ${
        (r.peak_rss_kib / 1024).toFixed(1)
      }${r.processes > 1 ? ` (${r.processes} processes)` : ""} | ${
        ts.reduce((a, t) => a + t.duplicates, 0)
      } / ${ts.reduce((a, t) => a + t.reordered, 0)} / ${ts.reduce((a, t) => a + t.corrupt, 0)} | ${
        (100 * (r.background_load ?? 0)).toFixed(0)
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
  for (const r of runs.filter((r) => !r.skipped)) {
    lines.push(
      `| ${r.relay} | ${
        rates.map((x) => (at(r, x) ? pct(at(r, x)!.delivered_pct) : "—")).join(" | ")
      } | ${rates.map((x) => cpuText(b, at(r, x), r.kind)).join(" | ")} |`,
    );
  }
  lines.push("");
  lines.push("<details><summary>every trial</summary>", "");
  lines.push(
    "| relay | trial | requested | offered kpps | delivered % | delivered kpps | relay µs/pkt (schedstat; stat ticks) | system − gen − sink µs/pkt | system total µs/pkt | latency p50 / p99 / max µs | dup | reord |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
  );
  for (const r of runs.filter((r) => !r.skipped)) {
    for (const t of allTrials(r)) {
      const statUs = t.delivered > 0 && r.kind !== "smcroute"
        ? (t.relay_cpu_stat_s / t.delivered) * 1e6
        : null;
      lines.push(
        `| ${r.relay} | ${t.spec.purpose} | ${rateLabel(t.spec.rate)} | ${kpps(t.offered_pps)} | ${
          pct(t.delivered_pct)
        } | ${kpps(t.delivered_pps)} | ${us(t.relay_us_per_pkt)}; ${us(statUs)} | ${
          us(t.sys_us_per_pkt)
        } | ${us(t.sys_busy_us_per_pkt)} | ${lat(t.latency_us.p50)} / ${lat(t.latency_us.p99)} / ${
          lat(t.latency_us.max)
        } | ${t.duplicates} | ${t.reordered} |`,
      );
    }
  }
  lines.push("", "</details>", "");
  return lines;
}

/** Render the run as markdown. `jsonPath` is shown as the source of the figures. */
export function renderMarkdown(b: BenchRun, jsonPath: string): string {
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
  L.push(
    `- Background load (1 s idle before / after the trials): ${(100 * bg.before).toFixed(1)} % / ${
      (100 * bg.after).toFixed(1)
    } % of all CPUs${
      Math.max(bg.before, bg.after) > 0.05
        ? " — **other work was running on the machine: figures are skewed**"
        : ""
    }.`,
    "",
  );
  const d10 = directAt(b, b.settings.latency_rate_pps), df = directAt(b, 0);
  if (d10) {
    L.push(
      `Direct baseline (generator → receiver over one veth, no relay): latency p50 / p99 ${
        lat(d10.latency_us.p50)
      } / ${lat(d10.latency_us.p99)} µs at ${b.settings.latency_rate_pps / 1000} kpps${
        df
          ? `; flat out ${kpps(df.offered_pps)} kpps offered, ${
            kpps(df.delivered_pps)
          } kpps delivered (${pct(df.delivered_pct)} %)`
          : ""
      }. Added latency = relay path minus this baseline.`,
      "",
    );
  }
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
  L.push("## Results by topology and workload", "");
  const seen = new Set<string>();
  for (const r of b.runs) {
    const k = `${r.topology}\u0000${r.workload}`;
    if (seen.has(k)) continue;
    seen.add(k);
    L.push(...groupTables(b, r.topology, r.workload));
  }
  if (b.runs.some((r) => r.kind === "smcroute" && !r.skipped)) {
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

/**
 * IPv6 benchmark (issue 14): one stream through the chain topology (sender
 * ns → relay ns → receiver ns, veth, IPv4 and IPv6 on the same links,
 * bench/lib/family_chain.ts), relayed over IPv6 by mcr, socat and the
 * kernel's IPv6 multicast forwarding (smcroute), and over IPv4 by mcr, at
 * the same offered rates in the same run. Delivery is counted at an
 * independent receiver (mcr-sink) in the receiver namespace, never by a
 * relay's counters.
 *
 * Goals it reports on: mcr's CPU per packet over IPv6 within 10 % of IPv4
 * (relay CPU ÷ datagrams delivered, at each fixed rate), and delivery
 * lossless (≥ 99.9 %) with the generator flat out. `--repeat N` runs the
 * plan N times, relays interleaved; every figure is the median [min–max].
 * Prints a markdown report and writes `bench/results/<UTC start>-ipv6.json`.
 * As root, after `bash scripts/build.sh`:
 *
 *     deno run -A bench/ipv6.ts [--repeat N] [--rates 10000,50000,100000,200000,0]
 *         [--trial-s 2] [--relays mcr6,mcr4,socat6,smcroute6] [--out DIR]
 *
 * A relay that cannot start (mcr before it takes IPv6 rules: the config is
 * refused) is reported with its error, the others still run, and the exit
 * status is 1.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { REPO, skipReason, type Topology } from "../lab/netns.ts";
import { backgroundLoad, machineInfo, peakRssKiB, waitQuiet } from "./lib/procstat.ts";
import { killTracked } from "./lib/procs.ts";
import { runTrial, type TrialPath, type TrialResult } from "./lib/trial.ts";
import { fmtSummary, summarize } from "./lib/summary.ts";
import {
  dualStackChain,
  type Family,
  FAMILY_RELAYS,
  type FamilyRelay,
  hostPort,
  STREAMS,
} from "./lib/family_chain.ts";
import { gitInfo, toolVersions } from "./main.ts";

/** UDP payload bytes of every trial. */
const SIZE = 1024;
/** Lossless means at least this share delivered. */
const LOSSLESS_PCT = 99.9;
/** Goal: mcr's CPU per packet over IPv6 at most this much above IPv4, percent. */
const CPU_GOAL_PCT = 10;
/** Warm-up trial before each relay's measured ones (JIT, joins, neighbour discovery). */
const WARMUP = { rate: 10_000, durationS: 0.3, size: SIZE, purpose: "warmup" };
/** Longest wait for a quiet machine before each relay, seconds. */
const QUIET_MAX_S = 30;
/** Most passes `--repeat` accepts. */
const MAX_REPEAT = 50;
/** Relays run by default, in this order within a pass. */
const DEFAULT_RELAYS = "mcr6,mcr4,socat6,smcroute6";
/** Offered rates by default (total pps; 0 = the generator flat out). */
const DEFAULT_RATES = "10000,50000,100000,200000,0";

/** All trials of one relay in one pass. */
interface FamilyRun {
  /** Relay name ("mcr IPv6"). */
  relay: string;
  /** Relay id ("mcr6"). */
  id: string;
  /** 4 or 6. */
  family: number;
  /** mcr, socat or smcroute. */
  kind: string;
  /** Config / command form. */
  describe: string;
  /** Why the relay did not start, or what ended its trials. */
  error?: string;
  /** Measured trials (no warm-up). */
  trials: TrialResult[];
  /** Peak RSS (VmHWM) of the relay's processes, KiB. */
  peak_rss_kib: number;
  /** Share of all CPUs busy before this relay's trials (0..1). */
  background_load: number;
  /** The relay's own counters (second opinion only). */
  relay_report: Record<string, unknown>;
}

/** One pass: the direct baselines, then every relay. */
interface Ipv6Pass {
  /** 1-based. */
  index: number;
  /** Per family ("4", "6"): gen → sink over the direct link, no relay, at the same rates. */
  direct: Record<string, TrialResult[]>;
  /** The relays, in the order they ran. */
  runs: FamilyRun[];
}

/** What bench/results/<stamp>-ipv6.json holds. */
interface Ipv6BenchRun {
  schema: 1;
  bench: "ipv6";
  started: string;
  finished: string;
  command: string;
  machine: ReturnType<typeof machineInfo>;
  deno: typeof Deno.version;
  git: { commit: string; dirty: boolean };
  tools: Record<string, string>;
  settings: {
    payload_bytes: number;
    lossless_threshold_pct: number;
    cpu_goal_pct: number;
    rates_pps: number[];
    trial_s: number;
  };
  repeat: number;
  topology: string;
  streams: typeof STREAMS;
  relays: Record<string, string>;
  passes: Ipv6Pass[];
  background_load: { before: number; after: number };
}

function log(msg: string): void {
  console.error(`[bench ipv6] ${msg}`);
}

function fmtRate(r: number): string {
  return r === 0 ? "flat out" : `${r / 1000} kpps`;
}

/** The measured trials of `path` (after a warm-up): each rate once. */
async function trials(
  what: string,
  path: TrialPath,
  rates: number[],
  trialS: number,
  tmp: string,
): Promise<TrialResult[]> {
  await runTrial(path, WARMUP, tmp);
  const out: TrialResult[] = [];
  for (const rate of rates) {
    const spec = { rate, durationS: trialS, size: SIZE, purpose: rate ? "rate" : "flat" };
    const r = await runTrial(path, spec, tmp);
    out.push(r);
    log(
      `  ${what} @ ${fmtRate(rate)}: offered ${(r.offered_pps / 1000).toFixed(1)} kpps, ` +
        `delivered ${r.delivered_pct.toFixed(2)} %, relay ` +
        `${r.relay_us_per_pkt?.toFixed(2) ?? "-"} µs/pkt, machine ` +
        `${r.sys_busy_us_per_pkt?.toFixed(2) ?? "-"} µs/pkt`,
    );
  }
  return out;
}

/** The no-relay baseline of `family`: gen → sink over the direct link b0 ↔ b1. */
async function runDirect(
  family: Family,
  t: Topology,
  rates: number[],
  trialS: number,
  tmp: string,
): Promise<TrialResult[]> {
  log(`direct IPv${family} (gen → sink over one veth, no relay)`);
  await waitQuiet(log, QUIET_MAX_S);
  const g = hostPort(STREAMS[family].inGroup, STREAMS[family].inPort);
  return await trials(
    `direct IPv${family}`,
    {
      topo: t,
      sender: { role: "snd", dev: "b0" },
      receiver: { role: "rcv", dev: "b1" },
      dsts: [g],
      sinkGroups: [g],
      relayPids: [],
    },
    rates,
    trialS,
    tmp,
  );
}

/** Run one relay's trials: start it, a warm-up, then each rate once. */
async function runRelay(
  relay: FamilyRelay,
  t: Topology,
  rates: number[],
  trialS: number,
  tmp: string,
): Promise<FamilyRun> {
  const run: FamilyRun = {
    relay: relay.name,
    id: relay.id,
    family: relay.family,
    kind: relay.kind,
    describe: relay.describe,
    trials: [],
    peak_rss_kib: 0,
    background_load: await waitQuiet(log, QUIET_MAX_S),
    relay_report: {},
  };
  log(relay.name);
  let running;
  try {
    running = await relay.start(t, tmp);
  } catch (e) {
    run.error = `start: ${(e as Error).message}`;
    log(`  ${run.error}`);
    return run;
  }
  const s = STREAMS[relay.family];
  const path: TrialPath = {
    topo: t,
    sender: { role: "snd", dev: "s0" },
    receiver: { role: "rcv", dev: "d0" },
    dsts: [hostPort(s.inGroup, s.inPort)],
    sinkGroups: running.sinkGroups,
    relayPids: running.pids,
  };
  try {
    run.trials = await trials(relay.id, path, rates, trialS, tmp);
  } catch (e) {
    run.error = (e as Error).message;
    log(`  error: ${run.error}`);
  } finally {
    run.peak_rss_kib = running.pids.reduce((a, p) => a + peakRssKiB(p), 0);
    try {
      run.relay_report = await running.stop();
    } catch (e) {
      run.relay_report = { stop_error: (e as Error).message };
    }
  }
  return run;
}

/** The runs of relay `id` over all passes. */
function runsOf(b: Ipv6BenchRun, id: string): FamilyRun[] {
  return b.passes.flatMap((p) => p.runs.filter((r) => r.id === id));
}

/** The trials at `rate` of relay `id` over all passes. */
function trialsAt(b: Ipv6BenchRun, id: string, rate: number): TrialResult[] {
  return runsOf(b, id).flatMap((r) => r.trials.filter((t) => t.spec.rate === rate));
}

const f1 = (x: number) => x.toFixed(1);
const f2 = (x: number) => x.toFixed(2);

/** One table row: `ts` over the passes, `above` its machine-above-direct figures. */
function row(label: string, rate: number, ts: TrialResult[], above: (number | null)[]): string {
  const s = (f: (t: TrialResult) => number | null) => summarize(ts.map(f));
  return `| ${label} | ${fmtRate(rate)} | ${fmtSummary(s((t) => t.offered_pps / 1000), f1)} | ` +
    `${fmtSummary(s((t) => t.delivered_pct), f2)} | ` +
    `${fmtSummary(s((t) => t.delivered_pps / 1000), f1)} | ` +
    `${fmtSummary(s((t) => t.relay_us_per_pkt), f2)} | ${fmtSummary(summarize(above), f2)} | ` +
    `${fmtSummary(s((t) => t.latency_us.p50), f1)} / ` +
    `${fmtSummary(s((t) => t.latency_us.p99), f1)} | ` +
    `${ts.reduce((a, t) => a + t.duplicates, 0)} / ${ts.reduce((a, t) => a + t.reordered, 0)} |`;
}

/** The markdown report of a run. */
function renderMarkdown(b: Ipv6BenchRun, jsonPath: string): string {
  const ids = Object.keys(b.relays);
  const name = (id: string) => FAMILY_RELAYS.find((r) => r.id === id)?.name ?? id;
  const out: string[] = [
    `# IPv6 benchmark — ${b.started}`,
    "",
    `\`${b.command}\` · ${b.machine.cores} cores, kernel ${b.machine.kernel}, ` +
    `${b.machine.cpuModel} · git ${b.git.commit.slice(0, 10)}${b.git.dirty ? " (dirty)" : ""} · ` +
    `${b.repeat} pass${b.repeat > 1 ? "es" : ""} (median [min–max]) · ${b.settings.trial_s} s ` +
    `trials of ${SIZE}-byte payloads · background load ` +
    `${(100 * b.background_load.before).toFixed(0)} % before, ` +
    `${(100 * b.background_load.after).toFixed(0)} % after · raw data \`${jsonPath}\``,
    "",
    `Topology: ${b.topology}. Streams: IPv4 ${STREAMS[4].inGroup}:${STREAMS[4].inPort} → ` +
    `${STREAMS[4].outGroup}:${STREAMS[4].outPort}, IPv6 ${hostPort(STREAMS[6].inGroup, 5001)} → ` +
    `${hostPort(STREAMS[6].outGroup, STREAMS[6].outPort)} (the kernel forwards the input group ` +
    `unchanged). Delivery counted by mcr-sink in the receiver namespace.`,
    "",
  ];
  for (const id of ids) out.push(`- **${name(id)}**: ${b.relays[id]}`);
  out.push("");
  const failed = ids.filter((id) => runsOf(b, id).some((r) => r.error));
  for (const id of failed) {
    const errs = runsOf(b, id).filter((r) => r.error);
    out.push(
      `**${name(id)}** failed in ${errs.length} of ${b.repeat} passes: ` +
        `${errs[0].error!.split("\n").slice(0, 4).join(" ")}`,
    );
  }
  if (failed.length) out.push("");
  out.push(
    "| relay | offered rate | generator kpps | delivered % | delivered kpps | relay CPU µs/pkt | machine above direct µs/pkt | latency p50 / p99 µs | dup / reord |",
    "|---|---|---|---|---|---|---|---|---|",
  );
  const families = [...new Set(ids.map((id) => FAMILY_RELAYS.find((r) => r.id === id)!.family))];
  for (const f of families) {
    for (const rate of b.settings.rates_pps) {
      const ts = b.passes.flatMap((p) => (p.direct[f] ?? []).filter((t) => t.spec.rate === rate));
      out.push(row(`direct IPv${f} (no relay)`, rate, ts, []));
    }
  }
  for (const id of ids) {
    const family = FAMILY_RELAYS.find((r) => r.id === id)!.family;
    for (const rate of b.settings.rates_pps) {
      const above: (number | null)[] = [];
      for (const p of b.passes) {
        const d = p.direct[family]?.find((t) => t.spec.rate === rate)?.sys_busy_us_per_pkt;
        for (const r of p.runs.filter((r) => r.id === id)) {
          const x = r.trials.find((t) => t.spec.rate === rate)?.sys_busy_us_per_pkt;
          above.push(x != null && d != null ? x - d : null);
        }
      }
      const ts = trialsAt(b, id, rate);
      if (ts.length) out.push(row(name(id), rate, ts, above));
    }
  }
  out.push(
    "",
    "Relay CPU: the relay's processes' CPU time over the trial (schedstat) ÷ datagrams " +
      "delivered. Machine above direct: all busy CPU of the machine ÷ delivered, minus the same " +
      "for the direct baseline of the family in the same pass at the same rate — the fair figure " +
      "for the kernel's forwarding, which runs in softirq charged to no relay process (partly to " +
      "the generator: veth delivers inside its send).",
    "",
    ...goals(b),
  );
  return out.join("\n") + "\n";
}

/** The goal lines: mcr IPv6 CPU vs IPv4, lossless with the generator flat out. */
function goals(b: Ipv6BenchRun): string[] {
  const out = [`## Goals`, ""];
  const ids = Object.keys(b.relays);
  if (ids.includes("mcr6") && ids.includes("mcr4")) {
    for (const rate of b.settings.rates_pps.filter((r) => r > 0)) {
      const v6 = summarize(trialsAt(b, "mcr6", rate).map((t) => t.relay_us_per_pkt));
      const v4 = summarize(trialsAt(b, "mcr4", rate).map((t) => t.relay_us_per_pkt));
      if (!v6 || !v4) {
        out.push(`- mcr CPU per packet at ${fmtRate(rate)}: IPv6 vs IPv4 not measured`);
        continue;
      }
      const pct = 100 * (v6.median - v4.median) / v4.median;
      out.push(
        `- mcr CPU per packet at ${fmtRate(rate)}: IPv6 ${f2(v6.median)} µs, IPv4 ` +
          `${f2(v4.median)} µs: ${pct >= 0 ? "+" : ""}${f1(pct)} % ` +
          `(goal ≤ +${CPU_GOAL_PCT} %: ${pct <= CPU_GOAL_PCT ? "met" : "missed"})`,
      );
    }
  }
  if (b.settings.rates_pps.includes(0)) {
    for (const id of ids) {
      const ts = trialsAt(b, id, 0);
      if (!ts.length) continue;
      const lossless = ts.every((t) => t.delivered_pct >= LOSSLESS_PCT);
      out.push(
        `- ${FAMILY_RELAYS.find((r) => r.id === id)?.name}, generator flat out ` +
          `(${fmtSummary(summarize(ts.map((t) => t.offered_pps / 1000)), f1)} kpps): delivered ` +
          `${fmtSummary(summarize(ts.map((t) => t.delivered_pct)), f2)} % — ` +
          `${lossless ? "lossless" : "not lossless"} (≥ ${LOSSLESS_PCT} % in every pass)`,
      );
    }
  }
  return out;
}

function usage(): string {
  return "usage: deno run -A bench/ipv6.ts [--repeat N] [--rates LIST] [--trial-s S] " +
    "[--relays LIST] [--out DIR]\n" +
    `  --repeat N    passes (1..${MAX_REPEAT}, default 1): figures are median [min–max]\n` +
    `  --rates LIST  offered total pps, comma-separated, 0 = flat out (default ${DEFAULT_RATES})\n` +
    "  --trial-s S   seconds per trial (default 2)\n" +
    `  --relays LIST relays in order (default ${DEFAULT_RELAYS}; also socat4, smcroute4)\n` +
    "  --out DIR     results directory (default bench/results)";
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      repeat: { type: "string", default: "1" },
      rates: { type: "string", default: DEFAULT_RATES },
      "trial-s": { type: "string", default: "2" },
      relays: { type: "string", default: DEFAULT_RELAYS },
      out: { type: "string", default: `${REPO}/bench/results` },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(usage());
    return 0;
  }
  const repeat = Number(values.repeat);
  const rates = values.rates.split(",").map(Number);
  const trialS = Number(values["trial-s"]);
  const relays = values.relays.split(",").map((id) => FAMILY_RELAYS.find((r) => r.id === id));
  const bad = !Number.isInteger(repeat) || repeat < 1 || repeat > MAX_REPEAT
    ? `--repeat wants 1..${MAX_REPEAT}, got "${values.repeat}"`
    : rates.some((r) => !Number.isInteger(r) || r < 0)
    ? `--rates wants whole numbers ≥ 0, got "${values.rates}"`
    : !(trialS > 0 && trialS <= 60)
    ? `--trial-s wants seconds in (0, 60], got "${values["trial-s"]}"`
    : relays.some((r) => !r)
    ? `--relays wants ids of ${FAMILY_RELAYS.map((r) => r.id).join(", ")}; got "${values.relays}"`
    : null;
  if (bad) {
    console.error(`bench ipv6: ${bad}\n${usage()}`);
    return 2;
  }
  const skip = skipReason();
  if (skip) {
    console.error(`bench ipv6: cannot run: ${skip}`);
    return 3;
  }
  const started = new Date();
  const chosen = relays as FamilyRelay[];
  const result: Ipv6BenchRun = {
    schema: 1,
    bench: "ipv6",
    started: started.toISOString(),
    finished: "",
    command: `deno run -A bench/ipv6.ts ${Deno.args.join(" ")}`.trim(),
    machine: machineInfo(),
    deno: Deno.version,
    git: await gitInfo(),
    tools: await toolVersions(),
    settings: {
      payload_bytes: SIZE,
      lossless_threshold_pct: LOSSLESS_PCT,
      cpu_goal_pct: CPU_GOAL_PCT,
      rates_pps: rates,
      trial_s: trialS,
    },
    repeat,
    topology: "chain: snd s0 (10.77.1.1, fd77:1::1) — r0 rly r1 — d0 rcv (10.77.2.2, " +
      "fd77:2::2), and a direct link snd b0 — b1 rcv for the no-relay baseline; veth, IPv6 " +
      "addresses nodad",
    streams: STREAMS,
    relays: Object.fromEntries(chosen.map((r) => [r.id, r.describe])),
    passes: [],
    background_load: { before: await backgroundLoad(), after: 0 },
  };
  // lab/netns.ts's own handler deletes the namespaces and exits after this one.
  Deno.addSignalListener("SIGINT", killTracked);
  Deno.addSignalListener("SIGTERM", killTracked);
  const tmp = await Deno.makeTempDir({ prefix: "mcr-bench6-" });
  let t: Topology | undefined;
  try {
    t = await dualStackChain("b6");
    for (let index = 1; index <= repeat; index++) {
      if (repeat > 1) log(`pass ${index} of ${repeat}`);
      const pass: Ipv6Pass = { index, direct: {}, runs: [] };
      for (const f of new Set(chosen.map((r) => r.family))) {
        pass.direct[f] = await runDirect(f, t, rates, trialS, tmp);
      }
      for (const relay of chosen) pass.runs.push(await runRelay(relay, t, rates, trialS, tmp));
      result.passes.push(pass);
    }
    result.background_load.after = await backgroundLoad();
  } finally {
    killTracked();
    await t?.destroy();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  result.finished = new Date().toISOString();
  await Deno.mkdir(values.out, { recursive: true });
  const stamp = started.toISOString().replace(/\.\d+Z$/, "Z").replaceAll(":", "-");
  const jsonPath = `${values.out}/${stamp}-ipv6${repeat > 1 ? `-x${repeat}` : ""}.json`;
  await Deno.writeTextFile(jsonPath, JSON.stringify(result, null, 2) + "\n");
  console.log(renderMarkdown(result, jsonPath.replace(`${REPO}/`, "")));
  log(`wrote ${jsonPath}`);
  return result.passes.some((p) => p.runs.some((r) => r.error)) ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());

/**
 * The mcr benchmark harness. Builds the topologies in network namespaces,
 * runs mcr (ring variants), socat and the kernel's multicast forwarding
 * (smcroute) — or, in floor mode, mcr and the bare C reference relay of
 * bench/floor — at the same offered rates in the same run, counts delivery at
 * an independent receiver, and writes `bench/results/<stamp>-<mode>.json`,
 * `bench/results/latest.md` (also printed) and `bench/results/latest.svg`.
 * `--repeat N` runs the whole plan N times; every figure is then reported as
 * the median over the passes and its range.
 *
 *     bash bench/run.sh [--quick|--full|--floor] [--repeat N]   (deno task bench -- --repeat 5)
 *
 * See bench/README.md for what every figure means.
 *
 * Long file: the whole trial matrix (topologies × relays × rates), its
 * cleanup on signals and the report are one flow read top to bottom; the
 * pieces that stand alone are in bench/lib/.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { REPO, sh, skipReason, type Topology } from "../lab/netns.ts";
import { backgroundLoad, machineInfo, peakRssKiB, waitQuiet } from "./lib/procstat.ts";
import {
  type BenchTopo,
  chainTopology,
  dualBridgeTopology,
  FANOUT_10,
  ONE_TO_ONE,
  STREAMS_50,
  STREAMS_8,
  type Workload,
} from "./lib/topologies.ts";
import { FLOOR, mcrRelay, type RelayDef, SMCROUTE, SOCAT } from "./lib/relays.ts";
import { killTracked } from "./lib/procs.ts";
import { runTrial, type TrialPath, type TrialResult, type TrialSpec } from "./lib/trial.ts";
import {
  type BenchRun,
  type HotloopResult,
  type MaxLossless,
  type Pass,
  type RelayRun,
  upgradeRun,
} from "./lib/types.ts";
import { HOTLOOP_COMMAND, runHotloop } from "./lib/hotloop_run.ts";
import { FLOOR_CPU_RATE, renderMarkdown } from "./lib/report_md.ts";
import { renderSvg } from "./lib/report_svg.ts";

/** Payload size of every trial (bytes). */
const SIZE = 1024;
/** Lossless means at least this share delivered. */
const LOSSLESS_PCT = 99.9;
/** Latency is measured at this offered rate. */
const LATENCY_RATE = 10_000;

/** mcr ring variants compared in the chain topology. */
const MCR_V2 = mcrRelay(
  "mcr-v2",
  { tpacket_version: 2 },
  "TPACKET_V2, adaptive gathering on (defaults: above 20 kpps a batch of (rate / 20 kpps)² frames, at most 250 µs)",
);
const MCR_V2_NOGATHER = mcrRelay(
  "mcr-v2-nogather",
  { tpacket_version: 2, coalesce_pps: 4294967295 },
  "TPACKET_V2, gathering never triggers (coalesce_pps at its maximum: the config cannot pass coalesce_us = UINT32_MAX)",
);
const MCR_V3 = mcrRelay(
  "mcr-v3",
  { tpacket_version: 3 },
  "TPACKET_V3 (64 KiB blocks, 1 ms retire timeout)",
);
const MCR_DEFAULT = mcrRelay("mcr", undefined, "the relay's default rx settings");
/**
 * Default settings with the data-path workers at nice -10 all the time
 * (`worker_priority: "fixed"`; the default raises them only while they fall
 * behind): on this 2-core machine the generator and the receiver share the
 * relay's cores, and a worker at -10 preempts them at every wake-up.
 */
const MCR_FIXED = mcrRelay(
  "mcr-fixed",
  undefined,
  "default rx settings, workers at worker_nice (-10) all the time (worker_priority fixed)",
  { worker_priority: "fixed" },
);
/**
 * A wider gather: batches of (rate / 10 kpps)² frames within at most 1 ms
 * (100 frames at 100 kpps, as a V3 block of the floor holds), against the
 * defaults' 25 within 250 µs. What the stretch goal's CPU would cost in
 * latency at high rates.
 */
const MCR_WIDE = mcrRelay(
  "mcr-wide",
  { coalesce_us: 1000, coalesce_pps: 10000 },
  "wider gather: (rate / 10 kpps)² frames, at most 1 ms",
);
const MCR_1W = mcrRelay("mcr-1w", undefined, "one worker", { workers: 1 });
const MCR_2W = mcrRelay("mcr-2w", undefined, "two workers in one fanout group (hash)", {
  workers: 2,
});

/** Most passes `--repeat` accepts. */
const MAX_REPEAT = 50;

/** One block of the plan: a topology, a workload, the relays, the rates. */
interface PlanItem {
  topology: "chain" | "dualbridge";
  workload: Workload;
  relays: RelayDef[];
  /** Offered rates (total pps); 0 = generator flat out. */
  rates: number[];
  bisect: boolean;
}

interface Mode {
  name: string;
  trialS: number;
  latencyTrialS: number;
  bisectTrialS: number;
  bisectSteps: number;
  plan: PlanItem[];
}

const QUICK: Mode = {
  name: "quick",
  trialS: 1.5,
  latencyTrialS: 2,
  bisectTrialS: 1,
  bisectSteps: 0,
  plan: [{
    topology: "chain",
    workload: ONE_TO_ONE,
    relays: [MCR_V2, MCR_V2_NOGATHER, MCR_V3, SOCAT, SMCROUTE],
    rates: [10_000, 100_000, 200_000, 0],
    bisect: false,
  }],
};

const FULL: Mode = {
  name: "full",
  trialS: 3,
  latencyTrialS: 3,
  bisectTrialS: 1.5,
  bisectSteps: 6,
  plan: [
    {
      topology: "chain",
      workload: ONE_TO_ONE,
      relays: [MCR_V2, MCR_V2_NOGATHER, MCR_V3, SOCAT, SMCROUTE],
      rates: [10_000, 50_000, 100_000, 200_000, 300_000, 0],
      bisect: true,
    },
    {
      topology: "dualbridge",
      workload: ONE_TO_ONE,
      relays: [MCR_DEFAULT, SOCAT, SMCROUTE],
      rates: [10_000, 50_000, 100_000, 200_000, 0],
      bisect: true,
    },
    {
      topology: "chain",
      workload: FANOUT_10,
      relays: [MCR_DEFAULT, SOCAT, SMCROUTE],
      rates: [1_000, 10_000, 20_000, 30_000, 0],
      bisect: true,
    },
    {
      topology: "chain",
      workload: STREAMS_8,
      relays: [MCR_1W, MCR_2W],
      rates: [100_000, 200_000, 0],
      bisect: true,
    },
    {
      topology: "chain",
      workload: STREAMS_50,
      relays: [MCR_DEFAULT, SOCAT, SMCROUTE],
      rates: [10_000, 50_000, 100_000, 200_000, 0],
      bisect: true,
    },
  ],
};

/**
 * mcr against the bare C reference relay: relay CPU per packet at 100 kpps (and
 * 200 kpps) and added latency at 10 kpps, mcr's default (workers at nice -10
 * and 0) and V3 rings and the floor, 3 s trials.
 */
const FLOOR_MODE: Mode = {
  name: "floor",
  trialS: 3,
  latencyTrialS: 3,
  bisectTrialS: 1,
  bisectSteps: 0,
  plan: [{
    topology: "chain",
    workload: ONE_TO_ONE,
    relays: [MCR_DEFAULT, MCR_FIXED, MCR_WIDE, MCR_V3, FLOOR],
    rates: [LATENCY_RATE, FLOOR_CPU_RATE, 200_000],
    bisect: false,
  }],
};

function log(msg: string): void {
  console.error(`[bench] ${msg}`);
}

function fmtRate(r: number): string {
  return r === 0 ? "flat out" : `${r / 1000} kpps`;
}

function trialLine(t: TrialResult): string {
  const cpu = t.relay_us_per_pkt === null ? "-" : `${t.relay_us_per_pkt.toFixed(2)} µs/pkt`;
  return `offered ${(t.offered_pps / 1000).toFixed(1)} kpps, delivered ${
    t.delivered_pct.toFixed(2)
  } % ` +
    `(${(t.delivered_pps / 1000).toFixed(1)} kpps), relay ${cpu}, sys ${
      t.sys_us_per_pkt?.toFixed(2) ?? "-"
    } µs/pkt, p50/p99 ${t.latency_us.p50}/${t.latency_us.p99} µs, dup ${t.duplicates}, reord ${t.reordered}`;
}

function passes(t: TrialResult): boolean {
  return t.delivered_pct >= LOSSLESS_PCT;
}

/** Run the fixed rates, then bisect for the maximum lossless rate. */
async function runRelayTrials(
  mode: Mode,
  item: PlanItem,
  path: TrialPath,
  run: RelayRun,
  tmp: string,
): Promise<void> {
  // Warm-up (not recorded): JIT, IGMP joins, first-packet paths.
  await runTrial(path, { rate: LATENCY_RATE, durationS: 0.3, size: SIZE, purpose: "warmup" }, tmp);
  for (const rate of item.rates) {
    const spec: TrialSpec = {
      rate,
      durationS: rate === LATENCY_RATE ? mode.latencyTrialS : mode.trialS,
      size: SIZE,
      purpose: rate === 0 ? "flat" : "rate",
    };
    const t = await runTrial(path, spec, tmp);
    run.trials.push(t);
    log(`  ${run.relay} @ ${fmtRate(rate)}: ${trialLine(t)}`);
  }
  run.max_lossless = await maxLossless(mode, item, path, run, tmp);
}

async function maxLossless(
  mode: Mode,
  item: PlanItem,
  path: TrialPath,
  run: RelayRun,
  tmp: string,
): Promise<MaxLossless> {
  const all = () => [...run.trials, ...run.bisection];
  // A pass counts at the rate the generator achieved; a failure at the rate
  // that was asked for (the relay was offered it, even if the generator lagged).
  const best = () => Math.max(0, ...all().filter(passes).map((t) => t.offered_pps));
  const failing = () => {
    const f = all().filter((t) => !passes(t)).map((t) => t.spec.rate || t.offered_pps)
      .filter((r) => r > best());
    return f.length ? Math.min(...f) : null;
  };
  const flat = run.trials.find((t) => t.spec.rate === 0);
  if (flat && passes(flat)) {
    return { pps: flat.offered_pps, method: "generator", failing_pps: null };
  }
  if (!item.bisect || mode.bisectSteps === 0) {
    return { pps: best(), method: "tested", failing_pps: failing() };
  }
  const tried = new Set<number>();
  for (let step = 0; step < mode.bisectSteps; step++) {
    const lo = best();
    const hi = failing();
    if (hi === null) break;
    if (hi - lo <= Math.max(2_000, 0.03 * hi)) break;
    const mid = Math.round((lo + hi) / 2 / 1000) * 1000;
    if (tried.has(mid)) break; // the generator cannot reach it: no progress possible
    tried.add(mid);
    const t = await runTrial(path, {
      rate: mid,
      durationS: mode.bisectTrialS,
      size: SIZE,
      purpose: "bisect",
    }, tmp);
    run.bisection.push(t);
    log(`  ${run.relay} bisect ${fmtRate(mid)}: ${trialLine(t)}`);
  }
  return { pps: best(), method: "bisection", failing_pps: failing() };
}

async function runRelay(
  mode: Mode,
  item: PlanItem,
  bt: BenchTopo,
  relay: RelayDef,
  tmp: string,
): Promise<RelayRun> {
  const run: RelayRun = {
    topology: bt.name,
    workload: item.workload.name,
    relay: relay.name,
    kind: relay.kind,
    describe: relay.describe,
    trials: [],
    bisection: [],
    max_lossless: null,
    peak_rss_kib: 0,
    processes: 0,
    relay_report: {},
    background_load: 0,
  };
  const why = relay.unsupported(item.workload);
  if (why) {
    run.skipped = why;
    log(`${relay.name} on ${bt.name}/${item.workload.name}: skipped (${why})`);
    return run;
  }
  log(`${relay.name} on ${bt.name}/${item.workload.name}`);
  run.background_load = await waitQuiet(log);
  let running;
  try {
    running = await relay.start(bt, item.workload, tmp);
  } catch (e) {
    run.error = `start: ${(e as Error).message}`;
    log(`  ${run.error}`);
    return run;
  }
  run.processes = running.pids.length;
  const path: TrialPath = {
    topo: bt.topo,
    sender: bt.sender,
    receiver: bt.receiver,
    dsts: item.workload.streams.map((s) => `${s.inGroup}:${s.inPort}`),
    sinkGroups: running.sinkGroups,
    relayPids: running.pids,
  };
  try {
    await runRelayTrials(mode, item, path, run, tmp);
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

async function runDirect(mode: Mode, bt: BenchTopo, tmp: string): Promise<TrialResult[]> {
  const rates = [
    ...new Set(mode.plan.filter((p) => p.workload === ONE_TO_ONE).flatMap((p) => p.rates)),
  ]
    .sort((a, b) => (a || Infinity) - (b || Infinity));
  if (!bt.direct) return [];
  const path: TrialPath = {
    topo: bt.topo,
    sender: bt.direct.sender,
    receiver: bt.direct.receiver,
    dsts: ["239.1.1.1:5001"],
    sinkGroups: ["239.1.1.1:5001"],
    relayPids: [],
  };
  log("direct baseline (gen → sink over one veth, no relay)");
  await waitQuiet(log);
  await runTrial(path, { rate: LATENCY_RATE, durationS: 0.3, size: SIZE, purpose: "warmup" }, tmp);
  const out: TrialResult[] = [];
  for (const rate of rates) {
    const spec = {
      rate,
      durationS: rate === LATENCY_RATE ? mode.latencyTrialS : mode.trialS,
      size: SIZE,
      purpose: rate ? "rate" : "flat",
    };
    const t = await runTrial(path, spec, tmp);
    out.push(t);
    log(`  direct @ ${fmtRate(rate)}: ${trialLine(t)}`);
  }
  return out;
}

/** socat and smcrouted versions, recorded with a run. */
export async function toolVersions(): Promise<Record<string, string>> {
  const first = async (cmd: string[]) =>
    (await sh(cmd, { allowFail: true }).catch(() => "")).split("\n").find((l) => l.trim()) ?? "";
  const socat =
    (await first(["socat", "-V"]).then(async (l) =>
      l.includes("version")
        ? l
        : (await sh(["socat", "-V"], { allowFail: true })).split("\n")[1] ?? ""
    )).trim();
  return {
    socat,
    smcroute: (await first(["smcrouted", "-v"])).trim(),
  };
}

/** The commit benchmarked and whether the tree had uncommitted changes. */
export async function gitInfo(): Promise<{ commit: string; dirty: boolean }> {
  const commit = (await sh(["git", "-C", REPO, "rev-parse", "HEAD"], { allowFail: true })).trim();
  const status = await sh(["git", "-C", REPO, "status", "--porcelain"], { allowFail: true });
  return { commit: commit || "unknown", dirty: status.trim().length > 0 };
}

/**
 * mcr from another built checkout, named after its revision, or why it cannot
 * run.
 */
async function baselineRelay(dir: string): Promise<RelayDef | string> {
  for (const f of ["cli.ts", "build/libmcr.so"]) {
    try {
      await Deno.stat(`${dir}/${f}`);
    } catch {
      return `no ${f} there (a checkout of mcr built with scripts/build.sh)`;
    }
  }
  const rev = (await sh(["git", "-C", dir, "rev-parse", "--short=7", "HEAD"], { allowFail: true }))
    .trim();
  return mcrRelay(
    `mcr@${rev || "baseline"}`,
    undefined,
    "the baseline checkout's default rx settings",
    {},
    dir,
  );
}

/** The mode with the baseline relay after the first mcr relay of every plan item. */
function withBaseline(mode: Mode, b: RelayDef): Mode {
  return {
    ...mode,
    name: `${mode.name}-baseline`,
    plan: mode.plan.map((p) => {
      const i = p.relays.findIndex((r) => r.kind === "mcr");
      const relays = [...p.relays];
      relays.splice(i < 0 ? 0 : i + 1, 0, b);
      return { ...p, relays };
    }),
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean" },
      full: { type: "boolean" },
      floor: { type: "boolean" },
      repeat: { type: "string" },
      "no-hotloop": { type: "boolean" },
      out: { type: "string" },
      render: { type: "string" },
      only: { type: "string" },
      baseline: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(
      "usage: bash bench/run.sh [--quick|--full|--floor] [--repeat N] [--baseline DIR] [--no-hotloop] [--out DIR]\n" +
        "  --quick       chain topology, mcr ring variants + socat + smcroute, 4 rates, short trials (default)\n" +
        "  --full        all topologies and workloads, more rates, bisection for the max lossless rate\n" +
        "  --floor       mcr (default, workers at nice 0, V3 rings) against the bare C reference relay\n" +
        "                (bench/floor): relay CPU per packet at 100 and 200 kpps, added latency at 10 kpps\n" +
        `  --repeat N    run the whole plan N times (1..${MAX_REPEAT}, default 1); every figure is then\n` +
        "                the median over the passes and its range\n" +
        "  --no-hotloop  skip the deno bench hot-loop microbenchmarks\n" +
        "  --out DIR     results directory (default bench/results)\n" +
        "  --only NAME   run only the plan items whose workload is NAME (e.g. streams-8)\n" +
        "  --baseline DIR  also run mcr from DIR, another checkout built with scripts/build.sh\n" +
        "                (e.g. an older revision: git worktree add DIR REV), with default settings,\n" +
        "                next to this tree's first mcr in every plan item: one run compares them\n" +
        "  --render JSON re-render the report (latest.md and .svg, or latest-floor.md) of a stored run",
    );
    return 0;
  }
  if (values.render) {
    // Re-render the report of a stored run (no traffic).
    const b = upgradeRun(JSON.parse(await Deno.readTextFile(values.render)));
    const md = await writeReport(b, values.out ?? `${REPO}/bench/results`, values.render);
    console.log(md);
    return 0;
  }
  const skip = skipReason();
  if (skip) {
    console.error(`bench: cannot run: ${skip}`);
    return 3;
  }
  const repeat = Number(values.repeat ?? "1");
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > MAX_REPEAT) {
    console.error(`bench: --repeat wants a whole number 1..${MAX_REPEAT}, got "${values.repeat}"`);
    return 2;
  }
  if ([values.quick, values.full, values.floor].filter(Boolean).length > 1) {
    console.error("bench: choose one of --quick, --full, --floor");
    return 2;
  }
  const base = values.full ? FULL : values.floor ? FLOOR_MODE : QUICK;
  const only: Mode = values.only
    ? {
      ...base,
      name: `${base.name}-${values.only}`,
      plan: base.plan.filter((p) => p.workload.name === values.only),
    }
    : base;
  let mode = only;
  if (values.baseline) {
    const b = await baselineRelay(values.baseline);
    if (typeof b === "string") {
      console.error(`bench: --baseline ${values.baseline}: ${b}`);
      return 2;
    }
    mode = withBaseline(only, b);
  }
  if (mode.plan.length === 0) {
    console.error(`bench: no plan item with workload "${values.only}" in ${base.name} mode`);
    return 2;
  }
  const outDir = values.out ?? `${REPO}/bench/results`;
  const started = new Date();
  const command = Deno.env.get("MCR_BENCH_COMMAND") ??
    `deno run -A bench/main.ts ${Deno.args.join(" ")}`.trim();
  const tmp = await Deno.makeTempDir({ prefix: "mcr-bench-" });
  const topos: BenchTopo[] = [];
  const onSignal = () => {
    killTracked();
    for (const bt of topos) {
      for (const n of bt.topo.namespaces) {
        const pids = new Deno.Command("ip", {
          args: ["netns", "pids", n],
          stdout: "piped",
          stderr: "null",
        })
          .outputSync();
        for (const p of new TextDecoder().decode(pids.stdout).split("\n").filter(Boolean)) {
          try {
            Deno.kill(Number(p), "SIGKILL");
          } catch { /* gone */ }
        }
      }
    }
    // lab/netns.ts's own handler then deletes the namespaces and exits.
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  const result: BenchRun = {
    schema: 2,
    mode: mode.name,
    started: started.toISOString(),
    finished: "",
    command,
    machine: machineInfo(),
    deno: Deno.version,
    git: await gitInfo(),
    tools: await toolVersions(),
    settings: {
      payload_bytes: SIZE,
      lossless_threshold_pct: LOSSLESS_PCT,
      latency_rate_pps: LATENCY_RATE,
      trial_s: mode.trialS,
      latency_trial_s: mode.latencyTrialS,
      bisect_trial_s: mode.bisectTrialS,
    },
    repeat,
    topologies: {},
    workloads: {},
    passes: [],
    hotloop: null,
    background_load: { before: 0, after: 0 },
  };
  log(
    `mode ${mode.name}, ${repeat} pass${
      repeat > 1 ? "es" : ""
    }; ${result.machine.cores} cores, kernel ${result.machine.kernel}, deno ${Deno.version.deno}`,
  );

  try {
    if (!values["no-hotloop"]) {
      log("hot loop: deno bench bench/hotloop_bench.ts");
      const h: HotloopResult = { ns_per_packet: {}, command: HOTLOOP_COMMAND };
      try {
        for (const [k, v] of Object.entries(await runHotloop())) h.ns_per_packet[k] = v.p75;
      } catch (e) {
        h.error = (e as Error).message;
      }
      result.hotloop = h;
    }
    const built = new Map<string, BenchTopo>();
    const topoOf = async (name: PlanItem["topology"]): Promise<BenchTopo> => {
      let bt = built.get(name);
      if (!bt) {
        log(`building topology ${name}`);
        bt = name === "chain" ? await chainTopology() : await dualBridgeTopology();
        built.set(name, bt);
        topos.push(bt);
        result.topologies[name] = bt.describe;
      }
      return bt;
    };
    result.background_load.before = await backgroundLoad();
    log(
      `background load before the run: ${
        (100 * result.background_load.before).toFixed(1)
      } % of all CPUs`,
    );
    const chain = await topoOf("chain");
    for (let index = 1; index <= repeat; index++) {
      if (repeat > 1) log(`pass ${index} of ${repeat}`);
      const pass: Pass = {
        index,
        direct: [],
        runs: [],
        background_load: { before: await backgroundLoad(), after: 0 },
      };
      pass.direct = await runDirect(mode, chain, tmp);
      for (const item of mode.plan) {
        const bt = await topoOf(item.topology);
        result.workloads[item.workload.name] = item.workload.describe;
        for (const relay of item.relays) {
          pass.runs.push(await runRelay(mode, item, bt, relay, tmp));
        }
      }
      pass.background_load.after = await backgroundLoad();
      result.passes.push(pass);
    }
    result.background_load.after = await backgroundLoad();
  } finally {
    killTracked();
    for (const bt of topos) await destroy(bt.topo);
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  result.finished = new Date().toISOString();

  await Deno.mkdir(outDir, { recursive: true });
  const stamp = started.toISOString().replace(/\.\d+Z$/, "Z").replaceAll(":", "-");
  const jsonPath = `${outDir}/${stamp}-${mode.name}${repeat > 1 ? `-x${repeat}` : ""}.json`;
  await Deno.writeTextFile(jsonPath, JSON.stringify(result, null, 2) + "\n");
  console.log(await writeReport(result, outDir, jsonPath));
  log(`wrote ${jsonPath} and its report in ${outDir}`);
  return result.passes.some((p) => p.runs.some((r) => r.error)) ? 1 : 0;
}

/**
 * Write the report of a run next to its JSON: `latest.md` and `latest.svg`
 * (quick and full modes), `latest-floor.md` (floor mode, no chart). Returns
 * the markdown.
 */
async function writeReport(b: BenchRun, dir: string, jsonPath: string): Promise<string> {
  const md = renderMarkdown(b, jsonPath.replace(`${REPO}/`, ""));
  await Deno.mkdir(dir, { recursive: true });
  if (b.mode.startsWith("floor")) {
    await Deno.writeTextFile(`${dir}/latest-floor.md`, md);
  } else {
    await Deno.writeTextFile(`${dir}/latest.md`, md);
    await Deno.writeTextFile(`${dir}/latest.svg`, renderSvg(b));
  }
  return md;
}

async function destroy(t: Topology): Promise<void> {
  await t.destroy();
}

if (import.meta.main) Deno.exit(await main());

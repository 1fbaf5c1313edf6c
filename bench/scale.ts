/**
 * Scale benchmarks of mcr (issue 12), as root, in network namespaces:
 *
 * a) idle — N input interfaces (veth pairs) with one rule each and no
 *    traffic: time from spawn to the ready file, RSS, threads and fds summed
 *    over the relay's processes, CPU over 10 s of idling (N = 1, 16, 64, 256);
 * b) traffic — N input interfaces, one stream each, one generator per
 *    interface, all started at once; every stream counted at an independent
 *    receiver (mcr-sink): delivered / sent per stream, RSS, relay CPU;
 * c) rules — R rules on one input interface (the configuration holds R − 1;
 *    the R-th is added live): ready time, RSS, then two windows of steady
 *    traffic on two of the rules — one without and one with a `ctl add`
 *    (control socket, CLOCK_MONOTONIC on both sides) — giving the time from
 *    the add to the new rule's first datagram at the receiver and the longest
 *    gap of the steady streams at the receiver. On the old design (before
 *    the worker pool) more than 4096 rules are refused at load: noted.
 *
 * A relay that is not ready within --ready-timeout seconds (default 120) is
 * killed and the report notes it, with its RSS and threads at that moment,
 * instead of the bench hanging.
 *
 * Writes `bench/results/scale-<stamp>.json` and `bench/results/latest-scale.md`
 * (also printed). See bench/README.md ("Scale").
 *
 *     deno task bench:scale                       # a), b), c) with the defaults
 *     deno task bench:scale --only idle --interfaces 1,16 --repeat 3
 *
 * @module
 */
import { parseArgs } from "node:util";
import { REPO, sh, skipReason } from "../lab/netns.ts";
import { backgroundLoad, machineInfo } from "./lib/procstat.ts";
import { killTracked } from "./lib/procs.ts";
import { renderScale, type ScaleRun } from "./lib/scale_report.ts";
import { type Ctx, idle, IDLE_S, rulesBench, SETTLE_S, traffic } from "./lib/scale_runs.ts";
import { SIZE } from "./lib/scale_io.ts";
import { MAX_INPUTS } from "./lib/scale_topo.ts";

/** Most passes `--repeat` accepts. */
const MAX_REPEAT = 20;
/** Default seconds a relay may take to become ready before the bench gives up on it. */
const READY_TIMEOUT_S = 120;
/** Most rules `--rules` accepts (one input group each, 239.2.0.0/16). */
const MAX_RULE_COUNT = 65536;
/** Default longest wait for a quiet machine before each relay, s. */
const QUIET_WAIT_S = 90;

function log(msg: string): void {
  console.error(`[scale] ${msg}`);
}

function usage(): string {
  return `usage: deno task bench:scale [options]      (as root; deno run -A bench/scale.ts)
  --only LIST            idle,traffic,rules (default: all three)
  --interfaces LIST      a) input interface counts (default 1,16,64,256)
  --traffic-interfaces N b) input interfaces with one stream each (default 64)
  --stream-pps N         b) datagrams per second per stream (default 500)
  --traffic-s S          b) seconds of sending (default 5)
  --rules LIST           c) rule counts once the live add is done (default 4096,65536; the config holds one fewer)
  --rules-pps N          c) datagrams per second of each of the 3 streams (2 steady + the new rule; default 5000)
  --window-s S           c) length of each traffic window; the add is sent at its middle (default 4)
  --repeat N             every experiment N times (1..${MAX_REPEAT}, default 1): median and range
  --ready-timeout S      give up on a relay not ready after S seconds (default ${READY_TIMEOUT_S}); noted in the report
  --quiet-wait S         wait up to S seconds for a quiet machine before each relay (default ${QUIET_WAIT_S})
  --mem-cap MIB          run the relay in a memory cgroup capped at MIB (default 12288; 0 = no cap)
  --out DIR              results directory (default bench/results)`;
}

async function gitInfo(): Promise<{ commit: string; dirty: boolean }> {
  const commit = (await sh(["git", "-C", REPO, "rev-parse", "HEAD"], { allowFail: true })).trim();
  const status = await sh(["git", "-C", REPO, "status", "--porcelain"], { allowFail: true });
  return { commit: commit || "unknown", dirty: status.trim().length > 0 };
}

function list(s: string | undefined, dflt: number[]): number[] {
  return s ? s.split(",").map((x) => Number(x.trim())) : dflt;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      only: { type: "string" },
      interfaces: { type: "string" },
      "traffic-interfaces": { type: "string" },
      "stream-pps": { type: "string" },
      "traffic-s": { type: "string" },
      rules: { type: "string" },
      "rules-pps": { type: "string" },
      "window-s": { type: "string" },
      repeat: { type: "string" },
      "ready-timeout": { type: "string" },
      "quiet-wait": { type: "string" },
      "mem-cap": { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(usage());
    return 0;
  }
  const only = new Set((values.only ?? "idle,traffic,rules").split(",").map((x) => x.trim()));
  const counts = list(values.interfaces, [1, 16, 64, 256]);
  const tn = Number(values["traffic-interfaces"] ?? 64);
  const spps = Number(values["stream-pps"] ?? 500);
  const ts = Number(values["traffic-s"] ?? 5);
  const ruleCounts = list(values.rules, [4096, 65536]);
  const rpps = Number(values["rules-pps"] ?? 5000);
  const windowS = Number(values["window-s"] ?? 4);
  const repeat = Number(values.repeat ?? 1);
  const readyTimeoutS = Number(values["ready-timeout"] ?? READY_TIMEOUT_S);
  const quietWaitS = Number(values["quiet-wait"] ?? QUIET_WAIT_S);
  const memCap = Number(values["mem-cap"] ?? 12288);
  const bad = [...only].find((x) => !["idle", "traffic", "rules"].includes(x)) ??
    (counts.some((n) => !Number.isInteger(n) || n < 1 || n > MAX_INPUTS) ? "--interfaces" : null) ??
    (!Number.isInteger(tn) || tn < 1 || tn > MAX_INPUTS ? "--traffic-interfaces" : null) ??
    (!(spps > 0) || !(ts > 0) || !(rpps > 0) || !(windowS >= 1) ? "a rate or duration" : null) ??
    (ruleCounts.some((n) => !Number.isInteger(n) || n < 2 || n > MAX_RULE_COUNT)
      ? "--rules"
      : null) ??
    (!Number.isInteger(repeat) || repeat < 1 || repeat > MAX_REPEAT ? "--repeat" : null) ??
    (!(readyTimeoutS > 0) || !(quietWaitS >= 0) || !(memCap >= 0)
      ? "--ready-timeout, --quiet-wait or --mem-cap"
      : null);
  if (bad) {
    console.error(`bench:scale: bad ${bad}\n${usage()}`);
    return 2;
  }
  const skip = skipReason();
  if (skip) {
    console.error(`bench:scale: cannot run: ${skip}`);
    return 3;
  }
  const outDir = values.out ?? `${REPO}/bench/results`;
  const started = new Date();
  const tmp = await Deno.makeTempDir({ prefix: "mcr-scale-" });
  const ctx: Ctx = {
    tmp,
    readyTimeoutS,
    memCapMiB: memCap || null,
    quietWaitS,
    topos: [],
    log,
  };
  const onSignal = () => killTracked(); // lab/netns.ts's handler then deletes the namespaces
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const run: ScaleRun = {
    schema: 1,
    started: started.toISOString(),
    finished: "",
    command: `deno task bench:scale ${Deno.args.join(" ")}`.trim(),
    machine: machineInfo(),
    deno: Deno.version,
    git: await gitInfo(),
    settings: {
      experiments: [...only],
      interfaces: counts,
      traffic_interfaces: tn,
      stream_pps: spps,
      traffic_s: ts,
      rules: ruleCounts,
      rules_pps_per_stream: rpps,
      window_s: windowS,
      repeat,
      ready_timeout_s: readyTimeoutS,
      quiet_wait_s: quietWaitS,
      mem_cap_mib: memCap || null,
      settle_s: SETTLE_S,
      idle_s: IDLE_S,
      payload_bytes: SIZE,
    },
    idle: [],
    traffic: [],
    rules: [],
    background_load: { before: await backgroundLoad(), after: 0 },
  };
  log(`background load before the run: ${(100 * run.background_load.before).toFixed(1)} %`);
  try {
    for (let pass = 1; pass <= repeat; pass++) {
      if (repeat > 1) log(`pass ${pass} of ${repeat}`);
      if (only.has("idle")) {
        for (const n of counts) {
          log(`a) ${n} input interfaces, no traffic`);
          run.idle.push(await idle(ctx, n, pass));
        }
      }
      if (only.has("traffic")) {
        log(`b) ${tn} input interfaces, one stream each at ${spps} pps, all at once`);
        run.traffic.push(await traffic(ctx, tn, spps, ts, pass));
      }
      if (only.has("rules")) {
        for (const n of ruleCounts) {
          log(`c) ${n} rules on one interface, live add`);
          run.rules.push(await rulesBench(ctx, n, rpps, windowS, pass));
        }
      }
    }
    run.background_load.after = await backgroundLoad();
  } finally {
    killTracked();
    for (const t of ctx.topos) await t.destroy();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  run.finished = new Date().toISOString();
  await Deno.mkdir(outDir, { recursive: true });
  const stamp = started.toISOString().replace(/\.\d+Z$/, "Z").replaceAll(":", "-");
  const jsonPath = `${outDir}/scale-${stamp}.json`;
  await Deno.writeTextFile(jsonPath, JSON.stringify(run, null, 2) + "\n");
  const md = renderScale(run, jsonPath.replace(`${REPO}/`, ""));
  await Deno.writeTextFile(`${outDir}/latest-scale.md`, md);
  console.log(md);
  log(`wrote ${jsonPath} and ${outDir}/latest-scale.md`);
  return 0;
}

if (import.meta.main) Deno.exit(await main());

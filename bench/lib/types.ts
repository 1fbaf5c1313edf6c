/**
 * The shape of a benchmark run as written to `bench/results/<stamp>-<mode>.json`.
 *
 * @module
 */
import type { TrialResult } from "./trial.ts";
import type { MachineInfo } from "./procstat.ts";

/** Maximum lossless rate found for one relay. */
export interface MaxLossless {
  /** Highest offered rate (achieved by the generator, pps) delivered ≥ the threshold; 0 if none. */
  pps: number;
  /**
   * How it was found: "bisection" (between a passing and a failing rate),
   * "generator" (even the generator flat out was delivered losslessly: a lower bound),
   * "tested" (quick mode: highest of the tested rates, no bisection).
   */
  method: "bisection" | "generator" | "tested";
  /** Lowest failing offered rate seen (upper bound), or null. */
  failing_pps: number | null;
}

/** All trials of one relay on one topology/workload. */
export interface RelayRun {
  /** Topology name. */
  topology: string;
  /** Workload name. */
  workload: string;
  /** Relay name. */
  relay: string;
  /** Relay kind. */
  kind: string;
  /** Relay description (config / command form). */
  describe: string;
  /** Why it did not run, if it did not. */
  skipped?: string;
  /** Error that ended this relay's trials, if any. */
  error?: string;
  /** Fixed-rate and flat-out trials. */
  trials: TrialResult[];
  /** Bisection trials (full mode). */
  bisection: TrialResult[];
  /** Maximum lossless rate. */
  max_lossless: MaxLossless | null;
  /** Peak RSS (VmHWM) summed over the relay's processes, KiB, read before stopping it. */
  peak_rss_kib: number;
  /** Number of relay processes. */
  processes: number;
  /** Share of all CPUs busy just before this relay's trials (0..1; other work on the machine). */
  background_load: number;
  /** The relay's own counters and details (second opinion only). */
  relay_report: Record<string, unknown>;
}

/** Hot-loop microbenchmark figures. */
export interface HotloopResult {
  /** Per bench name: ns per packet (avg over iterations / frames per batch). */
  ns_per_packet: Record<string, number>;
  /** The command that produced them. */
  command: string;
  /** Error, if the bench failed. */
  error?: string;
}

/**
 * One pass over the whole plan: the direct baseline, then every relay of every
 * plan item. `--repeat N` runs N passes in a row (interleaved, so a slow drift
 * in the machine's load spreads over every relay) and every figure is reported
 * as the median and range over the passes.
 */
export interface Pass {
  /** 1-based pass number. */
  index: number;
  /** Direct gen → sink over one veth (no relay): the latency baseline of this pass. */
  direct: TrialResult[];
  /** Relay runs of this pass. */
  runs: RelayRun[];
  /** Share of all CPUs busy (0..1) during idling before and after this pass. */
  background_load: { before: number; after: number };
}

/** One benchmark run. */
export interface BenchRun {
  /** Format version: 2 (schema 1 had one pass: `direct` and `runs` at the top; see upgradeRun). */
  schema: 2;
  /** "quick", "full" or "floor" (with "-NAME" for --only). */
  mode: string;
  /** ISO start and end times. */
  started: string;
  /** ISO end time. */
  finished: string;
  /** The exact command line. */
  command: string;
  /** Machine. */
  machine: MachineInfo;
  /** Deno, V8, TypeScript versions. */
  deno: typeof Deno.version;
  /** Git commit (and whether the tree was dirty). */
  git: { commit: string; dirty: boolean };
  /** Tool versions (socat, smcroute). */
  tools: Record<string, string>;
  /** Settings of this run. */
  settings: {
    payload_bytes: number;
    lossless_threshold_pct: number;
    latency_rate_pps: number;
    trial_s: number;
    latency_trial_s: number;
    bisect_trial_s: number;
  };
  /** Passes requested (`--repeat`). */
  repeat: number;
  /** Topology descriptions. */
  topologies: Record<string, string>;
  /** Workload descriptions. */
  workloads: Record<string, string>;
  /** The passes, in the order they ran. */
  passes: Pass[];
  /**
   * Share of all CPUs busy during 1 s of idling before and after the whole run
   * (other work on the machine skews every figure; should be near 0).
   */
  background_load: { before: number; after: number };
  /** Hot-loop microbenchmark, if run. */
  hotloop: HotloopResult | null;
}

/** A stored run of either schema, as read from `bench/results/*.json`. */
type StoredRun =
  | BenchRun
  | (Omit<BenchRun, "schema" | "repeat" | "passes"> & {
    schema: 1;
    direct: TrialResult[];
    runs: RelayRun[];
  });

/** Read a stored run; a schema-1 run (one pass, before `--repeat`) becomes a one-pass run. */
export function upgradeRun(json: unknown): BenchRun {
  const r = json as StoredRun;
  if (r.schema === 2) return r;
  const { direct, runs, ...rest } = r;
  return {
    ...rest,
    schema: 2,
    repeat: 1,
    passes: [{ index: 1, direct, runs, background_load: r.background_load }],
  };
}

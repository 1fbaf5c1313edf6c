/**
 * Starts mcr for the scale benchmarks and measures it from outside: time from
 * spawn to its `--ready-file`, resident memory, threads and file descriptors
 * summed over the relay's processes (the process and its descendants), CPU
 * while idle. Optionally caps its memory with a cgroup (v1 memory controller)
 * so that a relay that needs more than the machine can spare is killed alone
 * instead of starving the machine.
 *
 * @module
 */
import type { Topology } from "../../lab/netns.ts";
import { type RelayProc, startRelayWith } from "../../lab/harness.ts";
import type { RelayStats } from "../../src/relay/stats.ts";
import { spawnTracked } from "./procs.ts";
import { fdCount, processTree, procsCpu, statusField } from "./procstat.ts";

/** Where cgroup v1 memory groups are made. */
const MEMCG_ROOT = "/sys/fs/cgroup/memory";
/** How long a relay may take to stop after SIGTERM before it is killed. */
const STOP_TIMEOUT_MS = 120_000;
/** How often the ready file is looked for. */
const READY_POLL_MS = 10;
/** Last lines of a failed relay's stderr kept with the failure. */
const STDERR_LINES = 3;
/** At most this many characters of them. */
const STDERR_CHARS = 400;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the memory cap saw. */
export interface MemCapReport {
  /** The cap, MiB. */
  limit_mib: number;
  /** Largest charge of the group (RSS + page cache + kernel memory charged to it), MiB. */
  max_usage_mib: number;
  /** Times the limit was hit. */
  failcnt: number;
  /** Processes the OOM killer ended in the group. */
  oom_kills: number;
}

/** A cgroup v1 memory group the relay runs in (null when the controller is not there). */
export class MemCap {
  private constructor(readonly dir: string, readonly limitMiB: number) {}

  /** Make a group with a limit, or null when cgroup v1 memory is unavailable. */
  static async create(limitMiB: number): Promise<MemCap | null> {
    const dir = `${MEMCG_ROOT}/mcr-bench-${Deno.pid}-${crypto.randomUUID().slice(0, 6)}`;
    try {
      await Deno.mkdir(dir);
      await Deno.writeTextFile(`${dir}/memory.limit_in_bytes`, String(limitMiB * 1024 * 1024));
      return new MemCap(dir, limitMiB);
    } catch {
      await Deno.remove(dir).catch(() => {});
      return null;
    }
  }

  /**
   * Move a process (all its threads) into the group. Done from outside: `ip netns exec`
   * mounts its own /sys, where the cgroup tree is not visible. Called right after the spawn,
   * before the relay has allocated anything worth counting (this kernel no longer moves
   * earlier charges along).
   */
  adopt(pid: number): void {
    Deno.writeTextFileSync(`${this.dir}/cgroup.procs`, String(pid));
  }

  /** Usage figures. */
  async report(): Promise<MemCapReport> {
    const num = async (f: string) =>
      Number((await Deno.readTextFile(`${this.dir}/${f}`).catch(() => "0")).trim());
    const oom = await Deno.readTextFile(`${this.dir}/memory.oom_control`).catch(() => "");
    return {
      limit_mib: this.limitMiB,
      max_usage_mib: Math.round((await num("memory.max_usage_in_bytes")) / 1048576),
      failcnt: await num("memory.failcnt"),
      oom_kills: Number(oom.match(/^oom_kill (\d+)/m)?.[1] ?? 0),
    };
  }

  /** Remove the group (its processes must be gone). */
  async remove(): Promise<void> {
    for (let i = 0; i < 50; i++) {
      try {
        await Deno.remove(this.dir);
        return;
      } catch {
        await sleep(100);
      }
    }
  }
}

/** A relay started by {@link startTimed}. */
export interface TimedRelay {
  /** The relay. */
  relay: RelayProc;
  /** Its pid (`ip netns exec` and the cgroup wrapper exec into deno). */
  pid: number;
  /** Seconds from spawn to the ready file; null when it never became ready. */
  readyS: number | null;
  /** Why it did not become ready (exit, timeout), with the end of its stderr. */
  failure?: string;
  /** Its processes when the wait for the ready file was given up (timeout only). */
  atGiveUp?: ProcSnapshot;
  /** The memory cap it runs under, if any. */
  cap: MemCap | null;
}

/** Options of {@link startTimed}. */
export interface StartOptions {
  /** Directory for config, ready file and control socket (short path: a Unix socket lives there). */
  dir: string;
  /** Give up waiting for the ready file after this many seconds. */
  readyTimeoutS: number;
  /** Cap the relay's memory (MiB), or null for no cap. */
  memCapMiB: number | null;
  /** Start it with a control socket. */
  control?: boolean;
}

/**
 * Start cli.ts with `config` in a namespace and wait for its ready file;
 * readyS runs from the spawn (after the config file was written) to the
 * moment the file is seen (polled every 10 ms).
 */
export async function startTimed(
  topo: Topology,
  role: string,
  config: unknown,
  opts: StartOptions,
): Promise<TimedRelay> {
  const cap = opts.memCapMiB ? await MemCap.create(opts.memCapMiB) : null;
  let t0 = 0;
  const relay = await startRelayWith(topo, role, config, {
    dir: opts.dir,
    control: opts.control,
    waitReady: false,
    spawn: (ns, cmd, env) => {
      t0 = performance.now();
      const p = spawnTracked(ns, cmd, env);
      cap?.adopt(p.child.pid);
      return p;
    },
  });
  const ready = `${relay.configPath}.ready`;
  let exited = false;
  relay.proc.child.status.then(() => exited = true);
  const pid = relay.proc.child.pid;
  for (;;) {
    try {
      await Deno.stat(ready);
      return { relay, pid, readyS: (performance.now() - t0) / 1000, cap };
    } catch { /* not yet */ }
    const waited = (performance.now() - t0) / 1000;
    if (exited || waited > opts.readyTimeoutS) {
      const atGiveUp = exited ? undefined : snapshot(pid);
      if (!exited) relay.proc.kill("SIGKILL");
      const r = await relay.proc.wait();
      const why = exited
        ? `exited with code ${r.code} before it was ready`
        : `not ready within ${opts.readyTimeoutS} s: gave up and killed it`;
      const tail = r.stderr.split("\n").map((l) => l.trim()).filter(Boolean)
        .slice(-STDERR_LINES).join(" / ").slice(-STDERR_CHARS);
      return {
        relay,
        pid,
        readyS: null,
        failure: tail ? `${why}: ${tail}` : why,
        ...(atGiveUp ? { atGiveUp } : {}),
        cap,
      };
    }
    await sleep(READY_POLL_MS);
  }
}

/** Memory, threads and descriptors of the relay's processes. */
export interface ProcSnapshot {
  /** Processes (the relay and its descendants). */
  processes: number;
  /** Sum of VmRSS, KiB. */
  rss_kib: number;
  /** Sum of VmHWM (peak RSS of each process), KiB. */
  hwm_kib: number;
  /** Sum of threads. */
  threads: number;
  /** Sum of open file descriptors. */
  fds: number;
}

/** Snapshot of the relay's processes. */
export function snapshot(pid: number): ProcSnapshot {
  const pids = processTree(pid);
  const sum = (f: (p: number) => number) => pids.reduce((a, p) => a + f(p), 0);
  return {
    processes: pids.length,
    rss_kib: sum((p) => statusField(p, "VmRSS")),
    hwm_kib: sum((p) => statusField(p, "VmHWM")),
    threads: sum((p) => statusField(p, "Threads")),
    fds: sum(fdCount),
  };
}

/** CPU of the relay's processes over `seconds`, in % of one core (schedstat; stat ticks). */
export async function cpuOver(
  pid: number,
  seconds: number,
): Promise<{ pct: number; stat_pct: number }> {
  const pids = processTree(pid);
  const a = procsCpu(pids);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const b = procsCpu(pids);
  const wall = (performance.now() - t0) / 1000;
  return {
    pct: (100 * (b.schedS - a.schedS)) / wall,
    stat_pct: (100 * (b.statS - a.statS)) / wall,
  };
}

/** SIGTERM the relay (SIGKILL after two minutes); its final stats when it printed them. */
export async function stopTimed(
  t: TimedRelay,
): Promise<{ code: number; stats: RelayStats | null; stop_s: number; cap: MemCapReport | null }> {
  const t0 = performance.now();
  t.relay.proc.kill("SIGTERM");
  const timer = setTimeout(() => t.relay.proc.kill("SIGKILL"), STOP_TIMEOUT_MS);
  const r = await t.relay.proc.wait();
  clearTimeout(timer);
  const stopS = (performance.now() - t0) / 1000;
  let stats: RelayStats | null = null;
  try {
    stats = JSON.parse(r.stdout.trim().split("\n").pop() ?? "");
  } catch { /* killed, or failed before printing */ }
  const cap = t.cap ? await t.cap.report() : null;
  await t.cap?.remove();
  return { code: r.code, stats, stop_s: stopS, cap };
}

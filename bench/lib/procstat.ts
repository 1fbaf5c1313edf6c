/**
 * CPU and memory figures read from /proc: per-process CPU (all threads), the
 * system-wide busy time and peak RSS. Used to charge a relay with the CPU it
 * burns during a trial.
 *
 * @module
 */

/** Clock ticks per second of /proc/<pid>/stat and /proc/stat (USER_HZ). */
export const USER_HZ = 100;

/** CPU used so far by one process, all threads included. */
export interface ProcCpu {
  /** utime + stime of the thread group from /proc/<pid>/stat, in seconds (10 ms ticks). */
  statS: number;
  /**
   * Sum of the on-CPU time of the live threads from
   * /proc/<pid>/task/<tid>/schedstat, in seconds (nanosecond resolution).
   */
  schedS: number;
  /**
   * Time the live threads spent runnable but waiting for a CPU (run queue),
   * from the second field of their schedstat, in seconds.
   */
  waitS: number;
}

function readText(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

/** CPU of one process, or null when it is gone. */
export function procCpu(pid: number): ProcCpu | null {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === null) return null;
  // Fields after the ")" of comm: state is field 3; utime 14, stime 15.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  let sched = 0, wait = 0;
  try {
    for (const e of Deno.readDirSync(`/proc/${pid}/task`)) {
      const s = readText(`/proc/${pid}/task/${e.name}/schedstat`);
      if (s === null) continue;
      const f = s.split(" ");
      sched += Number(f[0]);
      wait += Number(f[1]);
    }
  } catch { /* gone */ }
  return { statS: (utime + stime) / USER_HZ, schedS: sched / 1e9, waitS: wait / 1e9 };
}

/** Sum of {@link procCpu} over several processes (missing ones count 0). */
export function procsCpu(pids: readonly number[]): ProcCpu {
  let statS = 0, schedS = 0, waitS = 0;
  for (const p of pids) {
    const c = procCpu(p);
    if (c) {
      statS += c.statS;
      schedS += c.schedS;
      waitS += c.waitS;
    }
  }
  return { statS, schedS, waitS };
}

/** System-wide idle time from /proc/stat, with the wall-clock instant it was read. */
export interface SysCpu {
  /** idle + iowait summed over all CPUs, seconds (precise under NO_HZ idle accounting). */
  idleS: number;
  /** performance.now() at the read, ms. */
  atMs: number;
}

/** Read the aggregate "cpu" line of /proc/stat. */
export function sysCpu(): SysCpu {
  const line = (readText("/proc/stat") ?? "").split("\n").find((l) => l.startsWith("cpu ")) ?? "";
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  return { idleS: ((v[3] ?? 0) + (v[4] ?? 0)) / USER_HZ, atMs: performance.now() };
}

/**
 * Busy CPU seconds (all CPUs) between two reads: cores × wall time − idle.
 * Computed from the idle counter rather than by summing the busy columns:
 * on this VM the tick-sampled busy columns miss ticks (they add up to less
 * than cores × wall time), while idle time is measured exactly.
 */
export function busyBetween(a: SysCpu, b: SysCpu, cores: number): number {
  return cores * ((b.atMs - a.atMs) / 1000) - (b.idleS - a.idleS);
}

/** Online CPU count (for {@link busyBetween}). */
export function onlineCpus(): number {
  const s = readText("/sys/devices/system/cpu/online")?.trim() ?? "";
  let n = 0;
  for (const part of s.split(",").filter(Boolean)) {
    const [lo, hi] = part.split("-").map(Number);
    n += hi === undefined ? 1 : hi - lo + 1;
  }
  return n || navigator.hardwareConcurrency;
}

/** Share of all CPUs busy over `ms` milliseconds (background load check), 0..1. */
export async function backgroundLoad(ms = 1000): Promise<number> {
  const a = sysCpu();
  await new Promise((r) => setTimeout(r, ms));
  const b = sysCpu();
  const cores = onlineCpus();
  return busyBetween(a, b, cores) / (cores * ((b.atMs - a.atMs) / 1000));
}

/** Background load above which {@link waitQuiet} keeps waiting (share of all CPUs). */
export const QUIET_LOAD = 0.1;

/**
 * Wait (up to `maxS` seconds) until the machine is nearly idle (below
 * {@link QUIET_LOAD}) before a measurement; returns the last measured
 * background load (0..1). Other work on the machine skews every figure, so it
 * is recorded with each run.
 */
export async function waitQuiet(log: (msg: string) => void, maxS = 90): Promise<number> {
  const t0 = Date.now();
  let load = await backgroundLoad(500);
  while (load > QUIET_LOAD && Date.now() - t0 < maxS * 1000) {
    log(`  machine busy (${(100 * load).toFixed(0)} % of all CPUs) — waiting for it to calm down`);
    load = await backgroundLoad(1000);
  }
  return load;
}

/** Peak resident set size (VmHWM) of a process in KiB, or 0 when it is gone. */
export function peakRssKiB(pid: number): number {
  const s = readText(`/proc/${pid}/status`);
  const m = s?.match(/^VmHWM:\s+(\d+)\s+kB/m);
  return m ? Number(m[1]) : 0;
}

/** A `/proc/<pid>/status` field in kB (VmRSS, VmHWM) or a count (Threads); 0 when gone. */
export function statusField(pid: number, field: string): number {
  const m = readText(`/proc/${pid}/status`)?.match(new RegExp(`^${field}:\\s+(\\d+)`, "m"));
  return m ? Number(m[1]) : 0;
}

/** A process and all its descendants (children of children ...), from /proc/<pid>/stat. */
export function processTree(pid: number): number[] {
  const parent = new Map<number, number>();
  try {
    for (const e of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      const st = readText(`/proc/${e.name}/stat`);
      if (st === null) continue;
      // field 4 (ppid) is the second after the ")" that ends comm
      parent.set(Number(e.name), Number(st.slice(st.lastIndexOf(")") + 2).split(" ")[1]));
    }
  } catch { /* /proc unreadable: the process alone */ }
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    for (const [c, p] of parent) if (p === out[i]) out.push(c);
  }
  return out;
}

/** Open file descriptors of a process; 0 when it is gone. */
export function fdCount(pid: number): number {
  try {
    let n = 0;
    for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) n++;
    return n;
  } catch {
    return 0;
  }
}

/** Machine description recorded with every run. */
export interface MachineInfo {
  /** Online CPUs. */
  cores: number;
  /** `uname -r`. */
  kernel: string;
  /** CPU model name from /proc/cpuinfo. */
  cpuModel: string;
  /** Total memory in MiB. */
  memMiB: number;
}

/** Describe this machine. */
export function machineInfo(): MachineInfo {
  const cpuinfo = readText("/proc/cpuinfo") ?? "";
  const model = cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown";
  const cores = (cpuinfo.match(/^processor\s*:/gm) ?? []).length || navigator.hardwareConcurrency;
  const mem = Number((readText("/proc/meminfo") ?? "").match(/^MemTotal:\s+(\d+)/m)?.[1] ?? 0);
  return {
    cores,
    kernel: (readText("/proc/sys/kernel/osrelease") ?? "").trim(),
    cpuModel: model.trim(),
    memMiB: Math.round(mem / 1024),
  };
}

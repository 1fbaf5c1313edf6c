/**
 * One trial: start the receiver (mcr-sink), snapshot CPU counters, run the
 * generator (mcr-gen) at an offered rate, wait for the receiver to finish,
 * snapshot again. Delivery is counted at the receiver only.
 *
 * @module
 */
import { BUILD, waitForFile } from "../../lab/netns.ts";
import type { SinkReport } from "../../lab/harness.ts";
import { busyBetween, onlineCpus, type ProcCpu, procCpu, procsCpu, sysCpu } from "./procstat.ts";
import { spawnTracked } from "./procs.ts";
import type { Topology } from "../../lab/netns.ts";

/** Where the generator sends from and the receiver listens. */
export interface TrialPath {
  /** Namespaces. */
  topo: Topology;
  /** Generator namespace role and interface. */
  sender: { role: string; dev: string };
  /** Receiver namespace role and interface. */
  receiver: { role: string; dev: string };
  /** Destinations "G:P" the generator sends to (one stream each). */
  dsts: string[];
  /** Groups "G:P" the receiver joins (every output). */
  sinkGroups: string[];
  /** Processes charged as "the relay" (empty for the direct baseline). */
  relayPids: number[];
}

/** What a trial asks for. */
export interface TrialSpec {
  /** Total offered datagrams per second over all streams; 0 = generator flat out. */
  rate: number;
  /** Sending time in seconds. */
  durationS: number;
  /** UDP payload bytes. */
  size: number;
  /** Why this trial ran ("rate", "flat", "bisect", "warmup"). */
  purpose: string;
}

/** Everything measured in one trial. */
export interface TrialResult {
  /** The request. */
  spec: TrialSpec;
  /** Datagrams the generator sent (all streams). */
  sent: number;
  /** The generator's achieved rate (sent / its elapsed time). */
  offered_pps: number;
  /** Generator send time in seconds. */
  gen_elapsed_s: number;
  /** Datagrams the receiver should get (sent × outputs per input). */
  expected: number;
  /** Unique datagrams counted at the receiver. */
  delivered: number;
  /** delivered / expected × 100. */
  delivered_pct: number;
  /** delivered / generator elapsed time. */
  delivered_pps: number;
  /** Receiver counters: received (incl. duplicates), duplicates, reordered, corrupt, foreign. */
  received: number;
  /** Copies beyond the first. */
  duplicates: number;
  /** Datagrams that arrived after a later sequence number of their stream. */
  reordered: number;
  /** Payload-pattern failures. */
  corrupt: number;
  /** One-way latency at the receiver (send timestamp → receive), µs. */
  latency_us: SinkReport["latency_us"];
  /** Receiving namespace's UDP counters (deltas). */
  udp: SinkReport["udp"];
  /** CPU seconds of the generator and the receiver (their getrusage). */
  gen_cpu_s: number;
  /** Receiver CPU seconds. */
  sink_cpu_s: number;
  /** Relay CPU over the trial window: schedstat (ns resolution) and stat (10 ms ticks), seconds. */
  relay_cpu_s: number;
  /** Same from /proc/<pid>/stat utime+stime. */
  relay_cpu_stat_s: number;
  /** relay_cpu_s / delivered, in µs (null when nothing was delivered or no relay process). */
  relay_us_per_pkt: number | null;
  /** System-wide busy CPU over the window (cores × wall − idle), seconds. */
  sys_busy_s: number;
  /** sys_busy_s / delivered, µs (everything: generator, relay, receiver, kernel). */
  sys_busy_us_per_pkt: number | null;
  /** sys_busy_s minus generator, receiver and this harness, seconds. */
  sys_other_cpu_s: number;
  /** sys_other_cpu_s / delivered, µs. */
  sys_us_per_pkt: number | null;
  /** Wall time of the measurement window, s. */
  window_s: number;
}

function cpuDelta(a: ProcCpu, b: ProcCpu): ProcCpu {
  return { statS: b.statS - a.statS, schedS: b.schedS - a.schedS, waitS: b.waitS - a.waitS };
}

let seq = 0;

/** Run one trial. */
export async function runTrial(
  path: TrialPath,
  spec: TrialSpec,
  tmp: string,
): Promise<TrialResult> {
  const { topo } = path;
  const streams = path.dsts.length;
  const outsPerInput = path.sinkGroups.length / streams;
  const perStream = spec.rate > 0
    ? Math.max(1, Math.round((spec.rate * spec.durationS) / streams))
    : 0;

  const ready = `${tmp}/sink-${++seq}.ready`;
  const sinkArgs = [
    `${BUILD}/mcr-sink`,
    "--iface",
    path.receiver.dev,
    "--json",
    "--ready-file",
    ready,
  ];
  for (const g of path.sinkGroups) sinkArgs.push("--group", g);
  if (perStream > 0) sinkArgs.push("--expect-total", String(perStream * streams * outsPerInput));
  sinkArgs.push("--idle-ms", "500", "--first-timeout-ms", "3000");
  sinkArgs.push("--duration", String(Math.ceil(spec.durationS + 20)));
  const sink = spawnTracked(topo.ns(path.receiver.role), sinkArgs);
  try {
    await waitForFile(ready, 10_000, "mcr-sink to join");
  } catch (e) {
    sink.kill("SIGKILL");
    throw new Error(`${(e as Error).message}: ${(await sink.wait()).stderr}`);
  }

  const genArgs = [`${BUILD}/mcr-gen`, "--iface", path.sender.dev, "--json"];
  for (const d of path.dsts) genArgs.push("--dst", d);
  // --spin-us 0: the generator sleeps until a datagram is due instead of
  // yield-spinning, so it does not burn a core of this 2-core machine.
  genArgs.push(
    "--rate",
    String(spec.rate),
    "--size",
    String(spec.size),
    "--ttl",
    "8",
    "--spin-us",
    "0",
  );
  if (perStream > 0) genArgs.push("--count", String(perStream));
  else genArgs.push("--duration", String(spec.durationS));

  const self0 = procCpu(Deno.pid)!;
  const relay0 = procsCpu(path.relayPids);
  const sys0 = sysCpu();
  const t0 = performance.now();
  const gen = spawnTracked(topo.ns(path.sender.role), genArgs);
  const g = await gen.wait();
  if (g.code !== 0) {
    sink.kill("SIGKILL");
    await sink.wait();
    throw new Error(`mcr-gen failed (${g.code}): ${g.stderr}`);
  }
  const s = await sink.wait();
  const t1 = performance.now();
  const sys1 = sysCpu();
  const relay1 = procsCpu(path.relayPids);
  const self1 = procCpu(Deno.pid)!;

  const genRep = JSON.parse(g.stdout) as { sent: number; elapsed_s: number; cpu_s: number };
  let rep: SinkReport & { cpu_s: number };
  try {
    rep = JSON.parse(s.stdout);
  } catch {
    throw new Error(`mcr-sink exited ${s.code} without a report: ${s.stderr}`);
  }
  const relay = cpuDelta(relay0, relay1);
  const self = cpuDelta(self0, self1);
  const expected = genRep.sent * outsPerInput;
  const delivered = rep.total.unique;
  const busy = busyBetween(sys0, sys1, onlineCpus());
  const sysOther = busy - genRep.cpu_s - rep.cpu_s - self.schedS;
  return {
    spec,
    sent: genRep.sent,
    offered_pps: genRep.elapsed_s > 0 ? genRep.sent / genRep.elapsed_s : 0,
    gen_elapsed_s: genRep.elapsed_s,
    expected,
    delivered,
    delivered_pct: expected > 0 ? (100 * delivered) / expected : 0,
    delivered_pps: genRep.elapsed_s > 0 ? delivered / genRep.elapsed_s : 0,
    received: rep.total.received,
    duplicates: rep.total.duplicates,
    reordered: rep.total.reordered,
    corrupt: rep.total.corrupt,
    latency_us: rep.latency_us,
    udp: rep.udp,
    gen_cpu_s: genRep.cpu_s,
    sink_cpu_s: rep.cpu_s,
    relay_cpu_s: relay.schedS,
    relay_cpu_stat_s: relay.statS,
    relay_us_per_pkt: path.relayPids.length && delivered > 0
      ? (relay.schedS / delivered) * 1e6
      : null,
    sys_busy_s: busy,
    sys_busy_us_per_pkt: delivered > 0 ? (busy / delivered) * 1e6 : null,
    sys_other_cpu_s: sysOther,
    sys_us_per_pkt: delivered > 0 ? (sysOther / delivered) * 1e6 : null,
    window_s: (t1 - t0) / 1000,
  };
}

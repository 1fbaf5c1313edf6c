/**
 * Traffic of the scale benchmarks (bench/scale.ts): mcr-gen senders and the
 * independent receiver, mcr-sink, started in namespaces as tracked processes
 * (killed on a signal or an error), and their JSON reports.
 *
 * @module
 */
import { BUILD, type Proc, type Topology, waitForFile } from "../../lab/netns.ts";
import type { GenReport, SinkReport } from "../../lab/harness.ts";
import { spawnTracked } from "./procs.ts";

/** Payload bytes of every datagram. */
export const SIZE = 1024;
/** TTL of every datagram (enough for the relay hop). */
const TTL = 8;
/** How long mcr-sink may take to join its groups, ms. */
const SINK_JOIN_MS = 20_000;

/** When mcr-sink stops. */
export interface SinkStop {
  /** Stop once this many unique datagrams arrived. */
  expectTotal?: number;
  /** Stop after this long without a datagram (once one arrived), ms. */
  idleMs: number;
  /** Stop after this many seconds in any case. */
  durationS: number;
}

/** Start mcr-sink on `dev` in a namespace, joined to `groups` ("G:P"); resolves once it has joined. */
export async function startSink(
  topo: Topology,
  role: string,
  dev: string,
  groups: string[],
  tmp: string,
  stop: SinkStop,
): Promise<Proc> {
  const ready = `${tmp}/sink-${crypto.randomUUID().slice(0, 8)}.ready`;
  const args = [`${BUILD}/mcr-sink`, "--iface", dev, "--json", "--ready-file", ready];
  for (const g of groups) args.push("--group", g);
  if (stop.expectTotal) args.push("--expect-total", String(stop.expectTotal));
  args.push("--idle-ms", String(stop.idleMs), "--duration", String(stop.durationS));
  const p = spawnTracked(topo.ns(role), args);
  try {
    await waitForFile(ready, SINK_JOIN_MS, "mcr-sink to join");
  } catch (e) {
    p.kill("SIGKILL");
    throw new Error(`${(e as Error).message}: ${(await p.wait()).stderr}`);
  }
  return p;
}

/** Wait for mcr-sink to stop and parse its report. */
export async function sinkReport(p: Proc): Promise<SinkReport> {
  const r = await p.wait();
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new Error(`mcr-sink exited ${r.code} without a report: ${r.stderr}`);
  }
}

/**
 * Start mcr-gen in a namespace: `rate` datagrams per second in all, spread
 * over `dsts` ("G:P", stream ids in order from --stream-base, default 0),
 * paced by sleeping (--spin-us 0: it does not burn a core); `extra` says when
 * it stops (--count, --duration) and more.
 */
export function startGen(
  topo: Topology,
  role: string,
  dev: string,
  dsts: string[],
  rate: number,
  extra: string[],
): Proc {
  const a = [`${BUILD}/mcr-gen`, "--iface", dev, "--json"];
  for (const d of dsts) a.push("--dst", d);
  a.push("--rate", String(rate), "--size", String(SIZE), "--ttl", String(TTL), "--spin-us", "0");
  return spawnTracked(topo.ns(role), [...a, ...extra]);
}

/** One generator of {@link startGens}. */
export interface GenSpec {
  /** Interface it sends on. */
  dev: string;
  /** Destinations, "G:P". */
  dsts: string[];
  /** Datagrams per second in all. */
  rate: number;
  /** More mcr-gen arguments (--count, --stream-base, ...). */
  extra: string[];
}

/** Quote a word for sh. */
const shQuote = (w: string) => `'${w.replaceAll("'", `'\\''`)}'`;

/**
 * Start many mcr-gen processes at once: one `sh` in the namespace forks them
 * all in the background (one `ip netns exec` each would take tens of ms per
 * generator on a busy machine, seconds for 64), each writing its report to a
 * file; resolves with the reports once every one has finished.
 */
export async function runGens(
  topo: Topology,
  role: string,
  gens: GenSpec[],
  tmp: string,
): Promise<GenReport[]> {
  const dir = await Deno.makeTempDir({ dir: tmp, prefix: "gens-" });
  const lines = gens.map((g, i) => {
    const a = [`${BUILD}/mcr-gen`, "--iface", g.dev, "--json"];
    for (const d of g.dsts) a.push("--dst", d);
    a.push("--rate", String(g.rate), "--size", String(SIZE), "--ttl", String(TTL));
    a.push("--spin-us", "0", ...g.extra);
    return `${a.map(shQuote).join(" ")} > ${dir}/${i}.json 2> ${dir}/${i}.err &`;
  });
  const p = spawnTracked(topo.ns(role), ["sh", "-c", [...lines, "wait"].join("\n")]);
  const r = await p.wait();
  try {
    return await Promise.all(gens.map(async (_, i) => {
      const out = await Deno.readTextFile(`${dir}/${i}.json`).catch(() => "");
      try {
        return JSON.parse(out) as GenReport;
      } catch {
        const err = await Deno.readTextFile(`${dir}/${i}.err`).catch(() => "");
        throw new Error(`mcr-gen ${i + 1} of ${gens.length} gave no report: ${err}${r.stderr}`);
      }
    }));
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Wait for mcr-gen to finish and parse its report (an error when it failed). */
export async function genReport(p: Proc): Promise<GenReport> {
  const r = await p.wait();
  if (r.code !== 0) throw new Error(`mcr-gen failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** "G:P" of a rule's first output. */
export function outputOf(rule: { outputs: { group: string; port: number }[] }): string {
  return `${rule.outputs[0].group}:${rule.outputs[0].port}`;
}

/** "G:P" of a rule's input. */
export function inputOf(rule: { input: { group: string; port: number } }): string {
  return `${rule.input.group}:${rule.input.port}`;
}

/** One stream of a sink report: output "G:P" of a rule and the sender's stream id. */
export function streamIn(rep: SinkReport, output: string, id: number) {
  return rep.groups.find((g) => `${g.group}:${g.port}` === output)?.streams.find((s) =>
    s.stream === id
  );
}

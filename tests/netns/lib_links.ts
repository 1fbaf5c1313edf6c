/**
 * Helpers of the link-fault tests (linkfaults_test.ts, inputfaults_test.ts):
 * the daemon's stats, a generator in the sender namespace, /healthz from
 * inside a namespace, and the accounting every fault test asserts.
 *
 * @module
 */
import assert from "node:assert/strict";
import { BUILD, Proc, skipReason, type Topology } from "../../lab/netns.ts";
import type { SinkReport } from "../../lab/harness.ts";
import type { Daemon } from "../../lab/daemon.ts";
import type { StatsResult } from "../../src/control/results.ts";
import { until } from "./lib_robust.ts";

/** Options of every test here (namespace tests need root). */
export const opts = {
  ignore: skipReason() !== null,
  sanitizeResources: false,
  sanitizeOps: false,
};

/** A rule in a stats snapshot. */
export type Rule = StatsResult["rules"][number];
/** An output in a stats snapshot. */
export type Output = Rule["outputs"][number];

/** Start mcr-gen in a namespace (its JSON report comes from `wait()`). */
export function gen(
  t: Topology,
  iface: string,
  dst: string,
  o: { rate: number; count?: number; duration?: number; size?: number; stream: number } & {
    noDf?: boolean;
  },
): Proc {
  const args = [`${BUILD}/mcr-gen`, "--iface", iface, "--dst", dst, "--json"];
  args.push("--rate", String(o.rate), "--size", String(o.size ?? 512));
  args.push("--stream-base", String(o.stream));
  if (o.count !== undefined) args.push("--count", String(o.count));
  if (o.duration !== undefined) args.push("--duration", String(o.duration));
  if (o.noDf) args.push("--no-df");
  return new Proc(t.ns("snd"), args);
}

export async function genDone(p: Proc): Promise<{ sent: number }> {
  const r = await p.wait();
  if (r.code !== 0) throw new Error(`mcr-gen failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Fetch a URL from inside a namespace (the metrics endpoint listens on its loopback). */
export async function fetchIn(t: Topology, role: string, url: string) {
  const out = await t.exec(role, [
    Deno.execPath(),
    "eval",
    `const r = await fetch(${JSON.stringify(url)}); ` +
    `console.log(JSON.stringify({ status: r.status, body: await r.text() }));`,
  ]);
  return JSON.parse(out) as { status: number; body: string };
}

/** The daemon's stats. */
export const stats = (d: Daemon) => d.ok<StatsResult>("stats");
/** A rule of a snapshot by name. */
export const rule = (s: StatsResult, name: string) => s.rules.find((r) => r.name === name)!;

/** Every datagram the rule matched is sent, queued or counted under a drop reason. */
export function accounted(r: Rule, o: Output): void {
  assert.equal(
    o.packets + o.ring_full + o.errors + o.ttl_expired + o.link_down + o.too_big + o.queued +
      (o.policed ?? 0),
    r.packets,
    `output ${o.interface} ${o.group}: sent + drops + queued = matched (${JSON.stringify(o)})`,
  );
}

/** Wait until the relay has sent everything it matched (nothing queued, counts still). */
export async function settled(d: Daemon): Promise<StatsResult> {
  let last = "";
  return await until(
    () => stats(d),
    (s) => {
      const key = JSON.stringify(s.rules.map((r) => [r.packets, r.outputs.map((o) => o.queued)]));
      const still = key === last && s.rules.every((r) => r.outputs.every((o) => o.queued === 0));
      last = key;
      return still;
    },
    20_000,
    "the relay to settle",
  );
}

export function streamOf(rep: SinkReport, stream: number) {
  for (const g of rep.groups) for (const s of g.streams) if (s.stream === stream) return s;
  return undefined;
}

export function noDupNoReorder(rep: SinkReport): void {
  assert.equal(rep.total.duplicates, 0, "no duplicate");
  assert.equal(rep.total.reordered, 0, "no reordering");
  assert.equal(rep.total.corrupt, 0, "no corruption");
}

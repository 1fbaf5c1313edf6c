/**
 * The worker pool at scale (issue 12), in namespaces, counted at an
 * independent receiver:
 *
 * - 32 input interfaces served by a pool of 2 workers, one stream each:
 *   every stream delivered, each datagram at most once and in order, every
 *   loss counted; each pool worker holds a ring on every interface. Then one
 *   input interface is deleted while the other 31 keep forwarding (their
 *   streams stay clean), re-created, and forwards again — with no worker
 *   restart.
 * - A rule set of 20,000 rules loads and forwards a sample of them.
 *
 * Exact delivery is a bench figure (bench/scale.ts), not asserted here.
 */
import assert from "node:assert/strict";
import { linkCounters, skipReason, Topology } from "../../lab/netns.ts";
import { runGen, type SinkReport, startDriver, startSink } from "../../lab/harness.ts";
import { startDaemon } from "../../lab/daemon.ts";
import type { RelayStats } from "../../src/relay/stats.ts";
import type { StatsResult } from "../../src/control/results.ts";
import { assertEachStream, outputDrops } from "./lib_account.ts";
import { frameDrops, until } from "./lib_robust.ts";

const skip = skipReason();
if (skip) console.warn(`netns pool tests skipped: ${skip}`);
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };

/** Generous deadline for states under load. */
const DEADLINE_MS = 60_000;
const INPUTS = 32;

/** snd ⇄ rly over `inputs` veth pairs (sK ⇄ iK), rly ⇄ rcv over r1 ⇄ d0. */
async function fanIn(tag: string, inputs: number): Promise<Topology> {
  const t = new Topology(tag);
  try {
    for (const r of ["snd", "rly", "rcv"]) await t.addNs(r);
    for (let k = 0; k < inputs; k++) await addInput(t, k);
    await t.link({ role: "rly", dev: "r1", addr: "10.81.0.1/24" }, {
      role: "rcv",
      dev: "d0",
      addr: "10.81.0.2/24",
    });
    return t;
  } catch (e) {
    await t.destroy();
    throw e;
  }
}

/** The veth pair of input `k`: sK (sender) ⇄ iK (relay). */
function addInput(t: Topology, k: number): Promise<void> {
  return t.link({ role: "snd", dev: `s${k}`, addr: `10.80.${k}.1/30` }, {
    role: "rly",
    dev: `i${k}`,
    addr: `10.80.${k}.2/30`,
  });
}

function inGroup(k: number): string {
  return `239.3.${k}.1:${5000 + k}`;
}
function outGroup(k: number): string {
  return `239.30.${k}.1:${6000 + k}`;
}

function fanInRules(inputs: number) {
  return Array.from({ length: inputs }, (_, k) => ({
    name: `in${k}`,
    input: { interface: `i${k}`, group: `239.3.${k}.1`, port: 5000 + k },
    outputs: [{ interface: "r1", group: `239.30.${k}.1`, port: 6000 + k }],
  }));
}

/** Streams of `rep` of the output `groups`, each at most once and in order; nothing foreign. */
function assertStreamsClean(rep: SinkReport, groups: string[], what: string): void {
  assertEachStream(rep, what, groups);
  assert.equal(rep.total.foreign, 0, `${what}: nothing foreign`);
}

/** Every datagram lost on the way was counted where it was lost. */
async function assertLossCounted(
  t: Topology,
  rep: SinkReport,
  s: RelayStats,
  before: {
    rly: Record<string, { rx_dropped: number }>;
    rcv: Record<string, { rx_dropped: number }>;
  },
  what: string,
): Promise<void> {
  const rly = await linkCounters(t, "rly"), rcv = await linkCounters(t, "rcv");
  let veth = 0;
  for (const [n, c] of Object.entries(rly)) veth += c.rx_dropped - (before.rly[n]?.rx_dropped ?? 0);
  for (const [n, c] of Object.entries(rcv)) veth += c.rx_dropped - (before.rcv[n]?.rx_dropped ?? 0);
  const kernel = s.interfaces.reduce((a, i) => a + i.kernel_drops, 0);
  const counted = veth + kernel + frameDrops(s) + outputDrops(s) + (rep.socket_drops ?? 0);
  assert.ok(
    rep.total.lost <= counted,
    `${what}: lost ${rep.total.lost}, counted ${counted} (veth ${veth}, kernel ${kernel}, ` +
      `relay ${frameDrops(s) + outputDrops(s)}, receiver ${rep.socket_drops})`,
  );
}

Deno.test({
  ...opts,
  name:
    "pool: 32 input interfaces on 2 workers, one stream each, at most once and in order; one deleted and re-created while the others forward",
  async fn() {
    const t = await fanIn("pool", INPUTS);
    try {
      const rules = fanInRules(INPUTS);
      const relay = await startDriver(t, "rly", [{ workers: 2, rules }]);
      const active = (s: RelayStats) => s.rules.every((r) => r.state === "active");
      let st = await relay.until(active, DEADLINE_MS, "32 rules active");
      // Two pool workers, each a member of every interface's fanout group.
      assert.equal(st.pool.length, 2);
      for (const w of st.pool) {
        assert.equal(w.interfaces, INPUTS, `pool worker ${w.index} serves every interface`);
        assert.equal(w.rings, INPUTS, `pool worker ${w.index} has a ring on each`);
      }
      assert.equal(st.workers.length, 2 * INPUTS);

      // Phase 1: one stream on every interface at once.
      const all = Array.from({ length: INPUTS }, (_, k) => k);
      const before = { rly: await linkCounters(t, "rly"), rcv: await linkCounters(t, "rcv") };
      let sink = await startSink(t, "rcv", "d0", all.map(outGroup), { idleMs: 3000 });
      await Promise.all(
        all.map((k) =>
          runGen(t, "snd", `s${k}`, [inGroup(k)], { rate: 500, count: 400, size: 200 })
        ),
      );
      let rep = await sink.result();
      st = await relay.snap();
      assertStreamsClean(rep, all.map(outGroup), "32 interfaces");
      await assertLossCounted(t, rep, st, before, "32 interfaces");

      // Phase 2: i5 deleted while the 31 others send; the others stay clean.
      const others = all.filter((k) => k !== 5);
      sink = await startSink(t, "rcv", "d0", others.map(outGroup), { idleMs: 3000 });
      const restartsBefore = st.pool.map((w) => w.restarts);
      const sending: Promise<unknown> = Promise.all(
        others.map((k) =>
          runGen(t, "snd", `s${k}`, [inGroup(k)], {
            rate: 200,
            count: 600,
            size: 200,
            streamBase: 100,
          })
        ),
      );
      sending.catch(() => {}); // awaited below; a failure before that must not go unhandled
      await t.exec("rly", ["ip", "link", "del", "i5"]);
      st = await relay.until(
        (s) => s.rules.find((r) => r.name === "in5")?.state === "pending",
        DEADLINE_MS,
        "in5 pending once i5 is gone",
      );
      assert.ok(
        st.rules.filter((r) => r.name !== "in5").every((r) => r.state === "active"),
        "the other rules stay active",
      );
      // the workers close i5's rings once they handle the close (asynchronously): poll for it
      st = await relay.until(
        (s) => s.pool.every((w) => w.rings === INPUTS - 1),
        DEADLINE_MS,
        "i5's rings closed in both workers",
      );
      for (const w of st.pool) assert.equal(w.rings, INPUTS - 1, "i5's rings closed");
      await addInput(t, 5);
      await relay.until(active, DEADLINE_MS, "in5 active again on the new i5");
      await sending;
      rep = await sink.result();
      assertStreamsClean(rep, others.map(outGroup), "31 interfaces while i5 went and came back");

      // The re-created interface forwards again, and no worker restarted for any of it.
      const one = await startSink(t, "rcv", "d0", [outGroup(5)], { idleMs: 2000 });
      await runGen(t, "snd", "s5", [inGroup(5)], { rate: 500, count: 200, size: 200 });
      assertStreamsClean(await one.result(), [outGroup(5)], "re-created i5");
      const fin = await relay.stop();
      assert.equal(fin.code, 0, fin.stderr);
      assert.deepEqual(fin.stats.pool.map((w) => w.restarts), restartsBefore, "no restart");
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  ...opts,
  name: "pool: 20,000 rules load, and a sample of them forwards",
  async fn() {
    const t = await fanIn("rules20k", 1);
    let d;
    try {
      const N = 20_000;
      const rules = Array.from({ length: N }, (_, k) => ({
        name: `r${k}`,
        input: {
          interface: "i0",
          group: `239.${100 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`,
          port: 7000,
        },
        outputs: [{ interface: "r1", group: `239.200.${(k >> 8) & 255}.${k & 255}`, port: 8000 }],
      }));
      d = await startDaemon({ rules }, { netns: t.ns("rly"), readyTimeoutMs: 180_000 });
      const daemon = d;
      const stats = () => daemon.ok<StatsResult>("stats", { rule: "r0" });
      const s0 = await until(stats, (s) => s.total === N, DEADLINE_MS, "20,000 rules in stats");
      assert.equal(s0.total, N);
      const summary = await daemon.ok<StatsResult>("stats", { view: "summary" });
      assert.equal(summary.summary?.by_state.active, N, "every rule active");

      const sample = [0, 1, 4_321, 12_345, N - 1];
      const dst = (k: number) => `239.${100 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}:7000`;
      const out = (k: number) => `239.200.${(k >> 8) & 255}.${k & 255}:8000`;
      const sink = await startSink(t, "rcv", "d0", sample.map(out), { idleMs: 3000 });
      await runGen(t, "snd", "s0", sample.map(dst), { rate: 1000, count: 1000, size: 200 });
      const rep = await sink.result();
      assertStreamsClean(rep, sample.map(out), "sample of 20,000 rules");
    } finally {
      if (d) await d.stop();
      await t.destroy();
    }
  },
});

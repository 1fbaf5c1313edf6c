/**
 * Redundant inputs with real traffic (issue 16), in the two-path topology
 * (lab/paths.ts): one sender emits one stream on two paths, and nftables
 * drops datagrams independently per path. Asserted, as holds on a busy
 * machine:
 *
 * - merge (plain payloads, identified by hash; RTP, identified by sequence
 *   number, with `reorder_ms`): 5 % random loss on each path; the receiver
 *   gets no datagram twice (RTP: in order), and every datagram except those
 *   lost on both paths or counted as dropped by the relay;
 * - the same with 20 ms of skew between the paths (two senders, one per
 *   path, the second started 20 ms later): reorder_ms restores the order; each path's `received` is what nft
 *   let through minus what the relay counts as lost on the way in, and
 *   received = contributed + merged_duplicate (+ late) per path;
 * - merge with one path cut entirely: the other alone delivers everything;
 * - failover: the primary path is cut and comes back; the receiver gets no
 *   duplicate and nothing out of order, the relay counts two switches (there
 *   and back, revertive), and the events say so. The gap at the switch is
 *   printed (measured in bench/redundancy.ts), never asserted.
 */
import assert from "node:assert/strict";
import { Proc, REPO, skipReason, udpSnmp } from "../../lab/netns.ts";
import { lossOff, lossOn, pathsConfig, pathsTopology, sendPaths } from "../../lab/paths.ts";
import { topologyConfig } from "./lib_topologies.ts";
import { startSink } from "../../lab/harness.ts";
import { startDaemon } from "../../lab/daemon.ts";
import type { ListResult, StatsResult } from "../../src/control/results.ts";
import type { RtpSinkReport } from "../../lab/rtp_sink.ts";
import type { RuleStats } from "../../src/relay/stats.ts";

const skip = skipReason() ??
  (new Deno.Command("nft", { args: ["--version"] }).outputSync().success
    ? null
    : "nft (nftables) is not installed");
if (skip) console.warn(`netns redundancy tests skipped: ${skip}`);

const OUT = "239.10.1.1:6001";

/** mcr-gen of the stream on both paths (or one); resolves to the datagrams sent. */
const send = sendPaths;

/** The rule's two paths in a stats reply. */
function paths(s: StatsResult): [RuleStats, RuleStats] {
  const a = s.rules.find((r) => r.name === "cam[0]");
  const b = s.rules.find((r) => r.name === "cam[1]");
  assert.ok(a?.redundancy && b?.redundancy, JSON.stringify(s.rules));
  return [a, b];
}

/** Poll until both paths are active (rings open, groups joined). */
async function untilActive(stats: () => Promise<StatsResult>): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const s = await stats();
    if (s.rules.length === 2 && s.rules.every((r) => r.state === "active")) return;
    if (Date.now() - t0 > 30_000) throw new Error(`not active: ${JSON.stringify(s.rules)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Poll until the relay's counters stop moving (nothing left in its rings). */
async function quiet(stats: () => Promise<StatsResult>): Promise<StatsResult> {
  let prev = "";
  for (let i = 0; i < 600; i++) {
    const s = await stats();
    const key = JSON.stringify(s.rules.map((r) => [r.redundancy?.received, r.outputs[0].packets]));
    if (key === prev && s.rules.every((r) => r.outputs[0].queued === 0)) return s;
    prev = key;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error("the relay's counters never settled");
}

/** Datagrams the relay counts as lost on the way in on interface `name` (kernel ring). */
function kernelDrops(s: StatsResult, name: string): number {
  return s.interfaces.find((i) => i.name === name)?.kernel_drops ?? 0;
}

/** Run a merge with loss on both paths and check the accounting (see the module doc). */
async function mergeWithLoss(payload: "mcrt" | "rtp", skewMs = 0): Promise<void> {
  const t = await pathsTopology(`red${payload}${skewMs}`);
  let d: Awaited<ReturnType<typeof startDaemon>> | undefined;
  // RTP: order restored by sequence number (reorder_ms); plain payloads have no order to restore
  const reorder = payload === "rtp";
  try {
    // RTP: the topology file of docs/topologies.md (merge, reorder_ms 50, health per path)
    d = await startDaemon(
      reorder
        ? await topologyConfig("redundant-paths.json", { red0: "rA", blue0: "rB", lan0: "r1" })
        // payload hashes are remembered for max_delay_ms of kernel receive time; on a machine
        // this busy the two copies' receive times can be further apart than the default 50 ms
        // (the kernel stamps a frame when the relay's socket takes it), so a bound that covers
        // that, and a window that holds it
        : pathsConfig({ mode: "merge", max_delay_ms: 1000, window: 65536 }),
      {
        netns: t.ns("rly"),
      },
    );
    const daemon = d;
    const stats = async () => await daemon.ok("stats") as StatsResult;
    await untilActive(stats);
    const dropA = await lossOn(t, "pA", 5);
    const dropB = await lossOn(t, "pB", 5);
    // RTP is read by a Deno receiver (lab/rtp_sink.ts): slower than mcr-sink, so a lower rate
    const COUNT = payload === "rtp" ? 10_000 : 20_000;
    let sent: number;
    let unique: number, dups: number, reordered: number;
    let sockDrops = 0;
    const args = [
      "--rate",
      payload === "rtp" ? "2000" : "5000",
      "--count",
      String(COUNT),
      "--size",
      "400",
    ];
    if (payload === "rtp") {
      const ready = await Deno.makeTempFile();
      await Deno.remove(ready);
      const sink = new Proc(t.ns("rcv"), [
        Deno.execPath(),
        "run",
        "-A",
        "--unstable-net",
        `${REPO}/lab/rtp_sink.ts`,
        "--group",
        OUT,
        "--iface-addr",
        "10.77.2.2",
        "--ready-file",
        ready,
        "--idle-ms",
        "3000",
      ]);
      for (let i = 0; i < 200; i++) {
        try {
          await Deno.stat(ready);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const udp0 = await udpSnmp(t, "rcv");
      if (skewMs > 0) {
        // the same stream from two senders, one per path, the second skewMs later (both
        // started at a set wall-clock time, whenever their processes came up)
        const at = Date.now() + 1500;
        const a = send(t, [...args, "--payload", "rtp", "--start-at", String(at)], "pA");
        const b = send(t, [...args, "--payload", "rtp", "--start-at", String(at + skewMs)], "pB");
        sent = Math.min(await a, await b);
      } else sent = await send(t, [...args, "--payload", "rtp"]);
      const r = await sink.wait();
      const rep = JSON.parse(r.stdout) as RtpSinkReport;
      // what the receiver's socket could not take (its buffer; a busy machine) is counted there
      sockDrops = (await udpSnmp(t, "rcv")).RcvbufErrors - udp0.RcvbufErrors;
      assert.equal(rep.not_rtp, 0);
      ({ unique, duplicates: dups, reordered } = rep);
    } else {
      const sink = await startSink(t, "rcv", "d0", [OUT], { idleMs: 3000 });
      sent = await send(t, args);
      const rep = (await sink.result()).total as unknown as {
        unique: number;
        duplicates: number;
        reordered: number;
        corrupt: number;
      };
      assert.equal(rep.corrupt, 0);
      ({ unique, duplicates: dups, reordered } = rep);
      sockDrops = (rep as unknown as { socket_drops?: number }).socket_drops ?? 0;
    }
    assert.equal(sent, COUNT);
    const s = await quiet(stats);
    const [a, b] = paths(s);
    const lostA = await dropA(), lostB = await dropB();
    console.log(
      `merge (${payload}${
        skewMs ? `, ${skewMs} ms skew` : ""
      }): sent ${sent}, nft dropped ${lostA} on A and ${lostB} on B; ` +
        `receiver: ${unique} unique (${(100 * unique / sent).toFixed(2)} %), ${dups} ` +
        `duplicates; relay: A received ${a.redundancy!.received} (contributed ${a.packets}), ` +
        `B received ${b.redundancy!.received} (contributed ${b.packets}), ` +
        `${a.redundancy!.merged_duplicate + b.redundancy!.merged_duplicate} merged duplicates, ` +
        `${a.redundancy!.late + b.redundancy!.late} late; receiver saw ${reordered} reordered`,
    );
    // the losses really were independent and both paths delivered
    assert.ok(lostA > 0 && lostB > 0 && lostA < sent / 5 && lostB < sent / 5, `${lostA} ${lostB}`);
    // each path filled gaps of the other
    assert.ok(a.packets > 0 && b.packets > 0, `contributed ${a.packets} and ${b.packets}`);
    // never twice, never out of order
    assert.equal(dups, 0, "no datagram reaches the receiver twice");
    if (reorder) assert.equal(reordered, 0, "reorder_ms: nothing out of order");
    // each path: what nft let through, less what the relay counts as lost on the way in
    for (const [p, lost, dev] of [[a, lostA, "rA"], [b, lostB, "rB"]] as const) {
      const red = p.redundancy!;
      assert.equal(red.received, p.packets + red.merged_duplicate + red.late, JSON.stringify(red));
      assert.ok(red.received <= sent - lost, `${dev}: ${red.received} > ${sent - lost}`);
      assert.ok(
        red.received >= sent - lost - kernelDrops(s, dev),
        `${dev}: received ${red.received}, sent ${sent}, nft ${lost}, ring ${kernelDrops(s, dev)}`,
      );
    }
    // what was forwarded once: the union of the paths; the receiver got what the relay sent
    const forwarded = a.packets + b.packets;
    assert.equal(a.outputs[0].packets + b.outputs[0].packets, forwarded);
    assert.equal(
      unique + sockDrops,
      forwarded,
      "the receiver gets every datagram the relay sent, once (or counts it dropped at its socket)",
    );
    // at least the union of what reached the relay on either path: ≥ 99.5 % with 5 % + 5 %
    // independent loss (0.25 % expected on both), less what the relay counts as lost
    const relayLost = kernelDrops(s, "rA") + kernelDrops(s, "rB") + a.redundancy!.late +
      b.redundancy!.late;
    assert.ok(unique + sockDrops >= 0.995 * sent - relayLost, `unique ${unique} of ${sent}`);
  } finally {
    await d?.stop();
    await t.destroy();
  }
}

Deno.test({
  name:
    "redundancy merge (payload hash): 5 % loss per path, the receiver gets each datagram once, in order, ≥ 99.5 %",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => mergeWithLoss("mcrt"),
});

Deno.test({
  name:
    "redundancy merge (RTP sequence numbers): 5 % loss per path, each datagram once, in order, ≥ 99.5 %",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => mergeWithLoss("rtp"),
});

Deno.test({
  name:
    "redundancy merge (RTP) with 20 ms skew between the paths: reorder_ms restores the order, each datagram once",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => mergeWithLoss("rtp", 20),
});

Deno.test({
  name: "redundancy merge: with one path cut entirely the other alone delivers everything",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await pathsTopology("redcut");
    let d: Awaited<ReturnType<typeof startDaemon>> | undefined;
    try {
      d = await startDaemon(pathsConfig("merge"), { netns: t.ns("rly") });
      const daemon = d;
      const stats = async () => await daemon.ok("stats") as StatsResult;
      await untilActive(stats);
      const cutB = await lossOn(t, "pB", 100);
      const sink = await startSink(t, "rcv", "d0", [OUT], { idleMs: 3000 });
      const sent = await send(t, ["--rate", "5000", "--count", "10000"]);
      const rep = (await sink.result()).total as unknown as { unique: number; duplicates: number };
      const s = await quiet(stats);
      const [a, b] = paths(s);
      assert.equal(await cutB(), sent);
      assert.equal(b.redundancy!.received, 0);
      assert.equal(rep.duplicates, 0);
      assert.equal(a.redundancy!.merged_duplicate, 0);
      assert.equal(a.packets, a.redundancy!.received);
      assert.equal(rep.unique, a.outputs[0].packets);
      assert.equal(a.redundancy!.received + kernelDrops(s, "rA"), sent, "path A delivers all");
      // list shows the configured rule with its paths; stats NAME selects both paths
      const list = await daemon.ok("list", { rule: "cam" }) as ListResult;
      assert.equal(list.rules.length, 1);
      const cam = list.rules[0];
      assert.equal(cam.packets, a.packets + b.packets);
      assert.equal(cam.outputs[0].packets, a.outputs[0].packets + b.outputs[0].packets);
      assert.deepEqual(cam.paths?.map((p) => [p.input, p.interface, p.received, p.missed]), [
        [0, "rA", a.redundancy!.received, 0],
        [1, "rB", 0, a.packets], // path B missed everything path A forwarded
      ]);
      const one = await daemon.ok("stats", { rule: "cam" }) as StatsResult;
      assert.deepEqual(one.rules.map((r) => r.name).sort(), ["cam[0]", "cam[1]"]);
      const path = await daemon.ok("stats", { rule: "cam[1]" }) as StatsResult;
      assert.deepEqual(path.rules.map((r) => r.name), ["cam[1]"]);
      // ctl capture takes one path (--input): what that path received
      const dir = await Deno.makeTempDir();
      try {
        const more = send(t, ["--rate", "1000", "--count", "3000"]);
        const cap = await daemon.ctl(
          "capture",
          "cam",
          "--input",
          "0",
          "--count",
          "50",
          "-w",
          `${dir}/a.pcapng`,
          "--json",
        );
        await more;
        assert.equal(cap.code, 0, cap.stderr);
        const end = JSON.parse(cap.stdout.trim().split("\n").pop()!);
        assert.equal(end.frames, 50);
        // the file's interface block names the path's interface (option if_name, 2 bytes)
        const file = new TextDecoder("latin1").decode(await Deno.readFile(`${dir}/a.pcapng`));
        const ifName = (n: string) => `\x02\x00\x02\x00${n}`;
        assert.ok(file.includes(ifName("rA")), "the capture is of path 0 (rA)");
        assert.ok(!file.includes(ifName("rB")));
        const bad = await daemon.ctl("capture", "cam", "--input", "2", "-w", `${dir}/b.pcapng`);
        assert.match(bad.stderr, /args\.input: the rule has 2 inputs \(index 0\.\.1\); got 2/);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    } finally {
      await d?.stop();
      await t.destroy();
    }
  },
});

Deno.test({
  name:
    "redundancy failover: the primary is cut and comes back; no duplicate, no reordering, two switches",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await pathsTopology("redfo");
    let d: Awaited<ReturnType<typeof startDaemon>> | undefined;
    try {
      d = await startDaemon(pathsConfig({ mode: "failover", failover_ms: 200 }), {
        netns: t.ns("rly"),
      });
      const daemon = d;
      const stats = async () => await daemon.ok("stats") as StatsResult;
      await untilActive(stats);
      const sink = await startSink(t, "rcv", "d0", [OUT], { idleMs: 4000 });
      const sending = send(t, ["--rate", "2000", "--count", "12000"]); // 6 s
      const at = async (ms: number) => await new Promise((r) => setTimeout(r, ms));
      // primary (A) active first; cut it for 2 s, then restore it
      await at(1500);
      const cutA = await lossOn(t, "pA", 100);
      await at(2000);
      const cutCount = await cutA();
      await lossOff(t, "pA");
      const sent = await sending;
      const report = await sink.result();
      const rep = report.total as unknown as {
        unique: number;
        duplicates: number;
        reordered: number;
      };
      const gapUs = report.groups[0].streams[0].max_gap_us ?? 0;
      const s = await quiet(stats);
      const [a, b] = paths(s);
      console.log(
        `failover: sent ${sent}, A cut for ${cutCount} datagrams; receiver ${rep.unique} unique, ` +
          `longest gap ${(gapUs / 1000).toFixed(1)} ms (failover_ms 200; a busy machine); ` +
          `A contributed ${a.packets}, B ${b.packets}; switches ${a.redundancy!.switches}`,
      );
      assert.ok(cutCount > 0);
      assert.equal(rep.duplicates, 0, "no duplicate, also when the primary returns");
      assert.equal(rep.reordered, 0);
      assert.ok(b.packets > 0, "the backup forwarded while the primary was cut");
      assert.equal(a.redundancy!.switches, 2, "switched to B and back to A (revertive)");
      assert.equal(a.redundancy!.active, true);
      assert.equal(b.redundancy!.active, false);
      for (const p of [a, b]) {
        const r = p.redundancy!;
        assert.equal(r.received, p.packets + r.merged_duplicate + r.late + r.inactive);
      }
      assert.equal(rep.unique, a.outputs[0].packets + b.outputs[0].packets);
      const log = await daemon.stop();
      d = undefined;
      // each switch is an event and a log line
      assert.match(log.stderr, /rule cam: input 1 active \(was input 0; 1 switches so far\)/);
      assert.match(log.stderr, /rule cam: input 0 active \(was input 1; 2 switches so far\)/);
    } finally {
      await d?.stop();
      await t.destroy();
    }
  },
});

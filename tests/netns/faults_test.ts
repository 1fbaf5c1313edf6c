/**
 * Faults the relay must count, report and survive while unaffected rules keep
 * forwarding: a full TX ring and a kernel RX ring overflow. (A worker crash,
 * interface deletion/re-creation and an output without an address are covered
 * by scale_test.ts.) Counted at independent receivers (mcr-sink), with every
 * loss accounted for (tests/netns/lib_account.ts): the counters are read from
 * one snapshot each, after the traffic stopped.
 */
import assert from "node:assert/strict";
import { skipReason, Topology } from "../../lab/netns.ts";
import { runGen, startRelayWith, startSink } from "../../lab/harness.ts";
import { chainV4, frameDrops, until, workDir } from "./lib_robust.ts";
import {
  assertAccounted,
  assertClean,
  assertRelayConsistent,
  type Hop,
  hopKey,
  outputPackets,
  PathMeter,
  quiesce,
} from "./lib_account.ts";

const S0: Hop = { role: "snd", dev: "s0" };
const S3: Hop = { role: "snd", dev: "s3" };
const R1: Hop = { role: "rly", dev: "r1" };
const R2: Hop = { role: "rly", dev: "r2" };

const skip = skipReason();
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };

Deno.test({
  ...opts,
  name: "TX ring full (64 slots, 64-way fan-out burst into a 10 Mbit/s output): counted as " +
    "ring_full, relay survives, a rule on another output delivers what it matched or counts it " +
    "on its own output",
  async fn() {
    const t = new Topology("txfull");
    const dir = await workDir("txfull");
    try {
      await chainV4(t, { extraOut: true });
      // A slow output link: frames wait in the qdisc, their ring slots stay taken. (On an
      // unshaped veth the relay kicks a full ring and gets its slots back at once.)
      await t.exec("rly", [
        "tc",
        "qdisc",
        "add",
        "dev",
        "r1",
        "root",
        "tbf",
        "rate",
        "10mbit",
        "burst",
        "16k",
        "latency",
        "20ms",
      ]);
      const FAN = 64;
      const config = {
        tx: { frame_count: 64 },
        rules: [
          {
            name: "fan",
            input: { interface: "r0", group: "239.1.1.1", port: 5001 },
            outputs: Array.from({ length: FAN }, (_, k) => ({
              interface: "r1",
              group: `239.40.0.${k + 1}`,
              port: 7000,
            })),
          },
          {
            name: "calm",
            input: { interface: "r0", group: "239.1.1.2", port: 5002 },
            outputs: [{ interface: "r2", group: "239.20.1.1", port: 7001 }],
          },
        ],
      };
      const meter = await PathMeter.start(t, [S0, R1, R2]);
      const relay = await startRelayWith(t, "rly", config, { dir, control: true });
      const CALM = 2000, BURST = 3000;
      const calmDst = ["239.20.1.1:7001"];
      const calmSink = await startSink(t, "rcv", "d2", calmDst, { settle: true });
      const calm = runGen(t, "snd", "s0", ["239.1.1.2:5002"], {
        rate: 1000,
        count: CALM,
        streamBase: 7,
      });
      await until(
        () => relay.stats(),
        (s) => s.rules.find((r) => r.name === "calm")!.packets > 0,
        20_000,
        "the calm stream to flow",
      );
      // flat out: batches of several frames, each wanting 64 slots of a 64-slot ring
      const burst = await runGen(t, "snd", "s0", ["239.1.1.1:5001"], {
        rate: 0,
        count: BURST,
        size: 200,
      });
      const c = await calm;
      const up = await meter.read();
      await quiesce(() => relay.stats(), { r0: c.sent + burst.sent - up.hops[hopKey(S0)] });
      const { stats, code, stderr } = await relay.stop();
      const path = await meter.read();
      const cr = await calmSink.settle(outputPackets(stats, calmDst) - path.hops[hopKey(R2)]);

      assert.equal(code, 0, stderr);
      for (const w of stats.workers) assert.equal(w.restarts, 0, "no worker restarted");
      const fan = stats.rules.find((r) => r.name === "fan")!;
      const ringFull = fan.outputs.reduce((a, o) => a + o.ring_full, 0);
      assert.ok(ringFull > 0, "TX ring full happened and was counted per output");
      // matched × outputs = sent + drops for each rule; drops.tx_ring_full = the sum over every
      // output (the calm rule's own ring can fill too while the relay is starved of CPU: a batch
      // then holds more calm frames than its 64 slots); received = matched + frame drops.
      assertRelayConsistent(stats);
      const r0 = stats.interfaces.find((i) => i.name === "r0")!;
      assertAccounted({
        sent: c.sent + burst.sent,
        delivered: r0.frames,
        drops: { "s0→r0": path.hops[hopKey(S0)], r0_kernel_drops: r0.kernel_drops },
      }, "into the relay");
      // The unaffected rule: every datagram it matched was sent on its own output or counted
      // there, and its receiver got every one it sent, once, in order. Nothing the fan's full
      // ring dropped is counted on it.
      const calmRule = stats.rules.find((r) => r.name === "calm")!;
      const co = calmRule.outputs[0];
      assertAccounted({
        sent: calmRule.packets,
        delivered: cr.total.unique,
        drops: {
          calm_ring_full: co.ring_full,
          calm_errors: co.errors,
          "r2→d2": path.hops[hopKey(R2)],
          receiver_socket: cr.socket_drops ?? 0,
        },
      }, "calm rule");
      assert.ok(
        calmRule.packets >= CALM - r0.kernel_drops - path.hops[hopKey(S0)],
        "calm matched every frame of its stream that reached the ring",
      );
      assertClean(cr, "calm rule");
      assert.equal(fan.packets + calmRule.packets + frameDrops(stats), r0.frames);
    } finally {
      await t.destroy();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  ...opts,
  name: "kernel RX ring overflow (64 slots, flat-out burst): kernel_drops counted, " +
    "receiver + counted drops = sent, a rule on another input keeps forwarding",
  async fn() {
    const t = new Topology("rxovf");
    const dir = await workDir("rxovf");
    try {
      await chainV4(t, { extraOut: true, extraIn: true });
      const config = {
        rx: { frame_count: 64, batch_max: 16 },
        rules: [
          {
            name: "burst",
            input: { interface: "r0", group: "239.1.1.1", port: 5001 },
            outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
          },
          {
            name: "calm",
            input: { interface: "r3", group: "239.1.1.3", port: 5003 },
            outputs: [{ interface: "r2", group: "239.30.1.1", port: 7003 }],
          },
        ],
      };
      const meter = await PathMeter.start(t, [S0, S3, R1, R2]);
      const relay = await startRelayWith(t, "rly", config, { dir, control: true });
      const BURST = 200_000, CALM = 1000;
      const dst = ["239.10.1.1:6001"], calmDst = ["239.30.1.1:7003"];
      const sink = await startSink(t, "rcv", "d0", dst, { settle: true });
      const calmSink = await startSink(t, "rcv", "d2", calmDst, { settle: true });
      const calm = runGen(t, "snd", "s3", ["239.1.1.3:5003"], {
        rate: 500,
        count: CALM,
        streamBase: 9,
      });
      await until(
        () => relay.stats(),
        (s) => s.rules.find((r) => r.name === "calm")!.packets > 0,
        20_000,
        "the calm stream to flow",
      );
      const g = await runGen(t, "snd", "s0", ["239.1.1.1:5001"], {
        rate: 0,
        count: BURST,
        size: 64,
      });
      const c = await calm;
      const up = await meter.read();
      await quiesce(() => relay.stats(), {
        r0: g.sent - up.hops[hopKey(S0)],
        r3: c.sent - up.hops[hopKey(S3)],
      });
      const { stats, code, stderr } = await relay.stop();
      const path = await meter.read();
      const rep = await sink.settle(outputPackets(stats, dst) - path.hops[hopKey(R1)]);
      const cr = await calmSink.settle(outputPackets(stats, calmDst) - path.hops[hopKey(R2)]);

      assert.equal(code, 0, stderr);
      for (const w of stats.workers) assert.equal(w.restarts, 0, "no worker restarted");
      const r0 = stats.interfaces.find((i) => i.name === "r0")!;
      const burst = stats.rules.find((r) => r.name === "burst")!;
      assert.equal(g.sent, BURST);
      assert.ok(
        r0.kernel_drops > 0,
        "the 64-slot ring overflowed and the kernel drops were counted",
      );
      assertRelayConsistent(stats); // incl. kernel_packets = frames + kernel_drops per interface
      assert.equal(burst.packets, r0.frames, "every frame in the ring matched");
      assert.equal(burst.outputs[0].packets, burst.packets, "and was sent");
      assert.equal(rep.total.duplicates, 0);
      assertAccounted({
        sent: g.sent,
        delivered: rep.total.unique,
        drops: {
          "s0→r0": path.hops[hopKey(S0)],
          r0_kernel_drops: r0.kernel_drops,
          relay_output_drops: burst.outputs[0].ring_full + burst.outputs[0].errors,
          "r1→d0": path.hops[hopKey(R1)],
          receiver_socket: rep.socket_drops ?? 0,
        },
      }, "burst: receiver count + kernel drops = datagrams sent");
      assertClean(rep, "burst");
      // the rule on the other input: whatever reached its ring was forwarded, and it forwarded
      const r3 = stats.interfaces.find((i) => i.name === "r3")!;
      const calmRule = stats.rules.find((r) => r.name === "calm")!;
      assert.equal(calmRule.packets, r3.frames);
      assertAccounted({
        sent: c.sent,
        delivered: cr.total.unique,
        drops: {
          "s3→r3": path.hops[hopKey(S3)],
          r3_kernel_drops: r3.kernel_drops,
          relay_output_drops: calmRule.outputs[0].ring_full + calmRule.outputs[0].errors,
          "r2→d2": path.hops[hopKey(R2)],
          receiver_socket: cr.socket_drops ?? 0,
        },
      }, "calm rule");
      assertClean(cr, "calm rule");
    } finally {
      await t.destroy();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

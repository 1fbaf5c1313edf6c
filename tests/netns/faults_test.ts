/**
 * Faults the relay must count, report and survive while unaffected rules keep
 * forwarding: a full TX ring and a kernel RX ring overflow. (A worker crash,
 * interface deletion/re-creation and an output without an address are covered
 * by scale_test.ts.) Counted at independent receivers (mcr-sink).
 */
import assert from "node:assert/strict";
import { skipReason, Topology } from "../../src/netns.ts";
import { runGen, startRelayWith, startSink } from "../../src/harness.ts";
import { chainV4, workDir } from "./lib_robust.ts";

const skip = skipReason();
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };

Deno.test({
  ...opts,
  name: "TX ring full (64 slots, 64-way fan-out burst): counted as ring_full, relay survives, " +
    "a rule on another output delivers everything",
  async fn() {
    const t = new Topology("txfull");
    const dir = await workDir("txfull");
    try {
      await chainV4(t, { extraOut: true });
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
      const relay = await startRelayWith(t, "rly", config, { dir });
      const CALM = 2000, BURST = 3000;
      const calmSink = await startSink(t, "rcv", "d2", ["239.20.1.1:7001"], {
        expectTotal: CALM,
        idleMs: 3000,
      });
      const calm = runGen(t, "snd", "s0", ["239.1.1.2:5002"], {
        rate: 1000,
        count: CALM,
        streamBase: 7,
      });
      await new Promise((r) => setTimeout(r, 300));
      // flat out: batches of several frames, each wanting 64 slots of a 64-slot ring
      await runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: 0, count: BURST, size: 200 });
      await calm;
      const cr = await calmSink.result();
      const { stats, code, stderr } = await relay.stop();

      assert.equal(code, 0, stderr);
      for (const w of stats.workers) assert.equal(w.restarts, 0, "no worker restarted");
      const fan = stats.rules.find((r) => r.name === "fan")!;
      const ringFull = fan.outputs.reduce((a, o) => a + o.ring_full, 0);
      const sent = fan.outputs.reduce((a, o) => a + o.packets, 0);
      const errors = fan.outputs.reduce((a, o) => a + o.errors, 0);
      assert.ok(ringFull > 0, "TX ring full happened and was counted per output");
      assert.equal(stats.drops.tx_ring_full, ringFull, "drops.tx_ring_full = sum of outputs");
      assert.equal(sent + ringFull + errors, fan.packets * FAN, "matched × outputs = sent + drops");
      const r0 = stats.interfaces.find((i) => i.name === "r0")!;
      assert.equal(fan.packets + stats.rules[1].packets + (stats.drops.no_match ?? 0), r0.frames);
      // the unaffected rule delivered every datagram, once, in order
      assert.equal(stats.rules[1].packets, CALM);
      assert.equal(stats.rules[1].outputs[0].packets, CALM);
      assert.equal(cr.total.unique, CALM, "calm rule: everything delivered");
      assert.equal(cr.total.duplicates + cr.total.reordered + cr.total.corrupt, 0);
    } finally {
      await t.destroy();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  ...opts,
  name: "kernel RX ring overflow (64 slots, flat-out burst): kernel_drops counted, " +
    "receiver + kernel drops = sent, a rule on another input keeps forwarding",
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
      const relay = await startRelayWith(t, "rly", config, { dir });
      const BURST = 200_000, CALM = 1000;
      const sink = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], { idleMs: 3000 });
      const calmSink = await startSink(t, "rcv", "d2", ["239.30.1.1:7003"], {
        expectTotal: CALM,
        idleMs: 4000,
      });
      const calm = runGen(t, "snd", "s3", ["239.1.1.3:5003"], {
        rate: 500,
        count: CALM,
        streamBase: 9,
      });
      await new Promise((r) => setTimeout(r, 200));
      const g = await runGen(t, "snd", "s0", ["239.1.1.1:5001"], {
        rate: 0,
        count: BURST,
        size: 64,
      });
      await calm;
      const rep = await sink.result();
      const cr = await calmSink.result();
      const { stats, code, stderr } = await relay.stop();

      assert.equal(code, 0, stderr);
      for (const w of stats.workers) assert.equal(w.restarts, 0, "no worker restarted");
      const r0 = stats.interfaces.find((i) => i.name === "r0")!;
      const burst = stats.rules.find((r) => r.name === "burst")!;
      assert.equal(g.sent, BURST);
      assert.ok(
        r0.kernel_drops > 0,
        "the 64-slot ring overflowed and the kernel drops were counted",
      );
      assert.equal(r0.kernel_packets, r0.frames + r0.kernel_drops, "PACKET_STATISTICS consistent");
      assert.equal(burst.packets, r0.frames, "every frame in the ring matched");
      assert.equal(burst.outputs[0].packets, burst.packets, "and was sent");
      assert.equal(rep.total.duplicates, 0);
      assert.equal(rep.total.unique, burst.outputs[0].packets, "receiver got what the relay sent");
      assert.equal(
        rep.total.unique + r0.kernel_drops,
        BURST,
        "receiver count + kernel drops = datagrams sent",
      );
      // the rule on the other input: whatever reached its ring was forwarded, and it forwarded
      const r3 = stats.interfaces.find((i) => i.name === "r3")!;
      const calmRule = stats.rules.find((r) => r.name === "calm")!;
      assert.equal(r3.frames + r3.kernel_drops, CALM);
      assert.equal(calmRule.outputs[0].packets, r3.frames);
      assert.equal(cr.total.unique, r3.frames, "calm rule: receiver got every frame it captured");
      assert.ok(cr.total.unique > 0);
      assert.equal(cr.total.duplicates, 0);
    } finally {
      await t.destroy();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

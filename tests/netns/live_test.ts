/**
 * Live behaviour of the data path in namespaces: rule-table changes while a
 * stream flows (no datagram of an unchanged rule missed), the TTL policy,
 * drop accounting and IGMP membership.
 *
 * Under load the relay's RX ring can overflow (counted as `kernel_drops`, for
 * all streams of the interface together); the assertions hold either way (see
 * tests/netns/lib_account.ts) and reduce to exact per-stream counts when the
 * ring did not overflow.
 */
import assert from "node:assert/strict";
import { chainTopology, skipReason } from "../../lab/netns.ts";
import { runGen, startCapture, startDriver, startRelayWith, startSink } from "../../lab/harness.ts";
import type { RelayStats } from "../../src/relay/stats.ts";
import {
  assertAccounted,
  assertClean,
  assertRelayConsistent,
  CHAIN_IN,
  CHAIN_OUT,
  hopKey,
  PathMeter,
  quiesce,
  total,
} from "./lib_account.ts";
import { frameDrops } from "./lib_robust.ts";

const skip = skipReason();

/** The shared chain topology (lab/netns.ts). */
const chain = chainTopology;

const cam1 = {
  name: "cam1",
  input: { interface: "r0", group: "239.1.1.1", port: 5001 },
  outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
};
const cam2 = {
  name: "cam2",
  input: { interface: "r0", group: "239.1.1.2", port: 5002 },
  outputs: [{ interface: "r1", group: "239.10.2.2", port: 6002 }],
};

/** Output-level drops over all outputs, removed rules included (the totals keep them). */
function allOutputDrops(s: RelayStats): number {
  return (s.drops.tx_ring_full ?? 0) + (s.drops.tx_error ?? 0) + (s.drops.ttl_expired ?? 0);
}

Deno.test({
  name:
    "rules change live: an unchanged rule's stream misses nothing, new and removed rules take effect",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await chain("live");
    try {
      const meter = await PathMeter.start(t, [CHAIN_IN, CHAIN_OUT]);
      const relay = await startDriver(t, "rly", [
        { rules: [cam1] },
        { rules: [cam1, cam2] },
        { rules: [cam1] },
      ]);
      const N = 60_000; // per stream: 3 s at 40 kpps in all
      const s1 = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], { settle: true });
      const s2 = await startSink(t, "rcv", "d0", ["239.10.2.2:6002"], {
        idleMs: 0,
        durationS: 300,
      });
      const gen = runGen(t, "snd", "s0", ["239.1.1.1:5001", "239.1.1.2:5002"], {
        rate: 40_000,
        count: N,
      });
      // Each change waits for the previous state to be visible in the counters, not for a time.
      await relay.until((s) => s.rules[0].packets > 0, 20_000, "cam1 forwarding");
      await relay.apply(1);
      // cam2's group is joined on r0 while cam2 exists ...
      const joined = await t.exec("rly", ["ip", "maddr", "show", "dev", "r0"]);
      await relay.until(
        (s) => (s.rules.find((r) => r.name === "cam2")?.outputs[0].packets ?? 0) > 0,
        20_000,
        "cam2 forwarding",
      );
      const atRemoval = (await relay.apply(2)).interfaces[0];
      // ... and left when the last rule for it goes; cam1's stays.
      const left = await t.exec("rly", ["ip", "maddr", "show", "dev", "r0"]);
      assert.match(joined, /inet\s+239\.1\.1\.2\b/);
      assert.doesNotMatch(left, /239\.1\.1\.2\b/);
      assert.match(left, /inet\s+239\.1\.1\.1\b/);
      const g = await gen;
      const up = await meter.read();
      await quiesce(() => relay.snap(), {
        r0: g.sent - up.hops[hopKey(CHAIN_IN)],
      });
      const { code, stats, stderr } = await relay.stop();
      assert.equal(code, 0, stderr);
      const path = await meter.read();
      const hops = total(path.hops);
      const c1 = stats.rules.find((r) => r.name === "cam1")!;
      // cam1's last datagrams left after cam2's last: once cam1's sink has every one of them,
      // cam2's are in (or dropped at) its socket too.
      const r1 = await s1.settle(c1.outputs[0].packets - path.hops["rly/r1"]);
      const r2 = await s2.stop();
      const r0 = stats.interfaces.find((i) => i.name === "r0")!;
      const kd = r0.kernel_drops;
      const sd1 = r1.socket_drops ?? 0, sd2 = r2.socket_drops ?? 0;

      // Every datagram of both streams: delivered, or counted where it was lost.
      assertAccounted({
        sent: g.sent,
        delivered: r1.total.unique + r2.total.unique,
        drops: {
          "s0→r0": path.hops["snd/s0"],
          r0_kernel_drops: kd,
          relay_frame_drops: frameDrops(stats), // cam2's stream while cam2 did not exist
          relay_output_drops: allOutputDrops(stats),
          "r1→d0": path.hops["rly/r1"],
          receiver_sockets: sd1 + sd2,
        },
      }, "both streams");
      assert.equal(r0.frames + kd + path.hops["snd/s0"], 2 * N);

      // cam1 was in every table: nothing of it missing beyond the counted drops it shares with
      // cam2 (the RX ring, the veth hops; with none of those, nothing at all).
      const c1out = c1.outputs[0];
      const c1lost = N - r1.total.unique - sd1 - (c1out.ring_full + c1out.errors);
      assert.ok(c1lost >= 0 && c1lost <= kd + hops, `cam1 missed only counted drops: ${c1lost}`);
      assertClean(r1, "cam1");
      // Its counters kept counting through both swaps (a reset would leave fewer than delivered).
      assert.equal(c1.packets, c1out.packets + c1out.ring_full + c1out.errors + c1out.ttl_expired);
      assert.ok(c1.packets >= N - kd - hops, "cam1 counted every frame of its stream it took");
      assert.ok(r1.total.unique + sd1 <= c1out.packets, "cam1 delivered no more than it sent");
      assert.ok(r1.total.unique + sd1 + path.hops["rly/r1"] >= c1out.packets);

      // cam2 existed only between the swaps: some of its stream, and nothing sent after it went.
      // Frames arrived after cam2 went (the last frame sent is cam2's last datagram) ...
      assert.ok(
        r0.frames + kd > atRemoval.frames + atRemoval.kernel_drops,
        "cam2 was removed while its stream still flowed",
      );
      assert.ok(r2.total.unique > 0, "cam2 forwarded while present");
      const last = r2.groups[0].streams[0].highest_seq;
      // ... and were not forwarded.
      assert.ok(last < N - 1, `cam2 stopped when removed (last delivered ${last} of ${N - 1})`);
      assertClean(r2, "cam2");
      // Every cam2 datagram outside its lifetime was counted as no_match, and no_match holds
      // nothing else (the counted drops it shares with cam1 are the only slack).
      const notDelivered2 = N - r2.total.unique - sd2;
      assert.ok(stats.drops.no_match <= notDelivered2, "no_match holds only cam2 datagrams");
      assert.ok(
        stats.drops.no_match >= notDelivered2 - kd - hops - allOutputDrops(stats),
        `cam2's missing datagrams are no_match or counted drops (${stats.drops.no_match})`,
      );
      assert.equal(r0.matched, r0.frames - frameDrops(stats), "every other frame matched");
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  name:
    "TTL decrement policy: TTL<=1 dropped and counted as ttl_expired, others forwarded; IGMP join held while running",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await chain("ttl");
    try {
      const meter = await PathMeter.start(t, [CHAIN_IN, CHAIN_OUT]);
      const relay = await startRelayWith(t, "rly", { ttl: "decrement", rules: [cam1] }, {
        control: true,
      });
      // The relay joined 239.1.1.1 on r0 (so switches/NICs deliver the stream).
      const maddr = await t.exec("rly", ["ip", "maddr", "show", "dev", "r0"]);
      assert.match(maddr, /inet\s+239\.1\.1\.1/);
      const s1 = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], { settle: true });
      // An independent decoder on the receiver's interface reads the wire.
      const cap = await startCapture(t, "rcv", "d0", 6001, 50);
      const arrived = async (sent: number) => {
        const up = await meter.read();
        return sent - up.hops[hopKey(CHAIN_IN)];
      };
      // Phase 1: stream 0 arrives with TTL 1; the relay takes all of it before phase 2 starts,
      // so the phases' kernel drops are told apart.
      const g1 = await runGen(t, "snd", "s0", ["239.1.1.1:5001"], {
        rate: 10_000,
        count: 3000,
        ttl: 1,
      });
      const p1 = await quiesce(() => relay.stats(), { r0: await arrived(g1.sent) });
      const m1 = await meter.read();
      // Phase 2: stream 1 with TTL 7.
      const g2 = await runGen(t, "snd", "s0", ["239.1.1.1:5001"], {
        rate: 10_000,
        count: 2000,
        ttl: 7,
        streamBase: 1,
      });
      await quiesce(() => relay.stats(), { r0: await arrived(g1.sent + g2.sent) });
      const { stats, code, stderr } = await relay.stop();
      assert.equal(code, 0, stderr);
      const path = await meter.read();
      const out = stats.rules[0].outputs[0];
      const r1 = await s1.settle(out.packets - path.hops["rly/r1"]);
      const seen = await cap.result();
      assert.equal(seen.length, 50, "the decoder saw the forwarded datagrams");
      for (const d of seen) {
        assert.equal(d.ttl, 6, "input TTL 7 leaves as 6");
        assert.equal(d.dst, "239.10.1.1");
        assert.equal(d.src, "10.77.2.1", "source: the output interface's address");
        assert.equal(d.ip_csum_ok, true, "IPv4 header checksum verifies");
        assert.equal(d.udp_csum_ok, true, "UDP checksum verifies");
        assert.notEqual(d.udp_csum, 0, "a UDP checksum is present");
      }
      // Phase 1: every TTL-1 datagram the relay took was dropped as ttl_expired, none sent.
      const i1 = p1.interfaces[0], o1 = p1.rules[0].outputs[0];
      assertAccounted({
        sent: g1.sent,
        delivered: o1.ttl_expired,
        drops: {
          "s0→r0": m1.hops[hopKey(CHAIN_IN)],
          r0_kernel_drops: i1.kernel_drops,
        },
      }, "TTL 1: ttl_expired");
      assert.equal(o1.packets, 0, "nothing with TTL 1 forwarded");
      // Phase 2: nothing more expired; everything taken was forwarded and delivered.
      const r0 = stats.interfaces[0];
      assert.equal(out.ttl_expired, o1.ttl_expired, "TTL 7 never expires");
      assert.equal(stats.drops.ttl_expired, out.ttl_expired);
      assertAccounted({
        sent: g2.sent,
        delivered: r1.total.unique,
        drops: {
          "s0→r0": path.hops[hopKey(CHAIN_IN)] - m1.hops[hopKey(CHAIN_IN)],
          r0_kernel_drops: r0.kernel_drops - i1.kernel_drops,
          "r1→d0": path.hops["rly/r1"],
          receiver_socket: r1.socket_drops ?? 0,
        },
      }, "TTL 7: forwarded");
      assert.deepEqual(
        r1.groups[0].streams.map((s) => s.stream),
        [1],
        "only datagrams arriving with TTL > 1 are forwarded",
      );
      assertClean(r1, "TTL 7 stream");
      assertRelayConsistent(stats);
      // After the relay stopped, the membership is gone.
      const after = await t.exec("rly", ["ip", "maddr", "show", "dev", "r0"]);
      assert.doesNotMatch(after, /239\.1\.1\.1/);
    } finally {
      await t.destroy();
    }
  },
});

/**
 * Live behaviour of the data path in namespaces: rule-table changes while a
 * stream flows (no datagram of an unchanged rule missed), the TTL policy,
 * drop accounting and IGMP membership.
 */
import assert from "node:assert/strict";
import { chainTopology, skipReason } from "../../src/netns.ts";
import { runGen, startCapture, startDriver, startRelay, startSink } from "../../src/harness.ts";

const skip = skipReason();

/** The shared chain topology (src/netns.ts). */
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

Deno.test({
  name:
    "rules change live: an unchanged rule's stream misses nothing, new and removed rules take effect",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await chain("live");
    try {
      const relay = await startDriver(t, "rly", [
        { rules: [cam1] },
        { rules: [cam1, cam2] },
        { rules: [cam1] },
      ]);
      const N = 60_000; // per stream: 3 s at 20 kpps
      const s1 = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], { expectTotal: N });
      const s2 = await startSink(t, "rcv", "d0", ["239.10.2.2:6002"], { idleMs: 1000 });
      const gen = runGen(t, "snd", "s0", ["239.1.1.1:5001", "239.1.1.2:5002"], {
        rate: 40_000,
        count: N,
      });
      await new Promise((r) => setTimeout(r, 700));
      await relay.apply(1);
      // cam2's group is joined on r0 while cam2 exists ...
      const joined = await t.exec("rly", ["ip", "maddr", "show", "dev", "r0"]);
      await new Promise((r) => setTimeout(r, 1000));
      await relay.apply(2);
      // ... and left when the last rule for it goes; cam1's stays.
      const left = await t.exec("rly", ["ip", "maddr", "show", "dev", "r0"]);
      assert.match(joined, /inet\s+239\.1\.1\.2\b/);
      assert.doesNotMatch(left, /239\.1\.1\.2\b/);
      assert.match(left, /inet\s+239\.1\.1\.1\b/);
      await gen;
      const r1 = await s1.result();
      const r2 = await s2.result();
      const { code, stats, stderr } = await relay.stop();
      assert.equal(code, 0, stderr);

      // cam1 was in every table: not one datagram missed across two swaps.
      assert.equal(r1.total.unique, N);
      assert.equal(r1.total.lost, 0);
      assert.equal(r1.total.duplicates, 0);
      assert.equal(r1.total.reordered, 0);
      const c1 = stats.rules.find((r) => r.name === "cam1")!;
      assert.equal(c1.packets, N, "cam1 counters kept counting through both swaps");
      // cam2 existed only between the swaps: some but not all of its stream.
      assert.ok(r2.total.unique > 5_000, `cam2 forwarded while present (${r2.total.unique})`);
      assert.ok(r2.total.unique < N - 5_000, "cam2 stopped when removed");
      assert.equal(r2.total.duplicates, 0);
      assert.equal(r2.total.reordered, 0);
      // Every cam2 datagram outside its lifetime was counted as no_match.
      const r0 = stats.interfaces.find((i) => i.name === "r0")!;
      assert.equal(r0.frames, 2 * N);
      assert.equal(stats.drops.no_match, N - r2.total.unique);
      assert.equal(r0.matched, N + r2.total.unique);
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
      const relay = await startRelay(t, "rly", {
        ttl: "decrement",
        rules: [cam1],
      });
      // The relay joined 239.1.1.1 on r0 (so switches/NICs deliver the stream).
      const maddr = await t.exec("rly", ["ip", "maddr", "show", "dev", "r0"]);
      assert.match(maddr, /inet\s+239\.1\.1\.1/);
      const s1 = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], { idleMs: 1000 });
      // An independent decoder on the receiver's interface reads the wire.
      const cap = await startCapture(t, "rcv", "d0", 6001, 50);
      await runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: 10_000, count: 3000, ttl: 1 });
      await runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: 10_000, count: 2000, ttl: 7 });
      const r1 = await s1.result();
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
      const { stats } = await relay.stop();
      assert.equal(r1.total.received, 2000, "only datagrams arriving with TTL > 1 are forwarded");
      assert.equal(stats.rules[0].packets, 5000);
      assert.equal(stats.rules[0].outputs[0].ttl_expired, 3000);
      assert.equal(stats.drops.ttl_expired, 3000);
      assert.equal(stats.rules[0].outputs[0].packets, 2000);
      // After the relay stopped, the membership is gone.
      const after = await t.exec("rly", ["ip", "maddr", "show", "dev", "r0"]);
      assert.doesNotMatch(after, /239\.1\.1\.1/);
    } finally {
      await t.destroy();
    }
  },
});

/**
 * End-to-end relay tests in network namespaces the test creates and removes.
 * Delivery is counted by an independent receiver (mcr-sink: sequence numbers,
 * payload pattern) and checksums are judged by the receiving kernel
 * (/proc/net/snmp Udp InCsumErrors in the receiver's namespace).
 */
import assert from "node:assert/strict";
import { chainTopology, skipReason, udpSnmp } from "../../src/netns.ts";
import { runGen, startCapture, startRelay, startSink } from "../../src/harness.ts";

const skip = skipReason();
if (skip) console.warn(`netns relay tests skipped: ${skip}`);

const N = 20_000;
const RATE = 20_000;

/** The shared chain topology (src/netns.ts). */
const chain = chainTopology;

Deno.test({
  name: "chain: a translated 1:1 rule delivers every datagram exactly once, in order, intact",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await chain("chain");
    try {
      const relay = await startRelay(t, "rly", {
        rules: [{
          name: "cam1",
          input: { interface: "r0", group: "239.1.1.1", port: 5001 },
          outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
        }],
      });
      const before = await udpSnmp(t, "rcv");
      const sink = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], { expectTotal: N });
      const cap = await startCapture(t, "rcv", "d0", 6001, 100);
      await runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: RATE, count: N });
      const rep = await sink.result();
      const after = await udpSnmp(t, "rcv");
      const seen = await cap.result();
      const { stats } = await relay.stop();
      // An independent decoder (plain AF_PACKET socket, its own checksum code) read the wire.
      assert.equal(seen.length, 100);
      for (const d of seen) {
        assert.deepEqual(
          [d.ip_csum_ok, d.udp_csum_ok, d.ttl, d.src, d.dst, d.dport, d.udp_len],
          [true, true, 1, "10.77.2.1", "239.10.1.1", 6001, 1024 + 8],
          "valid checksums, default TTL 1, translated group, interface source address",
        );
      }

      assert.equal(rep.total.unique, N, "every datagram delivered");
      assert.equal(rep.total.received, N, "nothing delivered twice");
      assert.equal(rep.total.duplicates, 0);
      assert.equal(rep.total.reordered, 0, "in order");
      assert.equal(rep.total.corrupt, 0, "payload byte-identical");
      assert.equal(rep.total.foreign, 0);
      // The receiving kernel verified IPv4 and UDP checksums of every datagram.
      assert.equal(after.InCsumErrors - before.InCsumErrors, 0, "no UDP checksum errors");
      assert.ok(after.InDatagrams - before.InDatagrams >= N);
      // The relay's own counters agree (second opinion).
      assert.equal(stats.rules[0].packets, N);
      assert.equal(stats.rules[0].outputs[0].packets, N);
      assert.equal(stats.drops.tx_ring_full, 0);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  name: "fan-out 1:3 to two output interfaces and three groups",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await chain("fan");
    try {
      await t.addNs("rc2");
      await t.link({ role: "rly", dev: "r2", addr: "10.77.3.1/24" }, {
        role: "rc2",
        dev: "e0",
        addr: "10.77.3.2/24",
      });
      const relay = await startRelay(t, "rly", {
        rules: [{
          name: "fan",
          input: { interface: "r0", group: "239.1.1.1", port: 5001 },
          outputs: [
            { interface: "r1", group: "239.10.1.1", port: 6001 },
            { interface: "r1", group: "239.10.1.2", port: 6002 },
            { interface: "r2", group: "239.10.1.3", port: 6003 },
          ],
        }],
      });
      const s1 = await startSink(t, "rcv", "d0", ["239.10.1.1:6001", "239.10.1.2:6002"], {
        expectTotal: 2 * N,
      });
      const s2 = await startSink(t, "rc2", "e0", ["239.10.1.3:6003"], { expectTotal: N });
      await runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: RATE, count: N });
      const r1 = await s1.result();
      const r2 = await s2.result();
      const { stats } = await relay.stop();
      for (const g of r1.groups) {
        const u = g.streams.reduce((a, s) => a + s.unique, 0);
        assert.equal(u, N, `${g.group}:${g.port} got every datagram`);
      }
      assert.equal(r1.groups.length, 2);
      assert.equal(r1.total.duplicates, 0);
      assert.equal(r1.total.reordered, 0);
      assert.equal(r1.total.corrupt, 0);
      assert.equal(r2.total.unique, N);
      assert.equal(r2.total.received, N);
      assert.equal(r2.total.corrupt, 0);
      assert.deepEqual(stats.rules[0].outputs.map((o) => o.packets), [N, N, N]);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  name: "multicast to unicast output",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await chain("uni");
    try {
      const relay = await startRelay(t, "rly", {
        rules: [{
          name: "m2u",
          input: { interface: "r0", group: "239.1.1.1", port: 5001 },
          outputs: [{ interface: "r1", group: "10.77.2.2", port: 7001 }],
        }],
      });
      const before = await udpSnmp(t, "rcv");
      const sink = await startSink(t, "rcv", "d0", ["0.0.0.0:7001"], { expectTotal: N });
      await runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: RATE, count: N });
      const rep = await sink.result();
      const after = await udpSnmp(t, "rcv");
      const { stats } = await relay.stop();
      assert.equal(rep.total.unique, N);
      assert.equal(rep.total.received, N);
      assert.equal(rep.total.reordered, 0);
      assert.equal(rep.total.corrupt, 0);
      assert.equal(after.InCsumErrors - before.InCsumErrors, 0);
      assert.equal(stats.rules[0].outputs[0].packets, N);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  name: "input and output on the same interface: the relay never re-captures what it sends",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await chain("same");
    try {
      // Rule "back" sends onto r0, where it also listens. Rule "trap" would forward
      // anything arriving on r0 for 239.1.1.2:5002 to the receiver: if the relay
      // re-captured its own output, trap would fire.
      const relay = await startRelay(t, "rly", {
        rules: [
          {
            name: "back",
            input: { interface: "r0", group: "239.1.1.1", port: 5001 },
            outputs: [{ interface: "r0", group: "239.1.1.2", port: 5002 }],
          },
          {
            name: "trap",
            input: { interface: "r0", group: "239.1.1.2", port: 5002 },
            outputs: [{ interface: "r1", group: "239.10.9.9", port: 6009 }],
          },
        ],
      });
      const back = await startSink(t, "snd", "s0", ["239.1.1.2:5002"], { expectTotal: N });
      const trap = await startSink(t, "rcv", "d0", ["239.10.9.9:6009"], {
        idleMs: 0,
        durationS: 4,
      });
      await runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: RATE, count: N });
      const rb = await back.result();
      const rt = await trap.result();
      const { stats } = await relay.stop();
      assert.equal(rb.total.unique, N, "the same-interface output delivered everything");
      assert.equal(rb.total.received, N, "exactly once");
      assert.equal(rt.total.received, 0, "own output never re-captured");
      const r0 = stats.interfaces.find((i) => i.name === "r0")!;
      assert.equal(r0.frames, N, "r0 saw only the sender's frames");
      assert.equal(stats.rules.find((r) => r.name === "trap")!.packets, 0);
    } finally {
      await t.destroy();
    }
  },
});

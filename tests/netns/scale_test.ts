/**
 * Multi-worker scaling, many interfaces and self-healing (namespaces; counted
 * at independent receivers). Every datagram sent is delivered or counted as a
 * drop where it was lost (tests/netns/lib_account.ts); that every one arrives
 * on a quiet machine is measured by the benchmarks (bench/README.md), not
 * asserted here.
 *
 * Long file: each scenario builds and tears down its own namespaces inline,
 * so it reads on its own; shared pieces are in lab/ and lib_account.ts.
 */
import assert from "node:assert/strict";
import { chainTopology, linkCounters, skipReason, Topology } from "../../lab/netns.ts";
import { runGen, type SinkReport, startDriver, startSink } from "../../lab/harness.ts";
import type { RelayStats } from "../../src/relay/stats.ts";
import {
  assertAccounted,
  assertChainAccounted,
  assertClean,
  assertEachStream,
  assertRelayConsistent,
  CHAIN_IN,
  CHAIN_OUT,
  drive,
  type Hop,
  hopKey,
  outputDrops,
  outputPackets,
  PathMeter,
  quiesce,
} from "./lib_account.ts";
import { frameDrops } from "./lib_robust.ts";

const skip = skipReason();
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };

/** The shared chain topology (lab/netns.ts). */
const chain = chainTopology;

/** Cpus_allowed_list of every thread of the process `pid` (or of its child, for `ip netns exec`). */
async function threadAffinities(pid: number): Promise<string[]> {
  // `ip netns exec` execs the command in place, so pid is the relay's own process.
  const out: string[] = [];
  for await (const e of Deno.readDir(`/proc/${pid}/task`)) {
    const st = await Deno.readTextFile(`/proc/${pid}/task/${e.name}/status`).catch(() => "");
    const m = st.match(/^Cpus_allowed_list:\s*(\S+)/m);
    if (m) out.push(m[1]);
  }
  return out;
}

function manyRules(n: number) {
  return Array.from({ length: n }, (_, k) => ({
    name: `s${k}`,
    input: { interface: "r0", group: `239.2.0.${k + 1}`, port: 5000 + k },
    outputs: [{ interface: "r1", group: `239.20.0.${k + 1}`, port: 6000 + k }],
  }));
}

/** Every stream arrived (something of it), each datagram at most once, each stream in order. */
function assertEveryStream(rep: SinkReport, streams: number): void {
  assert.equal(rep.groups.length, streams, "every group received something");
  assertEachStream(rep, "streams");
  assertClean(rep, "streams");
}

for (const workers of [2, 4]) {
  Deno.test({
    ...opts,
    name:
      `${workers} workers in one fanout group: 32 flows, each datagram at most once, each flow ` +
      "in order, every loss counted",
    async fn() {
      const t = await chain(`w${workers}`);
      try {
        const STREAMS = 32, EACH = 1500;
        const rules = manyRules(STREAMS);
        const meter = await PathMeter.start(t, [CHAIN_IN, CHAIN_OUT]);
        // A pool of `workers`, pinned round robin over both CPUs (top-level cpus): every pool
        // worker is a member of r0's fanout group.
        const relay = await startDriver(t, "rly", [{ workers, cpus: [0, 1], rules }]);
        const pinned = await threadAffinities(relay.proc.child.pid);
        const dsts = rules.map((r) => `${r.outputs[0].group}:${r.outputs[0].port}`);
        const sink = await startSink(t, "rcv", "d0", dsts, { settle: true });
        const { gen, stats, path } = await drive(
          relay,
          () => relay.snap(),
          meter,
          () =>
            runGen(t, "snd", "s0", rules.map((r) => `${r.input.group}:${r.input.port}`), {
              rate: 16_000,
              count: EACH,
            }),
        );
        const rep = await sink.settle(outputPackets(stats, dsts) - path.hops[hopKey(CHAIN_OUT)]);
        assert.equal(gen.sent, STREAMS * EACH);
        assertChainAccounted(`${workers} workers`, gen.sent, stats, path, rep);
        assertEveryStream(rep, STREAMS);
        assertRelayConsistent(stats);
        const ws = stats.workers.filter((w) => w.interface === "r0");
        assert.equal(ws.length, workers);
        assert.ok(
          ws.filter((w) => w.frames > 0).length >= 2,
          `the fanout group spread flows: ${JSON.stringify(ws)}`,
        );
        // One copy per frame: the workers together took each frame that reached r0 once (without
        // a common fanout group each would get a copy, and the ledger above would not balance).
        const r0 = stats.interfaces.find((i) => i.name === "r0")!;
        assert.equal(ws.reduce((a, w) => a + w.frames, 0), r0.frames, "one copy per frame");
        assert.equal(r0.frames + r0.kernel_drops + path.hops[hopKey(CHAIN_IN)], gen.sent);
        assert.equal(stats.interfaces[0].workers, workers);
        assert.deepEqual(ws.map((w) => w.cpu), ws.map((w) => w.index % 2));
        // The worker threads really run with those affinities (the others keep all CPUs).
        assert.equal(pinned.filter((a) => a === "0").length, Math.ceil(workers / 2));
        assert.equal(pinned.filter((a) => a === "1").length, Math.floor(workers / 2));
        assert.ok(stats.interfaces[0].fanout_id > 0);
      } finally {
        await t.destroy();
      }
    },
  });
}

Deno.test({
  ...opts,
  name: "an output interface that is also another rule's input: no re-capture, no loop",
  async fn() {
    const t = await chain("oin");
    try {
      const meter = await PathMeter.start(t, [CHAIN_IN, CHAIN_OUT]);
      const relay = await startDriver(t, "rly", [{
        rules: [
          {
            name: "a",
            input: { interface: "r0", group: "239.1.1.1", port: 5001 },
            outputs: [{ interface: "r1", group: "239.1.1.9", port: 5009 }],
          },
          {
            name: "b",
            input: { interface: "r1", group: "239.1.1.9", port: 5009 },
            outputs: [{ interface: "r0", group: "239.1.1.8", port: 5008 }],
          },
        ],
      }]);
      const fwd = await startSink(t, "rcv", "d0", ["239.1.1.9:5009"], { settle: true });
      const back = await startSink(t, "snd", "s0", ["239.1.1.8:5008"], { settle: true });
      const { gen, stats, path } = await drive(
        relay,
        () => relay.snap(),
        meter,
        () => runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: 10_000, count: 5000 }),
      );
      const rf = await fwd.settle(outputPackets(stats, ["239.1.1.9:5009"]) - path.hops["rly/r1"]);
      // rule b sent nothing: its sink has nothing to wait for and reports whatever came
      const rb = await back.settle(outputPackets(stats, ["239.1.1.8:5008"]));
      assertChainAccounted("rule a", gen.sent, stats, path, rf);
      assertClean(rf, "rule a");
      assertRelayConsistent(stats);
      assert.equal(rb.total.received, 0, "rule b never saw rule a's output");
      assert.equal(stats.rules.find((r) => r.name === "b")!.packets, 0);
      const r1 = stats.interfaces.find((i) => i.name === "r1")!;
      assert.equal(r1.frames, 0, "r1 captured none of its own transmissions");
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  ...opts,
  name: "single-namespace dual-bridge topology (sender, relay, receiver in one namespace)",
  async fn() {
    const t = new Topology("dual");
    try {
      await t.addNs("one");
      const x = (...a: string[]) => t.exec("one", a);
      await x("ip", "link", "add", "br0", "type", "bridge");
      await x("ip", "link", "add", "br1", "type", "bridge");
      // Disable multicast snooping so the bridges flood the groups to every port.
      await x("ip", "link", "set", "br0", "type", "bridge", "mcast_snooping", "0");
      await x("ip", "link", "set", "br1", "type", "bridge", "mcast_snooping", "0");
      for (
        const [dev, br, addr] of [
          ["sa", "br0", "10.88.1.1/24"],
          ["ri", "br0", "10.88.1.2/24"],
          ["ro", "br1", "10.88.2.1/24"],
          ["db", "br1", "10.88.2.2/24"],
        ]
      ) {
        await x("ip", "link", "add", dev, "type", "veth", "peer", "name", `${dev}p`);
        await x("ip", "link", "set", `${dev}p`, "master", br);
        await x("ip", "addr", "add", addr, "dev", dev);
        await x("ip", "link", "set", `${dev}p`, "up");
        await x("ip", "link", "set", dev, "up");
      }
      await x("ip", "link", "set", "br0", "up");
      await x("ip", "link", "set", "br1", "up");
      // The receiver sees a source address that is local to this namespace (NOTES: Measuring fairly).
      for (const k of ["all", "default", "db"]) {
        await t.sysctl("one", `net.ipv4.conf.${k}.rp_filter`, "0");
        await t.sysctl("one", `net.ipv4.conf.${k}.accept_local`, "1");
      }
      const relay = await startDriver(t, "one", [{
        rules: [{
          name: "dual",
          input: { interface: "ri", group: "239.1.1.1", port: 5001 },
          outputs: [{ interface: "ro", group: "239.10.1.1", port: 6001 }],
        }],
      }]);
      const sink = await startSink(t, "one", "db", ["239.10.1.1:6001"], { settle: true });
      // sa → br0 → ri, the relay, ro → br1 → db: each hop's sending end
      const hops: Hop[] = ["sa", "rip", "ro", "dbp"].map((dev) => ({ role: "one", dev }));
      const meter = await PathMeter.start(t, hops);
      const { gen, stats, path } = await drive(
        relay,
        () => relay.snap(),
        meter,
        () => runGen(t, "one", "sa", ["239.1.1.1:5001"], { rate: 10_000, count: 10_000 }),
        { iface: "ri", hops: hops.slice(0, 2) },
      );
      const rep = await sink.settle(
        outputPackets(stats, ["239.10.1.1:6001"]) - path.hops["one/ro"] - path.hops["one/dbp"],
      );
      const ri = stats.interfaces.find((i) => i.name === "ri")!;
      assertAccounted({
        sent: gen.sent,
        delivered: rep.total.unique,
        drops: {
          ...path.hops,
          ri_kernel_drops: ri.kernel_drops,
          relay_frame_drops: frameDrops(stats),
          relay_output_drops: outputDrops(stats),
          receiver_socket: rep.socket_drops ?? 0,
        },
      }, "dual bridge");
      assertClean(rep, "dual bridge");
      assertRelayConsistent(stats);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  ...opts,
  name: "50 rules, 50 concurrent streams: each delivered in order, every loss counted",
  async fn() {
    const t = await chain("d50");
    try {
      const rules = manyRules(50);
      const meter = await PathMeter.start(t, [CHAIN_IN, CHAIN_OUT]);
      const relay = await startDriver(t, "rly", [{ rules }]);
      const EACH = 1000;
      const dsts = rules.map((r) => `${r.outputs[0].group}:${r.outputs[0].port}`);
      const sink = await startSink(t, "rcv", "d0", dsts, { settle: true });
      const { gen, stats, path } = await drive(
        relay,
        () => relay.snap(),
        meter,
        () =>
          runGen(t, "snd", "s0", rules.map((r) => `${r.input.group}:${r.input.port}`), {
            rate: 20_000,
            count: EACH,
          }),
      );
      const rep = await sink.settle(outputPackets(stats, dsts) - path.hops[hopKey(CHAIN_OUT)]);
      assert.equal(gen.sent, 50 * EACH);
      assertChainAccounted("50 streams", gen.sent, stats, path, rep);
      assertEveryStream(rep, 50);
      assertRelayConsistent(stats);
      assert.ok(stats.rules.every((r) => r.packets <= EACH && r.state === "active"));
    } finally {
      await t.destroy();
    }
  },
});

/** Poll until `get` returns the same value (compared as JSON) `times` times in a row. */
async function stable<T>(get: () => Promise<T>, times: number, timeoutMs: number): Promise<T> {
  const t0 = Date.now();
  let last = "", same = 0;
  for (;;) {
    const v = await get();
    const k = JSON.stringify(v);
    same = k === last ? same + 1 : 0;
    last = k;
    if (same >= times) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`not stable after ${timeoutMs} ms: ${k}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test({
  ...opts,
  name: "a crashed worker comes back with its rules and the stream resumes",
  async fn() {
    const t = await chain("crash");
    try {
      const RING = 256; // RX slots per worker: what the dead worker's ring can hold at the fault
      const rules = manyRules(8);
      const meter = await PathMeter.start(t, [CHAIN_IN, CHAIN_OUT]);
      const relay = await startDriver(t, "rly", [{
        workers: 2,
        rx: { frame_count: RING },
        rules,
      }], { MCR_FAULT_INJECTION: "1" });
      const dsts = rules.map((r) => `${r.outputs[0].group}:${r.outputs[0].port}`);
      const sink = await startSink(t, "rcv", "d0", dsts, { settle: true });
      const EACH = 4000;
      const gen = runGen(t, "snd", "s0", rules.map((r) => `${r.input.group}:${r.input.port}`), {
        rate: 8000,
        count: EACH,
      });
      await relay.until((s) => s.rules.every((r) => r.packets > 0), 20_000, "every stream flowing");
      const r0rx = async () => (await linkCounters(t, "rly")).r0.rx_packets;
      const beforeFault = await r0rx();
      assert.equal(await relay.fault("r0", 0), true, "fault hook enabled by MCR_FAULT_INJECTION");
      const back = await relay.until(
        (s) => s.workers.every((w) => w.state === "running") && s.workers[0].restarts >= 1,
        20_000,
        "worker 0 restarted",
      );
      assert.equal(back.rules.every((r) => r.state === "active"), true);
      const window = (await r0rx()) - beforeFault; // frames that reached r0 while worker 0 was down
      const g = await gen;
      // The live rings drained: the counters stand still. (The frames the crashed worker's ring
      // held appear in no counter, so the relay cannot be polled until it accounts for all.)
      await stable(
        async () => {
          const i = (await relay.snap()).interfaces[0];
          return [i.frames, i.kernel_drops, i.kernel_packets];
        },
        3,
        30_000,
      );
      const { stats, code, stderr } = await relay.stop();
      assert.equal(code, 0, stderr);
      const path = await meter.read();
      const rep = await sink.settle(outputPackets(stats, dsts) - path.hops[hopKey(CHAIN_OUT)]);
      const r0 = stats.interfaces[0];
      assert.ok(r0.restarts >= 1);
      // Every stream carried on after the restart: more of it was delivered than the relay had
      // matched of it when the worker was back.
      for (const r of back.rules) {
        const g = rep.groups.find((x) => x.group === r.outputs[0].group)!;
        const u = g.streams.reduce((a, s) => a + s.unique, 0);
        assert.ok(u > r.packets, `${r.name} resumed after the restart (${u} > ${r.packets})`);
      }
      assertClean(rep, "8 streams");
      // What was not delivered is counted: the frames the dying worker's ring held are
      // `unprocessed` (it reads PACKET_STATISTICS and leaves the fanout group at once, before
      // draining its TX rings). The only gap is between that read and the close (microseconds;
      // a preempted thread could see at most a ring's worth arrive in it).
      const counted = rep.total.unique + (rep.socket_drops ?? 0) + r0.kernel_drops +
        frameDrops(stats) + outputDrops(stats) + (stats.drops.unprocessed ?? 0) +
        path.hops[hopKey(CHAIN_IN)] + path.hops[hopKey(CHAIN_OUT)];
      const lost = g.sent - counted;
      assert.ok(
        lost >= 0 && lost <= RING,
        `lost uncounted only between the dead worker's last statistics read and its close: ` +
          `${lost} (ring ${RING}; ${window} arrived while it was down, ` +
          `${stats.drops.unprocessed ?? 0} counted unprocessed)`,
      );
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  ...opts,
  name:
    "input interface deleted mid-stream: rule pending, no crash; re-created: forwarding resumes",
  async fn() {
    const t = await chain("gone");
    try {
      const inMeter1 = await PathMeter.start(t, [CHAIN_IN]);
      const outMeter = await PathMeter.start(t, [CHAIN_OUT]);
      const relay = await startDriver(t, "rly", [{
        rules: [{
          name: "cam1",
          input: { interface: "r0", group: "239.1.1.1", port: 5001 },
          outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
        }],
      }]);
      const sink = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], { settle: true });
      const g1 = await runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: 10_000, count: 3000 });
      const hop1 = (await inMeter1.read()).hops[hopKey(CHAIN_IN)];
      // the relay took everything before its input goes away
      const p1 = await quiesce(() => relay.snap(), { r0: g1.sent - hop1 });
      await t.exec("rly", ["ip", "link", "del", "r0"]); // its peer s0 goes too
      const pending = await relay.until(
        (s) => s.rules[0].state === "pending",
        20_000,
        "rule pending",
      );
      assert.match(pending.rules[0].reason ?? "", /r0 does not exist/);
      await t.link({ role: "snd", dev: "s0", addr: "10.77.1.1/24" }, {
        role: "rly",
        dev: "r0",
        addr: "10.77.1.2/24",
      });
      const inMeter2 = await PathMeter.start(t, [CHAIN_IN]);
      await relay.until((s) => s.rules[0].state === "active", 20_000, "rule active again");
      const g2 = await runGen(t, "snd", "s0", ["239.1.1.1:5001"], {
        rate: 10_000,
        count: 3000,
        streamBase: 1,
      });
      const hop2 = (await inMeter2.read()).hops[hopKey(CHAIN_IN)];
      await quiesce(() => relay.snap(), { r0: g1.sent - hop1 + g2.sent - hop2 });
      const { code, stats, stderr } = await relay.stop();
      assert.equal(code, 0, stderr);
      const hopOut = (await outMeter.read()).hops[hopKey(CHAIN_OUT)];
      const rep = await sink.settle(stats.rules[0].outputs[0].packets - hopOut);
      // Before the interface went, the rule had matched every frame that reached its ring.
      assertAccounted({
        sent: g1.sent,
        delivered: p1.rules[0].packets,
        drops: { "s0→r0": hop1, r0_kernel_drops: p1.interfaces[0].kernel_drops },
      }, "before deletion");
      // Both streams, before and after: delivered or counted (the counters span both lives).
      const r0 = stats.interfaces[0];
      assertAccounted({
        sent: g1.sent + g2.sent,
        delivered: rep.total.unique,
        drops: {
          "s0→r0 (first link)": hop1,
          "s0→r0 (second link)": hop2,
          r0_kernel_drops: r0.kernel_drops,
          relay_frame_drops: frameDrops(stats),
          relay_output_drops: outputDrops(stats),
          "r1→d0": hopOut,
          receiver_socket: rep.socket_drops ?? 0,
        },
      }, "both lives of r0");
      const streams = rep.groups[0].streams;
      assert.deepEqual(streams.map((s) => s.stream).sort(), [0, 1], "forwarding resumed");
      assert.ok(streams.every((s) => s.unique > 0 && s.unique <= 3000));
      assertClean(rep, "both streams");
      assertRelayConsistent(stats);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  ...opts,
  name: "an output interface without an IPv4 address errors only that output, and heals",
  async fn() {
    const t = await chain("noip");
    try {
      await t.addNs("rc2");
      await t.link({ role: "rly", dev: "r3" }, { role: "rc2", dev: "e0", addr: "10.77.4.2/24" });
      const R3: Hop = { role: "rly", dev: "r3" };
      const meter = await PathMeter.start(t, [CHAIN_IN, CHAIN_OUT, R3]);
      const relay = await startDriver(t, "rly", [{
        rules: [{
          name: "cam1",
          input: { interface: "r0", group: "239.1.1.1", port: 5001 },
          outputs: [
            { interface: "r1", group: "239.10.1.1", port: 6001 },
            { interface: "r3", group: "239.30.1.1", port: 6001 },
          ],
        }],
      }]);
      const s1 = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], { settle: true });
      const g1 = await runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: 10_000, count: 3000 });
      const m1 = await meter.read();
      let st: RelayStats = await quiesce(() => relay.snap(), {
        r0: g1.sent - m1.hops[hopKey(CHAIN_IN)],
      });
      const r1 = await s1.settle(st.rules[0].outputs[0].packets - m1.hops[hopKey(CHAIN_OUT)]);
      assert.equal(st.rules[0].state, "active");
      assert.equal(st.rules[0].outputs[1].state, "error");
      assert.match(st.rules[0].outputs[1].reason ?? "", /r3 has no IPv4 address/);
      assert.equal(
        st.rules[0].outputs[1].errors,
        st.rules[0].packets,
        "every datagram skipped on the broken output is counted",
      );
      assert.equal(st.rules[0].outputs[1].packets, 0);
      // The healthy output kept forwarding: everything matched was delivered or counted.
      const i1 = st.interfaces[0];
      const o0 = st.rules[0].outputs[0];
      assertAccounted({
        sent: g1.sent,
        delivered: r1.total.unique,
        drops: {
          "s0→r0": m1.hops[hopKey(CHAIN_IN)],
          r0_kernel_drops: i1.kernel_drops,
          relay_frame_drops: frameDrops(st),
          output_drops: o0.ring_full + o0.errors + o0.ttl_expired,
          "r1→d0": m1.hops[hopKey(CHAIN_OUT)],
          receiver_socket: r1.socket_drops ?? 0,
        },
      }, "the healthy output");
      assertClean(r1, "the healthy output");
      // Give r3 an address: the output heals without a restart.
      await t.exec("rly", ["ip", "addr", "add", "10.77.4.1/24", "dev", "r3"]);
      await relay.until((s) => s.rules[0].outputs[1].state === "active", 10_000, "heal");
      const s2 = await startSink(t, "rc2", "e0", ["239.30.1.1:6001"], { settle: true });
      const before = await relay.snap();
      const g2 = await runGen(t, "snd", "s0", ["239.1.1.1:5001"], {
        rate: 10_000,
        count: 2000,
        streamBase: 1,
      });
      const m2 = await meter.read();
      st = await quiesce(() => relay.snap(), {
        r0: g1.sent + g2.sent - m2.hops[hopKey(CHAIN_IN)],
      });
      const { code, stderr } = await relay.stop();
      assert.equal(code, 0, stderr);
      const m3 = await meter.read();
      const ob = before.rules[0].outputs[1], oa = st.rules[0].outputs[1];
      const r2 = await s2.settle(oa.packets - ob.packets - m3.hops[hopKey(R3)]);
      assertAccounted({
        sent: g2.sent,
        delivered: r2.total.unique,
        drops: {
          "s0→r0": m2.hops[hopKey(CHAIN_IN)] - m1.hops[hopKey(CHAIN_IN)],
          r0_kernel_drops: st.interfaces[0].kernel_drops - before.interfaces[0].kernel_drops,
          healed_output_drops: oa.ring_full + oa.errors - ob.ring_full - ob.errors,
          "r3→e0": m3.hops[hopKey(R3)],
          receiver_socket: r2.socket_drops ?? 0,
        },
      }, "the healed output");
      assertClean(r2, "the healed output");
    } finally {
      await t.destroy();
    }
  },
});

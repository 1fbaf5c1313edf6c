/**
 * Multi-worker scaling, many interfaces and self-healing (namespaces; counted
 * at independent receivers).
 */
import assert from "node:assert/strict";
import { chainTopology, skipReason, Topology } from "../../src/netns.ts";
import { runGen, type SinkReport, startDriver, startSink } from "../../src/harness.ts";
import type { RelayStats } from "../../src/supervisor.ts";

const skip = skipReason();
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };

/** The shared chain topology (src/netns.ts). */
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

function assertEveryStream(rep: SinkReport, streams: number, each: number): void {
  assert.equal(rep.groups.length, streams, "every group received something");
  for (const g of rep.groups) {
    const got = g.streams.reduce((a, s) => a + s.unique, 0);
    assert.equal(got, each, `${g.group}:${g.port} delivered all`);
    for (const s of g.streams) {
      assert.equal(s.duplicates, 0, `${g.group} no duplicates`);
      assert.equal(s.reordered, 0, `${g.group} in order`);
      assert.equal(s.corrupt, 0);
    }
  }
  assert.equal(rep.total.received, streams * each, "nothing delivered twice");
}

for (const workers of [2, 4]) {
  Deno.test({
    ...opts,
    name:
      `${workers} workers in one fanout group: 32 flows, each datagram exactly once, each flow in order`,
    async fn() {
      const t = await chain(`w${workers}`);
      try {
        const STREAMS = 32, EACH = 1500;
        const rules = manyRules(STREAMS);
        // Pin the workers round robin over both CPUs (interfaces.r0.cpus).
        const relay = await startDriver(t, "rly", [{
          workers,
          interfaces: { r0: { cpus: [0, 1] } },
          rules,
        }]);
        const pinned = await threadAffinities(relay.proc.child.pid);
        const sink = await startSink(
          t,
          "rcv",
          "d0",
          rules.map((r) => `${r.outputs[0].group}:${r.outputs[0].port}`),
          { expectTotal: STREAMS * EACH },
        );
        await runGen(t, "snd", "s0", rules.map((r) => `${r.input.group}:${r.input.port}`), {
          rate: 16_000,
          count: EACH,
        });
        const rep = await sink.result();
        const { stats } = await relay.stop();
        assertEveryStream(rep, STREAMS, EACH);
        const ws = stats.workers.filter((w) => w.interface === "r0");
        assert.equal(ws.length, workers);
        assert.ok(
          ws.filter((w) => w.frames > 0).length >= 2,
          `the fanout group spread flows: ${JSON.stringify(ws)}`,
        );
        assert.equal(ws.reduce((a, w) => a + w.frames, 0), STREAMS * EACH, "one copy per frame");
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
      const fwd = await startSink(t, "rcv", "d0", ["239.1.1.9:5009"], { expectTotal: 5000 });
      const back = await startSink(t, "snd", "s0", ["239.1.1.8:5008"], {
        idleMs: 0,
        durationS: 3,
      });
      await runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: 10_000, count: 5000 });
      const rf = await fwd.result();
      const rb = await back.result();
      const { stats } = await relay.stop();
      assert.equal(rf.total.unique, 5000);
      assert.equal(rf.total.received, 5000);
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
      const sink = await startSink(t, "one", "db", ["239.10.1.1:6001"], { expectTotal: 10_000 });
      await runGen(t, "one", "sa", ["239.1.1.1:5001"], { rate: 10_000, count: 10_000 });
      const rep = await sink.result();
      const { stats } = await relay.stop();
      assert.equal(rep.total.unique, 10_000);
      assert.equal(rep.total.received, 10_000);
      assert.equal(rep.total.reordered, 0);
      assert.equal(stats.rules[0].packets, 10_000);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  ...opts,
  name: "50 rules, 50 concurrent streams: all delivered",
  async fn() {
    const t = await chain("d50");
    try {
      const rules = manyRules(50);
      const relay = await startDriver(t, "rly", [{ rules }]);
      const EACH = 1000;
      const sink = await startSink(
        t,
        "rcv",
        "d0",
        rules.map((r) => `${r.outputs[0].group}:${r.outputs[0].port}`),
        { expectTotal: 50 * EACH },
      );
      await runGen(t, "snd", "s0", rules.map((r) => `${r.input.group}:${r.input.port}`), {
        rate: 20_000,
        count: EACH,
      });
      const rep = await sink.result();
      const { stats } = await relay.stop();
      assertEveryStream(rep, 50, EACH);
      assert.ok(stats.rules.every((r) => r.packets === EACH && r.state === "active"));
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  ...opts,
  name: "a crashed worker comes back with its rules and the stream resumes",
  async fn() {
    const t = await chain("crash");
    try {
      const relay = await startDriver(t, "rly", [{ workers: 2, rules: manyRules(8) }], {
        MCR_FAULT_INJECTION: "1",
      });
      const groups = manyRules(8).map((r) => `${r.outputs[0].group}:${r.outputs[0].port}`);
      const sink = await startSink(t, "rcv", "d0", groups, { idleMs: 2000 });
      const EACH = 3000;
      const gen = runGen(
        t,
        "snd",
        "s0",
        manyRules(8).map((r) => `${r.input.group}:${r.input.port}`),
        {
          rate: 8000,
          count: EACH,
        },
      );
      await new Promise((r) => setTimeout(r, 800));
      assert.equal(await relay.fault("r0", 0), true, "fault hook enabled by MCR_FAULT_INJECTION");
      const back = await relay.until(
        (s) => s.workers.every((w) => w.state === "running") && s.workers[0].restarts >= 1,
        20_000,
        "worker 0 restarted",
      );
      assert.equal(back.rules.every((r) => r.state === "active"), true);
      await gen;
      const rep = await sink.result();
      const { stats } = await relay.stop();
      // Every stream carried on to its last datagram after the restart.
      for (const g of rep.groups) {
        for (const s of g.streams) assert.equal(s.highest_seq, EACH - 1, `${g.group} resumed`);
      }
      assert.equal(rep.total.duplicates, 0);
      assert.ok(
        rep.total.unique >= 0.98 * 8 * EACH,
        `at most the crashed ring's frames lost: ${rep.total.unique}`,
      );
      assert.equal(stats.interfaces[0].restarts >= 1, true);
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
      const relay = await startDriver(t, "rly", [{
        rules: [{
          name: "cam1",
          input: { interface: "r0", group: "239.1.1.1", port: 5001 },
          outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
        }],
      }]);
      const sink = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], {
        idleMs: 0,
        durationS: 60,
        expectTotal: 6000,
      });
      await runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: 10_000, count: 3000 });
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
      await relay.until((s) => s.rules[0].state === "active", 20_000, "rule active again");
      await runGen(t, "snd", "s0", ["239.1.1.1:5001"], {
        rate: 10_000,
        count: 3000,
        streamBase: 1,
      });
      const rep = await sink.result();
      const { code, stats } = await relay.stop();
      assert.equal(code, 0);
      const streams = rep.groups[0].streams;
      assert.deepEqual(streams.map((s) => s.unique).sort(), [3000, 3000]);
      assert.equal(rep.total.duplicates, 0);
      assert.equal(stats.rules[0].packets, 6000);
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
      const s1 = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], { expectTotal: 3000 });
      await runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: 10_000, count: 3000 });
      const r1 = await s1.result();
      let st: RelayStats = await relay.snap();
      assert.equal(r1.total.unique, 3000, "the healthy output kept forwarding");
      assert.equal(st.rules[0].state, "active");
      assert.equal(st.rules[0].outputs[1].state, "error");
      assert.match(st.rules[0].outputs[1].reason ?? "", /r3 has no IPv4 address/);
      assert.equal(st.rules[0].outputs[1].errors, 3000, "skipped datagrams are counted");
      // Give r3 an address: the output heals without a restart.
      await t.exec("rly", ["ip", "addr", "add", "10.77.4.1/24", "dev", "r3"]);
      st = await relay.until((s) => s.rules[0].outputs[1].state === "active", 10_000, "heal");
      const s2 = await startSink(t, "rc2", "e0", ["239.30.1.1:6001"], { expectTotal: 2000 });
      await runGen(t, "snd", "s0", ["239.1.1.1:5001"], {
        rate: 10_000,
        count: 2000,
        streamBase: 1,
      });
      const r2 = await s2.result();
      await relay.stop();
      assert.equal(r2.total.unique, 2000);
    } finally {
      await t.destroy();
    }
  },
});

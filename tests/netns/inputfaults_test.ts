/**
 * Input interfaces that change under a running relay (issue: "every failure
 * recovers by itself, is visible, and costs nothing else"): an input MTU
 * raised to 9000, an input link flap, rules on interfaces that do not exist
 * (no worker until they appear), and a second relay on the same input (it
 * refuses, then takes over). The real daemon in a namespace chain, counted at
 * independent receivers (mcr-sink); see linkfaults_test.ts for the outputs.
 */
import assert from "node:assert/strict";
import { Topology } from "../../lab/netns.ts";
import { startSink } from "../../lab/harness.ts";
import { type Daemon, startDaemon } from "../../lab/daemon.ts";
import { chainV4, mtu, until } from "./lib_robust.ts";
import {
  accounted,
  gen,
  genDone,
  noDupNoReorder,
  opts,
  rule,
  settled,
  stats,
  streamOf,
} from "./lib_links.ts";

Deno.test({
  ...opts,
  name: "input MTU raised to 9000 live: 8000-byte datagrams are relayed, not truncated",
  async fn() {
    const t = new Topology("imtu");
    let d: Daemon | undefined;
    try {
      await chainV4(t);
      d = await startDaemon({
        rules: [{
          name: "jumbo",
          input: { interface: "r0", group: "239.1.1.1", port: 5001 },
          outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
        }],
      }, { netns: t.ns("rly") });
      const dd = d;
      for (const [role, dev] of [["snd", "s0"], ["rly", "r0"], ["rly", "r1"], ["rcv", "d0"]]) {
        await mtu(t, role, dev, 9000);
      }
      const sink = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], {
        idleMs: 0,
        durationS: 120,
      });
      // the ring is reopened when the link monitor reports the new MTU: wait
      // until jumbo datagrams come through (each probe its own stream, so a
      // repeated probe is no duplicate), then send the measured stream
      let probe = 100;
      await until(
        async () => {
          await genDone(
            gen(t, "s0", "239.1.1.1:5001", { rate: 100, count: 5, size: 8000, stream: probe++ }),
          );
          return stats(dd);
        },
        (s) => rule(s, "jumbo").outputs[0].packets > 0,
        30_000,
        "jumbo datagrams to pass",
      );
      const t0 = (await stats(dd)).drops.truncated ?? 0;
      await genDone(
        gen(t, "s0", "239.1.1.1:5001", { rate: 1000, count: 1000, size: 8000, stream: 2 }),
      );
      const s = await settled(dd);
      const rep = await sink.stop();
      noDupNoReorder(rep);
      assert.equal(s.drops.truncated ?? 0, t0, "nothing truncated after the reopen");
      assert.ok((streamOf(rep, 2)?.unique ?? 0) > 0, "8000-byte datagrams delivered");
      accounted(rule(s, "jumbo"), rule(s, "jumbo").outputs[0]);
      const stop = await d.stop();
      d = undefined;
      assert.equal(stop.code, 0, stop.stderr);
    } finally {
      if (d) await d.stop();
      await t.destroy();
    }
  },
});

Deno.test({
  ...opts,
  name: "input link down, then up: the rule is in error while down, forwards again after, " +
    "without a worker restart",
  async fn() {
    const t = new Topology("iflap");
    let d: Daemon | undefined;
    try {
      await chainV4(t);
      d = await startDaemon({
        rules: [{
          name: "cam",
          input: { interface: "r0", group: "239.1.1.1", port: 5001 },
          outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
        }],
      }, { netns: t.ns("rly") });
      const dd = d;
      const sink = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], {
        idleMs: 0,
        durationS: 120,
      });
      await genDone(gen(t, "s0", "239.1.1.1:5001", { rate: 1000, count: 500, stream: 1 }));
      await t.exec("rly", ["ip", "link", "set", "r0", "down"]);
      let s = await until(
        () => stats(dd),
        (x) => rule(x, "cam").reason === "input interface r0 is down",
        20_000,
        "down",
      );
      assert.equal(rule(s, "cam").state, "error");
      assert.equal(s.interfaces[0].state, "down");
      await t.exec("rly", ["ip", "link", "set", "r0", "up"]);
      await until(() => stats(dd), (x) => rule(x, "cam").state === "active", 20_000, "up again");
      // the peer side takes a moment to see carrier: send until datagrams flow
      // (each round its own stream, so a repeated round is no duplicate)
      let round = 100;
      await until(
        async () => {
          await genDone(
            gen(t, "s0", "239.1.1.1:5001", { rate: 1000, count: 200, stream: round++ }),
          );
          return stats(dd);
        },
        (x) => rule(x, "cam").packets > 500,
        30_000,
        "traffic after the flap",
      );
      s = await settled(dd);
      const rep = await sink.stop();
      noDupNoReorder(rep);
      const after = rep.groups.flatMap((g) => g.streams).filter((x) => x.stream >= 100);
      assert.ok(after.reduce((a, x) => a + x.unique, 0) > 0, "delivered after the flap");
      assert.equal(s.workers[0].restarts, 0, "the worker kept its ring");
      accounted(rule(s, "cam"), rule(s, "cam").outputs[0]);
      const stop = await d.stop();
      d = undefined;
      assert.equal(stop.code, 0, stop.stderr);
    } finally {
      if (d) await d.stop();
      await t.destroy();
    }
  },
});

/** Threads of a process. */
async function threads(pid: number): Promise<number> {
  let n = 0;
  for await (const _ of Deno.readDir(`/proc/${pid}/task`)) n++;
  return n;
}

Deno.test({
  ...opts,
  name: "100 rules on missing interfaces cost no worker; one that appears forwards, " +
    "goes pending when deleted; one log line each way",
  async fn() {
    const t = new Topology("ghost");
    let d: Daemon | undefined;
    try {
      await chainV4(t);
      const ghosts = Array.from({ length: 100 }, (_, i) => ({
        name: `ghost${i}`,
        input: { interface: `gh${i}`, group: "239.1.1.1", port: 5001 },
        outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
      }));
      d = await startDaemon({
        rules: [
          {
            name: "real",
            input: { interface: "r0", group: "239.1.1.2", port: 5002 },
            outputs: [{ interface: "r1", group: "239.10.2.2", port: 6002 }],
          },
          ...ghosts,
        ],
      }, { netns: t.ns("rly"), logLevel: "info" });
      const dd = d;
      let s = await stats(dd);
      assert.equal(rule(s, "real").state, "active");
      for (let i = 0; i < 100; i++) {
        assert.equal(rule(s, `ghost${i}`).state, "pending");
        assert.equal(rule(s, `ghost${i}`).reason, `input interface gh${i} does not exist`);
      }
      // no worker for a missing interface: threads stay at the level of one worker
      const base = await threads(dd.pid);
      await new Promise((r) => setTimeout(r, 3000));
      s = await stats(dd);
      assert.ok(await threads(dd.pid) <= base + 2, "no threads started for missing interfaces");
      assert.equal(
        s.workers.filter((w) => w.interface.startsWith("gh")).reduce(
          (a, w) => a + w.restarts,
          0,
        ),
        0,
        "no worker was started (or restarted) for a missing interface",
      );

      // gh7 appears: its rule forwards
      await t.link({ role: "snd", dev: "g7", addr: "10.77.9.1/24" }, {
        role: "rly",
        dev: "gh7",
        addr: "10.77.9.2/24",
      });
      await until(() => stats(dd), (x) => rule(x, "ghost7").state === "active", 20_000, "gh7");
      const sink = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], {
        idleMs: 0,
        durationS: 60,
      });
      await genDone(gen(t, "g7", "239.1.1.1:5001", { rate: 1000, count: 500, stream: 7 }));
      s = await settled(dd);
      const rep = await sink.stop();
      noDupNoReorder(rep);
      assert.ok(rep.total.unique > 0, "the appeared interface forwards");
      // and goes pending again when deleted
      await t.exec("rly", ["ip", "link", "del", "gh7"]);
      await until(() => stats(dd), (x) => rule(x, "ghost7").state === "pending", 20_000, "gone");
      const stop = await d.stop();
      d = undefined;
      assert.equal(stop.code, 0, stop.stderr);
      const lines = stop.stderr.split("\n");
      const about = (dev: string) =>
        lines.filter((l) => l.includes(`"${dev}"`) || l.includes(` ${dev} `));
      assert.equal(about("gh7").filter((l) => /does not exist/.test(l)).length, 1, stop.stderr);
      assert.equal(about("gh7").filter((l) => /appeared/.test(l)).length, 1, stop.stderr);
      assert.equal(about("gh7").filter((l) => /is gone/.test(l)).length, 1, stop.stderr);
      assert.equal(about("gh42").length, 1, "one line for an interface that never appears");
    } finally {
      if (d) await d.stop();
      await t.destroy();
    }
  },
});

Deno.test({
  ...opts,
  name: "a second relay on the same input interface refuses it (no duplicates) and takes " +
    "over by itself when the first one stops",
  async fn() {
    const t = new Topology("twice");
    let a: Daemon | undefined, b: Daemon | undefined;
    try {
      await chainV4(t);
      const config = {
        rules: [{
          name: "cam",
          input: { interface: "r0", group: "239.1.1.1", port: 5001 },
          outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
        }],
      };
      a = await startDaemon(config, { netns: t.ns("rly") });
      b = await startDaemon(config, { netns: t.ns("rly") });
      const bb = b;
      let s = await until(() => stats(bb), (x) => rule(x, "cam").state === "error", 20_000, "B");
      assert.match(rule(s, "cam").reason ?? "", /already captured by another mcr relay/);
      const sink = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], {
        idleMs: 0,
        durationS: 60,
      });
      await genDone(gen(t, "s0", "239.1.1.1:5001", { rate: 1000, count: 1000, stream: 1 }));
      await settled(a);
      let rep = await sink.stop();
      assert.equal(rep.total.duplicates, 0, "one relay forwards each datagram");
      assert.ok(rep.total.unique > 0);
      assert.equal(rule(await stats(bb), "cam").packets, 0);
      // A stops: B takes the interface over (it retries the lock)
      const stopA = await a.stop();
      a = undefined;
      assert.equal(stopA.code, 0, stopA.stderr);
      await until(() => stats(bb), (x) => rule(x, "cam").state === "active", 20_000, "takeover");
      const sink2 = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], {
        idleMs: 0,
        durationS: 60,
      });
      await genDone(gen(t, "s0", "239.1.1.1:5001", { rate: 1000, count: 1000, stream: 2 }));
      s = await settled(bb);
      rep = await sink2.stop();
      noDupNoReorder(rep);
      assert.ok((streamOf(rep, 2)?.unique ?? 0) > 0, "B forwards after the takeover");
      accounted(rule(s, "cam"), rule(s, "cam").outputs[0]);
    } finally {
      if (a) await a.stop();
      if (b) await b.stop();
      await t.destroy();
    }
  },
});

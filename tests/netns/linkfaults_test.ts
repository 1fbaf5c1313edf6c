/**
 * Output links that change under a running relay (issue: "every failure recovers by
 * itself, is visible, and costs nothing else"): an output link that goes
 * down, loses its carrier or is deleted and re-created; an output MTU cut
 * below the datagram size (DF set: counted as too_big; DF clear: IPv4
 * fragments); an input MTU raised to 9000; an input link flap; rules on
 * interfaces that do not exist; a second relay on the same input.
 *
 * Every test runs the real daemon (cli.ts, control socket, metrics) in a
 * namespace chain and counts at independent receivers (mcr-sink). Under
 * load, exact delivery is not asserted; what is: forwarding resumes (a
 * stream sent after the fault arrives), nothing is duplicated or reordered,
 * the states and /healthz say what is wrong while it is wrong, and every
 * datagram the rule matched is sent or counted under a reason.
 */
import assert from "node:assert/strict";
import { Topology } from "../../lab/netns.ts";
import { type SinkReport, startSink } from "../../lab/harness.ts";
import { type Daemon, startDaemon } from "../../lab/daemon.ts";
import type { StatsResult } from "../../src/control/results.ts";
import { chainV4, frameDrops, mtu, until } from "./lib_robust.ts";
import {
  accounted,
  fetchIn,
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
  name: "output link down, then up: the output is in error (and /healthz 503) while down, " +
    "forwards again once up; every matched datagram is sent or counted",
  async fn() {
    const t = new Topology("oflap");
    let d: Daemon | undefined;
    try {
      await chainV4(t);
      d = await startDaemon({
        tx: { frame_count: 64 }, // fills in a few ms if frames were kept behind a dead link
        rules: [{
          name: "cam",
          input: { interface: "r0", group: "239.1.1.1", port: 5001 },
          outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
        }],
      }, { netns: t.ns("rly"), metrics: "127.0.0.1:9464" });
      const dd = d;
      const sink = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], {
        idleMs: 0,
        durationS: 120,
      });
      const before = gen(t, "s0", "239.1.1.1:5001", { rate: 2000, duration: 60, stream: 1 });
      await until(() => stats(dd), (s) => rule(s, "cam").outputs[0].packets > 50, 20_000, "flow");
      assert.equal((await fetchIn(t, "rly", "http://127.0.0.1:9464/healthz")).status, 200);

      await t.exec("rly", ["ip", "link", "set", "r1", "down"]);
      const down = await until(
        () => stats(dd),
        (s) => rule(s, "cam").outputs[0].reason === "output interface r1 is down",
        20_000,
        "the output to be in error",
      );
      assert.equal(down.rules[0].outputs[0].state, "error");
      const h = await fetchIn(t, "rly", "http://127.0.0.1:9464/healthz");
      assert.equal(h.status, 503);
      assert.match(h.body, /output interface r1 is down/);
      // keep it down while datagrams arrive: far more than the 64-slot ring holds
      const m0 = rule(down, "cam").packets;
      await until(() => stats(dd), (s) => rule(s, "cam").packets > m0 + 200, 20_000, "traffic");

      await t.exec("rly", ["ip", "link", "set", "r1", "up"]);
      await until(
        () => stats(dd),
        (s) => rule(s, "cam").outputs[0].state === "active",
        20_000,
        "the output to recover",
      );
      before.kill("SIGTERM");
      await genDone(before);
      // a stream that starts after the recovery is delivered
      const after = await genDone(gen(t, "s0", "239.1.1.1:5001", {
        rate: 2000,
        count: 2000,
        stream: 2,
      }));
      assert.equal(after.sent, 2000);
      const s = await settled(dd);
      const rep = await sink.stop();
      noDupNoReorder(rep);
      const r = rule(s, "cam"), o = r.outputs[0];
      assert.ok((streamOf(rep, 2)?.unique ?? 0) > 0, "datagrams sent after the flap arrive");
      assert.ok(rep.total.unique <= o.packets, "the receiver got no more than the relay sent");
      accounted(r, o);
      assert.equal(o.ring_full, 0, "nothing waited behind the dead link");
      assert.equal(s.drops.tx_link_down, o.link_down);
      await until(
        () => fetchIn(t, "rly", "http://127.0.0.1:9464/healthz"),
        (x) => x.status === 200,
        20_000,
        "/healthz to answer 200 again",
      );
      const stop = await d.stop();
      d = undefined;
      assert.equal(stop.code, 0, stop.stderr);
      assert.match(stop.stderr, /239\.10\.1\.1:6001 of rule cam.*output interface r1 is down/);
    } finally {
      if (d) await d.stop();
      await t.destroy();
    }
  },
});

Deno.test({
  ...opts,
  name: "output without carrier, output deleted and re-created: error with the reason, " +
    "counted as link_down, forwarding resumes on the new interface; the other output never stops",
  async fn() {
    const t = new Topology("odel");
    let d: Daemon | undefined;
    try {
      await chainV4(t, { extraOut: true });
      const r3 = () =>
        t.link({ role: "rly", dev: "r3", addr: "10.77.5.1/24" }, {
          role: "rcv",
          dev: "d3",
          addr: "10.77.5.2/24",
        });
      await r3();
      d = await startDaemon({
        rules: [{
          name: "fan",
          input: { interface: "r0", group: "239.1.1.1", port: 5001 },
          outputs: [
            { interface: "r1", group: "239.10.1.1", port: 6001 },
            { interface: "r2", group: "239.20.1.1", port: 6002 },
            { interface: "r3", group: "10.77.5.2", port: 6003 }, // unicast only: a UDP socket
          ],
        }],
      }, { netns: t.ns("rly") });
      const dd = d;
      const o = (s: StatsResult, i: number) => rule(s, "fan").outputs[i];
      const steady = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], {
        idleMs: 0,
        durationS: 120,
      });
      const g1 = gen(t, "s0", "239.1.1.1:5001", { rate: 2000, duration: 60, stream: 1 });
      await until(() => stats(dd), (s) => o(s, 1).packets > 50, 20_000, "flow on r2");

      // no carrier: the peer goes down
      await t.exec("rcv", ["ip", "link", "set", "d2", "down"]);
      let s = await until(
        () => stats(dd),
        (x) => o(x, 1).reason === "output interface r2 has no carrier",
        20_000,
        "no carrier",
      );
      assert.equal(o(s, 1).state, "error");
      assert.equal(o(s, 0).state, "active", "the other output is unaffected");
      const ld = o(s, 1).link_down;
      await until(() => stats(dd), (x) => o(x, 1).link_down > ld, 20_000, "link_down counted");
      await t.exec("rcv", ["ip", "link", "set", "d2", "up"]);
      await until(() => stats(dd), (x) => o(x, 1).state === "active", 20_000, "carrier back");

      // deleted: the output says so, its datagrams are counted as link_down
      await t.exec("rly", ["ip", "link", "del", "r2"]);
      await t.exec("rly", ["ip", "link", "del", "r3"]);
      s = await until(
        () => stats(dd),
        (x) =>
          /output interface r2 (does not exist|is gone)/.test(o(x, 1).reason ?? "") &&
          o(x, 2).reason === "output interface r3 does not exist",
        20_000,
        "r2 and r3 reported gone",
      );
      assert.equal(o(s, 1).state, "error");
      assert.equal(o(s, 2).state, "error");
      const drops = o(s, 1).link_down + o(s, 1).errors;
      await until(
        () => stats(dd),
        (x) => o(x, 1).link_down + o(x, 1).errors > drops,
        20_000,
        "drops of the deleted output counted",
      );
      // re-created (a new interface index): the relay finds it by itself
      await t.link({ role: "rly", dev: "r2", addr: "10.77.3.1/24" }, {
        role: "rcv",
        dev: "d2",
        addr: "10.77.3.2/24",
      });
      await r3();
      await until(
        () => stats(dd),
        (x) => o(x, 1).state === "active" && o(x, 2).state === "active",
        20_000,
        "r2 back",
      );
      const back = await startSink(t, "rcv", "d2", ["239.20.1.1:6002"], {
        idleMs: 0,
        durationS: 120,
      });
      const back3 = await startSink(t, "rcv", "d3", ["10.77.5.2:6003"], {
        idleMs: 0,
        durationS: 120,
      });
      g1.kill("SIGTERM");
      await genDone(g1);
      await genDone(gen(t, "s0", "239.1.1.1:5001", { rate: 2000, count: 2000, stream: 2 }));
      s = await settled(dd);
      const rb = await back.stop();
      const rb3 = await back3.stop();
      noDupNoReorder(rb3);
      const rs = await steady.stop();
      noDupNoReorder(rb);
      noDupNoReorder(rs);
      const got = (rep: SinkReport, group: string) =>
        rep.groups.find((g) => g.group === group)?.streams.find((x) => x.stream === 2)?.unique ?? 0;
      assert.ok(got(rb, "239.20.1.1") > 0, "the re-created output delivers (ring)");
      assert.ok(got(rb3, "10.77.5.2") > 0, "the re-created output delivers (unicast socket)");
      assert.ok((streamOf(rs, 2)?.unique ?? 0) > 0, "the steady output delivers");
      assert.ok(rs.total.unique <= o(s, 0).packets);
      for (const out of rule(s, "fan").outputs) accounted(rule(s, "fan"), out);
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
  name: "output MTU cut to 576: DF datagrams counted as too_big (output in error), " +
    "DF-clear datagrams sent as IPv4 fragments the receiver reassembles; input unaffected",
  async fn() {
    const t = new Topology("omtu");
    let d: Daemon | undefined;
    try {
      await chainV4(t);
      d = await startDaemon({
        rules: [{
          name: "big",
          input: { interface: "r0", group: "239.1.1.1", port: 5001 },
          outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
        }],
      }, { netns: t.ns("rly") });
      const dd = d;
      const out = (s: StatsResult) => rule(s, "big").outputs[0];
      const sink = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], {
        idleMs: 0,
        durationS: 120,
      });
      await genDone(
        gen(t, "s0", "239.1.1.1:5001", { rate: 1000, count: 500, size: 1000, stream: 1 }),
      );
      await settled(dd);

      await mtu(t, "rly", "r1", 576);
      // DF set (the sender's default): may not be fragmented
      const g2 = gen(t, "s0", "239.1.1.1:5001", {
        rate: 1000,
        duration: 60,
        size: 1000,
        stream: 2,
      });
      let s = await until(
        () => stats(dd),
        (x) => out(x).too_big > 0 && out(x).state === "error",
        20_000,
        "too_big counted and the output in error",
      );
      assert.match(out(s).reason ?? "", /longer than the MTU of r1 \(576\).*DF/);
      g2.kill("SIGTERM");
      await genDone(g2);
      // DF clear: fragmented like a router would
      const g3 = await genDone(gen(t, "s0", "239.1.1.1:5001", {
        rate: 1000,
        count: 1000,
        size: 1000,
        stream: 3,
        noDf: true,
      }));
      assert.equal(g3.sent, 1000);
      s = await settled(dd);
      const rep = await sink.stop();
      noDupNoReorder(rep);
      assert.ok((streamOf(rep, 3)?.unique ?? 0) > 0, "fragmented datagrams reassembled and intact");
      assert.ok(out(s).fragmented > 0, "counted as fragmented");
      assert.equal(streamOf(rep, 2)?.unique ?? 0, 0, "no DF datagram was sent in pieces");
      accounted(rule(s, "big"), out(s));
      assert.equal(s.drops.tx_too_big, out(s).too_big);
      const r0 = s.interfaces.find((i) => i.name === "r0")!;
      assert.equal(r0.frames, rule(s, "big").packets + frameDrops(s), "input intact");
      const stop = await d.stop();
      d = undefined;
      assert.equal(stop.code, 0, stop.stderr);
    } finally {
      if (d) await d.stop();
      await t.destroy();
    }
  },
});

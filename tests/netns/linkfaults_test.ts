/**
 * Links that change under a running relay (issue: "every failure recovers by
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
import { BUILD, Proc, skipReason, Topology } from "../../lab/netns.ts";
import { type SinkReport, startSink } from "../../lab/harness.ts";
import { type Daemon, startDaemon } from "../../lab/daemon.ts";
import type { StatsResult } from "../../src/control/commands.ts";
import { chainV4, frameDrops, mtu, until } from "./lib_robust.ts";

const skip = skipReason();
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };

type Rule = StatsResult["rules"][number];
type Output = Rule["outputs"][number];

/** Start mcr-gen in a namespace (its JSON report comes from `wait()`). */
function gen(
  t: Topology,
  iface: string,
  dst: string,
  o: { rate: number; count?: number; duration?: number; size?: number; stream: number } & {
    noDf?: boolean;
  },
): Proc {
  const args = [`${BUILD}/mcr-gen`, "--iface", iface, "--dst", dst, "--json"];
  args.push("--rate", String(o.rate), "--size", String(o.size ?? 512));
  args.push("--stream-base", String(o.stream));
  if (o.count !== undefined) args.push("--count", String(o.count));
  if (o.duration !== undefined) args.push("--duration", String(o.duration));
  if (o.noDf) args.push("--no-df");
  return new Proc(t.ns("snd"), args);
}

async function genDone(p: Proc): Promise<{ sent: number }> {
  const r = await p.wait();
  if (r.code !== 0) throw new Error(`mcr-gen failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Fetch a URL from inside a namespace (the metrics endpoint listens on its loopback). */
async function fetchIn(t: Topology, role: string, url: string) {
  const out = await t.exec(role, [
    Deno.execPath(),
    "eval",
    `const r = await fetch(${JSON.stringify(url)}); ` +
    `console.log(JSON.stringify({ status: r.status, body: await r.text() }));`,
  ]);
  return JSON.parse(out) as { status: number; body: string };
}

const stats = (d: Daemon) => d.ok<StatsResult>("stats");
const rule = (s: StatsResult, name: string) => s.rules.find((r) => r.name === name)!;

/** Every datagram the rule matched is sent, queued or counted under a drop reason. */
function accounted(r: Rule, o: Output): void {
  assert.equal(
    o.packets + o.ring_full + o.errors + o.ttl_expired + o.link_down + o.too_big + o.queued,
    r.packets,
    `output ${o.interface} ${o.group}: sent + drops + queued = matched (${JSON.stringify(o)})`,
  );
}

/** Wait until the relay has sent everything it matched (nothing queued, counts still). */
async function settled(d: Daemon): Promise<StatsResult> {
  let last = "";
  return await until(
    () => stats(d),
    (s) => {
      const key = JSON.stringify(s.rules.map((r) => [r.packets, r.outputs.map((o) => o.queued)]));
      const still = key === last && s.rules.every((r) => r.outputs.every((o) => o.queued === 0));
      last = key;
      return still;
    },
    20_000,
    "the relay to settle",
  );
}

function streamOf(rep: SinkReport, stream: number) {
  for (const g of rep.groups) for (const s of g.streams) if (s.stream === stream) return s;
  return undefined;
}

function noDupNoReorder(rep: SinkReport): void {
  assert.equal(rep.total.duplicates, 0, "no duplicate");
  assert.equal(rep.total.reordered, 0, "no reordering");
  assert.equal(rep.total.corrupt, 0, "no corruption");
}

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
      // until jumbo datagrams come through, then send the measured stream
      await until(
        async () => {
          await genDone(
            gen(t, "s0", "239.1.1.1:5001", { rate: 100, count: 5, size: 8000, stream: 1 }),
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
      await until(
        async () => {
          await genDone(gen(t, "s0", "239.1.1.1:5001", { rate: 1000, count: 200, stream: 2 }));
          return stats(dd);
        },
        (x) => rule(x, "cam").packets > 500,
        30_000,
        "traffic after the flap",
      );
      s = await settled(dd);
      const rep = await sink.stop();
      noDupNoReorder(rep);
      assert.ok((streamOf(rep, 2)?.unique ?? 0) > 0, "delivered after the flap");
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

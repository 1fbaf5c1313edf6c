/**
 * Link types, end to end in namespaces the tests create and remove (issue 13):
 * links without a link-layer header — tun here, WireGuard's link type; this
 * kernel has no wireguard, ipip or GRE module — relay both ways.
 *
 * - tun inputs: a peer process holds each tun's file descriptor (as a VPN
 *   daemon does, lab/tun_peer.py) and writes datagrams into it; they arrive
 *   as RX on the tun in the relay's namespace, as bare IPv4 packets. One tun
 *   keeps the tun link type (ARPHRD_NONE, as WireGuard), the other is given
 *   PPP's (TUNSETLINK; it still carries bare IP packets). The relay sends
 *   them on a veth to an independent receiver (mcr-sink).
 * - a tun output: datagrams from a veth input leave through the tun (a
 *   multicast and a unicast output, both through a UDP socket bound to the
 *   tun); the peer reads them from the tun's file descriptor and checks every
 *   one itself (IPv4 header and UDP checksums, addresses, TTL, payload,
 *   duplicates, order). When the peer lets go the tun has no carrier: the
 *   output is in error and its datagrams count as link_down until a new peer
 *   attaches.
 * - link types mcr cannot serve (the loopback device, a tun given
 *   InfiniBand's link type): their rules are in error with the reason in
 *   `ctl list` and `stats`, never active, while a rule on a tun beside them is.
 *
 * What holds under load is asserted (tests/netns/lib_account.ts): nothing
 * duplicated, reordered or corrupt, and delivered + counted drops = sent,
 * exactly.
 */
import assert from "node:assert/strict";
import { linkCounters, skipReason, Topology, udpSnmp } from "../../lab/netns.ts";
import { runGen, startRelayWith, startSink } from "../../lab/harness.ts";
import { startTunReader, startTunWriter } from "../../lab/tun_peer.ts";
import { startDaemon } from "../../lab/daemon.ts";
import { topologyConfig } from "./lib_topologies.ts";
import {
  assertAccounted,
  assertClean,
  assertEachStream,
  assertRelayConsistent,
  drive,
  hopKey,
  outputDrops,
  outputPackets,
  PathMeter,
  quiesce,
} from "./lib_account.ts";
import { addNsNoV6, frameDrops, until } from "./lib_robust.ts";
import type { ListResult, StatsResult } from "../../src/control/results.ts";
import { ARPHRD } from "../../src/datapath/link_types.ts";

const skip = skipReason();
if (skip) console.warn(`netns link type tests skipped: ${skip}`);
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };

/** Datagrams per stream. */
const N = 3_000;
/** Datagrams per second of each sender: modest, so a busy machine keeps up (losses are counted). */
const RATE = 3_000;
/** UDP payload bytes. */
const SIZE = 512;
/** How long a state may take to show on a busy machine. */
const DEADLINE_MS = 20_000;

/** Configure a tun in `role` (it exists once its peer runs): an address, up. */
async function tunUp(t: Topology, role: string, dev: string, cidr: string): Promise<void> {
  await t.exec(role, ["ip", "addr", "add", cidr, "dev", dev]);
  await t.exec(role, ["ip", "link", "set", dev, "up"]);
}

Deno.test({
  ...opts,
  name: "tun inputs (tun and PPP link types, no link-layer header): datagrams written into the " +
    "tuns are relayed to an Ethernet output; delivered + counted drops = sent",
  async fn() {
    const t = new Topology("tunin");
    try {
      for (const role of ["rly", "rcv"]) await addNsNoV6(t, role);
      await t.link({ role: "rly", dev: "r1", addr: "10.77.2.1/24" }, {
        role: "rcv",
        dev: "d0",
        addr: "10.77.2.2/24",
      });
      const send = { count: N, rate: RATE, size: SIZE };
      const w0 = await startTunWriter(t, "rly", "t0", {
        ...send,
        src: "10.78.0.2",
        dst: "239.1.1.1:5001",
        stream: 0,
      });
      const w1 = await startTunWriter(t, "rly", "t1", {
        ...send,
        src: "10.79.0.2",
        dst: "239.1.1.2:5002",
        stream: 1,
      }, { type: ARPHRD.PPP });
      await tunUp(t, "rly", "t0", "10.78.0.1/24");
      await tunUp(t, "rly", "t1", "10.79.0.1/24");
      const types = await t.exec("rly", [
        "cat",
        "/sys/class/net/t0/type",
        "/sys/class/net/t1/type",
      ]);
      assert.deepEqual(types.trim().split("\n").map(Number), [ARPHRD.NONE, ARPHRD.PPP]);

      const OUT = ["239.10.1.1:6001", "239.10.1.2:6002"];
      const meter = await PathMeter.start(t, [{ role: "rly", dev: "r1" }]);
      // docs/topologies.md's "from the tunnel" configuration (wg0 → t0, lan0 → r1), and a rule
      // for the tun with PPP's link type beside it
      const config = await topologyConfig("vpn-from-tunnel.json", { wg0: "t0", lan0: "r1" });
      config.rules.push({
        name: "from-ppp",
        input: { interface: "t1", group: "239.1.1.2", port: 5002 },
        outputs: [{ interface: "r1", group: "239.10.1.2", port: 6002 }],
      });
      const relay = await startRelayWith(t, "rly", config, { control: true });
      const sink = await startSink(t, "rcv", "d0", OUT, { settle: true });
      await until(
        () => relay.stats(),
        (s) => s.rules.every((r) => r.state === "active"),
        DEADLINE_MS,
        "both rules active",
      );
      const [r0, r1] = await Promise.all([w0.send(), w1.send()]);
      assert.equal(r0.errors + r1.errors, 0, "the tuns took every datagram");
      // A write into a tun runs the device's receive path at once: every datagram written
      // reached the relay's ring or was counted as a kernel drop there.
      await quiesce(() => relay.stats(), { t0: r0.sent, t1: r1.sent });
      const { stats, code, stderr } = await relay.stop();
      assert.equal(code, 0, stderr);
      const path = await meter.read();
      const lostOut = path.hops[hopKey({ role: "rly", dev: "r1" })];
      const rep = await sink.settle(outputPackets(stats, OUT) - lostOut);
      await Promise.all([w0.stop(), w1.stop()]);

      assertClean(rep, "tun inputs");
      assertEachStream(rep, "tun inputs", OUT);
      const kernelDrops = stats.interfaces.reduce((a, i) => a + i.kernel_drops, 0);
      assertAccounted({
        sent: r0.sent + r1.sent,
        delivered: rep.total.unique,
        drops: {
          tun_kernel_drops: kernelDrops,
          relay_frame_drops: frameDrops(stats),
          relay_output_drops: outputDrops(stats),
          "r1→d0": lostOut,
          receiver_socket: rep.socket_drops ?? 0,
        },
      }, "tun inputs");
      assertRelayConsistent(stats);
      assert.equal(frameDrops(stats), 0, "every frame parsed as IPv4/UDP and matched its rule");
      for (const name of ["t0", "t1"]) {
        const i = stats.interfaces.find((x) => x.name === name)!;
        assert.equal(i.frames + i.kernel_drops, name === "t0" ? r0.sent : r1.sent, name);
      }
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  ...opts,
  name: "tun output (no hardware address): multicast and unicast outputs leave through the " +
    "tun; its peer reads them with valid checksums, addresses, TTL and payload, in order",
  async fn() {
    const t = new Topology("tunout");
    try {
      for (const role of ["snd", "rly"]) await addNsNoV6(t, role);
      await t.link({ role: "snd", dev: "s0", addr: "10.77.1.1/24" }, {
        role: "rly",
        dev: "r0",
        addr: "10.77.1.2/24",
      });
      const reader = await startTunReader(t, "rly", "t0", [6001, 7001]);
      await tunUp(t, "rly", "t0", "10.78.0.1/24");
      const meter = await PathMeter.start(t, [{ role: "snd", dev: "s0" }]);
      const tunBefore = (await linkCounters(t, "rly")).t0;
      const udpBefore = await udpSnmp(t, "rly");
      // docs/topologies.md's "into the tunnel" configuration (lan0 → r0, wg0 → t0)
      const config = await topologyConfig("vpn-to-tunnel.json", { lan0: "r0", wg0: "t0" });
      const relay = await startRelayWith(t, "rly", config, { control: true });
      await until(
        () => relay.stats(),
        (s) =>
          s.rules[0].state === "active" && s.rules[0].outputs.every((o) => o.state === "active"),
        DEADLINE_MS,
        "the rule and both tun outputs active",
      );
      const { gen, stats, path } = await drive(
        relay,
        () => relay.stats(),
        meter,
        () => runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: RATE, count: N, size: SIZE }),
      );
      // Lost after the kernel took them: the tun's queue toward its reader was full
      // (tx_dropped), or its queueing discipline refused them (the sender's namespace counts
      // the ENOBUFS as SndbufErrors: the relay's sockets do not ask for IP_RECVERR).
      const tunDrops = (await linkCounters(t, "rly")).t0.tx_dropped - tunBefore.tx_dropped;
      const qdiscDrops = (await udpSnmp(t, "rly")).SndbufErrors - udpBefore.SndbufErrors;
      const sent = stats.rules[0].outputs.reduce((a, o) => a + o.packets, 0);
      const rep = await reader.settle(sent - tunDrops - qdiscDrops);

      assert.deepEqual(
        [rep.duplicates, rep.reordered, rep.corrupt, rep.bad_ip_csum, rep.bad_udp_csum],
        [0, 0, 0, 0, 0],
        `nothing duplicated, reordered, corrupt or with a bad checksum: ${JSON.stringify(rep)}`,
      );
      assert.ok(rep.streams["239.10.1.1:6001/0"] > 0, "the multicast output delivered");
      assert.ok(rep.streams["10.78.0.2:7001/0"] > 0, "the unicast output delivered");
      assert.ok(rep.datagrams.length > 0);
      for (const d of rep.datagrams) {
        const mcast = d.dst === "239.10.1.1";
        assert.deepEqual(
          [d.src, d.dst, d.dport, d.ttl, d.udp_len],
          [
            "10.78.0.1",
            mcast ? "239.10.1.1" : "10.78.0.2",
            mcast ? 6001 : 7001,
            mcast ? 5 : 1,
            SIZE + 8,
          ],
          JSON.stringify(d),
        );
        assert.notEqual(d.udp_csum, 0, "the kernel computed a UDP checksum");
      }
      const lostIn = path.hops[hopKey({ role: "snd", dev: "s0" })];
      const r0 = stats.interfaces.find((i) => i.name === "r0")!;
      // two outputs: every datagram sent counts twice
      assertAccounted({
        sent: 2 * gen.sent,
        delivered: rep.unique,
        drops: {
          "s0→r0": 2 * lostIn,
          r0_kernel_drops: 2 * r0.kernel_drops,
          relay_frame_drops: 2 * frameDrops(stats),
          relay_output_drops: outputDrops(stats),
          tun_tx_dropped: tunDrops,
          tun_qdisc: qdiscDrops,
        },
      }, "tun output");
      assertRelayConsistent(stats);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  ...opts,
  name: "tun output whose peer lets go (no carrier): the output is in error, its datagrams are " +
    "counted as link_down; a new peer on the tun gets the stream again",
  async fn() {
    const t = new Topology("tundown");
    try {
      for (const role of ["snd", "rly"]) await addNsNoV6(t, role);
      await t.link({ role: "snd", dev: "s0", addr: "10.77.1.1/24" }, {
        role: "rly",
        dev: "r0",
        addr: "10.77.1.2/24",
      });
      const first = await startTunReader(t, "rly", "t0", [6001], { persist: true });
      await tunUp(t, "rly", "t0", "10.78.0.1/24");
      const meter = await PathMeter.start(t, [{ role: "snd", dev: "s0" }]);
      const tunBefore = (await linkCounters(t, "rly")).t0;
      const udpBefore = await udpSnmp(t, "rly");
      const relay = await startRelayWith(t, "rly", {
        rules: [{
          name: "to-tun",
          input: { interface: "r0", group: "239.1.1.1", port: 5001 },
          outputs: [{ interface: "t0", group: "239.10.1.1", port: 6001 }],
        }],
      }, { control: true });
      const output = async () => (await relay.stats()).rules[0].outputs[0];
      await until(output, (o) => o.state === "active", DEADLINE_MS, "the tun output active");
      await first.stop(); // the device stays, without carrier
      const down = await until(
        output,
        (o) => o.state === "error",
        DEADLINE_MS,
        "the tun output in error",
      );
      assert.match(down.reason ?? "", /t0 has no carrier/);
      const send = () => runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: RATE, count: 1000 });
      /** Wait until every datagram the rule matched has an outcome at its output. */
      const settledOut = () =>
        until(
          () => relay.stats(),
          (s) => {
            const r = s.rules[0], o = r.outputs[0];
            const r0 = s.interfaces.find((i) => i.name === "r0")!;
            return r0.kernel_packets === r0.frames + r0.kernel_drops &&
              o.packets + o.ring_full + o.errors + o.link_down + o.too_big + o.queued ===
                r.packets;
          },
          DEADLINE_MS,
          "every matched datagram sent or counted",
        );
      const genDown = await send();
      const whileDown = await settledOut();
      const o1 = whileDown.rules[0].outputs[0];
      assert.equal(o1.packets, 0, "nothing is sent without carrier");
      assert.equal(o1.link_down, whileDown.rules[0].packets, "every matched datagram: link_down");
      assert.ok(o1.link_down > 0);

      const second = await startTunReader(t, "rly", "t0", [6001]); // attaches: carrier again
      await until(output, (o) => o.state === "active", DEADLINE_MS, "the tun output active again");
      const genUp = await send();
      const after = await settledOut();
      const { stats, code, stderr } = await relay.stop();
      assert.equal(code, 0, stderr);
      const tunDrops = (await linkCounters(t, "rly")).t0.tx_dropped - tunBefore.tx_dropped;
      const qdiscDrops = (await udpSnmp(t, "rly")).SndbufErrors - udpBefore.SndbufErrors;
      const o = stats.rules[0].outputs[0];
      assert.equal(o.packets, after.rules[0].outputs[0].packets, "the final counters");
      const rep = await second.settle(o.packets - tunDrops - qdiscDrops);
      assert.deepEqual(
        [rep.duplicates, rep.reordered, rep.corrupt, rep.bad_ip_csum, rep.bad_udp_csum],
        [0, 0, 0, 0, 0],
        JSON.stringify(rep),
      );
      assert.ok(rep.unique > 0, "the new peer gets the stream");
      const path = await meter.read();
      const r0 = stats.interfaces.find((i) => i.name === "r0")!;
      assertAccounted({
        sent: genDown.sent + genUp.sent,
        delivered: rep.unique,
        drops: {
          "s0→r0": path.hops[hopKey({ role: "snd", dev: "s0" })],
          r0_kernel_drops: r0.kernel_drops,
          relay_frame_drops: frameDrops(stats),
          relay_output_drops: outputDrops(stats),
          link_down: o.link_down,
          tun_tx_dropped: tunDrops,
          tun_qdisc: qdiscDrops,
        },
      }, "tun output down and up");
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  ...opts,
  name: "link types mcr cannot serve (loopback, InfiniBand): rules on them are in error with " +
    "the reason in ctl list and stats, never active; a rule on a tun beside them is active",
  async fn() {
    const t = new Topology("badlink");
    try {
      await addNsNoV6(t, "rly");
      const good = await startTunReader(t, "rly", "t0", [6004]);
      const ib = await startTunReader(t, "rly", "t9", [6009], { type: ARPHRD.INFINIBAND });
      await tunUp(t, "rly", "t0", "10.78.0.1/24");
      await tunUp(t, "rly", "t9", "10.79.0.1/24");
      const d = await startDaemon({
        rules: [
          {
            name: "lo-in",
            input: { interface: "lo", group: "239.1.1.1", port: 5001 },
            outputs: [{ interface: "t0", group: "239.10.1.1", port: 6001 }],
          },
          {
            name: "ib-in",
            input: { interface: "t9", group: "239.1.1.2", port: 5002 },
            outputs: [{ interface: "t0", group: "239.10.1.2", port: 6002 }],
          },
          {
            name: "lo-out",
            input: { interface: "t0", group: "239.1.1.3", port: 5003 },
            outputs: [
              { interface: "lo", group: "239.10.1.3", port: 6003 },
              { interface: "t0", group: "239.10.1.4", port: 6004 },
            ],
          },
          {
            name: "ok",
            input: { interface: "t0", group: "239.1.1.4", port: 5004 },
            outputs: [{ interface: "t0", group: "239.10.1.5", port: 6005 }],
          },
        ],
      }, { netns: t.ns("rly") });
      let out: { stderr: string } | undefined;
      try {
        const s = await until(
          () => d.ok<StatsResult>("stats"),
          (s) =>
            s.rules.find((r) => r.name === "ok")?.state === "active" &&
            s.rules.filter((r) => r.state === "error").length === 3,
          DEADLINE_MS,
          "three rules in error, one active",
        );
        const rule = (name: string) => s.rules.find((r) => r.name === name)!;
        assert.match(rule("lo-in").reason ?? "", /input interface lo is loopback \(ARPHRD 772\)/);
        assert.match(
          rule("ib-in").reason ?? "",
          /input interface t9 is InfiniBand \(ARPHRD 32\), a link type mcr cannot relay/,
        );
        assert.match(rule("lo-out").reason ?? "", /output interface lo is loopback/);
        const [toLo, toTun] = rule("lo-out").outputs;
        assert.equal(toLo.state, "error", "the output on lo is in error");
        assert.match(toLo.reason ?? "", /output interface lo is loopback/);
        assert.equal(toTun.state, "active", "the rule's output on the tun still relays");
        for (const name of ["lo", "t9"]) {
          const i = s.interfaces.find((x) => x.name === name)!;
          assert.equal(i.state, "error", `interface ${name} in error`);
          assert.match(i.reason ?? "", /link type mcr cannot relay|loopback/);
          assert.equal(i.frames, 0, `no ring on ${name}`);
        }
        const list = await d.ok<ListResult>("list");
        for (const r of list.rules) {
          assert.equal(r.state, r.name === "ok" ? "active" : "error", r.name);
          if (r.name !== "ok") assert.ok(r.reason, `${r.name} says why`);
        }
        const human = await d.ctl("list");
        assert.equal(human.code, 0, human.stderr);
        assert.match(human.stdout, /loopback/);
      } finally {
        d.kill("SIGTERM");
        out = await d.output();
      }
      assert.match(out.stderr, /input interface lo is loopback/, "the refusal is logged");
      await Promise.all([good.stop(), ib.stop()]);
    } finally {
      await t.destroy();
    }
  },
});

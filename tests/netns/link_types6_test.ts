/**
 * IPv6 on links without a link-layer header (issue 14): a tun (the way
 * WireGuard and OpenVPN hand packets over) carrying IPv6 into the relay —
 * the IP version nibble tells the families apart, the kernel filter passes
 * IPv6 in layer-3 mode — relayed to an Ethernet IPv6 group, and into a
 * second tun, where the output goes through a UDP6 socket bound to the
 * device. The tuns' far sides (lab/tun_peer.py) write and read the packets
 * and verify them independently of mcr.
 */
import assert from "node:assert/strict";
import { linkCounters, skipReason, Topology, waitIPv6 } from "../../lab/netns.ts";
import { startRelayWith, startSink } from "../../lab/harness.ts";
import { startTunReader, startTunWriter } from "../../lab/tun_peer.ts";
import { assertClean, hopKey, PathMeter, quiesce, sinkAccounted } from "./lib_account.ts";
import { frameDrops, until } from "./lib_robust.ts";

const skip = skipReason();
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };
const N = 2_000;
const RATE = 2_000;
const SIZE = 512;

/** Give a device in `role` an IPv6 address (usable at once: no DAD) and bring it up. */
async function up6(t: Topology, role: string, dev: string, cidr: string): Promise<void> {
  await t.exec(role, ["ip", "-6", "addr", "add", cidr, "dev", dev, "nodad"]);
  await t.exec(role, ["ip", "link", "set", dev, "up"]);
}

/** The namespace's UDP6 send-buffer errors (a qdisc refusing a socket's datagram). */
async function udp6SndbufErrors(t: Topology, role: string): Promise<number> {
  const text = await t.exec(role, ["cat", "/proc/net/snmp6"]);
  return Number(/^Udp6SndbufErrors\s+(\d+)/m.exec(text)?.[1] ?? 0);
}

Deno.test({
  ...opts,
  name: "IPv6 over tun: a tun input relayed to an Ethernet IPv6 group and into another tun " +
    "(UDP6 socket); headers and checksums verified by the peers; delivered or counted, once",
  async fn() {
    const t = new Topology("tun6");
    try {
      for (const role of ["rly", "rcv"]) await t.addNs(role);
      await t.link({ role: "rly", dev: "r1" }, { role: "rcv", dev: "d0" });
      await up6(t, "rly", "r1", "fd77:2::1/64");
      await up6(t, "rcv", "d0", "fd77:2::2/64");
      const writer = await startTunWriter(t, "rly", "t0", {
        src: "fd78::2",
        dst: "[ff15::1]:5001",
        count: N,
        rate: RATE,
        size: SIZE,
        stream: 0,
        ttl: 9,
      });
      const reader = await startTunReader(t, "rly", "t1", [6002]);
      await up6(t, "rly", "t0", "fd78::1/64");
      await up6(t, "rly", "t1", "fd79::1/64");
      await waitIPv6(t, [["rly", "r1"], ["rcv", "d0"]]);
      const meter = await PathMeter.start(t, [{ role: "rly", dev: "r1" }]);
      const relay = await startRelayWith(t, "rly", {
        rules: [{
          name: "tun6",
          input: { interface: "t0", group: "ff15::1", port: 5001 },
          outputs: [
            { interface: "r1", group: "ff15::11", port: 6001, hops: "decrement" },
            { interface: "t1", group: "ff15::12", port: 6002, hops: 3 },
          ],
        }],
      }, { control: true });
      const sink = await startSink(t, "rcv", "d0", ["[ff15::11]:6001"], { settle: true });
      await until(
        () => relay.stats(),
        (s) =>
          s.rules[0].state === "active" && s.rules[0].outputs.every((o) => o.state === "active"),
        20_000,
        "the rule and both outputs active",
      );
      const tunBefore = (await linkCounters(t, "rly")).t1;
      const sndbufBefore = await udp6SndbufErrors(t, "rly");
      const w = await writer.send();
      assert.equal(w.errors, 0, "the tun took every datagram");
      await quiesce(() => relay.stats(), { t0: w.sent });
      const { stats, code, stderr } = await relay.stop();
      assert.equal(code, 0, stderr);
      const lostOut = (await meter.read()).hops[hopKey({ role: "rly", dev: "r1" })];
      const [eth, tun] = stats.rules[0].outputs;
      const rep = await sink.settle(eth.packets - lostOut);
      const tunDrops = (await linkCounters(t, "rly")).t1.tx_dropped - tunBefore.tx_dropped;
      const qdisc = await udp6SndbufErrors(t, "rly") - sndbufBefore;
      const back = await reader.settle(tun.packets - tunDrops - qdisc);
      await writer.stop();

      // in: every datagram written reached the ring (or a kernel drop there) and matched
      const t0 = stats.interfaces.find((i) => i.name === "t0")!;
      assert.equal(t0.frames + t0.kernel_drops, w.sent);
      assert.equal(frameDrops(stats), 0, "every frame parsed as IPv6/UDP and matched its rule");
      assert.equal(stats.rules[0].packets, t0.frames);
      // out, Ethernet: the receiver got what was sent, once, in order, intact
      assertClean(rep, "tun → Ethernet");
      assert.equal(sinkAccounted(rep) + lostOut, eth.packets, "receiver + r1→d0 drops = sent");
      assert.equal(eth.packets + eth.errors + eth.ring_full, stats.rules[0].packets);
      // out, tun: the far side read what was sent, once, in order, with valid checksums
      assert.deepEqual(
        [back.duplicates, back.reordered, back.corrupt, back.bad_udp_csum],
        [0, 0, 0, 0],
        JSON.stringify(back),
      );
      assert.equal(back.unique + tunDrops + qdisc, tun.packets, "tun reader + drops = sent");
      assert.equal(tun.packets + tun.errors + tun.ring_full, stats.rules[0].packets);
      assert.ok(back.datagrams.length > 0);
      for (const d of back.datagrams) {
        assert.deepEqual(
          [d.src, d.dst, d.dport, d.ttl, d.udp_len],
          ["fd79::1", "ff15::12", 6002, 3, SIZE + 8],
          "the tun's own address as the source, the fixed hop limit",
        );
      }
    } finally {
      await t.destroy();
    }
  },
});

/**
 * Sites joined over a kernel VXLAN tunnel with a unicast remote
 * (docs/topologies.md "VXLAN overlay", examples/topologies/vxlan-a.json and
 * vxlan-b.json, interfaces renamed): relay A takes eight groups from its LAN
 * with one range rule and sends them into vx0; the tunnel carries them as
 * unicast UDP across a router that routes no multicast; relay B takes them
 * from its vx0 and maps them onto its own groups. Counted by an independent
 * receiver: every stream delivered to its own group, nothing duplicated,
 * reordered, corrupt or foreign, delivered + counted drops = sent (every place
 * a datagram can be lost on the way has its counter: veth hops, the tunnel
 * device at each end, both relays, the receiver's sockets).
 */
import assert from "node:assert/strict";
import { linkCounters, skipReason, Topology } from "../../lab/netns.ts";
import { runGen, startRelayWith, startSink } from "../../lab/harness.ts";
import type { RelayStats } from "../../src/relay/stats.ts";
import {
  assertAccounted,
  assertClean,
  assertEachStream,
  assertRelayConsistent,
  type Hop,
  hopKey,
  outputDrops,
  outputPackets,
  PathMeter,
  quiesce,
  streamsAt,
} from "./lib_account.ts";
import { addNsNoV6, frameDrops } from "./lib_robust.ts";
import { topologyConfig } from "./lib_topologies.ts";

const skip = skipReason();
if (skip) console.warn(`netns VXLAN test skipped: ${skip}`);
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };

/** Groups (streams) across the one tunnel. */
const STREAMS = 8;
/** Datagrams per stream. */
const N = 1_500;
/** Total rate over all streams: modest, so a busy machine keeps up (losses are counted). */
const RATE = 4_000;
/** How long a state may take to show on a busy machine (a bound on polling, not an assertion). */
const DEADLINE_MS = 30_000;
/** VXLAN network identifier of the tunnel. */
const VNI = "42";

/** Permanent neighbour entry (no datagram waits for ARP on the underlay). */
async function pinNeighbour(
  t: Topology,
  at: { role: string; dev: string },
  ip: string,
  peer: { role: string; dev: string },
): Promise<void> {
  const link = JSON.parse(await t.exec(peer.role, ["ip", "-j", "link", "show", peer.dev]));
  await t.exec(at.role, [
    ...["ip", "neigh", "replace", ip, "lladdr", link[0].address, "dev", at.dev, "nud", "permanent"],
  ]);
}

/** A VXLAN device `vx0` in `role` to `remote`, over `dev`, with overlay address `addr`. */
async function vxlan(
  t: Topology,
  role: string,
  local: string,
  remote: string,
  dev: string,
  addr: string,
) {
  await t.exec(role, [
    ...["ip", "link", "add", "vx0", "type", "vxlan", "id", VNI, "remote", remote, "local", local],
    ...["dstport", "4789", "dev", dev],
  ]);
  await t.exec(role, ["ip", "addr", "add", addr, "dev", "vx0"]);
  await t.exec(role, ["ip", "link", "set", "vx0", "up"]);
}

Deno.test({
  ...opts,
  name: `VXLAN between two sites: ${STREAMS} groups through one unicast tunnel across a router, ` +
    "each to its own group; delivered + counted drops = sent, no duplicate, no reordering",
  async fn() {
    const t = new Topology("vx");
    try {
      // snd (s0) — (a0) A (a1) — (x0) rtr (x1) — (b0) B (b1) — (d0) rcv; vx0 A ⇄ vx0 B over it
      for (const role of ["snd", "A", "rtr", "B", "rcv"]) await addNsNoV6(t, role);
      const link = (a: [string, string, string], b: [string, string, string]) =>
        t.link({ role: a[0], dev: a[1], addr: a[2] }, { role: b[0], dev: b[1], addr: b[2] });
      await link(["snd", "s0", "10.83.1.1/24"], ["A", "a0", "10.83.1.2/24"]);
      await link(["A", "a1", "10.83.2.1/24"], ["rtr", "x0", "10.83.2.2/24"]);
      await link(["rtr", "x1", "10.83.3.1/24"], ["B", "b0", "10.83.3.2/24"]);
      await link(["B", "b1", "10.83.4.1/24"], ["rcv", "d0", "10.83.4.2/24"]);
      // The router forwards unicast only: no multicast routing daemon, no mroute table.
      await t.sysctl("rtr", "net.ipv4.ip_forward", "1");
      await t.exec("A", ["ip", "route", "add", "10.83.3.0/24", "via", "10.83.2.2"]);
      await t.exec("B", ["ip", "route", "add", "10.83.2.0/24", "via", "10.83.3.1"]);
      await pinNeighbour(t, { role: "A", dev: "a1" }, "10.83.2.2", { role: "rtr", dev: "x0" });
      await pinNeighbour(t, { role: "rtr", dev: "x1" }, "10.83.3.2", { role: "B", dev: "b0" });
      await vxlan(t, "A", "10.83.2.1", "10.83.3.2", "a1", "10.84.0.1/24");
      await vxlan(t, "B", "10.83.3.2", "10.83.2.1", "b0", "10.84.0.2/24");

      const hops: Hop[] = [
        { role: "snd", dev: "s0" },
        { role: "A", dev: "vx0" }, // encapsulation refused (no route to the remote, ...)
        { role: "A", dev: "a1" },
        { role: "rtr", dev: "x1" },
        { role: "B", dev: "b1" },
      ];
      const meter = await PathMeter.start(t, hops);
      const vxB0 = (await linkCounters(t, "B")).vx0;
      const siteA = await topologyConfig("vxlan-a.json", { lan0: "a0", vx0: "vx0" });
      const siteB = await topologyConfig("vxlan-b.json", { vx0: "vx0", lan0: "b1" });
      const relayA = await startRelayWith(t, "A", siteA, { control: true });
      const relayB = await startRelayWith(t, "B", siteB, { control: true });
      const ins = Array.from({ length: STREAMS }, (_, k) => `239.1.1.${k}:5001`);
      const outs = Array.from({ length: STREAMS }, (_, k) => `239.20.1.${k}:5001`);
      const sink = await startSink(t, "rcv", "d0", outs, { settle: true });
      const gen = await runGen(t, "snd", "s0", ins, { rate: RATE, count: N });
      assert.equal(gen.sent, STREAMS * N);

      // A: takes every frame that reached it, then stops (its final counters).
      let up = await meter.read();
      await quiesce(() => relayA.stats(), { a0: gen.sent - up.hops["snd/s0"] });
      const a = await relayA.stop();
      assert.equal(a.code, 0, a.stderr);
      const aOut = outputPackets(a.stats, ["239.1.1.0/29:keep"]);
      // B: what A handed to the kernel, less what the tunnel and the hops behind it dropped
      let toB = aOut, vxRxDropped = 0;
      for (const t0 = Date.now(); Date.now() - t0 < DEADLINE_MS;) {
        up = await meter.read();
        vxRxDropped = (await linkCounters(t, "B")).vx0.rx_dropped - vxB0.rx_dropped;
        toB = aOut - up.hops["A/vx0"] - up.hops["A/a1"] - up.hops["rtr/x1"] - vxRxDropped;
        const vx = (await relayB.stats()).interfaces.find((i) => i.name === "vx0");
        if (vx && vx.frames + vx.kernel_drops >= toB) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await quiesce(() => relayB.stats(), { vx0: toB }); // reports what is missing, if anything
      const b = await relayB.stop();
      assert.equal(b.code, 0, b.stderr);
      const path = await meter.read();
      const rep = await sink.settle(
        outputPackets(b.stats, ["239.20.1.0/29:keep"]) - path.hops["B/b1"],
      );

      const input = (s: RelayStats, name: string) => s.interfaces.find((i) => i.name === name)!;
      assertAccounted({
        sent: gen.sent,
        delivered: rep.total.unique,
        drops: {
          "s0→a0": path.hops[hopKey(hops[0])],
          a0_kernel_drops: input(a.stats, "a0").kernel_drops,
          relay_a_frame_drops: frameDrops(a.stats),
          relay_a_output_drops: outputDrops(a.stats),
          vx0_a_tx_dropped: path.hops[hopKey(hops[1])],
          "a1→x0": path.hops[hopKey(hops[2])],
          "x1→b0": path.hops[hopKey(hops[3])],
          vx0_b_rx_dropped: vxRxDropped,
          vx0_b_kernel_drops: input(b.stats, "vx0").kernel_drops,
          relay_b_frame_drops: frameDrops(b.stats),
          relay_b_output_drops: outputDrops(b.stats),
          "b1→d0": path.hops[hopKey(hops[4])],
          receiver_socket: rep.socket_drops ?? 0,
        },
      }, `${STREAMS} streams through one VXLAN tunnel`);
      assertClean(rep, "VXLAN");
      assertEachStream(rep, "VXLAN", outs);
      for (let k = 0; k < STREAMS; k++) {
        assert.deepEqual(streamsAt(rep, outs[k]), [k], `${ins[k]} arrives at ${outs[k]} only`);
      }
      assertRelayConsistent(a.stats);
      assertRelayConsistent(b.stats);
    } finally {
      await t.destroy();
    }
  },
});

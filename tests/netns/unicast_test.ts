/**
 * Unicast inputs end to end, in namespaces the tests create and remove: a
 * stream sent to the relay's own address republished as multicast (what an
 * independent receiver counts, and what a plain AF_PACKET decoder reads on
 * the wire), the kernel kept from answering ICMP port unreachable to the
 * sender for exactly as long as a rule holds the port (counted in the relay
 * namespace's /proc/net/snmp: Udp NoPorts and Icmp OutDestUnreachs), a port
 * held by another program reported as the rule's error, and two relays in a
 * row — multicast → unicast → multicast across a routed link without
 * multicast routing.
 *
 * Assertions hold on a busy machine (tests/netns/lib_account.ts): nothing
 * duplicated, reordered or corrupted, delivered + counted drops = sent.
 */
import assert from "node:assert/strict";
import { skipReason, snmp, Topology } from "../../lab/netns.ts";
import {
  type RelayProc,
  runGen,
  startCapture,
  startRelayWith,
  startSink,
} from "../../lab/harness.ts";
import { ControlClient } from "../../src/client/client.ts";
import type { RelayStats } from "../../src/relay/stats.ts";
import {
  assertAccounted,
  assertChainAccounted,
  assertClean,
  assertRelayConsistent,
  type Hop,
  hopKey,
  outputDrops,
  outputPackets,
  PathMeter,
  quiesce,
  sinkAccounted,
} from "./lib_account.ts";
import { addNsNoV6, chainV4, frameDrops } from "./lib_robust.ts";
import { topologyConfig } from "./lib_topologies.ts";

const skip = skipReason();
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };

/** How long a state may take to show on a busy machine (a bound on polling, not an assertion). */
const DEADLINE_MS = 30_000;
/** The relay's own address on its input interface in the chain (r0). */
const OWN = "10.77.1.2";

/** Permanent neighbour entry: datagrams queued while ARP resolves could be lost uncounted. */
async function pinNeighbour(
  t: Topology,
  at: { role: string; dev: string },
  ip: string,
  peer: { role: string; dev: string },
): Promise<void> {
  const link = JSON.parse(await t.exec(peer.role, ["ip", "-j", "link", "show", peer.dev]));
  const mac = link[0].address as string;
  await t.exec(at.role, [
    ...["ip", "neigh", "replace", ip, "lladdr", mac, "dev", at.dev, "nud", "permanent"],
  ]);
}

/** Icmp OutDestUnreachs and Udp NoPorts/InErrors of a namespace (one read each). */
async function kernelCounts(t: Topology, role: string) {
  const icmp = await snmp(t, role, "Icmp");
  const udp = await snmp(t, role, "Udp");
  return {
    destUnreachs: icmp.OutDestUnreachs,
    noPorts: udp.NoPorts,
    inErrors: udp.InErrors,
  };
}

/** What the relay namespace's kernel counted since a {@link kernelCounts} snapshot. */
type KernelDelta = Awaited<ReturnType<typeof kernelCounts>>;

/** The delta of each count since `before`. */
async function kernelDelta(t: Topology, role: string, before: KernelDelta): Promise<KernelDelta> {
  const now = await kernelCounts(t, role);
  return {
    destUnreachs: now.destUnreachs - before.destUnreachs,
    noPorts: now.noPorts - before.noPorts,
    inErrors: now.inErrors - before.inErrors,
  };
}

/**
 * Send 200 datagrams from the sender to `dst` (the relay's own address: a claimed port) and
 * assert that the relay's kernel dropped each at the claim (Udp InErrors) and answered none
 * (no Udp NoPorts, no ICMP destination unreachable).
 */
async function assertClaimedSilently(t: Topology, dst: string): Promise<void> {
  const before = await kernelCounts(t, "rly");
  const gen = await runGen(t, "snd", "s0", [dst], { rate: 2_000, count: 200 });
  const d = await settle(t, "rly", before, (d) => d.inErrors >= gen.sent);
  assert.deepEqual([d.noPorts, d.destUnreachs], [0, 0], JSON.stringify(d));
}

/**
 * Poll the delta since `before` until `done` holds (the receiving softirq may still be working
 * through a busy machine's backlog), or the deadline passes; returns the last delta either way,
 * for the caller's assertion.
 */
async function settle(
  t: Topology,
  role: string,
  before: KernelDelta,
  done: (d: KernelDelta) => boolean,
): Promise<KernelDelta> {
  const t0 = Date.now();
  for (;;) {
    const d = await kernelDelta(t, role, before);
    if (done(d) || Date.now() - t0 > DEADLINE_MS) return d;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Poll the relay until `pred` holds; throws (with the last stats) after the deadline. */
async function until(
  relay: RelayProc,
  pred: (s: RelayStats) => boolean,
  what: string,
): Promise<RelayStats> {
  const t0 = Date.now();
  for (;;) {
    const s = await relay.stats();
    if (pred(s)) return s;
    if (Date.now() - t0 > DEADLINE_MS) {
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(s.rules)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

const rule = (s: RelayStats, name: string) => s.rules.find((r) => r.name === name);

/**
 * A chain (IPv6 off) whose sender reaches the relay's own address without ARP, and whose relay
 * namespace answers every datagram to a port nobody holds (no ICMP rate limit:
 * net.ipv4.icmp_ratemask=0), so that Icmp OutDestUnreachs counts each one.
 */
async function unicastChain(tag: string): Promise<Topology> {
  const t = new Topology(tag);
  try {
    await chainV4(t);
    await pinNeighbour(t, { role: "snd", dev: "s0" }, OWN, { role: "rly", dev: "r0" });
    await t.sysctl("rly", "net.ipv4.icmp_ratemask", "0");
  } catch (e) {
    await t.destroy();
    throw e;
  }
  return t;
}

const FEED = {
  name: "feed",
  input: { interface: "r0", group: OWN, port: 5001 },
  outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
};

Deno.test({
  ...opts,
  name: "unicast input to the relay's own address → multicast output: every datagram at most " +
    "once, in order, intact at an independent receiver; delivered + counted drops = sent",
  async fn() {
    const t = await unicastChain("uin");
    try {
      const meter = await PathMeter.start(t, [{ role: "snd", dev: "s0" }, {
        role: "rly",
        dev: "r1",
      }]);
      const relay = await startRelayWith(t, "rly", { rules: [FEED] }, { control: true });
      await until(relay, (s) => rule(s, "feed")?.state === "active", "the rule to be active");
      const kernel = await kernelCounts(t, "rly");
      const sink = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], { settle: true });
      const cap = await startCapture(t, "rcv", "d0", 6001, 100);
      const gen = await runGen(t, "snd", "s0", [`${OWN}:5001`], { rate: 10_000, count: 10_000 });
      const up = await meter.read();
      await quiesce(() => relay.stats(), { r0: gen.sent - up.hops["snd/s0"] });
      const { stats, code, stderr } = await relay.stop();
      assert.equal(code, 0, stderr);
      const path = await meter.read();
      const rep = await sink.settle(
        outputPackets(stats, ["239.10.1.1:6001"]) - path.hops["rly/r1"],
      );
      const seen = await cap.result();
      // An independent decoder (plain AF_PACKET socket, its own checksum code) read the wire.
      assert.equal(seen.length, 100);
      for (const d of seen) {
        assert.deepEqual(
          [d.ip_csum_ok, d.udp_csum_ok, d.ttl, d.src, d.dst, d.dport, d.udp_len],
          [true, true, 1, "10.77.2.1", "239.10.1.1", 6001, 1024 + 8],
          "valid checksums, default TTL 1, the output group, the interface's source address",
        );
      }
      const r0 = stats.interfaces.find((i) => i.name === "r0")!;
      assertChainAccounted("unicast → multicast", gen.sent, stats, path, rep);
      assertClean(rep, "unicast → multicast");
      assertRelayConsistent(stats);
      assert.equal(rule(stats, "feed")!.packets, r0.frames, "every frame taken matched the rule");
      assert.equal(sinkAccounted(rep) + path.hops["rly/r1"], stats.rules[0].outputs[0].packets);
      // The relay's kernel saw every datagram too, dropped each at the claim, answered none.
      const arrived = gen.sent - path.hops["snd/s0"];
      const k = await settle(t, "rly", kernel, (d) => d.inErrors >= arrived);
      assert.deepEqual(
        [k.noPorts, k.destUnreachs, k.inErrors],
        [0, 0, arrived],
        "no datagram found the port without a socket, no ICMP sent, each dropped at the claim",
      );
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  ...opts,
  name: "unicast input: the kernel answers no ICMP port unreachable for exactly as long as a " +
    "rule holds the port (live remove and add)",
  async fn() {
    const t = await unicastChain("icmp");
    try {
      const relay = await startRelayWith(t, "rly", { rules: [FEED] }, { control: true });
      await using ctl = await ControlClient.connect(relay.controlSocket!);
      await until(relay, (s) => rule(s, "feed")?.state === "active", "the rule to be active");
      const meter = await PathMeter.start(t, [{ role: "snd", dev: "s0" }]);
      /** Send 400 datagrams to `port`; the kernel counts once every one that arrived is counted. */
      const send = async (port: number, settled: (d: KernelDelta, n: number) => boolean) => {
        const before = await kernelCounts(t, "rly");
        const lost = (await meter.read()).hops["snd/s0"];
        const gen = await runGen(t, "snd", "s0", [`${OWN}:${port}`], { rate: 2_000, count: 400 });
        const arrived = gen.sent - ((await meter.read()).hops["snd/s0"] - lost);
        const d = await settle(t, "rly", before, (d) => settled(d, arrived));
        return { d, arrived };
      };

      // The measurement works: every datagram to a port nobody holds is answered (what the
      // claim prevents).
      let r = await send(5009, (d, n) => d.noPorts >= n);
      assert.deepEqual(
        [r.d.noPorts, r.d.destUnreachs, r.d.inErrors],
        [r.arrived, r.arrived, 0],
        "a port without a socket: NoPorts and one ICMP port unreachable per datagram",
      );

      // The rule's port: relayed, never answered. The claim's filter drops each datagram in the
      // kernel, which counts it once in Udp InErrors (documented in docs/guide.md).
      r = await send(5001, (d, n) => d.inErrors >= n);
      assert.deepEqual(
        [r.d.noPorts, r.d.destUnreachs, r.d.inErrors],
        [0, 0, r.arrived],
        "the rule's port: no NoPorts, no ICMP, each datagram dropped at the claim's filter",
      );
      await until(relay, (s) => rule(s, "feed")!.packets >= 1, "datagrams to be relayed");

      // Removed live: the port is released, the kernel answers again.
      const removed = await ctl.request("remove", { rule: "feed" });
      assert.ok(removed.ok, JSON.stringify(removed));
      r = await send(5001, (d, n) => d.noPorts >= n);
      assert.deepEqual([r.d.noPorts, r.d.destUnreachs], [r.arrived, r.arrived], "released");

      // Added live: held again.
      const added = await ctl.request("add", { rule: FEED });
      assert.ok(added.ok, JSON.stringify(added));
      await until(relay, (s) => rule(s, "feed")?.state === "active", "the added rule");
      r = await send(5001, (d, n) => d.inErrors >= n);
      assert.deepEqual([r.d.noPorts, r.d.destUnreachs, r.d.inErrors], [0, 0, r.arrived], "held");
      const { code, stderr } = await relay.stop();
      assert.equal(code, 0, stderr);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  ...opts,
  name: "unicast input whose port another program holds: the rule reports it as its error, " +
    "still relays, and recovers once the port is free",
  async fn() {
    const t = await unicastChain("busy");
    try {
      // mcr-sink binds 0.0.0.0:5001 (SO_REUSEADDR/SO_REUSEPORT, which the relay's claim does not
      // set: it never shares a port with another program's socket).
      const other = await startSink(t, "rly", "r0", [`${OWN}:5001`]);
      const relay = await startRelayWith(t, "rly", { rules: [FEED] }, { control: true });
      const s = await until(relay, (s) => rule(s, "feed")?.state === "error", "the rule's error");
      const why = rule(s, "feed")!.reason ?? "";
      assert.match(why, /cannot claim UDP port 10\.77\.1\.2:5001 on r0/, why);
      assert.match(why, /another program has a socket bound to that port \(EADDRINUSE\)/, why);
      assert.match(why, /the rule still relays/, why);
      assert.deepEqual(
        s.claims?.failures.map((f) => [f.interface, f.address, f.port, f.reason]),
        [["r0", OWN, 5001, why]],
      );
      assert.deepEqual(rule(s, "feed")!.outputs.map((o) => o.state), ["active"]);
      await runGen(t, "snd", "s0", [`${OWN}:5001`], { rate: 2_000, count: 200 });
      await until(relay, (s) => rule(s, "feed")!.packets >= 1, "datagrams to be relayed anyway");
      await other.stop();
      const ok = await until(relay, (s) => rule(s, "feed")?.state === "active", "a retry");
      assert.equal(rule(ok, "feed")!.reason, undefined);
      assert.deepEqual([ok.claims?.held, ok.claims?.failed], [1, 0]);
      await assertClaimedSilently(t, `${OWN}:5001`);
      const { code, stderr } = await relay.stop();
      assert.equal(code, 0, stderr);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  ...opts,
  name: "unicast input of another host's address (mirror port): relayed without a claim; " +
    "claimed as soon as the address becomes the relay's own",
  async fn() {
    const t = await unicastChain("mirror");
    try {
      // Frames to 10.77.1.50 carry another host's MAC: r0 takes them in as PACKET_OTHERHOST (a
      // veth, like a mirror port, filters no MAC), the relay's kernel discards them before IP.
      const HOST = "10.77.1.50";
      await t.exec("snd", [
        ...["ip", "neigh", "replace", HOST, "lladdr", "02:00:00:00:00:50", "dev", "s0"],
        ...["nud", "permanent"],
      ]);
      const relay = await startRelayWith(t, "rly", {
        rules: [{
          name: "mirror",
          input: { interface: "r0", group: HOST, port: 5001 },
          outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
        }],
      }, { control: true });
      let s = await until(relay, (s) => rule(s, "mirror")?.state === "active", "the rule");
      assert.deepEqual([s.claims?.claims, s.claims?.not_local, s.claims?.held], [1, 1, 0]);
      const before = await kernelCounts(t, "rly");
      const gen = await runGen(t, "snd", "s0", [`${HOST}:5001`], { rate: 2_000, count: 200 });
      s = await until(relay, (s) => rule(s, "mirror")!.packets >= 1, "mirrored datagrams relayed");
      const d = await kernelDelta(t, "rly", before);
      assert.deepEqual([d.noPorts, d.destUnreachs, d.inErrors], [0, 0, 0], JSON.stringify(d));
      assert.ok(rule(s, "mirror")!.packets <= gen.sent);

      // The address becomes the relay's own (an IPv4 address event): claimed at once.
      await t.exec("rly", ["ip", "addr", "add", `${HOST}/32`, "dev", "r0"]);
      s = await until(relay, (s) => s.claims?.held === 1, "the claim after the address appeared");
      assert.equal(rule(s, "mirror")!.state, "active");
      await pinNeighbour(t, { role: "snd", dev: "s0" }, HOST, { role: "rly", dev: "r0" });
      await assertClaimedSilently(t, `${HOST}:5001`);
      const { code, stderr } = await relay.stop();
      assert.equal(code, 0, stderr);
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  ...opts,
  name: "two relays in a row: multicast → unicast → multicast across a routed link without " +
    "multicast routing; delivered + counted drops = sent, no duplicate, no reordering",
  async fn() {
    const t = new Topology("u2");
    try {
      // snd (s0) — (a0) A (a1) — (x0) rtr (x1) — (b0) B (b1) — (d0) rcv
      for (const role of ["snd", "A", "rtr", "B", "rcv"]) await addNsNoV6(t, role);
      const link = (a: [string, string, string], b: [string, string, string]) =>
        t.link({ role: a[0], dev: a[1], addr: a[2] }, { role: b[0], dev: b[1], addr: b[2] });
      await link(["snd", "s0", "10.81.1.1/24"], ["A", "a0", "10.81.1.2/24"]);
      await link(["A", "a1", "10.81.2.1/24"], ["rtr", "x0", "10.81.2.2/24"]);
      await link(["rtr", "x1", "10.81.3.1/24"], ["B", "b0", "10.81.3.2/24"]);
      await link(["B", "b1", "10.81.4.1/24"], ["rcv", "d0", "10.81.4.2/24"]);
      // The router forwards unicast only: no multicast routing daemon, no mroute table.
      await t.sysctl("rtr", "net.ipv4.ip_forward", "1");
      await t.sysctl("B", "net.ipv4.icmp_ratemask", "0"); // every unanswered port would count
      await t.exec("A", ["ip", "route", "add", "10.81.3.0/24", "via", "10.81.2.2"]);
      await t.exec("B", ["ip", "route", "add", "10.81.2.0/24", "via", "10.81.3.1"]);
      await pinNeighbour(t, { role: "A", dev: "a1" }, "10.81.2.2", { role: "rtr", dev: "x0" });
      await pinNeighbour(t, { role: "rtr", dev: "x1" }, "10.81.3.2", { role: "B", dev: "b0" });

      const hops: Hop[] = [
        { role: "snd", dev: "s0" },
        { role: "A", dev: "a1" },
        { role: "rtr", dev: "x1" },
        { role: "B", dev: "b1" },
      ];
      const meter = await PathMeter.start(t, hops);
      // The configurations of docs/topologies.md ("Site to site"), interfaces renamed.
      const siteA = await topologyConfig("site-a.json", { lan0: "a0", wan0: "a1" });
      const siteB = await topologyConfig("site-b.json", { wan0: "b0", lan0: "b1" });
      const relayA = await startRelayWith(t, "A", siteA, { control: true });
      const relayB = await startRelayWith(t, "B", siteB, { control: true });
      await until(relayB, (s) => rule(s, "from-site-a")?.state === "active", "relay B's rule");
      const kernelB = await kernelCounts(t, "B");
      const sink = await startSink(t, "rcv", "d0", ["239.20.1.1:6001"], { settle: true });
      const gen = await runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: 5_000, count: 10_000 });

      // A: takes every frame that reached it, then stops (its final counters).
      let up = await meter.read();
      await quiesce(() => relayA.stats(), { a0: gen.sent - up.hops["snd/s0"] });
      const a = await relayA.stop();
      assert.equal(a.code, 0, a.stderr);
      const aOut = outputPackets(a.stats, ["10.81.3.2:7001"]);
      // B: everything A handed to the kernel, less what the two hops behind it dropped (read
      // again while waiting: the router may still be working through its backlog).
      let toB = aOut;
      for (const t0 = Date.now(); Date.now() - t0 < DEADLINE_MS;) {
        up = await meter.read();
        toB = aOut - up.hops["A/a1"] - up.hops["rtr/x1"];
        const b0 = (await relayB.stats()).interfaces.find((i) => i.name === "b0");
        if (b0 && b0.frames + b0.kernel_drops >= toB) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await quiesce(() => relayB.stats(), { b0: toB }); // reports what is missing, if anything
      const b = await relayB.stop();
      assert.equal(b.code, 0, b.stderr);
      const path = await meter.read();
      const rep = await sink.settle(
        outputPackets(b.stats, ["239.20.1.1:6001"]) - path.hops["B/b1"],
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
          "a1→x0": path.hops[hopKey(hops[1])],
          "x1→b0": path.hops[hopKey(hops[2])],
          b0_kernel_drops: input(b.stats, "b0").kernel_drops,
          relay_b_frame_drops: frameDrops(b.stats),
          relay_b_output_drops: outputDrops(b.stats),
          "b1→d0": path.hops[hopKey(hops[3])],
          receiver_socket: rep.socket_drops ?? 0,
        },
      }, "multicast → unicast → multicast");
      assertClean(rep, "two relays");
      assertRelayConsistent(a.stats);
      assertRelayConsistent(b.stats);
      // Relay B's kernel got A's datagrams at its own address and answered none of them.
      const k = await settle(t, "B", kernelB, (d) => d.inErrors >= toB);
      assert.deepEqual([k.noPorts, k.destUnreachs, k.inErrors], [0, 0, toB], JSON.stringify(k));
    } finally {
      await t.destroy();
    }
  },
});

/**
 * Reach, end to end in namespaces the tests create and remove (issue 13):
 * - a rule with `vlan`: 802.1Q-tagged frames in (replayed by mcr-inject on the
 *   sender's veth: this kernel has no VLAN subinterfaces), translated untagged
 *   datagrams out; other VLANs and untagged frames to the same group and port
 *   are `no_match`;
 * - an (S,G) rule, its source-specific join in /proc/net/mcfilter, beside a
 *   (*,G) rule for the same group and port (configuration allows both; the
 *   docs say the (S,G) rule takes precedence): the (S,G) source's datagrams
 *   leave only through the (S,G) rule, another source's only through the
 *   (*,G) rule;
 * - a sender whose source fails strict rp_filter on the relay's input
 *   interface (its subnet is routed via another interface): the kernel drops
 *   every datagram (its IPReversePathFilter counter, and an ordinary socket in
 *   the relay's namespace that receives nothing), mcr relays them.
 *
 * Delivery is counted by an independent receiver (mcr-sink: sequence numbers,
 * payload pattern; lab/capture.py decodes headers and checksums itself). The
 * assertions hold on a busy machine (tests/netns/lib_account.ts): nothing
 * duplicated, reordered, corrupt or foreign, nothing delivered where the rules
 * say it must not be, and delivered + counted drops = sent, exactly. Counts
 * that need a lossless path are asserted only when the counters show that no
 * datagram was lost before the relay.
 */
import assert from "node:assert/strict";
import { chainTopology, skipReason, type Topology } from "../../lab/netns.ts";
import {
  type GenReport,
  runCheck,
  runGen,
  type SinkReport,
  startCapture,
  startRelayWith,
  startSink,
} from "../../lab/harness.ts";
import {
  assertChainAccounted,
  assertClean,
  assertRelayConsistent,
  CHAIN_IN,
  CHAIN_OUT,
  drive,
  hopKey,
  outputPackets,
  type PathDrops,
  PathMeter,
  quiesce,
  streamsAt,
} from "./lib_account.ts";
import { runInject, taggedStreams, until, workDir } from "./lib_robust.ts";
import { igmpGroups, igmpHex, mcfilterSources } from "./lib_igmp.ts";
import type { RelayStats } from "../../src/relay/stats.ts";

const skip = skipReason();
if (skip) console.warn(`netns reach tests skipped: ${skip}`);
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };

/** Datagrams per stream. */
const N = 4_000;
/** Datagrams per second of each generator: modest, so a busy machine keeps up (losses are counted). */
const RATE = 4_000;
/** UDP payload bytes. */
const SIZE = 1024;
/** Datagrams lab/capture.py decodes at the receiver. */
const CAPTURED = 50;
/** How long a kernel state may take to show on a busy machine. */
const DEADLINE_MS = 20_000;

/** The input every test sends to, and the relay's (first) output. */
const IN = { group: "239.1.1.1", port: 5001 };
const OUT = { group: "239.10.1.1", port: 6001 };
const dst = (g: { group: string; port: number }) => `${g.group}:${g.port}`;

/** One report for generators run one after another. */
function combined(reports: GenReport[]): GenReport {
  const errors = (k: keyof GenReport["send_errors"]) =>
    reports.reduce((a, r) => a + r.send_errors[k], 0);
  return {
    streams: reports.flatMap((r) => r.streams),
    sent: reports.reduce((a, r) => a + r.sent, 0),
    send_errors: {
      total: errors("total"),
      enobufs: errors("enobufs"),
      eagain: errors("eagain"),
      other: errors("other"),
    },
  };
}

/** Unique datagrams of stream `id` delivered to `g`. */
function uniqueOf(rep: SinkReport, g: { group: string; port: number }, id: number): number {
  const grp = rep.groups.find((x) => x.group === g.group && x.port === g.port);
  return grp?.streams.find((s) => s.stream === id)?.unique ?? 0;
}

/** Nothing was lost before the relay's rules saw it (then per-rule counts are exact). */
function lossless(stats: RelayStats, lostIn: number): boolean {
  const r0 = stats.interfaces.find((i) => i.name === "r0")!;
  return lostIn === 0 && r0.kernel_drops === 0;
}

Deno.test({
  ...opts,
  name: "vlan: tagged VLAN 100 frames in, translated untagged datagrams out; VLAN 200 and " +
    "untagged frames to the same group are no_match and never delivered",
  async fn() {
    const t = await chainTopology("vlan");
    const dir = await workDir("vlan");
    try {
      const file = `${dir}/streams.pcap`;
      const streams = [{ id: 0, vid: 100 }, { id: 200, vid: 200 }, { id: 300 }];
      await Deno.writeFile(
        file,
        taggedStreams(streams, {
          src: "10.77.1.1",
          dst: IN.group,
          dport: IN.port,
          n: N,
          size: SIZE,
        }),
      );
      const meter = await PathMeter.start(t, [CHAIN_IN, CHAIN_OUT]);
      const relay = await startRelayWith(t, "rly", {
        rules: [{
          name: "v100",
          input: { interface: "r0", ...IN, vlan: 100 },
          outputs: [{ interface: "r1", ...OUT }],
        }],
      }, { control: true });
      const sink = await startSink(t, "rcv", "d0", [dst(OUT)], { settle: true });
      const cap = await startCapture(t, "rcv", "d0", OUT.port, CAPTURED);
      const inj = await runInject(t, "snd", [
        "--iface",
        "s0",
        "--pps",
        String(streams.length * RATE),
        "--pcap",
        file,
      ]);
      assert.equal(inj.file_rejected, 0, "the kernel took every frame");
      const sent = inj.file_sent;
      assert.equal(sent, streams.length * N);
      // A frame the veth could not hand to the relay's side (counted in s0's tx_dropped) made
      // the send fail with ENOBUFS, and mcr-inject sent it again (counted in its retries).
      const unsent = (p: PathDrops) => p.hops[hopKey(CHAIN_IN)] - inj.retries;
      await quiesce(() => relay.stats(), { r0: sent - unsent(await meter.read()) });
      const { stats, code, stderr } = await relay.stop();
      assert.equal(code, 0, stderr);
      const path = await meter.read();
      const rep = await sink.settle(
        outputPackets(stats, [dst(OUT)]) - path.hops[hopKey(CHAIN_OUT)],
      );
      const seen = await cap.result();

      assertClean(rep, "vlan 100");
      assert.deepEqual(streamsAt(rep, OUT), [0], "only VLAN 100's stream is delivered");
      const lostIn = unsent(path);
      assertChainAccounted("vlan", sent, stats, path, rep, lostIn);
      assertRelayConsistent(stats);
      const rule = stats.rules[0];
      assert.equal(stats.drops.vlan ?? 0, 0, "one tag level is not a vlan drop");
      assert.ok(rule.packets <= N, "the rule matched only VLAN 100's datagrams");
      assert.ok((stats.drops.no_match ?? 0) <= 2 * N);
      if (lossless(stats, lostIn)) {
        assert.equal(rule.packets, N, "every VLAN 100 datagram matched");
        assert.equal(stats.drops.no_match, 2 * N, "VLAN 200 and untagged: no_match");
      }
      // An independent decoder read the output on the wire: untagged IPv4 (it parses the
      // IPv4 header right after the 14-byte Ethernet header), translated, valid checksums.
      assert.equal(seen.length, CAPTURED);
      for (const d of seen) {
        assert.deepEqual(
          [d.ip_csum_ok, d.udp_csum_ok, d.ttl, d.src, d.dst, d.dport, d.udp_len],
          [true, true, 1, "10.77.2.1", OUT.group, OUT.port, SIZE + 8],
        );
      }
    } finally {
      await t.destroy();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  ...opts,
  name: "(S,G) and (*,G) for one group: the source-specific join is in /proc/net/mcfilter; the " +
    "(S,G) source leaves only through the (S,G) rule, another source only through (*,G)",
  async fn() {
    const SSM = { group: "232.1.1.1", port: 5001 };
    const S = "10.77.1.1", OTHER = "10.77.1.3";
    const ANY_OUT = { group: "239.10.1.2", port: 6002 };
    const config = {
      rules: [
        {
          name: "sg",
          input: { interface: "r0", ...SSM, source: S },
          outputs: [{ interface: "r1", ...OUT }],
        },
        {
          name: "any",
          input: { interface: "r0", ...SSM },
          outputs: [{ interface: "r1", ...ANY_OUT }],
        },
      ],
    };
    const check = await runCheck(config);
    assert.equal(check.code, 0, `both rules are a valid configuration: ${check.stdout}`);
    const t = await chainTopology("sg");
    try {
      await t.exec("snd", ["ip", "addr", "add", `${OTHER}/24`, "dev", "s0"]);
      const meter = await PathMeter.start(t, [CHAIN_IN, CHAIN_OUT]);
      const relay = await startRelayWith(t, "rly", config, { control: true });
      const sources = await until(
        () => mcfilterSources(t, "r0", SSM.group),
        (s) => s.length > 0,
        DEADLINE_MS,
        "the source-specific join in /proc/net/mcfilter",
      );
      assert.deepEqual(sources, [S], "the (S,G) rule's source, and no other, is included");
      assert.ok((await igmpGroups(t, "r0")).has(igmpHex(SSM.group)), "the group is joined on r0");

      const dsts = [dst(OUT), dst(ANY_OUT)];
      const sink = await startSink(t, "rcv", "d0", dsts, { settle: true });
      const send = (srcIp: string, streamBase: number) =>
        runGen(t, "snd", "s0", [dst(SSM)], { rate: RATE, count: N, size: SIZE, streamBase, srcIp });
      const { gen, stats, path } = await drive(
        relay,
        () => relay.stats(),
        meter,
        async () => combined([await send(S, 0), await send(OTHER, 100)]),
      );
      const rep = await sink.settle(outputPackets(stats, dsts) - path.hops[hopKey(CHAIN_OUT)]);

      assert.equal(gen.sent, 2 * N);
      assertClean(rep, "(S,G) and (*,G)");
      assert.deepEqual(streamsAt(rep, OUT), [0], "(S,G) output: the rule's source only");
      assert.deepEqual(streamsAt(rep, ANY_OUT), [100], "(*,G) output: the other source only");
      assert.ok(uniqueOf(rep, OUT, 0) > 0 && uniqueOf(rep, ANY_OUT, 100) > 0);
      const lostIn = path.hops[hopKey(CHAIN_IN)];
      assertChainAccounted("(S,G) and (*,G)", gen.sent, stats, path, rep, lostIn);
      assertRelayConsistent(stats);
      const sg = stats.rules.find((r) => r.name === "sg")!;
      const any = stats.rules.find((r) => r.name === "any")!;
      assert.ok(sg.packets <= N && any.packets <= N, "each rule matched at most one source's");
      if (lossless(stats, lostIn)) {
        assert.equal(sg.packets, N, "(S,G): every datagram of its source");
        assert.equal(any.packets, N, "(*,G): every datagram of the other source");
      }
    } finally {
      await t.destroy();
    }
  },
});

/** The kernel's count of datagrams dropped by rp_filter in a namespace (TcpExt IPReversePathFilter). */
async function rpFilterDrops(t: Topology, role: string): Promise<number> {
  const lines = (await t.exec(role, ["cat", "/proc/net/netstat"])).split("\n")
    .filter((l) => l.startsWith("TcpExt:"));
  const keys = lines[0].split(/\s+/), vals = lines[1].split(/\s+/);
  const i = keys.indexOf("IPReversePathFilter");
  assert.ok(i > 0, "the kernel reports IPReversePathFilter");
  return Number(vals[i]);
}

Deno.test({
  ...opts,
  name: "rp_filter: a source routed via another interface fails strict rp_filter on the input; " +
    "the kernel drops every datagram, mcr relays them",
  async fn() {
    const t = await chainTopology("rpf");
    try {
      // The sender's only address is 10.99.0.1; the relay's namespace routes 10.99.0.0/24 via
      // r1, so strict reverse-path filtering on r0 rejects that source.
      await t.exec("snd", ["ip", "addr", "flush", "dev", "s0"]);
      await t.exec("snd", ["ip", "addr", "add", "10.99.0.1/24", "dev", "s0"]);
      await t.exec("rly", ["ip", "route", "add", "10.99.0.0/24", "via", "10.77.2.2", "dev", "r1"]);
      for (const k of ["all", "default", "r0"]) {
        await t.sysctl("rly", `net.ipv4.conf.${k}.rp_filter`, "1");
      }
      const meter = await PathMeter.start(t, [CHAIN_IN, CHAIN_OUT]);
      const relay = await startRelayWith(t, "rly", {
        rules: [{
          name: "rpf",
          input: { interface: "r0", ...IN },
          outputs: [{ interface: "r1", ...OUT }],
        }],
      }, { control: true });
      // An ordinary socket in the relay's namespace, joined to the input group on r0.
      const local = await startSink(t, "rly", "r0", [dst(IN)], { settle: true });
      const sink = await startSink(t, "rcv", "d0", [dst(OUT)], { settle: true });
      const rpfBefore = await rpFilterDrops(t, "rly");
      const { gen, stats, path } = await drive(
        relay,
        () => relay.stats(),
        meter,
        () => runGen(t, "snd", "s0", [dst(IN)], { rate: RATE, count: N, size: SIZE }),
      );
      const rpf = await rpFilterDrops(t, "rly") - rpfBefore;
      // The kernel handled every frame before the relay took it from its ring (same receive
      // path): whatever the local socket was going to get, it has by now.
      const localRep = await local.settle(0);
      const rep = await sink.settle(
        outputPackets(stats, [dst(OUT)]) - path.hops[hopKey(CHAIN_OUT)],
      );

      const lostIn = path.hops[hopKey(CHAIN_IN)];
      const reached = gen.sent - lostIn;
      assert.ok(rpf >= reached, `the kernel's rp_filter dropped all ${reached} (counted ${rpf})`);
      assert.equal(
        localRep.total.received + localRep.total.foreign,
        0,
        "no datagram reached a socket",
      );
      assert.equal(localRep.udp.in_datagrams, 0, "the relay namespace's UDP got nothing");
      assertClean(rep, "rp_filter");
      assert.deepEqual(streamsAt(rep, OUT), [0]);
      assertChainAccounted("rp_filter", gen.sent, stats, path, rep, lostIn);
      assertRelayConsistent(stats);
      if (lossless(stats, lostIn)) assert.equal(stats.rules[0].packets, N, "mcr took every one");
    } finally {
      await t.destroy();
    }
  },
});

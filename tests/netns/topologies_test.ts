/**
 * The topologies of docs/topologies.md, each run end to end with its
 * configuration file from examples/topologies/ (tests/netns/lib_topologies.ts
 * maps the document's interface names onto the chain's veths: the sender's
 * s0 — r0 relay r1 — d0 receiver):
 * - VLAN trunk (vlan-trunk.json): two studios on VLANs 100 and 200 of one
 *   trunk, both sending to the same group and port, each relayed to its own
 *   group; untagged frames to that group are `no_match`;
 * - mirror port (mirror-port.json): a unicast stream between two other hosts,
 *   seen on a SPAN port, republished as multicast; the relay holds the port
 *   promiscuous exactly while it runs.
 * The site-to-site pair (site-a.json, site-b.json) runs in
 * tests/netns/unicast_test.ts (two relays across a router).
 *
 * Delivery is counted by an independent receiver (mcr-sink); the assertions
 * hold on a busy machine (tests/netns/lib_account.ts): nothing duplicated,
 * reordered, corrupt or foreign, nothing delivered where the rules say it must
 * not be, delivered + counted drops = sent.
 */
import assert from "node:assert/strict";
import { chainTopology, skipReason, type Topology } from "../../lab/netns.ts";
import { runGen, startRelayWith, startSink } from "../../lab/harness.ts";
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
import { topologyConfig } from "./lib_topologies.ts";

const skip = skipReason();
if (skip) console.warn(`netns topology tests skipped: ${skip}`);
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };

/** Datagrams per stream. */
const N = 3_000;
/** Datagrams per second of each stream: modest, so a busy machine keeps up (losses are counted). */
const RATE = 3_000;
/** UDP payload bytes. */
const SIZE = 1024;
/** How long a kernel state may take to show on a busy machine. */
const DEADLINE_MS = 20_000;

/** The chain's relay interfaces under the documents' names. */
const CHAIN_NAMES = { trunk0: "r0", span0: "r0", lan0: "r1" };

const dst = (g: { group: string; port: number }) => `${g.group}:${g.port}`;

/** The kernel's promiscuity count of `dev` (what packet sockets hold, as `ip -d link` shows). */
async function promiscuity(t: Topology, role: string, dev: string): Promise<number> {
  const link = JSON.parse(await t.exec(role, ["ip", "-d", "-j", "link", "show", dev]));
  return link[0].promiscuity as number;
}

Deno.test({
  ...opts,
  name: "topology vlan-trunk: VLANs 100 and 200 to one group on a trunk, each relayed to its " +
    "own group; untagged frames are no_match",
  async fn() {
    const t = await chainTopology("tvlan");
    const dir = await workDir("tvlan");
    try {
      const config = await topologyConfig("vlan-trunk.json", CHAIN_NAMES);
      const [a, b] = config.rules as {
        input: { group: string; port: number };
        outputs: { group: string; port: number }[];
      }[];
      const outA = a.outputs[0], outB = b.outputs[0];
      const streams = [{ id: 0, vid: 100 }, { id: 200, vid: 200 }, { id: 300 }];
      const file = `${dir}/trunk.pcap`;
      await Deno.writeFile(
        file,
        taggedStreams(streams, {
          src: "10.77.1.1",
          dst: a.input.group,
          dport: a.input.port,
          n: N,
          size: SIZE,
        }),
      );
      const meter = await PathMeter.start(t, [CHAIN_IN, CHAIN_OUT]);
      const relay = await startRelayWith(t, "rly", config, { control: true });
      const sink = await startSink(t, "rcv", "d0", [dst(outA), dst(outB)], { settle: true });
      const inj = await runInject(t, "snd", [
        ...["--iface", "s0", "--pps", String(streams.length * RATE), "--pcap", file],
      ]);
      assert.equal(inj.file_rejected, 0, "the kernel took every frame");
      const sent = inj.file_sent;
      assert.equal(sent, streams.length * N);
      // A frame the veth could not hand over made the send fail, and mcr-inject sent it again.
      const unsent = (p: PathDrops) => p.hops[hopKey(CHAIN_IN)] - inj.retries;
      await quiesce(() => relay.stats(), { r0: sent - unsent(await meter.read()) });
      const { stats, code, stderr } = await relay.stop();
      assert.equal(code, 0, stderr);
      const path = await meter.read();
      const rep = await sink.settle(
        outputPackets(stats, [dst(outA), dst(outB)]) - path.hops[hopKey(CHAIN_OUT)],
      );

      assertClean(rep, "vlan trunk");
      assert.deepEqual(streamsAt(rep, outA), [0], "studio-a's group carries VLAN 100 only");
      assert.deepEqual(streamsAt(rep, outB), [200], "studio-b's group carries VLAN 200 only");
      assertChainAccounted("vlan trunk", sent, stats, path, rep, unsent(path));
      assertRelayConsistent(stats);
      assert.ok((stats.drops.no_match ?? 0) <= N, "only the untagged stream is no_match");
    } finally {
      await t.destroy();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  ...opts,
  name: "topology mirror-port: another host's unicast stream seen on a SPAN port is republished " +
    "as multicast; the port is promiscuous exactly while the relay runs",
  async fn() {
    const t = await chainTopology("tspan");
    try {
      const config = await topologyConfig("mirror-port.json", CHAIN_NAMES);
      const rule = config.rules[0] as {
        input: { group: string; port: number };
        outputs: { group: string; port: number }[];
      };
      const out = rule.outputs[0];
      // The encoder (snd) sends to another host on its segment (the decoder it feeds); a mirror
      // port shows the relay those frames: addressed to the decoder's MAC, not the relay's.
      await t.exec("snd", [
        ...["ip", "neigh", "replace", rule.input.group, "lladdr", "02:00:00:00:00:50"],
        ...["dev", "s0", "nud", "permanent"],
      ]);
      assert.equal(await promiscuity(t, "rly", "r0"), 0, "not promiscuous before the relay");
      const meter = await PathMeter.start(t, [CHAIN_IN, CHAIN_OUT]);
      const relay = await startRelayWith(t, "rly", config, { control: true });
      await until(
        () => promiscuity(t, "rly", "r0"),
        (n) => n > 0,
        DEADLINE_MS,
        "r0 promiscuous while the relay runs",
      );
      assert.equal(await promiscuity(t, "rly", "r1"), 0, "the output is not made promiscuous");
      const running = await relay.stats();
      assert.equal(running.claims?.not_local, 1, "another host's address: nothing to claim");
      const sink = await startSink(t, "rcv", "d0", [dst(out)], { settle: true });
      const { gen, stats, path } = await drive(
        relay,
        () => relay.stats(),
        meter,
        () =>
          runGen(t, "snd", "s0", [`${rule.input.group}:${rule.input.port}`], {
            rate: RATE,
            count: N,
            size: SIZE,
          }),
      );
      assert.equal(await promiscuity(t, "rly", "r0"), 0, "promiscuity released with the relay");
      const rep = await sink.settle(
        outputPackets(stats, [dst(out)]) - path.hops[hopKey(CHAIN_OUT)],
      );
      assertClean(rep, "mirror port");
      assertChainAccounted("mirror port", gen.sent, stats, path, rep);
      assertRelayConsistent(stats);
      assert.ok(rep.total.unique > 0, "the mirrored stream was relayed");
    } finally {
      await t.destroy();
    }
  },
});

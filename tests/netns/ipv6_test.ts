/**
 * IPv6 end to end in network namespaces (issue 14): the chain of lab/netns.ts
 * with IPv6 addresses (`nodad`, so they are usable at once) beside its IPv4
 * ones. Delivery is counted by mcr-sink (sequence numbers: no duplicate, no
 * reordering, intact payloads), headers and UDP checksums are read by an
 * independent decoder (lab/capture.py, its own checksum code over the IPv6
 * pseudo header), and every datagram sent is delivered or counted where it
 * was lost (what holds on a busy machine; exact delivery is bench/ipv6.ts's).
 * MLD joins and leaves are read from the relay namespace's /proc/net/igmp6.
 */
import assert from "node:assert/strict";
import { skipReason, type Topology } from "../../lab/netns.ts";
import { chain6, RCV6, RLY_OUT6, SND6 } from "./lib_chain6.ts";
import {
  runGen,
  type SinkReport,
  startCapture,
  startRelayWith,
  startSink,
} from "../../lab/harness.ts";
import { ControlClient } from "../../src/client/client.ts";
import {
  assertAccounted,
  assertClean,
  CHAIN_IN,
  CHAIN_OUT,
  drive,
  hopKey,
  outputDrops,
  outputPackets,
  PathMeter,
  sinkAccounted,
} from "./lib_account.ts";
import { frameDrops } from "./lib_robust.ts";
import { topologyConfig } from "./lib_topologies.ts";
import type { RelayStats } from "../../src/relay/stats_types.ts";

const skip = skipReason();
if (skip) console.warn(`netns IPv6 tests skipped: ${skip}`);

const N = 5_000;
const RATE = 10_000;

/** The receiver kernel's UDP6 checksum errors (/proc/net/snmp6). */
async function udp6CsumErrors(t: Topology): Promise<number> {
  const text = await t.exec("rcv", ["cat", "/proc/net/snmp6"]);
  return Number(/^Udp6InCsumErrors\s+(\d+)/m.exec(text)?.[1] ?? NaN);
}

/** Every datagram the rule set received was delivered once per output or counted. */
function assertDelivered(
  what: string,
  gen: { sent: number },
  stats: RelayStats,
  path: { hops: Record<string, number> },
  rep: SinkReport,
  dsts: string[],
): void {
  // into the relay: every datagram sent became one rule match, or a counted drop. The sender's
  // kernel also sends MLD reports (ICMPv6 after a hop-by-hop header, which the kernel filter
  // passes): they count as not_udp, and are not the generator's.
  const r0 = stats.interfaces.find((i) => i.name === "r0")!;
  const matched = stats.rules.reduce((a, r) => a + r.packets, 0);
  assert.equal(r0.frames, matched + frameDrops(stats), `${what}: frames = matched + drops`);
  assertAccounted({
    sent: gen.sent,
    delivered: matched,
    drops: {
      "s0→r0": path.hops[hopKey(CHAIN_IN)],
      r0_kernel_drops: r0.kernel_drops,
      relay_frame_drops: frameDrops(stats) - (stats.drops.not_udp ?? 0),
    },
  }, `${what}: into the relay`);
  // out of it: every output datagram sent reached the receiver or was counted on the way
  const outs = outputPackets(stats, dsts);
  assert.equal(
    sinkAccounted(rep) + path.hops[hopKey(CHAIN_OUT)],
    outs,
    `${what}: receiver + r1→d0 drops = what the outputs sent`,
  );
  const perRule = stats.rules.reduce((a, r) => a + r.packets * r.outputs.length, 0);
  assert.equal(outs + outputDrops(stats), perRule, `${what}: each output sent or counted`);
  assertClean(rep, what);
}

Deno.test({
  name: "IPv6 chain: SSM input to a translated group (hop limit decremented), a fixed hop " +
    "limit with DSCP, and unicast; checksums valid; delivered or counted, once, in order",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await chain6("v6");
    try {
      const dsts = ["[ff15::2]:5002", "[ff15::3]:5003", `[${RCV6}]:5004`];
      const meter = await PathMeter.start(t, [CHAIN_IN, CHAIN_OUT]);
      const relay = await startRelayWith(t, "rly", {
        rules: [{
          name: "v6",
          input: { interface: "r0", group: "ff3e::1", port: 5001, source: SND6 },
          outputs: [
            { interface: "r1", group: "ff15::2", port: 5002, hops: "decrement" },
            { interface: "r1", group: "ff15::3", port: 5003, hops: 5, dscp: 46 },
            { interface: "r1", group: RCV6, port: 5004, hops: 3 },
          ],
        }],
      }, { control: true });
      const before = await udp6CsumErrors(t);
      const sink = await startSink(t, "rcv", "d0", dsts, { settle: true });
      const caps = await Promise.all(
        [5002, 5003, 5004].map((p) => startCapture(t, "rcv", "d0", p, 50)),
      );
      const { gen, stats, path } = await drive(
        relay,
        () => relay.stats(),
        meter,
        () =>
          runGen(t, "snd", "s0", ["[ff3e::1]:5001"], {
            rate: RATE,
            count: N,
            ttl: 9,
            srcIp: SND6,
          }),
      );
      const rep = await sink.settle(outputPackets(stats, dsts) - path.hops[hopKey(CHAIN_OUT)]);
      assert.equal(gen.sent, N);
      assertDelivered("IPv6 1:3", gen, stats, path, rep, dsts);
      assert.equal(stats.rules[0].input.group, "ff3e::1");
      assert.equal(stats.rules[0].input.source, SND6);
      assert.deepEqual(stats.rules[0].outputs.map((o) => o.state), ["active", "active", "active"]);
      const want = [
        { dst: "ff15::2", ttl: 8, tos: 0, mac: "33:33:00:00:00:02" },
        { dst: "ff15::3", ttl: 5, tos: 46 << 2, mac: "33:33:00:00:00:03" },
        { dst: RCV6, ttl: 3, tos: 0, mac: null },
      ];
      for (const [k, cap] of caps.entries()) {
        const seen = await cap.result();
        assert.equal(seen.length, 50, `output ${k}: captured`);
        for (const d of seen) {
          // The unicast output goes through the kernel's UDP6 socket, whose checksum the veth
          // leaves to offload: on the wire the capture sees only the pseudo-header part. The
          // receiving kernel's Udp6InCsumErrors (below) judges it. The group outputs are frames
          // mcr built itself, checksum included: the capture verifies those.
          const csum = want[k].mac ? d.udp_csum_ok : true;
          assert.deepEqual(
            [d.family, csum, d.ttl, d.tos, d.src, d.dst, d.udp_len],
            [6, true, want[k].ttl, want[k].tos, RLY_OUT6, want[k].dst, 1024 + 8],
            `output ${k}: IPv6 headers and a valid UDP checksum`,
          );
          if (want[k].mac) assert.equal(d.dst_mac, want[k].mac, "RFC 2464 multicast MAC");
        }
      }
      assert.equal(await udp6CsumErrors(t) - before, 0, "the receiving kernel saw no bad checksum");
    } finally {
      await t.destroy();
    }
  },
});

Deno.test({
  name: "IPv4 → IPv6 and IPv6 → IPv4 translation: payload intact, delivered or counted, once",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await chain6("x46");
    try {
      const dsts = ["[ff15::41]:6001", "239.77.2.61:6002"];
      const meter = await PathMeter.start(t, [CHAIN_IN, CHAIN_OUT]);
      // docs/topologies.md "IPv4 ↔ IPv6 migration", both plants on r0, both networks on r1
      const relay = await startRelayWith(
        t,
        "rly",
        await topologyConfig("ipv6-migration.json", {
          v4plant: "r0",
          v6plant: "r0",
          v6core: "r1",
          v4legacy: "r1",
        }),
        { control: true },
      );
      const sink = await startSink(t, "rcv", "d0", dsts, { settle: true });
      const cap6 = await startCapture(t, "rcv", "d0", 6001, 30);
      const cap4 = await startCapture(t, "rcv", "d0", 6002, 30);
      const { gen, stats, path } = await drive(
        relay,
        () => relay.stats(),
        meter,
        async () => {
          const [a, b] = await Promise.all([
            runGen(t, "snd", "s0", ["239.77.1.1:5001"], { rate: RATE / 2, count: N, ttl: 6 }),
            runGen(t, "snd", "s0", ["[ff15::61]:5002"], {
              rate: RATE / 2,
              count: N,
              streamBase: 100,
              srcIp: SND6,
            }),
          ]);
          return { ...a, sent: a.sent + b.sent, streams: [...a.streams, ...b.streams] };
        },
      );
      const rep = await sink.settle(outputPackets(stats, dsts) - path.hops[hopKey(CHAIN_OUT)]);
      assertDelivered("translation", gen, stats, path, rep, dsts);
      for (const d of await cap6.result()) {
        assert.deepEqual(
          [d.family, d.udp_csum_ok, d.ttl, d.src, d.dst],
          [6, true, 5, RLY_OUT6, "ff15::41"],
          "IPv4 in, IPv6 out: TTL 6 - 1 as the hop limit, checksum rebased",
        );
      }
      for (const d of await cap4.result()) {
        assert.deepEqual(
          [d.family, d.ip_csum_ok, d.udp_csum_ok, d.ttl, d.src, d.dst],
          [4, true, true, 4, "10.77.2.1", "239.77.2.61"],
          "IPv6 in, IPv4 out: a valid IPv4 header and UDP checksum",
        );
      }
    } finally {
      await t.destroy();
    }
  },
});

/** The IPv6 groups joined on an interface, from /proc/net/igmp6 ("ff3e0000...0001" → text). */
async function igmp6(t: Topology, dev: string): Promise<string[]> {
  const text = await t.exec("rly", ["cat", "/proc/net/igmp6"]);
  return text.split("\n").map((l) => l.trim().split(/\s+/)).filter((f) => f[1] === dev)
    .map((f) => f[2].match(/.{4}/g)!.join(":").replace(/\b0{1,3}/g, ""));
}

Deno.test({
  name: "MLD: IPv6 input groups joined on the input interface, left with the last rule",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await chain6("mld");
    try {
      const out = [{ interface: "r1", group: "ff15::99", port: 7000 }];
      const relay = await startRelayWith(t, "rly", {
        rules: [
          {
            name: "ssm",
            input: { interface: "r0", group: "ff3e::7", port: 5001, source: SND6 },
            outputs: out,
          },
          { name: "asm", input: { interface: "r0", group: "ff15::7", port: 5001 }, outputs: out },
          { name: "asm2", input: { interface: "r0", group: "ff15::7", port: 5002 }, outputs: out },
        ],
      }, { control: true });
      const joined = (g: string) => igmp6(t, "r0").then((l) => l.includes(g));
      assert.ok(await joined("ff3e:0:0:0:0:0:0:7"), "SSM group joined");
      assert.ok(await joined("ff15:0:0:0:0:0:0:7"), "ASM group joined");
      assert.ok(!(await igmp6(t, "r1")).includes("ff15:0:0:0:0:0:0:99"), "outputs join nothing");
      const st = await relay.stats();
      assert.deepEqual(
        [st.mld?.memberships, st.mld?.joined, st.mld?.failed],
        [2, 2, 0],
        "two memberships (two rules share one)",
      );
      {
        await using c = await ControlClient.connect(relay.controlSocket!);
        assert.ok((await c.request("remove", { rule: "asm" })).ok);
        assert.ok(await joined("ff15:0:0:0:0:0:0:7"), "another rule still needs it");
        assert.ok((await c.request("remove", { rule: "asm2" })).ok);
        assert.ok(!(await joined("ff15:0:0:0:0:0:0:7")), "left with the last rule");
        assert.ok(await joined("ff3e:0:0:0:0:0:0:7"));
      }
      const { code, stderr } = await relay.stop();
      assert.equal(code, 0, stderr);
      assert.ok(!(await joined("ff3e:0:0:0:0:0:0:7")), "left at exit");
    } finally {
      await t.destroy();
    }
  },
});

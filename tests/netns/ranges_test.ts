/**
 * Ranges end to end in namespaces the test creates and removes (issue 13):
 * a /16 range rule with any port mapped onto another /16 (each datagram keeps
 * its host bits and its port), beside an exact rule for one group and port
 * inside the range, which takes precedence. Five streams from one sender:
 *
 * | stream | sent to          | rule   | relayed to        |
 * | ------ | ---------------- | ------ | ----------------- |
 * | 0      | 239.1.1.1:5001   | range  | 239.20.1.1:5001   |
 * | 1      | 239.1.2.3:5002   | range  | 239.20.2.3:5002   |
 * | 2      | 239.1.5.5:5001   | exact  | 239.30.5.5:6001   |
 * | 3      | 239.1.5.5:5009   | range  | 239.20.5.5:5009   |
 * | 4      | 239.2.0.1:5001   | none   | (no_match)        |
 *
 * An independent receiver (mcr-sink: sequence numbers, payload pattern)
 * joins every destination above and 239.20.5.5:5001, where nothing may
 * arrive (stream 2 belongs to the exact rule alone), and lab/capture.py
 * decodes the rewritten destinations on the wire: address, multicast MAC
 * (01:00:5e + its low 23 bits), IPv4 and UDP checksums. The range's `joins`
 * group is joined on the input interface, the range itself never.
 *
 * The assertions hold on a busy machine (tests/netns/lib_account.ts):
 * nothing duplicated, reordered, corrupt or foreign, nothing delivered where
 * the rules say it must not be, and delivered + counted drops = sent,
 * exactly. Per-rule counts that need a lossless path are asserted only when
 * the counters show that nothing was lost before the relay.
 */
import assert from "node:assert/strict";
import { chainTopology, skipReason } from "../../lab/netns.ts";
import {
  type CapturedDatagram,
  runCheck,
  runGen,
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
  PathMeter,
  streamsAt,
} from "./lib_account.ts";
import { until } from "./lib_robust.ts";
import { igmpGroups, igmpHex } from "./lib_igmp.ts";

const skip = skipReason();
if (skip) console.warn(`netns range tests skipped: ${skip}`);
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };

/** Datagrams per stream. */
const N = 4_000;
/** Datagrams per second of each stream: modest, so a busy machine keeps up (losses are counted). */
const RATE = 2_000;
/** UDP payload bytes. */
const SIZE = 512;
/** Datagrams lab/capture.py decodes per captured port. */
const CAPTURED = 20;
/** How long a kernel state may take to show on a busy machine. */
const DEADLINE_MS = 20_000;

/** What the sender sends, stream by stream (stream id = index). */
const SENT = [
  "239.1.1.1:5001",
  "239.1.2.3:5002",
  "239.1.5.5:5001",
  "239.1.5.5:5009",
  "239.2.0.1:5001",
];
/** Where each stream must arrive (null: nowhere, counted as no_match). */
const RELAYED = ["239.20.1.1:5001", "239.20.2.3:5002", "239.30.5.5:6001", "239.20.5.5:5009", null];
/** Where the range would have sent stream 2 had the exact rule not taken precedence. */
const NOT_THERE = "239.20.5.5:5001";

const CONFIG = {
  rules: [
    {
      name: "range",
      input: { interface: "r0", group: "239.1.0.0/16", port: "any", joins: ["239.1.1.1"] },
      outputs: [{ interface: "r1", group: "239.20.0.0/16", port: "keep" }],
    },
    {
      name: "exact",
      input: { interface: "r0", group: "239.1.5.5", port: 5001 },
      outputs: [{ interface: "r1", group: "239.30.5.5", port: 6001 }],
    },
  ],
};

/** The multicast MAC of a group: 01:00:5e and its low 23 bits. */
function mcastMac(group: string): string {
  const [, b, c, d] = group.split(".").map(Number);
  return ["01", "00", "5e", b & 0x7f, c, d].map((x) =>
    typeof x === "string" ? x : x.toString(16).padStart(2, "0")
  ).join(":");
}

/** Every captured datagram went to `dst`, with its MAC, from the relay, checksums verified. */
function assertRewritten(seen: CapturedDatagram[], dst: string, payload: number): void {
  const [group, port] = dst.split(":");
  assert.equal(seen.length, CAPTURED, `${dst}: ${CAPTURED} datagrams decoded`);
  for (const d of seen) {
    assert.deepEqual(
      [d.dst, d.dport, d.dst_mac, d.src, d.udp_len, d.ip_csum_ok, d.udp_csum_ok],
      [group, Number(port), mcastMac(group), "10.77.2.1", payload + 8, true, true],
      `${dst}: rewritten destination, its multicast MAC, checksums that verify`,
    );
  }
}

Deno.test({
  ...opts,
  name: "range: a /16 with any port mapped onto another /16 (host bits and port kept), an " +
    "exact rule inside it takes precedence, everything accounted",
  async fn() {
    const check = await runCheck(CONFIG);
    assert.equal(check.code, 0, `a valid configuration: ${check.stdout}${check.stderr}`);
    const t = await chainTopology("range");
    try {
      const meter = await PathMeter.start(t, [CHAIN_IN, CHAIN_OUT]);
      const relay = await startRelayWith(t, "rly", CONFIG, { control: true });
      // IGMP: the listed group of the range is joined on r0, the range itself is not
      const groups = await until(
        () => igmpGroups(t, "r0"),
        (g) => g.has(igmpHex("239.1.1.1")),
        DEADLINE_MS,
        "the range's join in /proc/net/igmp",
      );
      assert.ok(!groups.has(igmpHex("239.1.0.0")), "a range is never joined as a group");
      assert.ok(groups.has(igmpHex("239.1.5.5")), "the exact rule's group is joined");

      const dsts = [...RELAYED.filter((d): d is string => d !== null), NOT_THERE];
      const sink = await startSink(t, "rcv", "d0", dsts, { settle: true });
      const caps = await Promise.all(
        [5001, 5002, 6001].map((p) => startCapture(t, "rcv", "d0", p, CAPTURED)),
      );
      const { gen, stats, path } = await drive(
        relay,
        () => relay.stats(),
        meter,
        () => runGen(t, "snd", "s0", SENT, { rate: SENT.length * RATE, count: N, size: SIZE }),
      );
      const out = stats.rules.reduce((a, r) => a + r.outputs.reduce((b, o) => b + o.packets, 0), 0);
      const rep = await sink.settle(out - path.hops[hopKey(CHAIN_OUT)]);
      const [seen5001, seen5002, seen6001] = await Promise.all(caps.map((c) => c.result()));

      assert.equal(gen.sent, SENT.length * N);
      assertClean(rep, "range");
      RELAYED.forEach((dst, stream) => {
        if (dst !== null) {
          assert.deepEqual(streamsAt(rep, dst), [stream], `stream ${stream} → ${dst}`);
        }
      });
      assert.deepEqual(
        streamsAt(rep, NOT_THERE),
        [],
        "the exact rule's stream never via the range",
      );
      const lostIn = path.hops[hopKey(CHAIN_IN)];
      assertChainAccounted("range", gen.sent, stats, path, rep, lostIn);
      assertRelayConsistent(stats);

      const range = stats.rules.find((r) => r.name === "range")!;
      const exact = stats.rules.find((r) => r.name === "exact")!;
      assert.deepEqual(range.input, { interface: "r0", group: "239.1.0.0/16", port: "any" });
      assert.deepEqual(
        [range.outputs[0].group, range.outputs[0].port],
        ["239.20.0.0/16", "keep"],
      );
      assert.ok(range.packets <= 3 * N && exact.packets <= N);
      assert.ok((stats.drops.no_match ?? 0) <= N, "only the stream outside the range is no_match");
      const r0 = stats.interfaces.find((i) => i.name === "r0")!;
      if (lostIn === 0 && r0.kernel_drops === 0) {
        assert.equal(range.packets, 3 * N, "the range took streams 0, 1 and 3");
        assert.equal(exact.packets, N, "the exact rule took stream 2");
        assert.equal(stats.drops.no_match, N, "stream 4 (outside the range) is no_match");
      }
      // the wire, decoded independently: each datagram's own group mapped, its MAC, checksums
      assertRewritten(seen5001, "239.20.1.1:5001", SIZE);
      assertRewritten(seen5002, "239.20.2.3:5002", SIZE);
      assertRewritten(seen6001, "239.30.5.5:6001", SIZE);
    } finally {
      await t.destroy();
    }
  },
});

/**
 * Redundant inputs measured (issue 16), in the two-path topology
 * (lab/paths.ts), delivery counted at an independent receiver (mcr-sink):
 *
 * - failover: the receiver's longest gap when the primary path is cut
 *   (nftables drops everything on it) while a stream runs, and no datagram
 *   twice when it returns — the goal is `failover_ms` + one batch;
 * - merge: the unique share the receiver gets with `--loss` % random loss
 *   on each path independently (goal ≥ 99.5 % at 5 %), and duplicates (0).
 *
 * Median and range of `--repeat` runs; needs a quiet machine for the figures
 * to mean anything (the tests assert only what holds under load:
 * tests/netns/redundancy_test.ts). As root:
 *
 *     deno run -A bench/redundancy.ts [--repeat 5] [--rate 2000] [--failover-ms 200] [--loss 5]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { skipReason } from "../lab/netns.ts";
import { startSink } from "../lab/harness.ts";
import { startDaemon } from "../lab/daemon.ts";
import { lossOff, lossOn, pathsConfig, pathsTopology, sendPaths } from "../lab/paths.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    repeat: { type: "string", default: "5" },
    rate: { type: "string", default: "2000" },
    "failover-ms": { type: "string", default: "200" },
    loss: { type: "string", default: "5" },
  },
});
const repeat = Number(args.values.repeat), rate = Number(args.values.rate);
const failoverMs = Number(args.values["failover-ms"]), loss = Number(args.values.loss);
const why = skipReason();
if (why) throw new Error(`needs root and namespaces: ${why}`);

const OUT = "239.10.1.1:6001";

type Total = { unique: number; duplicates: number; reordered: number };

/** One failover run: the receiver's longest gap (ms), duplicates, switches. */
async function failover(): Promise<{ gapMs: number; duplicates: number }> {
  const t = await pathsTopology("rbfo");
  let d: Awaited<ReturnType<typeof startDaemon>> | undefined;
  try {
    d = await startDaemon(pathsConfig({ mode: "failover", failover_ms: failoverMs }), {
      netns: t.ns("rly"),
    });
    const sink = await startSink(t, "rcv", "d0", [OUT], { idleMs: 3000 });
    const seconds = 6;
    const sending = sendPaths(t, ["--rate", String(rate), "--count", String(rate * seconds)]);
    await new Promise((r) => setTimeout(r, 1500));
    await lossOn(t, "pA", 100);
    await new Promise((r) => setTimeout(r, 2000));
    await lossOff(t, "pA");
    await sending;
    const rep = await sink.result();
    const s = rep.groups[0].streams[0];
    return { gapMs: (s.max_gap_us ?? 0) / 1000, duplicates: (rep.total as Total).duplicates };
  } finally {
    await d?.stop();
    await t.destroy();
  }
}

/** One merge run: unique share (%) and duplicates at the receiver. */
async function merge(): Promise<{ uniquePct: number; duplicates: number }> {
  const t = await pathsTopology("rbmg");
  let d: Awaited<ReturnType<typeof startDaemon>> | undefined;
  try {
    d = await startDaemon(pathsConfig("merge"), { netns: t.ns("rly") });
    await lossOn(t, "pA", loss);
    await lossOn(t, "pB", loss);
    const sink = await startSink(t, "rcv", "d0", [OUT], { idleMs: 3000 });
    const sent = await sendPaths(t, ["--rate", String(rate), "--count", String(rate * 5)]);
    const rep = (await sink.result()).total as Total;
    return { uniquePct: 100 * rep.unique / sent, duplicates: rep.duplicates };
  } finally {
    await d?.stop();
    await t.destroy();
  }
}

/** "median [min–max]" of `xs`. */
function spread(xs: number[], digits: number): string {
  const s = [...xs].sort((a, b) => a - b);
  const med = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return `${med.toFixed(digits)} [${s[0].toFixed(digits)}–${s.at(-1)!.toFixed(digits)}]`;
}

const fo: { gapMs: number; duplicates: number }[] = [];
const mg: { uniquePct: number; duplicates: number }[] = [];
for (let k = 0; k < repeat; k++) {
  fo.push(await failover());
  mg.push(await merge());
  console.error(`run ${k + 1}: ${JSON.stringify(fo.at(-1))} ${JSON.stringify(mg.at(-1))}`);
}
console.log(
  `failover (failover_ms ${failoverMs}, ${rate} pps, primary cut 2 s): receiver's longest gap ` +
    `${spread(fo.map((r) => r.gapMs), 1)} ms, duplicates ${
      fo.reduce((a, r) => a + r.duplicates, 0)
    } in ${repeat} runs`,
);
console.log(
  `merge (${loss} % random loss on each path, ${rate} pps, ${rate * 5} datagrams): unique ` +
    `${spread(mg.map((r) => r.uniquePct), 2)} %, duplicates ${
      mg.reduce((a, r) => a + r.duplicates, 0)
    } in ${repeat} runs`,
);

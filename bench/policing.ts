/**
 * Policing accuracy (issue 16): a 20 kpps stream through a rule whose
 * `rate_limit` is 5 kpps (default bucket: 50 ms of the rate, 250 datagrams),
 * in the chain topology, delivery counted at an independent receiver
 * (mcr-sink): the delivered rate over the stream's span at the receiver, and
 * its error against the limit (goal ± 5 %). Needs a quiet machine for the
 * goal to mean anything; the tests assert only what holds under load
 * (tests/netns/stream_health_test.ts). As root:
 *
 *     deno run -A bench/policing.ts [--seconds 5] [--repeat 3] [--rate 20000] [--limit 5000]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { BUILD, chainTopology, Proc, skipReason } from "../lab/netns.ts";
import { startRelayWith, startSink } from "../lab/harness.ts";
import { quiesce } from "../tests/netns/lib_account.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "5" },
    repeat: { type: "string", default: "3" },
    rate: { type: "string", default: "20000" },
    limit: { type: "string", default: "5000" },
  },
});
const seconds = Number(args.values.seconds), rate = Number(args.values.rate);
const limit = Number(args.values.limit), repeat = Number(args.values.repeat);
const why = skipReason();
if (why) throw new Error(`needs root and namespaces: ${why}`);

const results: { delivered: number; span_s: number; pps: number; error_pct: number }[] = [];
for (let k = 0; k < repeat; k++) {
  const t = await chainTopology("polb");
  try {
    const relay = await startRelayWith(t, "rly", {
      rules: [{
        name: "limited",
        input: { interface: "r0", group: "239.1.1.3", port: 5003 },
        outputs: [{ interface: "r1", group: "239.10.3.3", port: 6003 }],
        rate_limit: { pps: limit },
      }],
    }, { control: true });
    const sink = await startSink(t, "rcv", "d0", ["239.10.3.3:6003"], { settle: true });
    const gen = await new Proc(t.ns("snd"), [
      `${BUILD}/mcr-gen`,
      "--iface",
      "s0",
      "--json",
      "--dst",
      "239.1.1.3:5003",
      "--rate",
      String(rate),
      "--duration",
      String(seconds),
      "--size",
      "256",
    ]).wait();
    const sent = JSON.parse(gen.stdout).sent as number;
    await quiesce(() => relay.stats(), { r0: sent }, 60_000).catch(() => {});
    const { stats } = await relay.stop();
    const out = stats.rules[0].outputs[0];
    const rep = await sink.settle(out.packets);
    const s = rep.groups[0].streams[0];
    const span = (s.last_rx_ns! - s.first_rx_ns!) / 1e9;
    const pps = (s.unique - 1) / span;
    results.push({
      delivered: s.unique,
      span_s: span,
      pps,
      error_pct: 100 * (pps - limit) / limit,
    });
    console.log(
      `pass ${k + 1}: sent ${sent} at ${rate} pps, relay matched ${stats.rules[0].packets}, ` +
        `policed ${stats.rules[0].policed}, sent on ${out.packets}; receiver ${s.unique} over ` +
        `${span.toFixed(3)} s = ${pps.toFixed(0)} pps (${
          (100 * (pps - limit) / limit).toFixed(2)
        } % ` +
        `from ${limit})`,
    );
  } finally {
    await t.destroy();
  }
}
const load = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
console.log(JSON.stringify({ seconds, rate, limit, load, results }));

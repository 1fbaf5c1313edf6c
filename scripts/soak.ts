/**
 * Soak test (root): the relay forwards a sustained stream through the chain
 * topology (snd → rly → rcv namespaces) for N minutes while its resident
 * memory is sampled every 10 s; at the end it checks
 *
 * - RSS growth < 10 % from the first sample after a 30 s warm-up to the end;
 * - zero duplicates (and zero corrupt) at the independent receiver (mcr-sink);
 * - the relay's counters agree with the generator and the receiver:
 *   sent by mcr-gen = relay frames + kernel ring drops, matched = frames,
 *   relay output packets = datagrams the receiver got (+ its socket drops);
 * - the relay never restarted a worker and exits cleanly.
 *
 * Writes bench/results/soak-<time>.json and exits 1 when a check fails.
 *
 *   deno task soak                 # 10 minutes at 20 kpps
 *   deno task soak --minutes 2 --rate 20000 --streams 4 --size 512
 *
 * @module
 */
import { parseArgs } from "node:util";
import { isRoot, REPO, skipReason, Topology } from "../src/netns.ts";
import { runGen, startSink } from "../src/harness.ts";
import { chainV4, rssKb, startRelayWith } from "../tests/netns/lib_robust.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    minutes: { type: "string", default: "10" },
    rate: { type: "string", default: "20000" },
    streams: { type: "string", default: "4" },
    size: { type: "string", default: "512" },
    "sample-s": { type: "string", default: "10" },
    "warmup-s": { type: "string", default: "30" },
  },
});
const minutes = Number(values.minutes), rate = Number(values.rate);
const streams = Number(values.streams), size = Number(values.size);
const sampleS = Number(values["sample-s"]), warmupS = Number(values["warmup-s"]);
if (!(minutes > 0) || !(rate > 0) || !(streams >= 1) || !(size >= 32)) {
  console.error("usage: soak.ts [--minutes N] [--rate PPS] [--streams N] [--size BYTES]");
  Deno.exit(2);
}
if (!isRoot() || skipReason()) {
  console.error(`soak: ${skipReason() ?? "needs root"}`);
  Deno.exit(2);
}

const seconds = Math.round(minutes * 60);
const rules = Array.from({ length: streams }, (_, k) => ({
  name: `soak${k}`,
  input: { interface: "r0", group: `239.5.0.${k + 1}`, port: 5100 + k },
  outputs: [{ interface: "r1", group: `239.50.0.${k + 1}`, port: 6100 + k }],
}));
const t = new Topology("soak");
const dir = await Deno.makeTempDir({ dir: `${REPO}/build`, prefix: "soak-" });
const samples: { t_s: number; rss_kb: number }[] = [];
const checks: { name: string; ok: boolean; detail: string }[] = [];
const check = (name: string, ok: boolean, detail: string) => {
  checks.push({ name, ok, detail });
  console.log(`${ok ? "ok  " : "FAIL"} ${name}: ${detail}`);
};
let report: Record<string, unknown> = {};
try {
  await chainV4(t);
  const relay = await startRelayWith(t, "rly", { rules }, { dir });
  const pid = relay.proc.child.pid;
  const sink = await startSink(
    t,
    "rcv",
    "d0",
    rules.map((r) => `${r.outputs[0].group}:${r.outputs[0].port}`),
    { idleMs: 5000, durationS: seconds + 60 },
  );
  const t0 = performance.now();
  const gen = runGen(t, "snd", "s0", rules.map((r) => `${r.input.group}:${r.input.port}`), {
    rate,
    count: Math.ceil((rate * seconds) / streams),
    size,
  });
  let done = false;
  gen.finally(() => done = true);
  console.log(
    `soak: ${minutes} min at ${rate} pps over ${streams} streams of ${size} B; relay pid ${pid}`,
  );
  while (!done) {
    const ts = (performance.now() - t0) / 1000;
    const kb = await rssKb(pid);
    samples.push({ t_s: Math.round(ts), rss_kb: kb });
    if (samples.length % 6 === 1) console.log(`  t=${Math.round(ts)} s  RSS ${kb} kB`);
    await Promise.race([gen, new Promise((r) => setTimeout(r, sampleS * 1000))]);
  }
  samples.push({ t_s: Math.round((performance.now() - t0) / 1000), rss_kb: await rssKb(pid) });
  const g = await gen;
  const rep = await sink.result();
  const { stats, code, stderr } = await relay.stop();

  const warm = samples.find((s) => s.t_s >= warmupS) ?? samples[0];
  const last = samples[samples.length - 1];
  const maxKb = Math.max(...samples.filter((s) => s.t_s >= warmupS).map((s) => s.rss_kb));
  const growth = (last.rss_kb - warm.rss_kb) / warm.rss_kb;
  const r0 = stats.interfaces.find((i) => i.name === "r0")!;
  const matched = stats.rules.reduce((a, r) => a + r.packets, 0);
  const out = stats.rules.reduce((a, r) => a + r.outputs[0].packets, 0);
  const outDrops = stats.rules.reduce(
    (a, r) => a + r.outputs[0].ring_full + r.outputs[0].errors,
    0,
  );
  const sent = g.sent as number;
  check("clean exit", code === 0, `exit ${code}${code ? `: ${stderr.slice(-500)}` : ""}`);
  check(
    "no worker restart",
    stats.workers.every((w) => w.restarts === 0),
    stats.workers.map((w) => `${w.interface}#${w.index}: ${w.restarts}`).join(", "),
  );
  check(
    "RSS growth < 10 %",
    growth < 0.10,
    `${warm.rss_kb} kB at ${warm.t_s} s → ${last.rss_kb} kB at ${last.t_s} s ` +
      `(${(growth * 100).toFixed(2)} %, max ${maxKb} kB)`,
  );
  check("zero duplicates", rep.total.duplicates === 0, `${rep.total.duplicates} duplicates`);
  check("zero corrupt", rep.total.corrupt === 0, `${rep.total.corrupt} corrupt`);
  check(
    "gen sent = relay frames + kernel drops",
    sent === r0.frames + r0.kernel_drops,
    `${sent} = ${r0.frames} + ${r0.kernel_drops}`,
  );
  check("every frame matched", matched === r0.frames, `${matched} matched of ${r0.frames}`);
  check(
    "matched = sent + output drops",
    matched === out + outDrops,
    `${matched} = ${out} + ${outDrops}`,
  );
  check(
    "relay sent = receiver got (+ receiver socket drops)",
    out === rep.total.unique + rep.udp.rcvbuf_errors,
    `${out} = ${rep.total.unique} + ${rep.udp.rcvbuf_errors}`,
  );
  report = {
    kind: "soak",
    date: new Date().toISOString(),
    params: { minutes, rate, streams, size, sample_s: sampleS, warmup_s: warmupS },
    rss: {
      warm_kb: warm.rss_kb,
      last_kb: last.rss_kb,
      max_kb: maxKb,
      growth_pct: Number((growth * 100).toFixed(3)),
    },
    gen: { sent, pps: g.pps, cpu_s: g.cpu_s },
    sink: rep.total,
    sink_udp: rep.udp,
    latency_us: rep.latency_us,
    relay: {
      frames: r0.frames,
      kernel_drops: r0.kernel_drops,
      matched,
      sent: out,
      output_drops: outDrops,
      drops: stats.drops,
    },
    samples,
    checks,
    pass: checks.every((c) => c.ok),
  };
} catch (e) {
  check("run", false, (e as Error).message);
  report = { kind: "soak", error: (e as Error).message, samples, checks, pass: false };
} finally {
  await t.destroy();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
const path = `${REPO}/bench/results/soak-${stamp}.json`;
await Deno.mkdir(`${REPO}/bench/results`, { recursive: true });
await Deno.writeTextFile(path, JSON.stringify(report, null, 2) + "\n");
console.log(`soak: ${report.pass ? "PASS" : "FAIL"} — report ${path}`);
Deno.exit(report.pass ? 0 : 1);

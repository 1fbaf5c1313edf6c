/**
 * Soak under faults (root): the daemon (cli.ts, control socket) forwards a
 * sustained stream through the chain topology for N minutes while the world
 * changes under it —
 *
 * - one output link (r2) goes down for `--flap-s` seconds every minute,
 * - the configuration file is changed and reloaded every `--reload-s` seconds,
 * - rules are added and removed through the control socket every
 *   `--churn-s` seconds —
 *
 * and its RSS, open file descriptors and threads are sampled every 10 s. At
 * the end it checks:
 *
 * - RSS, fds and threads flat: the most fds and threads seen in the second
 *   half of the run at most 2 above the most seen in the first half after
 *   the warm-up (Deno's blocking-I/O threads come and go: a leak only grows);
 *   RSS within 5 % over the second half of the run (a leak grows
 *   steadily; V8 grows its heaps during the first minutes and then holds —
 *   measured: 3,000 rule add/remove cycles in process leave the JS heap at
 *   the same size after a GC while RSS settles ~20 MB higher);
 * - no duplicate, no corruption at the independent receivers (mcr-sink);
 * - every datagram accounted for, per path: generator sent = dropped on the
 *   sender's veth + offered to the relay's ring (kernel_packets); ring =
 *   relay frames + ring drops; relay matched = sent + counted output drops
 *   (link_down, ring_full, errors, ...) per output; relay sent = receiver
 *   got + dropped on the relay→receiver veth + receiver socket drops;
 * - no worker restarted, the daemon exits cleanly.
 *
 * Writes bench/results/soak-<time>.json and exits 1 when a check fails.
 *
 *   deno task soak                                 # 30 minutes at 50 kpps
 *   deno task soak --minutes 3 --rate 20000
 *
 * @module
 */
import { parseArgs } from "node:util";
import { BUILD, isRoot, Proc, REPO, skipReason, Topology } from "../lab/netns.ts";
import { startSink } from "../lab/harness.ts";
import { type Daemon, startDaemon } from "../lab/daemon.ts";
import type { StatsResult } from "../src/control/results.ts";
import { chainV4, rssKb } from "../tests/netns/lib_robust.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    minutes: { type: "string", default: "30" },
    rate: { type: "string", default: "50000" },
    streams: { type: "string", default: "4" },
    size: { type: "string", default: "512" },
    "flap-s": { type: "string", default: "2" },
    "reload-s": { type: "string", default: "10" },
    "churn-s": { type: "string", default: "3" },
    "sample-s": { type: "string", default: "10" },
    "warmup-s": { type: "string", default: "60" },
  },
});
const num = (k: keyof typeof values) => Number(values[k]);
const minutes = num("minutes"), rate = num("rate"), streams = num("streams"), size = num("size");
const flapS = num("flap-s"), reloadS = num("reload-s"), churnS = num("churn-s");
const sampleS = num("sample-s"), warmupS = num("warmup-s");
if (!(minutes > 0) || !(rate > 0) || !(streams >= 1) || !(size >= 32)) {
  console.error("usage: soak.ts [--minutes N] [--rate PPS] [--streams N] [--size BYTES] ...");
  Deno.exit(2);
}
if (!isRoot() || skipReason()) {
  console.error(`soak: ${skipReason() ?? "needs root"}`);
  Deno.exit(2);
}

const seconds = Math.round(minutes * 60);
/** Stream k: r0 group → r1 (steady) and r2 (flapped). */
const rules = Array.from({ length: streams }, (_, k) => ({
  name: `soak${k}`,
  input: { interface: "r0", group: `239.5.0.${k + 1}`, port: 5100 + k },
  outputs: [
    { interface: "r1", group: `239.50.0.${k + 1}`, port: 6100 + k },
    { interface: "r2", group: `239.60.0.${k + 1}`, port: 6200 + k },
  ],
}));
/** A rule the reloads toggle in and out of the file (no traffic). */
const extra = {
  name: "reloaded",
  input: { interface: "r0", group: "239.6.6.6", port: 5600 },
  outputs: [{ interface: "r1", group: "239.66.6.6", port: 6600 }],
};

type Sample = { t_s: number; rss_kb: number; fds: number; threads: number };
const samples: Sample[] = [];
const checks: { name: string; ok: boolean; detail: string }[] = [];
const check = (name: string, ok: boolean, detail: string) => {
  checks.push({ name, ok, detail });
  console.log(`${ok ? "ok  " : "FAIL"} ${name}: ${detail}`);
};
const counts = { flaps: 0, reloads: 0, reload_errors: 0, adds: 0, removes: 0, churn_errors: 0 };

async function countDir(path: string): Promise<number> {
  let n = 0;
  for await (const _ of Deno.readDir(path)) n++;
  return n;
}

/** RX/TX drop counters of an interface inside a namespace (`ip -s -j link`). */
async function linkDrops(t: Topology, role: string, dev: string) {
  const j = JSON.parse(await t.exec(role, ["ip", "-s", "-j", "link", "show", "dev", dev]));
  const s = j[0].stats64;
  return { rx_dropped: s.rx.dropped as number, tx_dropped: s.tx.dropped as number };
}

const t = new Topology("soak");
let report: Record<string, unknown> = {};
let d: Daemon | undefined;
try {
  await chainV4(t, { extraOut: true });
  d = await startDaemon({ rules }, { netns: t.ns("rly") });
  const dd = d;
  const pid = d.pid;
  const sinks = await Promise.all(["d0", "d2"].map((dev, i) =>
    startSink(
      t,
      "rcv",
      dev,
      rules.map((r) => `${r.outputs[i].group}:${r.outputs[i].port}`),
      { idleMs: 0, durationS: seconds + 600 },
    )
  ));
  const before = {
    s0: await linkDrops(t, "snd", "s0"),
    r1: await linkDrops(t, "rly", "r1"),
    r2: await linkDrops(t, "rly", "r2"),
  };
  const t0 = performance.now();
  const elapsed = () => (performance.now() - t0) / 1000;
  const args = [`${BUILD}/mcr-gen`, "--iface", "s0", "--json", "--rate", String(rate)];
  for (const r of rules) args.push("--dst", `${r.input.group}:${r.input.port}`);
  args.push("--count", String(Math.ceil((rate * seconds) / streams)), "--size", String(size));
  const gen = new Proc(t.ns("snd"), args);
  let done = false;
  const genDone = gen.wait().finally(() => done = true);
  console.log(
    `soak: ${minutes} min at ${rate} pps over ${streams} streams of ${size} B; ` +
      `flap r2 ${flapS} s/min, reload every ${reloadS} s, churn every ${churnS} s; pid ${pid}`,
  );

  // the faults, each on its own clock
  const loops: Promise<void>[] = [];
  const every = (s: number, f: () => Promise<void>) =>
    loops.push((async () => {
      while (!done) {
        await Promise.race([genDone, new Promise((r) => setTimeout(r, s * 1000))]);
        if (!done) await f();
      }
    })());
  every(60, async () => {
    await t.exec("rly", ["ip", "link", "set", "r2", "down"]);
    await new Promise((r) => setTimeout(r, flapS * 1000));
    await t.exec("rly", ["ip", "link", "set", "r2", "up"]);
    counts.flaps++;
  });
  let withExtra = false;
  every(reloadS, async () => {
    withExtra = !withExtra;
    await Deno.writeTextFile(
      dd.configPath,
      JSON.stringify({ rules: withExtra ? [...rules, extra] : rules }, null, 2),
    );
    const r = await dd.request("reload");
    if (r.ok) counts.reloads++;
    else counts.reload_errors++;
  });
  let churn = 0;
  every(churnS, async () => {
    const n = churn++;
    const add = await dd.request("add", {
      rule: {
        name: `churn${n}`,
        input: { interface: "r0", group: `239.7.${(n >> 8) & 255}.${n & 255}`, port: 5700 },
        outputs: [{ interface: "r1", group: "239.77.7.7", port: 6700 }],
      },
    });
    if (add.ok) counts.adds++;
    else counts.churn_errors++;
    if (n > 0) {
      const rm = await dd.request("remove", { rule: `churn${n - 1}` });
      if (rm.ok) counts.removes++;
      // a reload in between may already have removed it (rules added at run time are not in the file)
    }
  });

  while (!done) {
    samples.push({
      t_s: Math.round(elapsed()),
      rss_kb: await rssKb(pid),
      fds: await countDir(`/proc/${pid}/fd`),
      threads: await countDir(`/proc/${pid}/task`),
    });
    const last = samples[samples.length - 1];
    if (samples.length % 6 === 1) {
      console.log(
        `  t=${last.t_s} s  RSS ${last.rss_kb} kB  fds ${last.fds}  threads ${last.threads}  ` +
          `flaps ${counts.flaps} reloads ${counts.reloads} adds ${counts.adds}`,
      );
    }
    await Promise.race([genDone, new Promise((r) => setTimeout(r, sampleS * 1000))]);
  }
  await Promise.all(loops);
  const g = JSON.parse((await genDone).stdout);
  // let the relay finish: counts stop moving, nothing queued
  let s: StatsResult = await dd.ok<StatsResult>("stats");
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const n = await dd.ok<StatsResult>("stats");
    const key = (x: StatsResult) =>
      JSON.stringify(x.rules.map((r) => r.outputs.map((o) => o.packets)));
    const quiet = key(n) === key(s) && n.rules.every((r) => r.outputs.every((o) => o.queued === 0));
    s = n;
    if (quiet) break;
  }
  samples.push({
    t_s: Math.round(elapsed()),
    rss_kb: await rssKb(pid),
    fds: await countDir(`/proc/${pid}/fd`),
    threads: await countDir(`/proc/${pid}/task`),
  });
  const reps = await Promise.all(sinks.map((x) => x.stop()));
  const after = {
    s0: await linkDrops(t, "snd", "s0"),
    r1: await linkDrops(t, "rly", "r1"),
    r2: await linkDrops(t, "rly", "r2"),
  };
  const stop = await d.stop();
  d = undefined;

  const warm = samples.find((x) => x.t_s >= warmupS) ?? samples[0];
  const last = samples[samples.length - 1];
  const half = samples.find((x) => x.t_s >= last.t_s / 2) ?? warm;
  const growth = (last.rss_kb - half.rss_kb) / half.rss_kb;
  const r0 = s.interfaces.find((i) => i.name === "r0")!;
  const soak = s.rules.filter((r) => r.name.startsWith("soak"));
  const matched = soak.reduce((a, r) => a + r.packets, 0);
  const outSum = (i: number, f: (o: StatsResult["rules"][number]["outputs"][number]) => number) =>
    soak.reduce((a, r) => a + f(r.outputs[i]), 0);
  const drops = (o: StatsResult["rules"][number]["outputs"][number]) =>
    o.ring_full + o.errors + o.ttl_expired + o.link_down + o.too_big;
  const sent = g.sent as number;
  const s0Drop = after.s0.tx_dropped - before.s0.tx_dropped;

  check(
    "clean exit",
    stop.code === 0,
    `exit ${stop.code}${stop.code ? `: ${stop.stderr.slice(-500)}` : ""}`,
  );
  check(
    "no worker restart",
    s.workers.every((w) => w.restarts === 0),
    s.workers.map((w) => `${w.interface}#${w.index}: ${w.restarts}`).join(", "),
  );
  check(
    "RSS flat (< 5 % growth over the second half)",
    growth < 0.05,
    `${half.rss_kb} kB at ${half.t_s} s → ${last.rss_kb} kB at ${last.t_s} s (${
      (growth * 100).toFixed(2)
    } %; ${warm.rss_kb} kB after the ${warmupS} s warm-up, max ${
      Math.max(...samples.map((x) => x.rss_kb))
    } kB)`,
  );
  const firstHalf = samples.filter((x) => x.t_s >= warm.t_s && x.t_s < half.t_s);
  const secondHalf = samples.filter((x) => x.t_s >= half.t_s);
  const most = (xs: Sample[], k: "fds" | "threads") => Math.max(...xs.map((x) => x[k]));
  for (const k of ["fds", "threads"] as const) {
    const a = most(firstHalf.length ? firstHalf : [warm], k), b = most(secondHalf, k);
    check(`${k} flat`, b <= a + 2, `at most ${a} in the first half, ${b} in the second`);
  }
  for (const [i, rep] of reps.entries()) {
    check(`sink ${i}: no duplicate`, rep.total.duplicates === 0, `${rep.total.duplicates}`);
    check(`sink ${i}: no corruption`, rep.total.corrupt === 0, `${rep.total.corrupt}`);
  }
  check(
    "gen sent = sender veth drops + offered to the relay ring",
    sent === s0Drop + r0.kernel_packets,
    `${sent} = ${s0Drop} + ${r0.kernel_packets}`,
  );
  check(
    "ring = relay frames + ring drops",
    r0.kernel_packets === r0.frames + r0.kernel_drops,
    `${r0.kernel_packets} = ${r0.frames} + ${r0.kernel_drops}`,
  );
  check("every frame matched", matched === r0.frames, `${matched} matched of ${r0.frames}`);
  for (const [i, dev] of ["r1", "r2"].entries()) {
    const pk = outSum(i, (o) => o.packets), dr = outSum(i, drops), q = outSum(i, (o) => o.queued);
    check(
      `${dev}: matched = sent + counted drops`,
      matched === pk + dr + q,
      `${matched} = ${pk} + ${dr} (link_down ${outSum(i, (o) => o.link_down)}) + queued ${q}`,
    );
    const veth = after[dev as "r1" | "r2"].tx_dropped - before[dev as "r1" | "r2"].tx_dropped;
    const rep = reps[i];
    check(
      `${dev}: relay sent = receiver got + veth drops + receiver socket drops`,
      pk === rep.total.unique + veth + rep.udp.rcvbuf_errors,
      `${pk} = ${rep.total.unique} + ${veth} + ${rep.udp.rcvbuf_errors}`,
    );
  }
  check(
    "faults happened",
    counts.flaps > 0 && counts.reloads > 0 && counts.adds > 0,
    JSON.stringify(counts),
  );
  report = {
    kind: "soak",
    date: new Date().toISOString(),
    command: `deno task soak ${Deno.args.join(" ")}`.trim(),
    params: { minutes, rate, streams, size, flap_s: flapS, reload_s: reloadS, churn_s: churnS },
    faults: counts,
    gen: { sent, pps: g.pps },
    sinks: reps.map((r) => ({ total: r.total, udp: r.udp, latency_us: r.latency_us })),
    relay: {
      interface: r0,
      drops: s.drops,
      outputs: s.rules.filter((r) => r.name.startsWith("soak")),
    },
    samples,
    checks,
    pass: checks.every((c) => c.ok),
  };
} catch (e) {
  check("run", false, (e as Error).stack ?? String(e));
  report = { kind: "soak", error: (e as Error).message, samples, checks, pass: false };
} finally {
  if (d) await d.stop();
  await t.destroy();
}
const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
const path = `${REPO}/bench/results/soak-${stamp}.json`;
await Deno.mkdir(`${REPO}/bench/results`, { recursive: true });
await Deno.writeTextFile(path, JSON.stringify(report, null, 2) + "\n");
console.log(`soak: ${report.pass ? "PASS" : "FAIL"} — report ${path}`);
Deno.exit(report.pass ? 0 : 1);

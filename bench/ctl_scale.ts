/**
 * What `ctl list` and `ctl stats` cost at the scale of issue 12: wall time
 * and peak RSS of the `cli.ts ctl` process, and the daemon's extra peak RSS
 * while it answers, for
 *
 * - a control server over 65,536 synthetic rules (4 outputs each,
 *   tests/fixtures/relay_stats.ts) in this process: the formatting path of
 *   the daemon (views, parts) and of the client, end to end over the socket
 *   (with the fixture's rates: the server does not compute them); plus the
 *   in-process cost of each step (rates, views, encoding, printing);
 * - a live relay (`cli.ts --config`, no root needed) with 4,096 rules and
 *   16,384 outputs on interfaces that do not exist (pending), today's limit.
 *
 *     deno run -A bench/ctl_scale.ts                       # both, a table on stdout
 *     deno run -A bench/ctl_scale.ts --rules 20000 --live 1024
 *     deno run -A bench/ctl_scale.ts --live-only --repo /path/to/other/checkout
 *
 * `--repo` runs the live relay and `ctl` of another checkout (say, the commit
 * before streaming) to compare. Peak RSS of ctl is GNU time's %M; the daemon's
 * extra peak is its VmHWM after a request, reset before it (clear_refs 5).
 * Not part of `deno task test` (no timing assertions in tests).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ControlServer } from "../src/control/server.ts";
import type { ControlContext } from "../src/control/commands.ts";
import { encodeParts } from "../src/control/protocol.ts";
import { RateTracker } from "../src/control/rates.ts";
import {
  listRecords,
  listView,
  parseViewArgs,
  statsRecords,
  statsResult,
  statsView,
} from "../src/control/views.ts";
import { jsonLines, RecordPrinter } from "../src/client/listing.ts";
import { countersOf, syntheticRelay } from "../tests/fixtures/relay_stats.ts";

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

const { values: opt } = parseArgs({
  args: Deno.args,
  options: {
    rules: { type: "string", default: "65536" },
    live: { type: "string", default: "4096" },
    "live-only": { type: "boolean", default: false },
    repo: { type: "string", default: REPO },
  },
});
const RULES = Number(opt.rules);
const LIVE = Number(opt.live);
const repo = opt.repo!;

/** The ctl invocations measured. */
const COMMANDS = [
  ["--json", "stats"],
  ["--json", "list"],
  ["stats"],
  ["list"],
  ["stats", "--all"],
  ["list", "--all"],
  ["stats", "r77"],
];

const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;

/** VmHWM of `pid` in KB, after which the peak is reset (so the next read is the next peak). */
async function peakKb(pid: number | "self"): Promise<number> {
  const st = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = Number(/^VmHWM:\s+(\d+)/m.exec(st)?.[1] ?? 0);
  await Deno.writeTextFile(`/proc/${pid}/clear_refs`, "5").catch(() => {});
  return kb;
}

async function rssKb(pid: number | "self"): Promise<number> {
  const st = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+)/m.exec(st)?.[1] ?? 0);
}

/** Run `cli.ts ctl ARGS` of `repo` under GNU time; wall seconds, peak RSS KB, exit code. */
async function ctl(
  socket: string,
  args: string[],
): Promise<{ s: number; kb: number; code: number }> {
  const out = await Deno.makeTempFile();
  try {
    const r = await new Deno.Command("/usr/bin/time", {
      args: [
        "-f",
        "%e %M",
        "-o",
        out,
        Deno.execPath(),
        "run",
        "-A",
        `${repo}/cli.ts`,
        "ctl",
        "--timeout",
        "120000",
        "--control-socket",
        socket,
        ...args,
      ],
      stdout: "null",
      stderr: "null",
    }).output();
    const [s, kb] = (await Deno.readTextFile(out)).trim().split("\n").at(-1)!.split(" ").map(
      Number,
    );
    return { s, kb, code: r.code };
  } finally {
    await Deno.remove(out);
  }
}

/** Time `fn` in ms. */
function timed<T>(fn: () => T): [T, number] {
  const t = performance.now();
  const v = fn();
  return [v, performance.now() - t];
}

/** Measure every command against a socket; the daemon is `pid`. */
async function table(title: string, socket: string, pid: number | "self"): Promise<void> {
  console.log(`\n### ${title}\n`);
  console.log("| command | wall | ctl peak RSS | daemon extra peak RSS | exit |");
  console.log("|---|---|---|---|---|");
  for (const args of COMMANDS) {
    const before = await rssKb(pid);
    await peakKb(pid);
    const r = await ctl(socket, args);
    const peak = await peakKb(pid);
    console.log(
      `| \`ctl ${args.join(" ")}\` | ${r.s.toFixed(2)} s | ${mb(r.kb)} | ` +
        `${mb(Math.max(0, peak - before))} | ${r.code} |`,
    );
  }
}

if (!opt["live-only"]) {
  const relay = syntheticRelay({ rules: RULES });
  const clock = { time: new Date().toISOString(), uptime_s: 1 };
  console.log(`## ${RULES.toLocaleString("en-US")} synthetic rules, 4 outputs each\n`);
  const dir = await Deno.makeTempDir({ prefix: "mcr-ctlbench-" });
  await Deno.chmod(dir, 0o750);
  const ctx = {
    relay: { stats: () => relay.stats, config: { rules: relay.config } },
    rates: { rates: () => relay.rates, sample() {} },
    startedAt: performance.now(),
  } as unknown as ControlContext;
  const server = await ControlServer.start(`${dir}/control.sock`, ctx);
  try {
    await table(
      `Over the socket: a control server with ${RULES.toLocaleString("en-US")} synthetic rules`,
      `${dir}/control.sock`,
      "self",
    );
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
  console.log("\nIn-process steps (this machine, one run each):\n");
  console.log("| step | time | size |");
  console.log("|---|---|---|");
  const counters = countersOf(relay.stats);
  const tracker = new RateTracker(() => counters);
  tracker.sample();
  tracker.sample();
  const [, tRates] = timed(() => tracker.rates());
  console.log(
    `| daemon: rates of every rule and output from the last two samples ` +
      `(once per sample, on the first request after it) | ${tRates.toFixed(0)} ms | |`,
  );
  const [legacy, tLegacy] = timed(() =>
    JSON.stringify(
      statsResult(statsView(relay.stats, relay.rates, clock, parseViewArgs("stats", {}))),
    )
  );
  console.log(
    `| daemon: \`stats\` as one reply (what a client before streaming gets), JSON.stringify | ` +
      `${tLegacy.toFixed(0)} ms | ${(legacy.length / 1e6).toFixed(1)} MB |`,
  );
  const [parts, tParts] = timed(() => {
    let n = 0, bytes = 0;
    const v = statsView(relay.stats, relay.rates, clock, parseViewArgs("stats", { stream: true }));
    for (const p of encodeParts(1, statsRecords(v))) {
      n++;
      bytes += p.length;
    }
    return { n, bytes };
  });
  console.log(
    `| daemon: \`stats\` streamed (views + every part encoded) | ${tParts.toFixed(0)} ms | ` +
      `${(parts.bytes / 1e6).toFixed(1)} MB in ${parts.n} parts |`,
  );
  const [, tSummary] = timed(() =>
    statsResult(
      statsView(relay.stats, relay.rates, clock, parseViewArgs("stats", { view: "summary" })),
    )
  );
  console.log(`| daemon: \`stats\` summary | ${tSummary.toFixed(0)} ms | |`);
  const [, tOne] = timed(() =>
    statsResult(
      statsView(relay.stats, relay.rates, clock, parseViewArgs("stats", { rule: "r77" })),
    )
  );
  console.log(`| daemon: \`stats r77\` | ${tOne.toFixed(0)} ms | |`);
  const [, tList] = timed(() => {
    const v = listView(relay.config, relay.stats, relay.rates, parseViewArgs("list", {}));
    let n = 0;
    for (const p of encodeParts(1, listRecords(v))) n += p.length;
    return n;
  });
  console.log(`| daemon: \`list\` streamed | ${tList.toFixed(0)} ms | |`);
  const recs = [
    ...statsRecords(statsView(relay.stats, relay.rates, clock, parseViewArgs("stats", {}))),
  ];
  const [lines, tJson] = timed(() => {
    let n = 0;
    for (let i = 0; i < recs.length; i += 200) n += jsonLines(recs.slice(i, i + 200)).length;
    return n;
  });
  console.log(
    `| client: JSON Lines of every stats record | ${tJson.toFixed(0)} ms | ` +
      `${(lines / 1e6).toFixed(1)} MB |`,
  );
  const [printed, tPrint] = timed(() => {
    let n = 0;
    const p = new RecordPrinter("stats", (t) => n += t.length + 1);
    for (let i = 0; i < recs.length; i += 200) p.push(recs.slice(i, i + 200));
    p.end();
    return n;
  });
  console.log(
    `| client: table of every stats record | ${tPrint.toFixed(0)} ms | ` +
      `${(printed / 1e6).toFixed(1)} MB |`,
  );
}

if (LIVE > 0) {
  const dir = await Deno.makeTempDir({ prefix: "mcr-ctlbench-live-" });
  await Deno.chmod(dir, 0o750);
  const rules = Array.from({ length: LIVE }, (_, k) => ({
    name: `r${k}`,
    input: { interface: `nx${k % 4}`, group: `239.1.${k >> 8}.${k & 255}`, port: 5000 },
    outputs: Array.from({ length: 4 }, (_, j) => ({
      interface: `ny${j % 2}`,
      group: `239.100.${k >> 8}.${k & 255}`,
      port: 6000 + j,
    })),
  }));
  await Deno.writeTextFile(`${dir}/rules.json`, JSON.stringify({ rules }));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${repo}/cli.ts`,
      "--config",
      `${dir}/rules.json`,
      "--control-socket",
      `${dir}/control.sock`,
      "--ready-file",
      `${dir}/ready`,
      "--log-level",
      "error",
    ],
    env: { MCR_LIB: `${REPO}/build/libmcr.so` },
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    for (let i = 0; i < 600; i++) {
      if (await Deno.stat(`${dir}/ready`).then(() => true, () => false)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 1500)); // two rate samples
    await table(
      `A live relay (${repo === REPO ? "this checkout" : repo}) with ${
        LIVE.toLocaleString("en-US")
      } rules, ${(LIVE * 4).toLocaleString("en-US")} outputs (pending)`,
      `${dir}/control.sock`,
      child.pid,
    );
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The three experiments of the scale benchmarks (bench/scale.ts), one pass
 * each: a) idle — N input interfaces, one rule each, no traffic; b) traffic —
 * N input interfaces, one stream each, all at once, every stream counted at
 * the receiver; c) rules — many rules on one interface and a live `ctl add`.
 * Each builds its own namespaces and removes them afterwards.
 *
 * @module
 */
import { chainTopology, type Topology } from "../../lab/netns.ts";
import type { SinkReport } from "../../lab/harness.ts";
import { ControlClient } from "../../src/client/client.ts";
import { monotonicNs } from "./clock.ts";
import { busyBetween, onlineCpus, processTree, procsCpu, sysCpu, waitQuiet } from "./procstat.ts";
import { cpuOver, snapshot, startTimed, stopTimed, type TimedRelay } from "./relay_probe.ts";
import type {
  IdleResult,
  RelayFigures,
  RulesResult,
  SteadyWindow,
  TrafficResult,
} from "./scale_report.ts";
import {
  genReport,
  inputOf,
  outputOf,
  runGens,
  sinkReport,
  startGen,
  startSink,
  streamIn,
} from "./scale_io.ts";
import { inputName, manyInputs, OUT } from "./scale_topo.ts";

/** Seconds between the ready file and the measurements (workers settle, JIT). */
export const SETTLE_S = 2;
/** Seconds of idling over which idle CPU is measured. */
export const IDLE_S = 10;
/** Steady streams of the rules experiment (its first and its last rule). */
const STEADY = 2;
/** The receiver stops this long after the last datagram, ms (b). */
const TRAFFIC_IDLE_MS = 2000;
/** The receiver stops this long after the last datagram, ms (c). */
const WINDOW_IDLE_MS = 1500;
/** Seconds the receiver waits beyond the sending time before it stops regardless. */
const SINK_SLACK_S = 60;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What every experiment needs from the run. */
export interface Ctx {
  /** Private temp directory (configs, ready files, control sockets). */
  tmp: string;
  /** Give up on a relay not ready after this many seconds. */
  readyTimeoutS: number;
  /** Memory cap of the relay, MiB, or null. */
  memCapMiB: number | null;
  /** Longest wait for a quiet machine before each relay, s. */
  quietWaitS: number;
  /** Topologies alive now (removed on the error path). */
  topos: Topology[];
  /** Progress log. */
  log: (msg: string) => void;
}

function group(prefix: string, n: number): string {
  return `${prefix}.${n >> 8}.${n & 255}`;
}

/** Rule of input interface n (1-based) in a) and b). */
function inputRule(n: number) {
  return {
    name: `in${n}`,
    input: { interface: inputName(n), group: group("239.1", n), port: 5000 },
    outputs: [{ interface: OUT.relayDev, group: group("239.10", n), port: 6000 + n }],
  };
}

/** Rule k (0-based) of c): all on r0, one group each. */
function manyRule(k: number) {
  return {
    name: `r${k}`,
    input: { interface: "r0", group: group("239.2", k), port: 5000 },
    outputs: [{ interface: "r1", group: group("239.20", k), port: 6000 }],
  };
}

/** The rule c) adds live. */
const NEW_RULE = {
  name: "added-live",
  input: { interface: "r0", group: "239.3.0.1", port: 5000 },
  outputs: [{ interface: "r1", group: "239.30.0.1", port: 6001 }],
};

/** The figures every experiment records about a started relay. */
function figures(pass: number, t: TimedRelay, load: number): RelayFigures {
  const snap = t.readyS === null
    ? { processes: 0, rss_kib: 0, hwm_kib: 0, threads: 0, fds: 0 }
    : snapshot(t.pid);
  return {
    pass,
    ready_s: t.readyS,
    ...(t.failure ? { failure: t.failure } : {}),
    ...(t.atGiveUp ? { at_give_up: t.atGiveUp } : {}),
    ...snap,
    stop_s: 0,
    cap: null,
    background_load: load,
  };
}

/** Stop the relay (or clean up after one that never became ready) and complete its figures. */
async function finish(t: TimedRelay, f: RelayFigures) {
  if (t.readyS === null) {
    // startTimed already reaped it; the cap's figures are still worth keeping
    f.cap = t.cap ? await t.cap.report() : null;
    await t.cap?.remove();
    return null;
  }
  const s = await stopTimed(t);
  f.stop_s = s.stop_s;
  f.cap = s.cap;
  return s;
}

async function withTopo<T>(
  ctx: Ctx,
  make: () => Promise<Topology>,
  f: (t: Topology) => Promise<T>,
): Promise<T> {
  const t = await make();
  ctx.topos.push(t);
  try {
    return await f(t);
  } finally {
    await t.destroy();
    ctx.topos.splice(ctx.topos.indexOf(t), 1);
  }
}

function start(ctx: Ctx, topo: Topology, config: unknown, control = false) {
  return startTimed(topo, "rly", config, {
    dir: ctx.tmp,
    readyTimeoutS: ctx.readyTimeoutS,
    memCapMiB: ctx.memCapMiB,
    control,
  });
}

const mibText = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;

/** a) N interfaces, one rule each, no traffic. */
export async function idle(ctx: Ctx, n: number, pass: number): Promise<IdleResult> {
  return await withTopo(ctx, () => manyInputs("sci", n, ctx.tmp), async (topo) => {
    const load = await waitQuiet(ctx.log, ctx.quietWaitS);
    const t = await start(ctx, topo, {
      rules: Array.from({ length: n }, (_, i) => inputRule(i + 1)),
    });
    let cpu: { pct: number; stat_pct: number } | null = null;
    if (t.readyS !== null) {
      await sleep(SETTLE_S * 1000);
      cpu = await cpuOver(t.pid, IDLE_S);
    }
    const f = figures(pass, t, load);
    await finish(t, f);
    const r: IdleResult = {
      ...f,
      inputs: n,
      idle_cpu_pct: cpu?.pct ?? null,
      idle_cpu_stat_pct: cpu?.stat_pct ?? null,
    };
    ctx.log(
      r.failure
        ? `  idle ${n} interfaces: ${r.failure.slice(0, 300)}${
          r.at_give_up
            ? ` (then: RSS ${mibText(r.at_give_up.rss_kib)}, ${r.at_give_up.threads} threads)`
            : ""
        }`
        : `  idle ${n} interfaces: ready ${r.ready_s!.toFixed(2)} s, RSS ${
          mibText(r.rss_kib)
        } (peak ${mibText(r.hwm_kib)}), ${r.threads} threads, ${r.fds} fds, idle CPU ${
          r.idle_cpu_pct?.toFixed(2)
        } %`,
    );
    return r;
  });
}

/**
 * b) N interfaces, one stream each, every generator started at once (forked by one shell in the
 * sender's namespace).
 */
export async function traffic(
  ctx: Ctx,
  n: number,
  pps: number,
  seconds: number,
  pass: number,
): Promise<TrafficResult> {
  return await withTopo(ctx, () => manyInputs("sct", n, ctx.tmp), async (topo) => {
    const load = await waitQuiet(ctx.log, ctx.quietWaitS);
    const rules = Array.from({ length: n }, (_, i) => inputRule(i + 1));
    const t = await start(ctx, topo, { rules });
    const r: TrafficResult = {
      ...figures(pass, t, load),
      inputs: n,
      stream_pps: pps,
      seconds,
      first_arrival_spread_s: null,
      streams: [],
      rss_after_kib: 0,
      relay_cpu_s: 0,
      relay_drops: null,
    };
    if (t.readyS === null) {
      await finish(t, r);
      ctx.log(`  traffic ${n} interfaces: ${r.failure?.slice(0, 300)}`);
      return r;
    }
    await sleep(SETTLE_S * 1000);
    Object.assign(r, snapshot(t.pid));
    const count = Math.round(pps * seconds);
    const sink = await startSink(topo, "rcv", OUT.sinkDev, rules.map(outputOf), ctx.tmp, {
      expectTotal: count * n,
      idleMs: TRAFFIC_IDLE_MS,
      durationS: seconds + SINK_SLACK_S,
    });
    const pids = processTree(t.pid);
    const cpu0 = procsCpu(pids);
    const sys0 = sysCpu();
    const sent = await runGens(
      topo,
      "snd",
      rules.map((x, i) => ({
        dev: x.input.interface,
        dsts: [inputOf(x)],
        rate: pps,
        extra: ["--count", String(count), "--stream-base", String(i + 1)],
      })),
      ctx.tmp,
    );
    const rep = await sinkReport(sink);
    const cpu1 = procsCpu(pids), sys1 = sysCpu(), cores = onlineCpus();
    r.relay_cpu_s = cpu1.schedS - cpu0.schedS;
    r.relay_wait_s = cpu1.waitS - cpu0.waitS;
    r.machine_busy_pct = (100 * busyBetween(sys0, sys1, cores)) /
      (cores * ((sys1.atMs - sys0.atMs) / 1000));
    const after = snapshot(t.pid);
    r.rss_after_kib = after.rss_kib;
    r.hwm_kib = after.hwm_kib;
    const firsts: number[] = [];
    r.streams = rules.map((x, i) => {
      const st = streamIn(rep, outputOf(x), i + 1);
      if (st?.first_rx_ns != null) firsts.push(st.first_rx_ns);
      return {
        input: x.input.interface,
        sent: sent[i].sent,
        delivered: st?.unique ?? 0,
        duplicates: st?.duplicates ?? 0,
        reordered: st?.reordered ?? 0,
      };
    });
    const first = Math.min(...firsts);
    r.first_arrival_spread_s = firsts.length ? (Math.max(...firsts) - first) / 1e9 : null;
    for (const [i, x] of r.streams.entries()) {
      const ns = streamIn(rep, outputOf(rules[i]), i + 1)?.first_rx_ns;
      x.first_rx_s = ns != null ? (ns - first) / 1e9 : null;
    }
    r.latency_us = {
      p50: rep.latency_us.p50,
      p99: rep.latency_us.p99,
      max: rep.latency_us.max,
    };
    const s = await finish(t, r);
    r.relay_drops = s?.stats
      ? {
        drops: s.stats.drops,
        ring_drops: s.stats.interfaces.reduce((a, i) => a + i.kernel_drops, 0),
        sent: s.stats.interfaces.reduce((a, i) => a + i.sent, 0),
        interfaces_not_running: s.stats.interfaces.filter((i) => i.state !== "running").length,
        // adaptive priority: how often a worker fell behind and took worker_nice
        priority_raises: s.stats.pool.reduce((a, w) => a + w.priority_raises, 0),
      }
      : null;
    const tot = (k: "sent" | "delivered") => r.streams.reduce((a, x) => a + x[k], 0);
    ctx.log(
      `  traffic ${n} × ${pps} pps: delivered ${tot("delivered")} of ${tot("sent")}, ${
        r.streams.filter((x) => x.delivered === x.sent).length
      } streams complete, RSS ${mibText(r.rss_after_kib)}, priority raises ${
        r.relay_drops?.priority_raises ?? "-"
      }`,
    );
    return r;
  });
}

type Rule = ReturnType<typeof manyRule>;

/** The steady stream that had the longest gap, and that gap. */
function longestGap(rep: SinkReport, steady: Rule[]) {
  let gapUs = -1, endNs = 0;
  for (const [i, x] of steady.entries()) {
    const st = streamIn(rep, outputOf(x), i);
    if (st?.max_gap_us != null && st.max_gap_us > gapUs) {
      gapUs = st.max_gap_us;
      endNs = st.max_gap_end_ns ?? 0;
    }
  }
  return gapUs >= 0 ? { gapUs, endNs } : null;
}

/**
 * One window of steady traffic on the rules topology: the steady rules' streams and one to the
 * rule added live (dropped by the relay until the add), with the add at the window's middle or not.
 */
async function rulesWindow(
  ctx: Ctx,
  topo: Topology,
  t: TimedRelay,
  steady: Rule[],
  pps: number,
  windowS: number,
  add: boolean,
): Promise<{ window: SteadyWindow; add: RulesResult["add"] }> {
  const sink = await startSink(topo, "rcv", "d0", [...steady, NEW_RULE].map(outputOf), ctx.tmp, {
    idleMs: WINDOW_IDLE_MS,
    durationS: windowS + SINK_SLACK_S,
  });
  const dsts = [...steady, NEW_RULE].map(inputOf);
  const gen = startGen(topo, "snd", "s0", dsts, pps * dsts.length, [
    "--duration",
    String(windowS),
  ]);
  let result: RulesResult["add"] = null;
  let tAdd = 0;
  if (add) {
    await sleep((windowS / 2) * 1000);
    await using c = await ControlClient.connect(t.relay.controlSocket!);
    tAdd = monotonicNs();
    const reply = await c.request("add", { rule: NEW_RULE });
    const tReply = monotonicNs();
    result = {
      ok: reply.ok,
      ...(reply.ok ? {} : { error: JSON.stringify(reply.error).slice(0, 400) }),
      reply_ms: (tReply - tAdd) / 1e6,
      first_datagram_ms: null,
    };
  }
  const g = await genReport(gen);
  const rep = await sinkReport(sink);
  const gap = longestGap(rep, steady);
  const fresh = streamIn(rep, outputOf(NEW_RULE), steady.length);
  if (result?.ok && fresh?.first_rx_ns != null) {
    result.first_datagram_ms = (fresh.first_rx_ns - tAdd) / 1e6;
  }
  return {
    window: {
      max_gap_ms: gap ? gap.gapUs / 1000 : null,
      ...(add ? { max_gap_end_after_add_ms: gap ? (gap.endNs - tAdd) / 1e6 : null } : {}),
      latency_max_us: rep.latency_us.max,
      sent: g.streams.slice(0, steady.length).reduce((a, x) => a + x.sent, 0),
      delivered: steady.reduce((a, x, i) => a + (streamIn(rep, outputOf(x), i)?.unique ?? 0), 0),
    },
    add: result,
  };
}

/** c) `total` rules on one interface (the config holds total − 1); a window without, then one with a live add. */
export async function rulesBench(
  ctx: Ctx,
  total: number,
  pps: number,
  windowS: number,
  pass: number,
): Promise<RulesResult> {
  return await withTopo(ctx, () => chainTopology("scr"), async (topo) => {
    const load = await waitQuiet(ctx.log, ctx.quietWaitS);
    const rules = Array.from({ length: total - 1 }, (_, k) => manyRule(k));
    const t = await start(ctx, topo, { rules }, true);
    const r: RulesResult = {
      ...figures(pass, t, load),
      rules: total,
      add: null,
      with_add: null,
      baseline: null,
    };
    if (t.readyS === null) {
      await finish(t, r);
      ctx.log(`  rules ${total}: ${r.failure?.slice(0, 300)}`);
      return r;
    }
    await sleep(SETTLE_S * 1000);
    Object.assign(r, snapshot(t.pid));
    const steady = [rules[0], rules[rules.length - 1]].slice(0, Math.min(STEADY, rules.length));
    r.baseline = (await rulesWindow(ctx, topo, t, steady, pps, windowS, false)).window;
    const w = await rulesWindow(ctx, topo, t, steady, pps, windowS, true);
    r.with_add = w.window;
    r.add = w.add;
    r.hwm_kib = snapshot(t.pid).hwm_kib;
    await finish(t, r);
    ctx.log(
      `  rules ${total}: ready ${r.ready_s!.toFixed(2)} s, RSS ${mibText(r.rss_kib)}; add ${
        r.add?.ok ? "ok" : `refused ${r.add?.error}`
      }, reply ${r.add?.reply_ms?.toFixed(1)} ms, first datagram after ${
        r.add?.first_datagram_ms?.toFixed(1) ?? "-"
      } ms; longest steady gap ${r.with_add?.max_gap_ms?.toFixed(2)} ms (baseline ${
        r.baseline?.max_gap_ms?.toFixed(2)
      } ms)`,
    );
    return r;
  });
}

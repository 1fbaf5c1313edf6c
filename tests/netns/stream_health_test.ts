/**
 * Stream health and policing with real traffic (issue 16), in the chain
 * topology (sender — relay — receiver):
 *
 * - a stream that stops turns `silent`: `ctl stats`/`list`, the metric
 *   `mcr_stream_alarm`, `/healthz` (503, naming the stream) and the relay's
 *   log (the event) all say so, and it is `ok` again when the stream
 *   resumes. The time it took is printed, never asserted;
 * - RTP sequence gaps and MPEG-TS continuity-counter errors that the sender
 *   injects (mcr-gen --payload rtp+ts --inject-every N) are counted exactly
 *   (when the relay saw every datagram; else within the datagrams it missed);
 * - policing: 20 kpps through a 5 kpps rule limit and a 2 kpps output
 *   limit. What holds under load is asserted: delivered + policed + other
 *   drops = matched at each output, each limit's output ≤ limit × the time
 *   frames took to arrive + burst, the unlimited output gets everything, the
 *   receiver gets what the relay sent. The ±5 % rate is measured in
 *   bench/policing.ts on a quiet machine.
 */
import assert from "node:assert/strict";
import parsePrometheus from "parse-prometheus-text-format";
import { BUILD, chainTopology, Proc, skipReason, type Topology } from "../../lab/netns.ts";
import type { GenReport } from "../../lab/harness.ts";
import { startSink } from "../../lab/harness.ts";
import { startDaemon } from "../../lab/daemon.ts";
import { CHAIN_IN, CHAIN_OUT, hopKey, PathMeter, quiesce } from "./lib_account.ts";
import type { StatsResult } from "../../src/control/results.ts";
import type { OutputStats } from "../../src/relay/stats.ts";

const skip = skipReason();
if (skip) console.warn(`netns stream health tests skipped: ${skip}`);

/** Fetch a URL from inside a namespace (the metrics endpoint listens on its loopback). */
async function fetchIn(t: Topology, role: string, url: string) {
  const out = await t.exec(role, [
    Deno.execPath(),
    "eval",
    `const r = await fetch(${JSON.stringify(url)}); ` +
    `console.log(JSON.stringify({ status: r.status, body: await r.text() }));`,
  ]);
  return JSON.parse(out) as { status: number; body: string };
}

/** The value of metric `name` with these labels on a metrics page. */
function metric(page: string, name: string, labels: Record<string, string>): number | undefined {
  const fams = parsePrometheus(page) as {
    name: string;
    metrics: { value: string; labels?: Record<string, string> }[];
  }[];
  const hit = fams.find((f) => f.name === name)?.metrics.find((x) =>
    Object.entries(labels).every(([k, v]) => x.labels?.[k] === v)
  );
  return hit ? Number(hit.value) : undefined;
}

/** mcr-gen in the sender namespace with extra arguments; resolves to its report. */
async function gen(t: Topology, args: string[]): Promise<GenReport & { elapsed_s: number }> {
  const r = await new Proc(t.ns("snd"), [`${BUILD}/mcr-gen`, "--iface", "s0", "--json", ...args])
    .wait();
  if (r.code !== 0) throw new Error(`mcr-gen failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Poll `stats` until `pred` holds (a generous deadline, never a timing assertion). */
async function until(
  stats: () => Promise<StatsResult>,
  pred: (s: StatsResult) => boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<StatsResult> {
  const t0 = Date.now();
  for (;;) {
    const s = await stats();
    if (pred(s)) return s;
    if (Date.now() - t0 > timeoutMs) {
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(s.rules)}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

const SILENCE_MS = 500;
const INJECT_EVERY = 50;
const COUNT = 3000;

Deno.test({
  name:
    "stream health: a stream that stops is silent (stats, list, metric, /healthz, event); injected RTP gaps and TS CC errors are counted exactly",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await chainTopology("health");
    let d: Awaited<ReturnType<typeof startDaemon>> | undefined;
    try {
      d = await startDaemon({
        rules: [{
          name: "cam1",
          input: { interface: "r0", group: "239.1.1.1", port: 5001 },
          outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
          health: { silence_ms: SILENCE_MS, payload: "rtp+ts" },
        }],
      }, { netns: t.ns("rly"), metrics: "127.0.0.1:9464" });
      const daemon = d;
      const stats = async () => await daemon.ok("stats") as StatsResult;
      const cam1 = (s: StatsResult) => s.rules.find((r) => r.name === "cam1")!;

      // 3000 datagrams at 2 kpps, a gap and a CC error injected into every 50th
      const g = await gen(t, [
        "--dst",
        "239.1.1.1:5001",
        "--payload",
        "rtp+ts",
        "--inject-every",
        String(INJECT_EVERY),
        "--rate",
        "2000",
        "--count",
        String(COUNT),
      ]);
      const stopped = Date.now();
      assert.equal(g.sent, COUNT);
      const silent = await until(stats, (s) => cam1(s).stream?.alarm === "silent", "silent");
      console.log(
        `stream health: silent ${Date.now() - stopped} ms after the sender stopped ` +
          `(silence_ms ${SILENCE_MS}; polled every 20 ms; a busy machine)`,
      );
      const r = cam1(silent);
      const st = r.stream!;
      assert.match(st.reason ?? "", /no datagram for/);
      assert.ok((st.last_packet_age_ms ?? 0) >= SILENCE_MS, JSON.stringify(st));
      // exact counts of what the sender injected (plus what the relay did not see, if any)
      const injected = Math.floor(COUNT / INJECT_EVERY);
      const missed = COUNT - r.packets;
      assert.ok(st.rtp && st.ts, JSON.stringify(st));
      assert.equal(st.rtp.packets, r.packets);
      assert.equal(st.rtp.invalid, 0);
      assert.equal(st.rtp.duplicates, 0);
      assert.equal(st.rtp.reordered, 0);
      assert.equal(st.rtp.resyncs, 0);
      assert.equal(st.ts.packets, 7 * r.packets);
      assert.equal(st.ts.sync_errors, 0);
      if (missed === 0) {
        assert.equal(st.rtp.lost, injected);
        assert.equal(st.ts.cc_errors, injected);
      } else {
        console.log(`stream health: the relay missed ${missed} datagrams (busy machine)`);
        assert.ok(st.rtp.lost >= injected && st.rtp.lost <= injected + missed, JSON.stringify(st));
        assert.ok(Math.abs(st.ts.cc_errors - injected) <= missed, JSON.stringify(st));
      }

      // the metric, /healthz and ctl list say so
      const page = (await fetchIn(t, "rly", "http://127.0.0.1:9464/metrics")).body;
      assert.equal(metric(page, "mcr_stream_alarm", { rule: "cam1", alarm: "silent" }), 1);
      assert.equal(metric(page, "mcr_stream_alarm", { rule: "cam1", alarm: "ok" }), 0);
      assert.equal(metric(page, "mcr_stream_rtp_lost", { rule: "cam1" }), st.rtp.lost);
      assert.equal(
        metric(page, "mcr_stream_ts_cc_errors_total", { rule: "cam1" }),
        st.ts.cc_errors,
      );
      const h = await fetchIn(t, "rly", "http://127.0.0.1:9464/healthz");
      assert.equal(h.status, 503, h.body);
      const hb = JSON.parse(h.body);
      assert.equal(hb.streams?.[0]?.rule, "cam1", h.body);
      assert.equal(hb.streams[0].alarm, "silent");
      const list = await daemon.ctl("list");
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /active, silent/);
      assert.match(list.stdout, /cam1: stream silent/);

      // the stream resumes (its sequence continues): ok again while it flows (polled meanwhile)
      const resumed = gen(t, [
        "--dst",
        "239.1.1.1:5001",
        "--payload",
        "rtp+ts",
        "--seq-start",
        String(COUNT),
        "--rate",
        "2000",
        "--duration",
        "4",
      ]);
      await until(stats, (s) => cam1(s).stream?.alarm === "ok", "ok again");
      let healthy = false;
      for (let i = 0; i < 100 && !healthy; i++) {
        healthy = (await fetchIn(t, "rly", "http://127.0.0.1:9464/healthz")).status === 200;
      }
      assert.ok(healthy, "/healthz 200 again while the stream flows");
      assert.ok((await resumed).sent > 0);

      const out = await daemon.stop();
      d = undefined;
      assert.equal(out.code, 0, out.stderr);
      // the events, in the relay's log
      assert.match(out.stderr, /stream cam1: silent: no datagram/);
    } finally {
      await d?.stop();
      await t.destroy();
    }
  },
});

const LIMIT_PPS = 5000;
const BURST = 100;
const OUT_LIMIT_PPS = 2000;

Deno.test({
  name:
    "policing: 20 kpps through a 5 kpps rule limit and a 2 kpps output limit: delivered + policed = matched, each within its limit",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await chainTopology("police");
    let d: Awaited<ReturnType<typeof startDaemon>> | undefined;
    try {
      const meter = await PathMeter.start(t, [CHAIN_IN, CHAIN_OUT]);
      d = await startDaemon({
        rules: [{
          name: "limited",
          input: { interface: "r0", group: "239.1.1.3", port: 5003 },
          outputs: [{ interface: "r1", group: "239.10.3.3", port: 6003 }],
          rate_limit: { pps: LIMIT_PPS, burst_packets: BURST },
        }, {
          name: "split",
          input: { interface: "r0", group: "239.1.1.4", port: 5004 },
          outputs: [
            { interface: "r1", group: "239.10.4.4", port: 6004 },
            {
              interface: "r1",
              group: "239.10.4.5",
              port: 6005,
              rate_limit: { pps: OUT_LIMIT_PPS, burst_packets: BURST },
            },
          ],
        }],
      }, { netns: t.ns("rly") });
      const daemon = d;
      const stats = async () => await daemon.ok("stats") as StatsResult;
      const sink = await startSink(t, "rcv", "d0", [
        "239.10.3.3:6003",
        "239.10.4.4:6004",
        "239.10.4.5:6005",
      ], { settle: true });
      const t0 = Date.now();
      const g = await gen(t, [
        "--dst",
        "239.1.1.3:5003",
        "--dst",
        "239.1.1.4:5004",
        "--rate",
        "40000", // 20 kpps per stream
        "--count",
        "40000",
        "--size",
        "256",
      ]);
      const up = await meter.read();
      const arrived = g.sent - up.hops[hopKey(CHAIN_IN)];
      const s = await quiesce(stats, { r0: arrived });
      // every frame reached the ring before now: their receive times span at most this
      const spanS = (Date.now() - t0) / 1000;
      const rule = (n: string) => s.rules.find((r) => r.name === n)!;
      const other = (o: OutputStats) =>
        o.ring_full + o.errors + o.ttl_expired + o.link_down + o.too_big + o.queued;

      const lim = rule("limited");
      const lo = lim.outputs[0];
      assert.ok(lim.policed !== undefined && lim.policed > 0, JSON.stringify(lim));
      assert.equal(lo.policed, lim.policed);
      assert.equal(lo.packets + lo.policed! + other(lo), lim.packets);
      assert.ok(lo.packets <= LIMIT_PPS * spanS + BURST, `${lo.packets} in ${spanS} s`);
      assert.ok(lo.packets >= Math.min(lim.packets, 1000), JSON.stringify(lim));

      const split = rule("split");
      const [free, capped] = split.outputs;
      assert.equal(split.policed, undefined); // no limit of its own
      assert.equal(free.policed, undefined);
      assert.equal(free.packets + other(free), split.packets);
      assert.ok(capped.policed! > 0, JSON.stringify(capped));
      assert.equal(capped.packets + capped.policed! + other(capped), split.packets);
      assert.ok(capped.packets <= OUT_LIMIT_PPS * spanS + BURST, `${capped.packets} in ${spanS} s`);
      assert.equal(s.drops.policed, lim.policed! + capped.policed!);
      console.log(
        `policing: offered ${g.sent / 2} per stream at 20 kpps; rule limit ${LIMIT_PPS} pps ` +
          `passed ${lo.packets}, output limit ${OUT_LIMIT_PPS} pps passed ${capped.packets} ` +
          `(arrival span ≤ ${spanS.toFixed(2)} s, sender ${g.elapsed_s.toFixed(2)} s)`,
      );

      // the receiver gets what the relay sent (or its sockets / the veth count the loss)
      const out = await daemon.stop();
      d = undefined;
      assert.equal(out.code, 0, out.stderr);
      const sent = lo.packets + free.packets + capped.packets;
      const rep = await sink.settle(sent);
      const down = (await meter.read()).hops[hopKey(CHAIN_OUT)];
      assert.equal(rep.total.received + (rep.socket_drops ?? 0) + down, sent, JSON.stringify(rep));
      assert.equal(rep.total.duplicates, 0);
    } finally {
      await d?.stop();
      await t.destroy();
    }
  },
});

/**
 * The stream monitor (src/relay/stream_monitor.ts) over a model clock and a
 * synthetic counter block: a rule with `health` is `silent` once no datagram
 * came for `silence_ms` (decided at the first look after that), `low_rate`
 * under `min_pps` over a full second, `ok` again when the stream is back;
 * each change is one event; the last datagram's age comes from the kernel
 * receive time the worker writes (also across its 2^32 µs wrap); and
 * `/healthz` (health.ts) names the unhealthy stream.
 */
import assert from "node:assert/strict";
import {
  COUNTER_SLOTS,
  Ext,
  extBase,
  In,
  inBase,
  newCounterBlock,
  RULE_BASE,
  RULE_WORDS,
  W_WORDS,
} from "../../src/datapath/counters.ts";
import type { TableRule } from "../../src/datapath/messages.ts";
import { type StreamEvent, StreamMonitor, TICK_MS } from "../../src/relay/stream_monitor.ts";
import { collectStats, type InputView, type StatsSource } from "../../src/relay/stats.ts";
import { Links } from "../../src/relay/links.ts";
import { health } from "../../src/control/health.ts";

const SLOT = 5;
const SILENCE = 500;
const MIN_PPS = 100;

function setup(start: number) {
  const counters = newCounterBlock();
  const worker = {
    index: 0,
    state: "running" as const,
    restarts: 0,
    counters,
    retired: new Float64Array(W_WORDS),
    worker: {},
  };
  const rule: TableRule = {
    slot: SLOT,
    id: "0123456789abcdef",
    name: "cam1",
    group: 0xef010101,
    prefixLen: 32,
    port: 5001,
    source: 0,
    vlan: -1,
    outputs: [],
    health: { silenceMs: SILENCE, minPps: MIN_PPS, clockRate: 90_000 },
  };
  const input: InputView = {
    name: "eth0",
    slot: 0,
    gen: 1,
    table: { version: 1, interface: "eth0", rules: [rule] },
    fanoutId: 0,
    members: [{ index: 0, state: "running", restarts: 0, retiredFrames: 0, worker }],
  };
  counters[inBase(0) + In.owner] = 1;
  let now = start;
  const events: (StreamEvent & { at: number })[] = [];
  const src = (): StatsSource => ({
    inputs: [input],
    workers: [worker],
    retired: new Float64Array(COUNTER_SLOTS),
    links: new Links(),
    outputErrors: new Map(),
    streams: monitor,
  });
  const monitor: StreamMonitor = new StreamMonitor(
    src,
    (e) => events.push({ ...e, at: now }),
    () => now,
    false,
  );
  monitor.refresh();
  const rb = RULE_BASE + SLOT * RULE_WORDS;
  /** One tick of the model: `n` datagrams arrived, the last `lateMs` before the look. */
  const step = (n: number, lateMs = 1) => {
    now += TICK_MS;
    if (n > 0) {
      counters[rb] += n;
      counters[rb + 1] += n * 1316;
      counters[extBase(SLOT) + Ext.lastRxUs] = ((now - lateMs) * 1000) % 2 ** 32;
    }
    monitor.tick();
  };
  return {
    step,
    events,
    monitor,
    src,
    get now() {
      return now;
    },
    id: rule.id,
  };
}

Deno.test("stream monitor: silent after silence_ms, ok when back, low_rate under min_pps", () => {
  const m = setup(1_750_000_000_000);
  const view = () => m.monitor.view(m.id)!;
  // nothing yet: ok until silence_ms has passed since the rule started, then silent
  for (let t = TICK_MS; t < SILENCE; t += TICK_MS) {
    m.step(0);
    assert.equal(view().alarm, "ok", `at ${t} ms`);
  }
  m.step(0);
  assert.equal(view().alarm, "silent");
  assert.match(view().reason!, /no datagram since the rule started/);
  assert.equal(view().lastPacketAgeMs, null);
  // 1000 pps for 2 s: ok, and the rate over the last second
  for (let i = 0; i < 40; i++) m.step(50);
  assert.equal(view().alarm, "ok");
  assert.equal(Math.round(view().pps), 1000);
  assert.equal(Math.round(view().bps), 1000 * 1316 * 8);
  assert.equal(view().lastPacketAgeMs, 1);
  // 40 pps: low_rate once a full second is under min_pps
  for (let i = 0; i < 25; i++) m.step(2);
  assert.equal(view().alarm, "low_rate");
  assert.match(view().reason!, /40 datagrams\/s over the last second, under min_pps 100/);
  // the stream stops: silent at the first look at or after silence_ms since its last datagram
  const last = m.now - 1;
  let ticks = 0;
  while (view().alarm !== "silent") {
    m.step(0);
    ticks++;
    assert.ok(ticks < 100);
  }
  const age = m.now - last;
  assert.ok(age >= SILENCE && age < SILENCE + TICK_MS, `silent at age ${age} ms`);
  assert.equal(view().lastPacketAgeMs, age);
  assert.match(view().reason!, /no datagram for 0\.5 s/);
  // back: under min_pps over the last second at first, then ok
  m.step(50);
  assert.equal(view().alarm, "low_rate");
  for (let i = 0; i < 20; i++) m.step(50);
  assert.equal(view().alarm, "ok");
  assert.deepEqual(m.events.map((e) => e.alarm), [
    "silent",
    "ok",
    "low_rate",
    "silent",
    "low_rate",
    "ok",
  ]);
  assert.ok(m.events.every((e) => e.rule === "cam1" && e.id === m.id));
});

Deno.test("stream monitor: the last datagram's age across the 2^32 µs wrap of the receive time", () => {
  // the model clock starts 20 ms before a multiple of 2^32 µs
  const wrap = Math.ceil(1_750_000_000_000_000 / 2 ** 32) * 2 ** 32 / 1000;
  const m = setup(wrap - 20);
  m.step(10, 40); // the datagram arrived before the wrap, the look is after it
  assert.equal(m.monitor.view(m.id)!.lastPacketAgeMs, 40);
  assert.equal(m.monitor.view(m.id)!.alarm, "ok");
});

Deno.test("stream monitor: stats and /healthz name the unhealthy stream", () => {
  const m = setup(1_750_000_000_000);
  for (let t = 0; t <= SILENCE; t += TICK_MS) m.step(0);
  const s = collectStats(m.src());
  const r = s.rules[0];
  assert.equal(r.stream?.alarm, "silent");
  assert.equal(r.stream?.rtp, undefined); // no payload analysis asked for
  // the rule is pending here (no link table): /healthz lists it as a rule, not as a stream
  const active = { ...r, state: "active" as const, pps: 0, bps: 0, outputs: [] };
  const h = health({ workers: [], interfaces: [], rules: [active] });
  assert.equal(h.status, "fail");
  assert.deepEqual(h.streams?.map((x) => [x.rule, x.alarm]), [["cam1", "silent"]]);
  assert.match(h.problems.join("\n"), /rule cam1: stream silent: no datagram since/);
  const ok = health({
    workers: [],
    interfaces: [],
    rules: [{ ...active, stream: { ...r.stream!, alarm: "ok" } }],
  });
  assert.equal(ok.status, "ok");
  assert.equal(ok.streams, undefined);
});

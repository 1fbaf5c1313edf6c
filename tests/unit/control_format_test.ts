/**
 * What `ctl` and `top` print for people never carries a raw terminal control:
 * names, reasons and interfaces from the daemon are shown with C0/C1
 * controls, bidi overrides and invisible characters escaped, and tables stay
 * aligned.
 */
import assert from "node:assert/strict";
import type { ListedRule, StatsResult } from "../../src/control/results.ts";
import { formatList, formatStatsResult, formatWorkers, termSafe } from "../../src/client/format.ts";
import { renderTop } from "../../src/client/top.ts";

/** ESC, CSI (C1), NUL, BEL, DEL, RLO (bidi override), LRI, zero-width space, line separator, BOM. */
const HOSTILE = "\x1b[2J\u009b31m\x00\x07\x7f\u202e\u2066\u200b\u2028\ufeff";
/** Any character a terminal may act on or hide (tab and newline aside). */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/;

function assertSafe(text: string): void {
  const m = UNSAFE.exec(text);
  assert.equal(m, null, `raw U+${m?.[0].charCodeAt(0).toString(16)} in:\n${text}`);
}

const output = (iface: string) => ({
  interface: iface,
  group: "239.2.2.2",
  port: 6000,
  ttl: 1 as const,
  dscp: 0,
  state: "error" as const,
  reason: `no address on ${iface}`,
  packets: 1,
  bytes: 100,
  pps: 0,
  bps: 0,
  ring_full: 0,
  errors: 0,
  ttl_expired: 0,
  link_down: 0,
  too_big: 0,
  fragmented: 0,
  standby: 0,
  queued: 0,
});

const listed: ListedRule = {
  id: "0123456789abcdef",
  name: `cam${HOSTILE}`,
  enabled: true,
  state: "error",
  reason: `link down${HOSTILE}`,
  input: { interface: `eth${HOSTILE}`, group: "239.1.1.1", port: 5000 },
  outputs: [output(`out${HOSTILE}`)],
  packets: 1,
  bytes: 100,
  pps: 0,
  bps: 0,
  drops: 0,
};

const stats: StatsResult = {
  time: "2026-01-01T00:00:00.000Z",
  uptime_s: 1,
  rate_window_s: 1,
  rules: [{
    id: listed.id,
    name: listed.name,
    state: "error",
    reason: listed.reason,
    input: listed.input,
    packets: 1,
    bytes: 100,
    pps: 0,
    bps: 0,
    outputs: [output(`out${HOSTILE}`)],
  }],
  interfaces: [{
    name: `eth${HOSTILE}`,
    state: "error",
    reason: HOSTILE,
    frames: 1,
    bytes: 1,
    matched: 1,
    sent: 1,
    kernel_packets: 1,
    kernel_drops: 0,
    kernel_freezes: 0,
    polls: 1,
    gathers: 0,
    restarts: 0,
    workers: 1,
    fanout_id: 1,
    drops: { [`tx${HOSTILE}`]: 1 },
    pps: 0,
    bps: 0,
    kernel_drops_ps: 0,
  }],
  workers: [{
    interface: `eth${HOSTILE}`,
    index: 0,
    worker: 0,
    state: "error",
    reason: HOSTILE,
    restarts: 0,
    frames: 1,
    heartbeat_age_ms: null,
  }],
  pool: [{
    index: 0,
    state: "error",
    reason: HOSTILE,
    restarts: 0,
    dedicated: `eth${HOSTILE}`,
    interfaces: 1,
    rings: 0,
    polls: 1,
    gathers: 0,
    nice: null,
    priority_raises: 0,
    heartbeat_age_ms: null,
  }],
  drops: { [`odd${HOSTILE}`]: 1 },
  drops_ps: {},
};

Deno.test("format: list, stats, workers and top escape terminal controls in daemon strings", () => {
  const list = formatList([listed]);
  assertSafe(list);
  assert.match(list, /cam\\u001b\[2J\\u009b31m/, "escaped visibly, not dropped");
  assertSafe(formatStatsResult(stats));
  assertSafe(formatWorkers(stats.workers, stats.pool));
  assertSafe(renderTop(stats, `/run/mcr/${HOSTILE}.sock`, 400));
});

Deno.test("format: escaping keeps table columns aligned", () => {
  const lines = formatList([listed, { ...listed, name: "plain", id: "fedcba9876543210" }])
    .split("\n");
  assert.equal(
    lines[1].indexOf("0123456789abcdef"),
    lines[2].indexOf("fedcba9876543210"),
    lines.join("\n"),
  );
});

Deno.test("format: termSafe escapes controls and invisible characters, keeps the rest", () => {
  assert.equal(termSafe("a\u009bb"), "a\\u009bb");
  assert.equal(termSafe("\u202eevil"), "\\u202eevil");
  assert.equal(termSafe("line1\nline2\tx"), "line1\nline2\tx");
  assert.equal(termSafe("café 239.1.1.1:5000 → eth0"), "café 239.1.1.1:5000 → eth0");
  assertSafe(termSafe(HOSTILE));
});

Deno.test("format: workers shows the fanout members, then the pool with each worker's priority", () => {
  const member = {
    ...stats.workers[0],
    interface: "eth0",
    reason: undefined,
    state: "running" as const,
  };
  const worker = {
    ...stats.pool[0],
    state: "running" as const,
    reason: undefined,
    dedicated: undefined,
    rings: 1,
  };
  const text = formatWorkers([member], [
    { ...worker, index: 0, nice: -10, priority_raises: 3 },
    { ...worker, index: 1, nice: 0, priority_raises: 0 },
    { ...worker, index: 2, state: "error", nice: null, priority_raises: 1 },
  ]);
  const [members, pool] = text.split("\n\n").map((t) => t.split("\n"));
  assert.match(members[0], /^INTERFACE\s+INDEX\s+WORKER\s+STATE/);
  assert.match(members[1], /^eth0\s+0\s+0\s+running/);
  assert.match(pool[0], /^\s*WORKER\s+STATE\s+INTERFACES\s+RINGS\s+NICE\s+RAISES/);
  assert.match(pool[1], /^\s*0\s+running\s+1\s+1\s+-10\s+3\s/);
  assert.match(pool[2], /^\s*1\s+running\s+1\s+1\s+0\s+0\s/);
  assert.match(pool[3], /^\s*2\s+error\s+1\s+1\s+-\s+1\s/, "not running: no nice value");
  assert.equal(formatWorkers([], []), "no workers (no enabled rules)");
});

/**
 * Control plane pieces without a daemon: line framing with its size cap,
 * request decoding and error replies, `ctl add` flag parsing (rates:
 * rates_test.ts), the health verdict, live log levels, and the metrics
 * rendering (parsed back with a Prometheus text parser).
 */
import assert from "node:assert/strict";
import parsePrometheus from "parse-prometheus-text-format";
import {
  decodeRequest,
  LineSplitter,
  MAX_REQUEST_BYTES,
  PROTOCOL_VERSION,
} from "../../src/control/protocol.ts";
import { parseOutputSpec, requestFor, ruleFromArgs } from "../../src/client/ctl.ts";
import { buildRegistry, health, parseListen } from "../../src/control/metrics.ts";
import { HealthTracker } from "../../src/control/health.ts";
import { DROP_NAMES } from "../../src/datapath/packet.ts";
import { getLogLevels, levelFor, setLogLevel } from "../../src/common/log.ts";
import type { RelayStats } from "../../src/relay/stats.ts";
import type { StatsResult } from "../../src/control/results.ts";

const enc = new TextEncoder();

Deno.test("LineSplitter: lines across chunks, CRLF, several per chunk, end of stream", () => {
  const s = new LineSplitter(100);
  assert.deepEqual(s.push(enc.encode('{"a"')), []);
  assert.deepEqual(s.push(enc.encode(':1}\r\n{"b":2}\n{"c"')), [
    { line: '{"a":1}' },
    { line: '{"b":2}' },
  ]);
  assert.equal(s.end(), '{"c"');
  assert.equal(s.end(), null);
});

Deno.test("LineSplitter: an oversized line is reported once, discarded, and the next line works", () => {
  const s = new LineSplitter(10);
  const ev = [
    ...s.push(enc.encode("x".repeat(8))),
    ...s.push(enc.encode("x".repeat(8))),
    ...s.push(enc.encode("x".repeat(50))),
    ...s.push(enc.encode("yy\nok\n")),
  ];
  assert.deepEqual(ev, [{ tooLarge: true }, { line: "ok" }]);
  assert.equal(s.end(), null);
  assert.ok(MAX_REQUEST_BYTES >= 16 * 1024, "a rule with 64 outputs fits");
});

Deno.test("decodeRequest: valid, garbage, wrong shape, wrong version", () => {
  const ok = decodeRequest(JSON.stringify({ v: 1, id: 7, cmd: "list" }));
  assert.ok(ok.ok && ok.req.cmd === "list" && ok.req.id === 7);
  const garbage = decodeRequest("hello");
  assert.ok(!garbage.ok && garbage.reply.error.code === "bad_request" && garbage.reply.id === null);
  const shape = decodeRequest(JSON.stringify({ v: 1, id: "a", cmd: 5 }));
  assert.ok(!shape.ok && shape.reply.error.code === "bad_request" && shape.reply.id === "a");
  const arr = decodeRequest("[1,2]");
  assert.ok(!arr.ok && arr.reply.error.code === "bad_request");
  const v = decodeRequest(JSON.stringify({ v: 99, id: 1, cmd: "ping" }));
  assert.ok(!v.ok && v.reply.error.code === "unsupported_version" && v.reply.id === 1);
  assert.equal(v.ok ? 0 : v.reply.v, PROTOCOL_VERSION);
});

Deno.test("ctl add: flags build the rule object; outputs G:P:IF with alias interface names", () => {
  assert.deepEqual(parseOutputSpec("239.1.1.1:5000:eth0:1"), {
    group: "239.1.1.1",
    port: 5000,
    interface: "eth0:1",
  });
  const rule = ruleFromArgs(
    {
      "input-interface": "eth0",
      "input-group": "239.1.1.1",
      "input-port": "5001",
      outputs: "239.10.1.1:6001:eth1,10.0.0.5:7001:eth2",
      name: "cam9",
      ttl: "decrement",
    } as Parameters<typeof ruleFromArgs>[0],
    [],
  );
  assert.deepEqual(rule, {
    name: "cam9",
    input: { interface: "eth0", group: "239.1.1.1", port: 5001 },
    outputs: [
      { group: "239.10.1.1", port: 6001, interface: "eth1" },
      { group: "10.0.0.5", port: 7001, interface: "eth2" },
    ],
    ttl: "decrement",
  });
  assert.throws(() => parseOutputSpec("239.1.1.1:5000"), /GROUP:PORT:INTERFACE/);
  const v = {} as Parameters<typeof requestFor>[0];
  assert.deepEqual(requestFor(v, ["remove", "cam1"]), { cmd: "remove", args: { rule: "cam1" } });
  assert.deepEqual(requestFor(v, ["log-level", "set", "debug", "supervisor"]), {
    cmd: "log-level",
    args: { action: "set", level: "debug", category: "supervisor" },
  });
  assert.throws(() => requestFor(v, ["frob"]), /unknown command/);
  assert.throws(() => requestFor(v, ["add"]), /--input-interface/);
});

function fakeStats(packets: number, frames: number, drops: number): RelayStats {
  // Cast: the supervisor's stats shape grows; these are the fields the control plane reads.
  return ({
    rules: [{
      id: "abc",
      name: "cam1",
      state: "active",
      input: { interface: "r0", group: "239.1.1.1", port: 5001 },
      packets,
      bytes: packets * 100,
      outputs: [{
        interface: "r1",
        group: "239.10.1.1",
        port: 6001,
        state: "active",
        packets,
        bytes: packets * 100,
        ring_full: 0,
        errors: 0,
        ttl_expired: 0,
        link_down: 0,
        too_big: 0,
        fragmented: 0,
        queued: 0,
      }],
    }],
    interfaces: [{
      name: "r0",
      state: "running",
      frames,
      bytes: frames * 142,
      matched: packets,
      sent: packets,
      kernel_packets: frames,
      kernel_drops: drops,
      kernel_freezes: 0,
      polls: 0,
      gathers: 0,
      restarts: 0,
      workers: 1,
      fanout_id: 1,
    }],
    drops: { no_match: frames - packets },
    workers: [],
  }) as unknown as RelayStats;
}

function result(s: RelayStats): StatsResult {
  return {
    time: new Date().toISOString(),
    uptime_s: 1,
    rate_window_s: 1,
    rules: s.rules.map((r) => ({
      ...r,
      pps: 0,
      bps: 0,
      outputs: r.outputs.map((o) => ({ ...o, pps: 0, bps: 0 })),
    })),
    interfaces: s.interfaces.map((i) => ({ ...i, pps: 0, bps: 0, kernel_drops_ps: 0 })),
    workers: [{
      interface: "r0",
      index: 0,
      worker: 0,
      state: "running",
      restarts: 0,
      frames: 1,
      heartbeat_age_ms: 3,
    }],
    pool: [],
    drops: s.drops,
    drops_ps: {},
  };
}

Deno.test("health: fails on anything not working, with the reason", () => {
  const ok = result(fakeStats(1, 1, 0));
  assert.equal(health(ok).status, "ok");
  const bad = structuredClone(ok);
  bad.rules[0].state = "error";
  bad.rules[0].reason = "boom";
  assert.deepEqual(health(bad), { status: "fail", problems: ["rule cam1: error: boom"] });
  const down = structuredClone(ok);
  down.workers[0].state = "error";
  assert.equal(health(down).status, "fail");
  // a rule pending forever (its input interface does not exist) is not healthy
  const pending = structuredClone(ok);
  pending.rules[0].state = "pending";
  pending.rules[0].reason = "input interface r0 does not exist";
  assert.deepEqual(health(pending).problems, [
    "rule cam1: pending: input interface r0 does not exist",
  ]);
  // an output in error (link down) while the rule is active
  const out = structuredClone(ok);
  out.rules[0].outputs[0].state = "error";
  out.rules[0].outputs[0].reason = "output interface r1 is down";
  assert.deepEqual(health(out).problems, [
    "rule cam1 output r1 239.10.1.1:6001: error: output interface r1 is down",
  ]);
  // an input link without carrier
  const inDown = structuredClone(ok);
  inDown.interfaces[0].state = "down";
  inDown.interfaces[0].reason = "input interface r0 has no carrier";
  assert.deepEqual(health(inDown).problems, [
    "interface r0: down: input interface r0 has no carrier",
  ]);
});

Deno.test("metrics: Prometheus text parses and carries the counters with their labels", async () => {
  const s = result(fakeStats(1234, 2000, 7));
  s.rules[0].name = 'we"ird\\name';
  const text = await buildRegistry(() => s).metrics();
  const fams = parsePrometheus(text) as {
    name: string;
    type: string;
    metrics: { value: string; labels?: Record<string, string> }[];
  }[];
  const fam = (n: string) => fams.find((f) => f.name === n)!;
  assert.equal(fam("mcr_rule_packets_total").type, "COUNTER");
  assert.deepEqual(fam("mcr_rule_packets_total").metrics, [{
    value: "1234",
    labels: { rule: 'we"ird\\name', id: "abc", interface: "r0" },
  }]);
  assert.equal(fam("mcr_interface_kernel_drops_total").metrics[0].value, "7");
  assert.equal(
    fam("mcr_dropped_total").metrics.find((m) => m.labels?.reason === "no_match")!.value,
    "766",
  );
  assert.equal(fam("mcr_worker_up").metrics[0].value, "1");
  const st = fam("mcr_rule_state").metrics;
  assert.equal(st.find((m) => m.labels?.state === "active")!.value, "1");
  assert.equal(st.find((m) => m.labels?.state === "error")!.value, "0");
  // outputs are named as events, ctl and top name them; drop reasons as mcr_dropped_total's
  const out = fam("mcr_output_dropped_total").metrics;
  const o = s.rules[0].outputs[0];
  const name = `${o.interface} ${o.group}:${o.port}`;
  assert.ok(out.every((m) => m.labels?.output === name && m.labels?.rule === s.rules[0].name));
  assert.deepEqual(
    out.map((m) => m.labels?.reason).sort(),
    ["standby", "ttl_expired", "tx_error", "tx_link_down", "tx_ring_full", "tx_too_big"],
  );
  for (const m of out) assert.ok(DROP_NAMES.includes(m.labels!.reason), m.labels?.reason);
  assert.deepEqual(fam("mcr_role").metrics, [], "no role sample without a role in the snapshot");
  assert.equal(fam("mcr_reloads_total"), undefined, "no reload metrics without a tracker");
  assert.deepEqual(parseListen("127.0.0.1:9464"), { hostname: "127.0.0.1", port: 9464 });
  assert.deepEqual(parseListen("[::1]:9464"), { hostname: "::1", port: 9464 });
  assert.throws(() => parseListen("9464"));
});

Deno.test("metrics: mcr_role is 1 for the role in force, mcr_role_changes_total counts", async () => {
  const s = result(fakeStats(10, 20, 0));
  s.role = { role: "standby", changes: 3, since: "2026-11-30T00:00:00.000Z", set_by: "ctl" };
  const fams = parsePrometheus(await buildRegistry(() => s).metrics()) as {
    name: string;
    type: string;
    metrics: { value: string; labels?: Record<string, string> }[];
  }[];
  const fam = (n: string) => fams.find((f) => f.name === n)!;
  const role = fam("mcr_role");
  assert.equal(role.type, "GAUGE");
  assert.deepEqual(
    role.metrics.map((m) => [m.labels?.role, m.value]).sort(),
    [["active", "0"], ["standby", "1"]],
  );
  assert.equal(fam("mcr_role_changes_total").type, "COUNTER");
  assert.equal(fam("mcr_role_changes_total").metrics[0].value, "3");
  // a healthy standby is healthy, and says what it is
  const h = health(s);
  assert.equal(h.status, "ok");
  assert.equal(h.role, "standby");
});

Deno.test("log levels: global and per category, most specific wins, overrides removable", () => {
  setLogLevel("warning");
  setLogLevel("debug", "worker");
  setLogLevel("error", "worker.r0");
  assert.equal(levelFor("supervisor"), "warning");
  assert.equal(levelFor("worker.r1"), "debug");
  assert.equal(levelFor(["worker", "r0", "x"]), "error");
  assert.deepEqual(getLogLevels(), {
    global: "warning",
    categories: { worker: "debug", "worker.r0": "error" },
  });
  setLogLevel(null, "worker.r0");
  setLogLevel(null, "mcr.worker");
  assert.equal(levelFor("worker.r0"), "warning");
  setLogLevel("info");
});

Deno.test("health: a pending rule or starting input fails only after the grace period; faults at once", () => {
  let now = 1_000_000;
  const t = new HealthTracker(10_000, () => now);
  const ok = result(fakeStats(1, 1, 0));
  const pending = structuredClone(ok);
  pending.rules[0].state = "pending";
  pending.rules[0].reason = "input interface r0 does not exist";
  // pending since the tracker began (no event said otherwise)
  now += 9_000;
  const h = t.check(pending);
  assert.equal(h.status, "ok");
  assert.deepEqual(h.waiting, [
    "rule cam1: pending: input interface r0 does not exist (9 s of 10 s)",
  ]);
  now += 2_000;
  assert.deepEqual(t.check(pending).problems, [
    "rule cam1: pending: input interface r0 does not exist",
  ]);
  // active again, then pending anew: the clock restarts from the event
  t.observe({ type: "rule", rule: "cam1", id: ok.rules[0].id, state: "active" });
  t.observe({ type: "rule", rule: "cam1", id: ok.rules[0].id, state: "pending" });
  now += 5_000;
  assert.equal(t.check(pending).status, "ok");
  now += 6_000;
  assert.equal(t.check(pending).status, "fail");
  // an input starting (its rings opening) likewise; an error or a link down at once
  const starting = structuredClone(ok);
  starting.interfaces[0].state = "starting";
  t.observe({ type: "interface", interface: "r0", state: "starting" });
  assert.equal(t.check(starting).status, "ok");
  const down = structuredClone(ok);
  down.interfaces[0].state = "down";
  t.observe({ type: "interface", interface: "r0", state: "down" });
  assert.equal(t.check(down).status, "fail");
  const err = structuredClone(ok);
  err.rules[0].outputs[0].state = "error";
  assert.equal(t.check(err).status, "fail");
  assert.equal(t.check(ok).status, "ok");
  assert.equal(t.check(ok).waiting, undefined);
});

Deno.test("metrics: reloads counted by result, with the time and outcome of the last", async () => {
  let now = 1_700_000_000_000;
  const t = new HealthTracker(10_000, () => now);
  const s = result(fakeStats(1, 1, 0));
  const fams = async () =>
    parsePrometheus(await buildRegistry(() => s, t).metrics()) as {
      name: string;
      metrics: { value: string; labels?: Record<string, string> }[];
    }[];
  let f = await fams();
  assert.equal(f.find((x) => x.name === "mcr_last_reload_success")?.metrics.length ?? 0, 0);
  t.observe({ type: "reload", phase: "start", path: "r.json" });
  t.observe({ type: "reload", phase: "done", path: "r.json" });
  now += 1000;
  t.observe({ type: "reload", phase: "failed", path: "r.json", reason: "x" });
  f = await fams();
  const v = (n: string, l?: Record<string, string>) =>
    f.find((x) => x.name === n)!.metrics.find((m) =>
      !l || Object.entries(l).every(([k, w]) => m.labels?.[k] === w)
    )!.value;
  assert.equal(v("mcr_reloads_total", { result: "done" }), "1");
  assert.equal(v("mcr_reloads_total", { result: "failed" }), "1");
  assert.equal(v("mcr_last_reload_success"), "0");
  assert.equal(Number(v("mcr_last_reload_timestamp_seconds")), 1_700_000_001);
});

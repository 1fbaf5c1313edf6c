/**
 * rules.json `health` and `rate_limit` (rule and output): what is accepted
 * and normalized (defaults), what is refused and with which rule, field and
 * reason — a limit without a rate, a burst without its rate, payload
 * analysis on a range or an any-port input or over a fanout that spreads a
 * stream, clock_rate without RTP, more analysed rules than the relay allows.
 */
import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../../src/config/mod.ts";
import { MAX_ANALYSED_RULES, MAX_HEALTH_RULES } from "../../src/config/limits.ts";
import { ruleKey, ruleSpecs } from "../../src/relay/relay_config.ts";

const rule = (extra: Record<string, unknown> = {}, out: Record<string, unknown> = {}) => ({
  name: "cam1",
  input: { interface: "eth0", group: "239.1.1.1", port: 5001 },
  outputs: [{ interface: "eth1", group: "239.10.1.1", port: 6001, ...out }],
  ...extra,
});

/** The messages of a refused configuration, one line each ("rule 0 "cam1": field: why"). */
function refused(cfg: unknown): string[] {
  try {
    parseConfig(cfg);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message.split("\n");
  }
  throw new Error("accepted");
}

Deno.test("stream config: health and rate_limit are normalized with their defaults", () => {
  const c = parseConfig({
    rules: [
      rule(
        { health: { payload: "rtp+ts" }, rate_limit: { pps: 5000 } },
        { rate_limit: { bps: 80_000_000, burst_bytes: 100_000 } },
      ),
      {
        ...rule({ health: { silence_ms: 300, min_pps: 50 } }),
        name: "cam2",
        input: {
          interface: "eth0",
          group: "239.1.1.2",
          port: 5001,
        },
      },
    ],
  });
  const [r1, r2] = c.rules;
  assert.deepEqual(r1.health, { silence_ms: 1000, clock_rate: 90_000, payload: "rtp+ts" });
  assert.deepEqual(r1.rate_limit, { pps: 5000, burst_packets: 250, burst_bytes: 1500 });
  assert.deepEqual(r1.outputs[0].rate_limit, {
    bps: 80_000_000,
    burst_packets: 1,
    burst_bytes: 100_000,
  });
  assert.deepEqual(r2.health, { silence_ms: 300, min_pps: 50, clock_rate: 90_000 });
  assert.equal(r2.rate_limit, undefined);
  // what the data path gets
  const [s1] = ruleSpecs(c.rules);
  assert.deepEqual(s1.rateLimit, { pps: 5000, bps: 0, burstPackets: 250, burstBytes: 1500 });
  assert.deepEqual(s1.outputs[0].rateLimit, {
    pps: 0,
    bps: 80_000_000,
    burstPackets: 1,
    burstBytes: 100_000,
  });
  assert.deepEqual(s1.health, { silenceMs: 1000, minPps: 0, clockRate: 90_000, payload: "rtp+ts" });
});

Deno.test("stream config: refused limits and health name the rule, the field and why", () => {
  const lines = refused({
    rules: [
      rule({ rate_limit: {}, health: { clock_rate: 48000 } }, {
        rate_limit: { burst_packets: 5, bps: 1000 },
      }),
    ],
  });
  assert.ok(
    lines.some((l) => /rule 0 "cam1": rate_limit: needs pps, bps or both/.test(l)),
    lines.join("\n"),
  );
  assert.ok(
    lines.some((l) => /outputs\[0\]\.rate_limit\.burst_packets: applies to a pps limit/.test(l)),
    lines.join("\n"),
  );
  assert.ok(
    lines.some((l) => /health\.clock_rate: is the RTP timestamp clock/.test(l)),
    lines.join("\n"),
  );
  // structure: ranges, kinds and unknown keys (with a suggestion)
  const bad = refused({
    rules: [
      rule({ health: { silence_ms: 5, payload: "mpeg", silence: 1 }, rate_limit: { pps: 0 } }),
    ],
  });
  assert.ok(
    bad.some((l) => /health\.silence_ms: must be an integer from 100 to 3600000/.test(l)),
    bad.join("\n"),
  );
  assert.ok(
    bad.some((l) => /health\.payload: must be one of "rtp", "ts", "rtp\+ts"/.test(l)),
    bad.join("\n"),
  );
  assert.ok(
    bad.some((l) => /silence_ms/.test(l) && /health/.test(l) && /silence\b/.test(l)),
    bad.join("\n"),
  );
  assert.ok(bad.some((l) => /rate_limit\.pps: must be an integer from 1/.test(l)), bad.join("\n"));
});

Deno.test("stream config: payload analysis needs one stream on one worker", () => {
  const range = refused({
    rules: [{
      ...rule({ health: { payload: "ts" } }),
      input: { interface: "eth0", group: "239.1.0.0/16", port: 5001 },
      outputs: [{ interface: "eth1", group: "239.20.0.0/16", port: 6001 }],
    }],
  });
  assert.ok(
    range.some((l) => /health\.payload: analyses one stream, but the input takes a range/.test(l)),
    range.join("\n"),
  );
  const any = refused({
    rules: [{
      ...rule({ health: { payload: "rtp" } }),
      input: { interface: "eth0", group: "239.1.1.1", port: "any" },
    }],
  });
  assert.ok(any.some((l) => /takes every port/.test(l)), any.join("\n"));
  // two workers spreading frames round robin: refused; hash (the default) is fine
  const lb = refused({
    workers: 2,
    rx: { fanout: "lb" },
    rules: [rule({ health: { payload: "rtp" } })],
  });
  assert.ok(
    lb.some((l) =>
      /rule 0 "cam1": health\.payload: .*2 workers read eth0 with fanout "lb"/.test(l)
    ),
    lb.join("\n"),
  );
  const own = refused({
    interfaces: { eth0: { workers: 3, fanout: "random" } },
    rules: [rule({ health: { payload: "ts" } })],
  });
  assert.ok(own.some((l) => /3 workers read eth0 with fanout "random"/.test(l)), own.join("\n"));
  parseConfig({ workers: 2, rules: [rule({ health: { payload: "rtp" } })] });
  parseConfig({ workers: 2, rx: { fanout: "lb" }, rules: [rule({ health: { silence_ms: 500 } })] });
});

Deno.test("stream config: at most MAX_ANALYSED_RULES rules with payload analysis", () => {
  const rules = Array.from({ length: MAX_ANALYSED_RULES + 1 }, (_, i) => ({
    name: `r${i}`,
    input: { interface: "eth0", group: `239.2.${i >> 8}.${i & 0xff}`, port: 5000 },
    outputs: [{ interface: "eth1", group: "239.10.1.1", port: 6000 + (i % 1000) }],
    health: { payload: "ts" },
  }));
  const lines = refused({ rules });
  assert.ok(
    lines.some((l) => l.includes(`at most ${MAX_ANALYSED_RULES} are allowed`)),
    lines.join("\n"),
  );
  parseConfig({ rules: rules.slice(0, MAX_ANALYSED_RULES) });
});

Deno.test("stream config: at most MAX_HEALTH_RULES rules with health; a changed option is a change", () => {
  const rules = Array.from({ length: MAX_HEALTH_RULES + 1 }, (_, i) => ({
    name: `h${i}`,
    input: { interface: "eth0", group: `239.3.${i >> 8}.${i & 0xff}`, port: 5000 },
    outputs: [{ interface: "eth1", group: "239.10.1.1", port: 6000 }],
    health: {},
  }));
  const lines = refused({ rules });
  assert.ok(lines.some((l) => l.includes(`at most ${MAX_HEALTH_RULES} are allowed`)), lines[0]);
  parseConfig({ rules: rules.slice(0, MAX_HEALTH_RULES) });
  // a reload sees a rule whose health or rate_limit changed as changed (it is re-sent to workers)
  const [a] = parseConfig({ rules: [rule({ health: { silence_ms: 500 } })] }).rules;
  const [b] = parseConfig({ rules: [rule({ health: { silence_ms: 600 } })] }).rules;
  const [c] =
    parseConfig({ rules: [rule({ health: { silence_ms: 500 } }, { rate_limit: { pps: 9 } })] })
      .rules;
  assert.notEqual(ruleKey(a), ruleKey(b));
  assert.notEqual(ruleKey(a), ruleKey(c));
  assert.equal(
    ruleKey(a),
    ruleKey(parseConfig({ rules: [rule({ health: { silence_ms: 500 } })] }).rules[0]),
  );
});

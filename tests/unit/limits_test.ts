/**
 * The limit arithmetic: what `check` accepts, start accepts, and what one
 * refuses the other refuses. `check` is `parseConfig` (its capacity and
 * tuning issues); start is `parseConfig` and then the supervisor, which
 * allocates rule, output, input and link slots on its own. Each case runs at
 * a cap and one past it. Interfaces that do not exist cost no ring, so no
 * privileges are needed.
 */
import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../../src/config/mod.ts";
import {
  MAX_DATA_PATH_WORKERS,
  MAX_INPUT_SLOTS,
  MAX_INTERFACES,
  MAX_OUTPUT_SLOTS,
  MAX_RULES,
  MAX_WORKERS,
} from "../../src/config/limits.ts";
import { ruleSpecs } from "../../src/relay/relay.ts";
import { Supervisor } from "../../src/relay/supervisor.ts";
import type { RuleSpec } from "../../src/relay/tables.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

/** A dotted quad 239.a.b.c from a number below 2^24. */
function group(n: number): string {
  return `239.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

interface Shape {
  /** Rules. */
  rules: number;
  /** Outputs per rule. */
  outputs: number;
  /** Input interface of rule k. */
  input: (k: number) => string;
  /** Output interface of output j of rule k. */
  output: (k: number, j: number) => string;
}

function config(s: Shape) {
  return {
    rules: Array.from({ length: s.rules }, (_, k) => ({
      name: `r${k}`,
      input: { interface: s.input(k), group: group(k), port: 5000 },
      outputs: Array.from({ length: s.outputs }, (_, j) => ({
        interface: s.output(k, j),
        group: group(k),
        port: 6000 + j,
      })),
    })),
  };
}

/** The same rules as the supervisor takes them, built without `check` (to see it refuse alone). */
function specs(s: Shape): RuleSpec[] {
  const ip = (n: number) => (0xef000000 | n) >>> 0;
  return Array.from({ length: s.rules }, (_, k) => ({
    id: `r${k}`,
    name: `r${k}`,
    input: {
      interface: s.input(k),
      group: ip(k),
      prefixLen: 32,
      port: 5000,
      source: 0,
      vlan: -1,
      joins: [ip(k)],
    },
    outputs: Array.from({ length: s.outputs }, (_, j) => ({
      interface: s.output(k, j),
      dst: ip(k),
      hostBits: 0,
      port: 6000 + j,
      srcIp: 0,
      srcPort: 0,
      ttl: 1,
      tos: 0,
    })),
  }));
}

/** What `check` says: null when it accepts, else its message. */
function check(cfg: unknown): string | null {
  try {
    parseConfig(cfg);
    return null;
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
}

/** What the supervisor says about `rules`: null when it runs them, else its error. */
async function supervisor(rules: RuleSpec[]): Promise<string | null> {
  const sup = new Supervisor();
  try {
    await sup.setRules(rules);
    return null;
  } catch (e) {
    return (e as Error).message;
  } finally {
    await sup.stop();
  }
}

/** Missing interfaces (no ring is opened for them): `mcrnx<k>`. */
const nx = (k: number) => `mcrnx${k}`;

/** At the cap `check` and start accept; one past it both refuse, `check` naming `what`. */
async function atCap(at: Shape, over: Shape, what: RegExp): Promise<void> {
  const cfgAt = config(at);
  assert.equal(check(cfgAt), null, "check accepts the configuration at the cap");
  assert.equal(
    await supervisor(ruleSpecs(parseConfig(cfgAt).rules)),
    null,
    "start accepts what check accepts",
  );
  const msg = check(config(over));
  assert.ok(msg !== null, "check refuses one past the cap");
  assert.match(msg, what);
  assert.notEqual(await supervisor(specs(over)), null, "the supervisor refuses it too");
}

Deno.test({
  name: "limits: 65,536 rules with 262,144 outputs run; one output more is refused by both",
  ...opts,
  async fn() {
    const perRule = MAX_OUTPUT_SLOTS / MAX_RULES;
    const at = { rules: MAX_RULES, outputs: perRule, input: () => nx(0), output: () => nx(1) };
    const over = { ...at, rules: MAX_RULES / 2 + 1, outputs: 2 * perRule };
    await atCap(at, over, /has 262152 outputs in its enabled rules; at most 262144/);
  },
});

Deno.test({
  name: "limits: 4096 input interfaces and 8192 interface names run; one more of each is refused",
  ...opts,
  async fn() {
    // 4096 inputs, each rule sending on an interface of its own: 8192 names
    const at = {
      rules: MAX_INPUT_SLOTS,
      outputs: 1,
      input: (k: number) => nx(k),
      output: (k: number) => nx(MAX_INPUT_SLOTS + k),
    };
    assert.equal(MAX_INTERFACES, 2 * MAX_INPUT_SLOTS);
    await atCap(
      at,
      { ...at, rules: MAX_INPUT_SLOTS + 1 },
      /has 4097 input interfaces in its enabled rules; at most 4096/,
    );
    // within the input cap, one interface name too many (an output on a 8193rd interface)
    await atCap(
      at,
      { ...at, outputs: 2, output: (k: number, j: number) => nx(MAX_INPUT_SLOTS + k + j) },
      /names 8193 interfaces \(inputs and outputs\) in its enabled rules; at most 8192/,
    );
  },
});

Deno.test("limits: worker counts, CPUs and fanout, as check and start read them", () => {
  const rules = config({ rules: 3, outputs: 1, input: nx, output: () => nx(9) }).rules;
  const dedicated = (n: number) =>
    Object.fromEntries(Array.from({ length: n }, (_, k) => [nx(k), { workers: MAX_WORKERS }]));
  // 64 in the pool + 3 × 64 dedicated = 256: the most a relay runs
  assert.equal(MAX_WORKERS + 3 * MAX_WORKERS, MAX_DATA_PATH_WORKERS);
  assert.equal(check({ workers: MAX_WORKERS, interfaces: dedicated(3), rules }), null);
  const more = [
    ...rules,
    ...config({ rules: 1, outputs: 1, input: () => nx(3), output: () => nx(9) }).rules.map((r) => ({
      ...r,
      name: "extra",
    })),
  ];
  assert.match(
    check({ workers: MAX_WORKERS, interfaces: dedicated(4), rules: more }) ?? "",
    /adds up to 320 data-path workers/,
  );
  assert.match(check({ workers: MAX_WORKERS + 1, rules }) ?? "", /workers/);
  // no fanout group ("none") is no mode a configuration may name: every worker would get
  // every frame
  assert.match(check({ workers: 2, rx: { fanout: "none" }, rules }) ?? "", /rx\.fanout/);
  assert.equal(check({ workers: 2, rx: { fanout: "hash" }, rules }), null);
  // a CPU listed twice
  assert.match(check({ workers: 2, cpus: [0, 0], rules }) ?? "", /cpus/);
  assert.equal(check({ workers: 2, cpus: [0, 1], rules }), null);
});

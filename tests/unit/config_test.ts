/**
 * The configuration side (src/config/): structure, semantics, normalization,
 * rule ids, limits, error messages and fixtures, and property tests.
 *
 * Long file: one test per behaviour of rules.json, in the order the README
 * documents them; the file, reading and size caps are config_file_test.ts.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type Config,
  ConfigError,
  type ConfigIssue,
  ConfigSchema,
  isValidInterfaceName,
  loadConfig,
  MAX_INPUT_SLOTS,
  MAX_OUTPUT_SLOTS,
  MAX_OUTPUTS_PER_RULE,
  MAX_RULES,
  parseConfig,
  parseConfigText,
  ruleId,
  validateRule,
} from "../../src/config/mod.ts";
import { formatIPv4, parseIPv4 } from "../../src/common/net.ts";
// Fixtures are imported (no read permission needed); the directory listing
// check below makes sure none is forgotten when the tests may read files.
import expectedErrors from "../fixtures/config/expected-errors.json" with { type: "json" };
import invalidDuplicateInputs from "../fixtures/config/invalid-duplicate-inputs.json" with {
  type: "json",
};
import invalidDuplicateNames from "../fixtures/config/invalid-duplicate-names.json" with {
  type: "json",
};
import invalidDuplicateOutputs from "../fixtures/config/invalid-duplicate-outputs.json" with {
  type: "json",
};
import invalidInputAddress from "../fixtures/config/invalid-input-address.json" with {
  type: "json",
};
import invalidLinkLocal from "../fixtures/config/invalid-link-local.json" with { type: "json" };
import invalidLoop from "../fixtures/config/invalid-loop.json" with { type: "json" };
import invalidMissingRules from "../fixtures/config/invalid-missing-rules.json" with {
  type: "json",
};
import invalidNoOutputs from "../fixtures/config/invalid-no-outputs.json" with { type: "json" };
import invalidOutputAddresses from "../fixtures/config/invalid-output-addresses.json" with {
  type: "json",
};
import invalidPortRange from "../fixtures/config/invalid-port-range.json" with { type: "json" };
import invalidTypes from "../fixtures/config/invalid-types.json" with { type: "json" };
import invalidUnknownKey from "../fixtures/config/invalid-unknown-key.json" with { type: "json" };
import validEmpty from "../fixtures/config/valid-empty.json" with { type: "json" };
import validFull from "../fixtures/config/valid-full.json" with { type: "json" };
import validMinimal from "../fixtures/config/valid-minimal.json" with { type: "json" };

const FIXTURES = new URL("../fixtures/config/", import.meta.url);
const FIXTURE_DOCS: Record<string, unknown> = {
  "expected-errors.json": expectedErrors,
  "invalid-duplicate-inputs.json": invalidDuplicateInputs,
  "invalid-duplicate-names.json": invalidDuplicateNames,
  "invalid-duplicate-outputs.json": invalidDuplicateOutputs,
  "invalid-input-address.json": invalidInputAddress,
  "invalid-link-local.json": invalidLinkLocal,
  "invalid-loop.json": invalidLoop,
  "invalid-missing-rules.json": invalidMissingRules,
  "invalid-no-outputs.json": invalidNoOutputs,
  "invalid-output-addresses.json": invalidOutputAddresses,
  "invalid-port-range.json": invalidPortRange,
  "invalid-types.json": invalidTypes,
  "invalid-unknown-key.json": invalidUnknownKey,
  "valid-empty.json": validEmpty,
  "valid-full.json": validFull,
  "valid-minimal.json": validMinimal,
};
const EXPECTED = expectedErrors as Record<string, string[]>;
/** Whether the tests were given read access to the fixtures (deno test --allow-read). */
const CAN_READ = Deno.permissions.querySync({ name: "read", path: FIXTURES }).state === "granted";

// deno-lint-ignore no-explicit-any
type Json = any;

function minimal(): Json {
  return {
    rules: [
      {
        name: "cam1",
        input: { interface: "eth0", group: "239.1.1.1", port: 5001 },
        outputs: [{ interface: "eth1", group: "239.10.1.1", port: 6001 }],
      },
    ],
  };
}

/** A config with one rule built from `patch` applied to the minimal rule. */
function withRule(patch: (r: Json) => void): Json {
  const c = minimal();
  patch(c.rules[0]);
  return c;
}

/** Expects parseConfig to throw a ConfigError; returns it. */
function configError(value: unknown): ConfigError {
  try {
    parseConfig(value, "test.json");
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    return e;
  }
  assert.fail("expected parseConfig to throw");
}

function findIssue(err: ConfigError, field: string): ConfigIssue {
  const issue = err.issues.find((i) => i.field === field);
  assert.ok(issue, `no issue for ${field}; got:\n${err.message}`);
  return issue;
}

/** Reference FNV-1a 64 over a string's UTF-8 bytes. */
function fnv1a64(s: string): string {
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(s)) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) % (1n << 64n);
  }
  return h.toString(16).padStart(16, "0");
}

// ------------------------------------------------------------------ valid configs

Deno.test("config: minimal config parses with defaults", () => {
  const c = parseConfig(minimal());
  const id = ruleId({ interface: "eth0", group: "239.1.1.1", port: 5001 });
  assert.deepEqual(
    c,
    {
      rules: [
        {
          id,
          name: "cam1",
          enabled: true,
          input: {
            interface: "eth0",
            group: "239.1.1.1",
            port: 5001,
            family: 4,
            groupAddr: 0xef010101,
            prefixLen: 32,
            portNumber: 5001,
            joinAddrs: [0xef010101],
            sourceAddr: 0,
            vlanId: -1,
          },
          outputs: [
            {
              interface: "eth1",
              group: "239.10.1.1",
              port: 6001,
              ttl: 1,
              dscp: 0,
              tos: 0,
              family: 4,
              groupAddr: 0xef0a0101,
              hostBits: 0,
              portNumber: 6001,
              sourceAddr: 0,
            },
          ],
          ttl: 1,
          dscp: 0,
          allow_link_local: false,
        },
      ],
      ttl: 1,
      dscp: 0,
      workers: 1,
      worker_nice: -10,
      worker_priority: "adaptive",
      role: "active",
      interfaces: {},
      rx: { filter: true, fanout: "hash" },
      tx: {},
    } satisfies Config,
  );
});

Deno.test("config: empty rule list is valid", () => {
  assert.deepEqual(parseConfig({ rules: [] }).rules, []);
});

Deno.test("config: full fixture — precedence, tuning and normalization", () => {
  const c = parseConfig(validFull, "valid-full.json");
  assert.equal(c.ttl, "decrement");
  assert.equal(c.dscp, 10);
  assert.equal(c.workers, 4);
  assert.deepEqual(c.rx, {
    tpacket_version: 3,
    frame_count: 8192,
    batch_max: 512,
    coalesce_us: 50,
    coalesce_pps: 20000,
    filter: false,
    fanout: "cpu",
  });
  assert.deepEqual(c.tx, { frame_count: 2048, qdisc_bypass: true });
  assert.deepEqual(c.control, { socket: "/run/mcr/control.sock" });
  assert.deepEqual(c.metrics, { listen: "127.0.0.1:9464" });

  const [cam1, standby, mdns, other] = c.rules;
  // Rule-level ttl 16 overrides the global "decrement"; output ttl 32 overrides the rule.
  assert.equal(cam1.ttl, 16);
  assert.deepEqual(cam1.outputs.map((o) => o.ttl), [16, 32, 16]);
  // DSCP: global 10, output 46.
  assert.deepEqual(cam1.outputs.map((o) => o.dscp), [10, 46, 10]);
  assert.deepEqual(cam1.outputs.map((o) => o.tos), [40, 184, 40]);
  assert.equal(cam1.input.sourceAddr, parseIPv4("10.0.0.5"));
  assert.equal(cam1.input.source, "10.0.0.5");
  assert.equal(cam1.input.vlan, 100);
  assert.equal(cam1.input.vlanId, 100);
  assert.equal(cam1.outputs[1].source_ip, "192.168.10.1");
  assert.equal(cam1.outputs[1].sourceAddr, parseIPv4("192.168.10.1"));
  assert.equal(cam1.outputs[1].source_port, 7000);
  assert.equal(cam1.outputs[0].sourceAddr, 0);
  assert.equal(cam1.outputs[0].source_ip, undefined);
  assert.equal(formatIPv4(cam1.outputs[2].groupAddr), "192.168.50.20", "unicast output");
  // A disabled rule may share an enabled rule's input; same tuple => same id.
  assert.equal(standby.enabled, false);
  assert.equal(standby.id, cam1.id);
  assert.equal(standby.outputs[0].ttl, "decrement", "global policy inherited");
  // Unnamed rule: name defaults to the id; link-local allowed explicitly.
  assert.equal(mdns.name, mdns.id);
  assert.equal(mdns.allow_link_local, true);
  assert.equal(mdns.dscp, 0);
  assert.equal(mdns.outputs[0].dscp, 0, "rule dscp 0 overrides global 10");
  assert.equal(mdns.input.interface, "eth0:1");
  // Same interface and group but another port is not a loop.
  assert.equal(other.outputs[0].port, 5003);
});

Deno.test("config: ttl precedence output > rule > global > default", () => {
  const rule = (extra: Json, outputs: Json[]) => ({
    ...minimal().rules[0],
    ...extra,
    outputs,
  });
  const o = (port: number, extra: Json = {}) => ({
    interface: "eth1",
    group: "239.10.1.1",
    port,
    ...extra,
  });
  let c = parseConfig({ rules: [rule({}, [o(1), o(2, { ttl: 9 })])] });
  assert.deepEqual(c.rules[0].outputs.map((x) => x.ttl), [1, 9]);
  c = parseConfig({ ttl: 5, rules: [rule({}, [o(1), o(2, { ttl: "decrement" })])] });
  assert.deepEqual(c.rules[0].outputs.map((x) => x.ttl), [5, "decrement"]);
  c = parseConfig({ ttl: 5, rules: [rule({ ttl: "decrement" }, [o(1), o(2, { ttl: 255 })])] });
  assert.deepEqual(c.rules[0].outputs.map((x) => x.ttl), ["decrement", 255]);
  assert.equal(c.rules[0].ttl, "decrement");
  c = parseConfig({ dscp: 8, rules: [rule({ dscp: 16 }, [o(1), o(2, { dscp: 63 })])] });
  assert.deepEqual(c.rules[0].outputs.map((x) => [x.dscp, x.tos]), [[16, 64], [63, 252]]);
});

Deno.test("config: vlan 0 means untagged, like an absent vlan", () => {
  const a = parseConfig(withRule((r) => (r.input.vlan = 0))).rules[0];
  const b = parseConfig(minimal()).rules[0];
  assert.equal(a.input.vlanId, -1);
  assert.equal(a.input.vlan, 0);
  assert.equal(a.id, b.id);
  const t = parseConfig(withRule((r) => (r.input.vlan = 4094))).rules[0];
  assert.equal(t.input.vlanId, 4094);
});

Deno.test("config: interface names", () => {
  for (const ok of ["eth0", "eth0:1", "br-lan", "enp3s0f1np1.100", "a", "x".repeat(15), "wg_0"]) {
    assert.ok(isValidInterfaceName(ok), ok);
    parseConfig(withRule((r) => (r.outputs[0].interface = ok)));
  }
  const bad = ["", ".", "..", "a/b", "a b", "eth0\n", "x".repeat(16), "\u0000", 5, null];
  // Terminal controls (C1 CSI, bidi override, zero-width space), other whitespace, and
  // anything outside printable ASCII (as systemd's ifname_valid_full).
  bad.push("e\u009b2J", "eth\u202e0", "a\u200bb", "\u00a0x", "caf\u00e9", "a\u2028", "\ud800x");
  for (const name of bad) {
    assert.ok(!isValidInterfaceName(name), JSON.stringify(name));
    const e = configError(withRule((r) => (r.input.interface = name)));
    assert.match(findIssue(e, "input.interface").message, /interface name/);
  }
});

Deno.test("config: rule names", () => {
  parseConfig(withRule((r) => (r.name = "a.B_c:d-9".padEnd(64, "x"))));
  for (const bad of ["", "has space", "ü", "x".repeat(65), 7]) {
    const e = configError(withRule((r) => (r.name = bad)));
    assert.match(findIssue(e, "name").message, /1 to 64 characters/);
  }
});

// ------------------------------------------------------------------ structural errors

Deno.test("config: unknown keys at every level are named, with suggestions", () => {
  const c = minimal();
  c.rules[0].ouputs = [];
  c.rules[0].input.grup = "x";
  c.rules[0].outputs[0].TTL = 3;
  c.workerz = 2;
  c.rx = { fanout: "hash", batchMax: 3 };
  c.tx = { zzz: 1 };
  c.control = { socket: "/x", sock: 1 };
  c.metrics = { listen: ":1", lisen: 2 };
  const e = configError(c);
  const want: [string, RegExp][] = [
    ["ouputs", /unknown key \(did you mean "outputs"\?\)/],
    ["input.grup", /did you mean "group"/],
    ["outputs[0].TTL", /did you mean "ttl"/],
    ["workerz", /did you mean "workers"/],
    ["rx.batchMax", /did you mean "batch_max"/],
    ["tx.zzz", /unknown key \(known keys: frame_count, qdisc_bypass\)/],
    ["control.sock", /did you mean "socket"/],
    ["metrics.lisen", /did you mean "listen"/],
  ];
  for (const [field, re] of want) assert.match(findIssue(e, field).message, re, field);
  const ouputs = findIssue(e, "ouputs");
  assert.deepEqual(ouputs.rule, { index: 0, name: "cam1" });
  assert.deepEqual(ouputs.path, ["rules", 0, "ouputs"]);
  assert.equal(findIssue(e, "workerz").rule, undefined);
  assert.match(e.message, /^ {2}rule 0 "cam1": ouputs: unknown key/m);
  assert.match(e.message, /^ {2}config: workerz: unknown key/m);
});

Deno.test("config: wrong types and missing fields", () => {
  for (const v of [null, 5, "x", [], true, undefined]) {
    const e = configError(v);
    assert.equal(e.issues.length, 1);
    assert.match(e.message, /config: (must be an object|is required)/);
  }
  assert.match(configError({}).message, /config: rules: is required \(an array\)/);
  assert.match(configError({ rules: {} }).message, /config: rules: must be an array \(got \{\}\)/);
  assert.match(configError({ rules: [5] }).message, /rule 0: must be an object \(got 5\)/);
  const e = configError(withRule((r) => {
    r.input.port = "5001";
    r.outputs[0].port = 70000;
    r.outputs[0].ttl = 0;
    r.outputs[0].dscp = 64;
    r.enabled = "yes";
    delete r.input.group;
  }));
  assert.equal(
    findIssue(e, "outputs[0].port").message,
    'must be an integer from 1 to 65535, or "keep" (the input datagram\'s port) (got 70000)',
  );
  assert.match(
    e.message,
    /rule 0 "cam1": outputs\[0\]\.port: must be an integer from 1 to 65535, or "keep" .* \(got 70000\)/,
  );
  assert.match(findIssue(e, "input.port").message, /got "5001"/);
  assert.match(findIssue(e, "outputs[0].ttl").message, /1 to 255 or "decrement" \(got 0\)/);
  assert.match(findIssue(e, "outputs[0].dscp").message, /0 to 63 \(got 64\)/);
  assert.match(findIssue(e, "enabled").message, /true or false/);
  assert.match(findIssue(e, "input.group").message, /^is required/);
  assert.equal(e.issues.length, 6);
  // Fractions, NaN-ish values and leading-zero addresses.
  const f = configError(withRule((r) => {
    r.input.port = 5001.5;
    r.outputs[0].group = "239.010.1.1";
  }));
  findIssue(f, "input.port");
  assert.match(findIssue(f, "outputs[0].group").message, /dotted quad, no leading zeros/);
});

Deno.test("config: global field ranges", () => {
  const bad: [Json, string, RegExp][] = [
    [{ ttl: 256 }, "ttl", /got 256/],
    [{ ttl: "Decrement" }, "ttl", /"decrement"/],
    [{ dscp: -1 }, "dscp", /0 to 63/],
    [{ workers: 65 }, "workers", /1 to 64/],
    [{ worker_nice: -21 }, "worker_nice", /-20 to 19/],
    [{ worker_nice: 20 }, "worker_nice", /-20 to 19/],
    [{ worker_nice: 1.5 }, "worker_nice", /integer/],
    [{ worker_priority: "always" }, "worker_priority", /"adaptive", "fixed"/],
    [{ rx: { tpacket_version: 1 } }, "rx.tpacket_version", /2 or 3/],
    [{ rx: { frame_count: 63 } }, "rx.frame_count", /64 to 1048576/],
    [{ rx: { batch_max: 4097 } }, "rx.batch_max", /1 to 4096/],
    [{ rx: { coalesce_us: 10001 } }, "rx.coalesce_us", /0 to 10000/],
    [{ rx: { coalesce_pps: -5 } }, "rx.coalesce_pps", /integer from 0/],
    [{ rx: { fanout: "rr" } }, "rx.fanout", /"hash", "lb"/],
    [{ rx: 3 }, "rx", /must be an object/],
    [{ tx: { qdisc_bypass: 1 } }, "tx.qdisc_bypass", /true or false/],
    [{ control: { socket: "" } }, "control.socket", /non-empty/],
    [{ control: { readonly_socket: "" } }, "control.readonly_socket", /non-empty/],
    [{ metrics: { listen: 9000 } }, "metrics.listen", /non-empty string/],
  ];
  for (const [patch, field, re] of bad) {
    const e = configError({ ...minimal(), ...patch });
    assert.match(findIssue(e, field).message, re, field);
    assert.match(e.message, new RegExp(`config: ${field.replace(".", "\\.")}: `));
  }
});

Deno.test("config: rule and output count limits", () => {
  const rules = Array.from({ length: MAX_RULES + 1 }, (_, i) => ({
    input: { interface: "eth0", group: `239.1.${i >> 8 & 255}.${i & 255}`, port: 5000 + (i >> 16) },
    outputs: [{ interface: "eth1", group: "239.10.1.1", port: 6001 }],
  }));
  assert.ok(
    configError({ rules }).message.includes(
      `config: rules: has ${MAX_RULES + 1} rules; at most ${MAX_RULES}`,
    ),
  );
  assert.equal(parseConfig({ rules: rules.slice(0, MAX_RULES) }).rules.length, MAX_RULES);
  const outs = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ interface: "eth1", group: "239.10.1.1", port: i + 1 }));
  parseConfig(withRule((r) => (r.outputs = outs(MAX_OUTPUTS_PER_RULE))));
  assert.match(
    configError(withRule((r) => (r.outputs = outs(MAX_OUTPUTS_PER_RULE + 1)))).message,
    /rule 0 "cam1": outputs: has 65 outputs; at most 64/,
  );
  assert.match(
    configError(withRule((r) => (r.outputs = []))).message,
    /rule 0 "cam1": outputs: must list at least one output/,
  );
});

/** `n` rules with `outs` outputs each (distinct inputs; `tag` keeps names apart). */
function fanRules(n: number, outs: number, tag = "r", enabled = true): Json[] {
  const t = tag.charCodeAt(0) & 63;
  return Array.from({ length: n }, (_, k) => ({
    name: `${tag}${k}`,
    ...(enabled ? {} : { enabled: false }),
    input: { interface: "eth0", group: `239.${t}.${k >> 8}.${k & 255}`, port: 5000 },
    outputs: Array.from({ length: outs }, (_, j) => ({
      interface: "eth1",
      group: "239.200.1.1",
      port: 6000 + j,
    })),
  }));
}

Deno.test("config: outputs of all enabled rules together are capped at the relay's output slots", () => {
  // One more rule of 64 outputs than the relay has output slots for.
  const fill = MAX_OUTPUT_SLOTS / 64;
  const over = `has ${MAX_OUTPUT_SLOTS + 64} outputs in its enabled rules; at most ` +
    `${MAX_OUTPUT_SLOTS} are allowed per relay`;
  const e = configError({ rules: fanRules(fill + 1, 64) });
  assert.equal(e.issues.length, 1, e.message);
  assert.equal(e.issues[0].field, "rules");
  assert.ok(e.message.includes(`config: rules: ${over}`), e.message);
  // Exactly at the cap: accepted. Disabled rules hold no output slot.
  assert.equal(parseConfig({ rules: fanRules(fill, 64) }).rules.length, fill);
  assert.equal(
    parseConfig({ rules: [...fanRules(fill, 64), ...fanRules(10, 64, "d", false)] }).rules.length,
    fill + 10,
  );
  assert.ok(
    configError({ rules: [...fanRules(fill, 64), ...fanRules(1, 1, "x")] }).message.includes(
      `rules: has ${MAX_OUTPUT_SLOTS + 1} outputs in its enabled rules`,
    ),
  );
});

Deno.test("config: input interfaces of all enabled rules together are capped at the relay's input slots", () => {
  const rules = (n: number, enabled = true) =>
    Array.from({ length: n }, (_, k) => ({
      name: `i${k}`,
      ...(enabled ? {} : { enabled: false }),
      input: { interface: `v${k}`, group: "239.1.1.1", port: 5000 },
      outputs: [{ interface: "eth1", group: "239.10.1.1", port: 6001 }],
    }));
  assert.equal(parseConfig({ rules: rules(MAX_INPUT_SLOTS) }).rules.length, MAX_INPUT_SLOTS);
  const e = configError({ rules: rules(MAX_INPUT_SLOTS + 1) });
  assert.equal(e.issues.length, 1, e.message);
  assert.ok(
    e.message.includes(
      `rules: has ${MAX_INPUT_SLOTS + 1} input interfaces in its enabled rules; at most ` +
        `${MAX_INPUT_SLOTS} are allowed per relay`,
    ),
    e.message,
  );
  // disabled rules hold no input slot
  const mixed = [...rules(MAX_INPUT_SLOTS), {
    ...rules(MAX_INPUT_SLOTS + 1)[MAX_INPUT_SLOTS],
    enabled: false,
  }];
  assert.equal(parseConfig({ rules: mixed }).rules.length, MAX_INPUT_SLOTS + 1);
});

Deno.test("validateRule: an added rule may not exceed the rule or output caps", () => {
  const full = parseConfig({ rules: fanRules(MAX_OUTPUT_SLOTS / 64, 64) });
  const extra = fanRules(1, 1, "x")[0];
  assert.throws(() => validateRule(extra, full), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.ok(
      e.message.includes(`rules: has ${MAX_OUTPUT_SLOTS + 1} outputs in its enabled rules`),
      e.message,
    );
    return true;
  });
  // A disabled rule takes no output slot.
  assert.equal(validateRule({ ...extra, enabled: false }, full).enabled, false);
  const many = parseConfig({ rules: fanRules(MAX_RULES, 1) });
  assert.throws(
    () => validateRule(extra, many),
    new RegExp(`rules: has ${MAX_RULES + 1} rules; at most ${MAX_RULES} are allowed`),
  );
});

// ------------------------------------------------------------------ semantic errors

Deno.test("config: a unicast input group is accepted (own address, or one seen on a mirror port)", () => {
  const c = parseConfig(withRule((r) => {
    r.input.group = "10.0.0.5";
    r.input.source = "10.0.0.9";
    r.input.vlan = 7;
    r.outputs.push({ interface: "eth2", group: "192.168.9.9", port: 7001 });
  }));
  const input = c.rules[0].input;
  assert.equal(input.group, "10.0.0.5");
  assert.equal(input.groupAddr, parseIPv4("10.0.0.5"));
  assert.equal(input.sourceAddr, parseIPv4("10.0.0.9"), "input.source is still allowed");
  assert.equal(input.vlanId, 7);
  // The edges of unicast space, and a directed broadcast (its prefix is unknown here).
  for (const g of ["1.0.0.1", "169.254.1.1", "192.168.1.255", "223.255.255.254"]) {
    parseConfig(withRule((r) => (r.input.group = g)));
  }
  // A live add takes the same address classes.
  const added = validateRule({
    name: "feed",
    input: { interface: "eth0", group: "10.0.0.5", port: 5001 },
    outputs: [{ interface: "eth1", group: "239.9.9.9", port: 5001 }],
  }, parseConfig(minimal()));
  assert.equal(added.input.groupAddr, parseIPv4("10.0.0.5"));
});

Deno.test("config: an input group must be multicast or a usable unicast address", () => {
  const reasons: [string, RegExp][] = [
    ["0.0.0.0", /0\.0\.0\.0 is the unspecified address/],
    ["0.1.2.3", /this network/],
    ["127.0.0.1", /127\.0\.0\.0\/8 is loopback/],
    ["127.9.9.9", /loopback/],
    ["255.255.255.255", /255\.255\.255\.255 is the limited broadcast address/],
    ["240.0.0.1", /240\.0\.0\.0\/4 is reserved/],
  ];
  for (const [g, re] of reasons) {
    const e = configError(withRule((r) => (r.input.group = g)));
    const i = findIssue(e, "input.group");
    assert.deepEqual(i.rule, { index: 0, name: "cam1" });
    assert.match(i.message, /must be a multicast group or a usable unicast address/);
    assert.match(i.message, re, g);
    assert.ok(i.message.includes(`(got "${g}": `), i.message);
    assert.ok(e.message.includes(`rule 0 "cam1": input.group: `), e.message);
  }
});

Deno.test("config: an output to a unicast input's own address and port on its interface is a loop", () => {
  const e = configError(withRule((r) => {
    r.input.group = "10.0.0.5";
    r.outputs.push({ interface: "eth0", group: "10.0.0.5", port: 5001 });
  }));
  const i = findIssue(e, "outputs[1]");
  assert.match(
    i.message,
    /same interface, group and port as the rule's input \(eth0 10\.0\.0\.5:5001\)/,
  );
  assert.match(i.message, /would forward the stream into itself/);
  // Live adds refuse it too.
  assert.throws(
    () =>
      validateRule({
        name: "loop",
        input: { interface: "eth7", group: "10.7.7.7", port: 9 },
        outputs: [{ interface: "eth7", group: "10.7.7.7", port: 9 }],
      }, parseConfig(minimal())),
    /rule 1 "loop": outputs\[0\]: same interface, group and port/,
  );
  // Another interface, address or port is not the input.
  for (const patch of [{ interface: "eth9" }, { group: "10.0.0.6" }, { port: 5002 }]) {
    parseConfig(withRule((r) => {
      r.input.group = "10.0.0.5";
      r.outputs.push({ ...r.input, ...patch });
    }));
  }
});

Deno.test("config: link-local groups need allow_link_local", () => {
  const e = configError(withRule((r) => (r.input.group = "224.0.0.251")));
  const i = findIssue(e, "input.group");
  assert.match(i.message, /224\.0\.0\.251 is link-local multicast \(224\.0\.0\.0\/24\)/);
  assert.match(i.message, /IGMP, OSPF/);
  assert.match(i.message, /relaying it breaks those protocols/);
  assert.match(i.message, /"allow_link_local": true/);
  // Outputs into 224.0.0.0/24 are refused as well.
  const o = configError(withRule((r) => (r.outputs[0].group = "224.0.0.5")));
  assert.match(findIssue(o, "outputs[0].group").message, /link-local/);
  // Allowed explicitly.
  const ok = parseConfig(withRule((r) => {
    r.input.group = "224.0.0.251";
    r.outputs[0].group = "224.0.0.251";
    r.allow_link_local = true;
  }));
  assert.equal(ok.rules[0].allow_link_local, true);
  // 224.0.1.x is not link-local.
  parseConfig(withRule((r) => (r.input.group = "224.0.1.129")));
});

Deno.test("config: output destinations must be multicast or usable unicast", () => {
  const reasons: [string, RegExp][] = [
    ["0.0.0.0", /unspecified/],
    ["0.1.2.3", /this network/],
    ["127.0.0.1", /loopback/],
    ["127.255.0.9", /loopback/],
    ["255.255.255.255", /limited broadcast/],
    ["240.1.1.1", /reserved/],
  ];
  for (const [g, re] of reasons) {
    const e = configError(withRule((r) => (r.outputs[0].group = g)));
    const i = findIssue(e, "outputs[0].group");
    assert.match(i.message, /must be a multicast group or a usable unicast address/);
    assert.match(i.message, re, g);
    assert.ok(e.message.includes(`rule 0 "cam1": outputs[0].group: `));
  }
  for (const g of ["10.0.0.9", "192.168.1.255", "1.1.1.1", "223.255.255.254", "239.255.255.255"]) {
    parseConfig(withRule((r) => (r.outputs[0].group = g)));
  }
  const s = configError(withRule((r) => {
    r.input.source = "127.0.0.1";
    r.outputs[0].source_ip = "239.1.1.1";
  }));
  assert.match(findIssue(s, "input.source").message, /unicast source.*loopback/);
  assert.match(findIssue(s, "outputs[0].source_ip").message, /multicast/);
});

Deno.test("config: an output equal to its own input is refused", () => {
  const e = configError(withRule((r) => {
    r.outputs.push({ interface: "eth0", group: "239.1.1.1", port: 5001, ttl: 4 });
  }));
  const i = findIssue(e, "outputs[1]");
  assert.deepEqual(i.rule, { index: 0, name: "cam1" });
  assert.match(i.message, /would forward the stream into itself/);
  assert.match(e.message, /rule 0 "cam1": outputs\[1\]: same interface, group and port/);
  // Another interface, group or port is fine.
  for (const patch of [{ interface: "eth9" }, { group: "239.1.1.2" }, { port: 5002 }]) {
    parseConfig(withRule((r) => r.outputs.push({ ...r.input, ...patch })));
  }
});

Deno.test("config: duplicate outputs within a rule", () => {
  const e = configError(withRule((r) => {
    r.outputs.push({ interface: "eth2", group: "239.10.1.1", port: 6001 });
    r.outputs.push({ interface: "eth1", group: "239.10.1.1", port: 6001, dscp: 3 });
  }));
  const dup = e.issues.filter((i) => /duplicate of outputs\[0\]/.test(i.message));
  assert.equal(dup.length, 1);
  assert.equal(dup[0].field, "outputs[2]");
});

Deno.test("config: duplicate rule names", () => {
  const c = minimal();
  c.rules.push({ ...c.rules[0], input: { ...c.rules[0].input, port: 1 } });
  c.rules.push({ ...c.rules[0], input: { ...c.rules[0].input, port: 2 } });
  const e = configError(c);
  const dups = e.issues.filter((i) => i.field === "name");
  assert.deepEqual(dups.map((i) => i.rule?.index), [1, 2]);
  assert.match(dups[0].message, /duplicate rule name "cam1" \(also used by rule 0 "cam1"\)/);
  assert.match(e.message, /rule 2 "cam1": name: duplicate rule name "cam1"/);
});

Deno.test("config: two enabled rules with the same input", () => {
  const c = minimal();
  c.rules.push({ ...c.rules[0], name: "cam1b" });
  const e = configError(c);
  const i = findIssue(e, "input");
  assert.deepEqual(i.rule, { index: 1, name: "cam1b" });
  assert.match(i.message, /same input \(eth0 239\.1\.1\.1:5001\) as enabled rule 0 "cam1"/);
  assert.match(e.message, /rule 1 "cam1b": input: same input/);
  // Disabled duplicates are fine; so are differing source or vlan.
  c.rules[1].enabled = false;
  parseConfig(c);
  c.rules[1].enabled = true;
  c.rules[1].input = { ...c.rules[0].input, source: "10.0.0.1" };
  parseConfig(c);
  c.rules[1].input = { ...c.rules[0].input, vlan: 5 };
  parseConfig(c);
  // vlan 0 is the same tuple as no vlan.
  c.rules[1].input = { ...c.rules[0].input, vlan: 0 };
  findIssue(configError(c), "input");
});

Deno.test("config: unnamed rules with the same input need names", () => {
  const r = minimal().rules[0];
  delete r.name;
  const e = configError({ rules: [r, { ...r, enabled: false }] });
  const i = findIssue(e, "name");
  assert.equal(i.rule?.index, 1);
  assert.match(i.message, /no name and its default name .* is already used by rule 0/);
});

Deno.test("config: semantic checks still run when other rules are broken", () => {
  const c = minimal();
  c.rules.push({ bogus: true });
  const third = structuredClone(c.rules[0]);
  third.name = "x";
  third.input.group = "127.0.0.1";
  c.rules.push(third);
  c.rules[0].outputs.push({ interface: "eth1", group: "127.0.0.1", port: 1, ttl: "bad" });
  c.rules[0].outputs.push({ interface: "eth1", group: "127.0.0.1", port: 2 });
  const e = configError(c);
  assert.deepEqual(
    e.issues.map((i) => `${i.rule?.index}:${i.field}`),
    [
      "0:outputs[1].ttl",
      "0:outputs[2].group",
      "1:outputs",
      "1:bogus",
      "1:input", // a rule needs "input" or "inputs": a check across fields (redundancy.ts)
      "2:input.group",
    ],
  );
});

Deno.test("config: ConfigError message lists one issue per line", () => {
  const c = minimal();
  c.ttl = 0;
  c.rules[0].outputs[0].port = 70000;
  const e = configError(c);
  const lines = e.message.split("\n");
  assert.equal(lines[0], "invalid configuration in test.json (2 problems):");
  assert.equal(lines[1], '  config: ttl: must be an integer from 1 to 255 or "decrement" (got 0)');
  assert.equal(
    lines[2],
    '  rule 0 "cam1": outputs[0].port: must be an integer from 1 to 65535, or "keep" (the ' +
      "input datagram's port) (got 70000)",
  );
  assert.equal(e.name, "ConfigError");
  assert.equal(e.source, "test.json");
  assert.ok(e instanceof Error);
});

// ------------------------------------------------------------------ JSON text and files

const SYNTAX_ERROR_TEXT = `{
  "rules": [
    {
      "name": "cam1",
      "input": { "interface": "eth0", "group": "239.1.1.1", "port": 5001 }
      "outputs": []
    }
  ]
}
`;

Deno.test("config: JSON syntax errors report line and column", () => {
  try {
    parseConfigText(SYNTAX_ERROR_TEXT, "rules.json");
    assert.fail("should throw");
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.issues.length, 1);
    assert.equal(e.issues[0].line, 6);
    assert.equal(e.issues[0].column, 7);
    assert.match(e.message, /in rules\.json/);
    assert.match(e.message, /invalid JSON at line 6, column 7: expected ',' or '}'/);
  }
  const cases: [string, number, number, RegExp][] = [
    ["", 1, 1, /unexpected end of input/],
    // rules.json is JSONC: a trailing comma is fine, two commas are not
    ['{"rules": [1,,]}', 1, 14, /expected a value/],
    ['{\n "rules": [],,\n}', 2, 14, /double-quoted property name/],
    ['{"rules": [] /* open', 1, 14, /unterminated comment/],
    ["{'rules': []}", 1, 2, /double-quoted property name/],
    ['{"rules": []} x', 1, 15, /after the end/],
    ['{"rules": [01]}', 1, 12, /bad number/],
    ['{"rules": tru}', 1, 11, /expected a value/],
    ['{\n\n  "rules": [],\n  "rules": []\n}', 4, 3, /duplicate key "rules"/],
    ['{"rules": ["a\nb"]}', 1, 14, /control character/],
    ['{"rules": "\\x"}', 1, 12, /bad escape/],
    ['{"rules": "abc', 1, 11, /unterminated string/],
  ];
  for (const [t, line, column, re] of cases) {
    try {
      parseConfigText(t);
      assert.fail(`should throw: ${t}`);
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      assert.deepEqual([e.issues[0].line, e.issues[0].column], [line, column], t);
      assert.match(e.issues[0].message, re, t);
    }
  }
});

Deno.test("config: parseConfigText accepts valid JSON (with BOM, escapes, nesting)", () => {
  const c = parseConfigText("\ufeff" + JSON.stringify(minimal(), null, "\t"));
  assert.equal(c.rules[0].name, "cam1");
  const t = '{"rules":[{"name":"c\\u0061m","input":{"interface":"eth0","group":"239.1.1.1",' +
    '"port":5.001e3},"outputs":[{"interface":"eth1","group":"239.10.1.1","port":6001}]}]}';
  const d = parseConfigText(t);
  assert.equal(d.rules[0].name, "cam");
  assert.equal(d.rules[0].input.port, 5001);
});

Deno.test("config: loadConfig reports unreadable files", async () => {
  const missing = new URL("does-not-exist.json", FIXTURES);
  await assert.rejects(loadConfig(missing), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    // Without --allow-read the reason is the missing permission, not ENOENT.
    const why = CAN_READ ? /No such file/i : /read access/i;
    assert.match(e.message, /cannot read the file .*does-not-exist\.json: /);
    assert.match(e.message, why);
    assert.equal(e.issues.length, 1);
    return true;
  });
  await assert.rejects(loadConfig(FIXTURES), ConfigError);
});

Deno.test("config: fixture documents", () => {
  let valid = 0;
  let invalid = 0;
  for (const [name, doc] of Object.entries(FIXTURE_DOCS)) {
    if (name.startsWith("valid-")) {
      assert.ok(Array.isArray(parseConfig(doc, name).rules));
      valid++;
    } else if (name.startsWith("invalid-")) {
      const want = EXPECTED[name];
      assert.ok(want, `${name} has no entry in expected-errors.json`);
      assert.throws(() => parseConfig(doc, name), (e: unknown) => {
        assert.ok(e instanceof ConfigError, `${name}: ${e}`);
        for (const s of want) assert.ok(e.message.includes(s), `${name}: ${s}\n${e.message}`);
        return true;
      });
      invalid++;
    }
  }
  assert.ok(valid >= 3);
  assert.equal(invalid, Object.keys(EXPECTED).length);
});

Deno.test({
  name: "config: fixture files on disk load through loadConfig",
  ignore: !CAN_READ,
  fn: async () => {
    for await (const entry of Deno.readDir(FIXTURES)) {
      assert.ok(entry.name in FIXTURE_DOCS, `${entry.name} is not imported by config_test.ts`);
      if (!entry.name.startsWith("valid-") && !entry.name.startsWith("invalid-")) continue;
      const url = new URL(entry.name, FIXTURES);
      if (entry.name.startsWith("valid-")) {
        assert.deepEqual(await loadConfig(url), parseConfig(FIXTURE_DOCS[entry.name]));
      } else {
        await assert.rejects(loadConfig(url), (e: unknown) => {
          assert.ok(e instanceof ConfigError);
          assert.ok(e.message.includes(url.pathname), "the message names the file (its path)");
          for (const s of EXPECTED[entry.name]) assert.ok(e.message.includes(s), s);
          return true;
        });
      }
    }
  },
});

// ------------------------------------------------------------------ ids, schema, validateRule

Deno.test("ruleId: FNV-1a 64 of the input tuple, stable and distinct", () => {
  const base = { interface: "eth0", group: "239.1.1.1", port: 5001 };
  const id = ruleId(base);
  assert.match(id, /^[0-9a-f]{16}$/);
  assert.equal(id, fnv1a64("eth0|239.1.1.1|5001||"));
  assert.equal(
    ruleId({ ...base, source: "10.0.0.1", vlan: 7 }),
    fnv1a64("eth0|239.1.1.1|5001|10.0.0.1|7"),
  );
  assert.equal(ruleId({ ...base }), id);
  assert.equal(ruleId({ ...base, vlan: 0 }), id);
  const variants = [
    { ...base, interface: "eth1" },
    { ...base, group: "239.1.1.2" },
    { ...base, port: 5002 },
    { ...base, source: "10.0.0.1" },
    { ...base, vlan: 1 },
  ];
  const ids = new Set([id, ...variants.map(ruleId)]);
  assert.equal(ids.size, variants.length + 1);
  // Independent of name and outputs.
  const a = parseConfig(minimal()).rules[0];
  const b = parseConfig(withRule((r) => {
    r.name = "other";
    r.outputs[0].port = 1;
  })).rules[0];
  assert.equal(a.id, b.id);
  assert.equal(a.id, id);
});

Deno.test("ConfigSchema: zod schema with semantic refinements", () => {
  assert.ok(ConfigSchema.safeParse(minimal()).success);
  const dup = minimal();
  dup.rules.push({ ...dup.rules[0] });
  const r = ConfigSchema.safeParse(dup);
  assert.ok(!r.success);
  assert.ok(r.error.issues.some((i) => /duplicate rule name/.test(i.message)));
  const bad = ConfigSchema.safeParse(withRule((x) => (x.outputs[0].port = 0)));
  assert.ok(!bad.success);
  assert.deepEqual(bad.error.issues[0].path, ["rules", 0, "outputs", 0, "port"]);
});

Deno.test("validateRule: adds a rule with the same checks", () => {
  const existing = parseConfig({ ...minimal(), ttl: 7, dscp: 3 });
  const rule = validateRule(
    {
      name: "cam2",
      input: { interface: "eth0", group: "239.1.1.2", port: 5001 },
      outputs: [{ interface: "eth1", group: "239.10.1.2", port: 6001, ttl: "decrement" }],
    },
    existing,
  );
  assert.equal(rule.name, "cam2");
  assert.deepEqual(rule.outputs.map((o) => [o.ttl, o.dscp]), [["decrement", 3]]);
  assert.equal(rule.ttl, 7);
  // Without an existing config, built-in defaults.
  const alone = validateRule(minimal().rules[0]);
  assert.equal(alone.outputs[0].ttl, 1);

  // Conflicts with existing rules, reported at the index it would take.
  const clash = () =>
    validateRule(
      { ...minimal().rules[0], outputs: [{ ...minimal().rules[0].outputs[0] }] },
      existing,
    );
  assert.throws(clash, (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(
      e.message,
      /rule 1 "cam1": name: duplicate rule name "cam1" \(also used by rule 0 "cam1"\)/,
    );
    assert.match(e.message, /rule 1 "cam1": input: same input .* as enabled rule 0 "cam1"/);
    return true;
  });
  // Structural and semantic problems together.
  assert.throws(
    () =>
      validateRule({
        name: "x",
        input: { interface: "eth0", group: "127.1.1.1", port: 1 },
        outputs: [{ interface: "eth1", group: "239.1.1.1", port: 1, ttl: 0 }],
        extra: 1,
      }, existing),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      const fields = e.issues.map((i) => i.field).sort();
      assert.deepEqual(fields, ["extra", "input.group", "outputs[0].ttl"]);
      assert.ok(e.issues.every((i) => i.rule?.index === 1 && i.rule.name === "x"));
      return true;
    },
  );
  assert.throws(() => validateRule(42), /rule 0: must be an object \(got 42\)/);
  // A disabled existing rule does not block its input.
  const withDisabled = parseConfig(withRule((r) => (r.enabled = false)));
  const ok = validateRule({ ...minimal().rules[0], name: "cam1-new" }, withDisabled);
  assert.equal(ok.enabled, true);
});

// ------------------------------------------------------------------ properties

Deno.test("property: arbitrary values only ever raise ConfigError", () => {
  const check = (v: unknown) => {
    try {
      parseConfig(v);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      assert.ok(e.issues.length > 0);
      assert.equal(e.message.split("\n").length, e.issues.length + 1);
    }
  };
  fc.assert(fc.property(fc.anything(), check), { numRuns: 500 });
  fc.assert(fc.property(fc.jsonValue(), check), { numRuns: 500 });
  // Values shaped like a config, with random leaves, reach the deeper checks.
  const leafArb = fc.oneof(
    fc.jsonValue({ maxDepth: 1 }),
    fc.constantFrom("239.1.1.1", "224.0.0.1", "127.0.0.1", "eth0", "decrement", 1, 5001, 70000),
  );
  const objOf = (keys: string[]) =>
    fc.dictionary(fc.oneof(fc.constantFrom(...keys), fc.string({ maxLength: 4 })), leafArb, {
      maxKeys: keys.length + 1,
    });
  const output = objOf(["interface", "group", "port", "ttl", "dscp", "source_ip", "source_port"]);
  const rule = fc.record(
    {
      name: fc.oneof(fc.constantFrom("a", "b"), leafArb),
      enabled: fc.oneof(fc.boolean(), leafArb),
      input: objOf(["interface", "group", "port", "source", "vlan"]),
      outputs: fc.oneof(fc.array(output, { maxLength: 3 }), leafArb),
      allow_link_local: fc.oneof(fc.boolean(), leafArb),
    },
    { requiredKeys: [] },
  );
  fc.assert(
    fc.property(
      fc.record({ rules: fc.array(rule, { maxLength: 4 }), ttl: leafArb }, {
        requiredKeys: ["rules"],
      }),
      check,
    ),
    { numRuns: 1000 },
  );
  // And the text path never throws anything else either.
  fc.assert(
    fc.property(fc.string(), (s) => {
      try {
        parseConfigText(s);
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
      }
    }),
    { numRuns: 500 },
  );
});

const octet = fc.integer({ min: 0, max: 255 });
const mcastArb = fc.tuple(fc.integer({ min: 225, max: 239 }), octet, octet, octet)
  .map((a) => a.join("."));
const unicastArb = fc.tuple(fc.integer({ min: 1, max: 223 }), octet, octet, octet)
  .filter((a) => a[0] !== 127)
  .map((a) => a.join("."));
const ttlArb = fc.oneof(fc.integer({ min: 1, max: 255 }), fc.constant("decrement" as const));

const outputArb = fc.record(
  {
    interface: fc.constantFrom("eth1", "eth2", "br0", "vlan.10"),
    group: fc.oneof(mcastArb, unicastArb),
    port: fc.integer({ min: 1, max: 65535 }),
    ttl: ttlArb,
    dscp: fc.integer({ min: 0, max: 63 }),
    source_ip: unicastArb,
    source_port: fc.integer({ min: 1, max: 65535 }),
  },
  { requiredKeys: ["interface", "group", "port"] },
);

const ruleArb = fc.record(
  {
    named: fc.boolean(),
    enabled: fc.option(fc.boolean(), { nil: undefined }),
    group: mcastArb,
    source: fc.option(unicastArb, { nil: undefined }),
    vlan: fc.option(fc.integer({ min: 1, max: 4094 }), { nil: undefined }),
    outputs: fc.uniqueArray(outputArb, {
      minLength: 1,
      maxLength: 5,
      selector: (o) => `${o.interface}|${o.group}|${o.port}`,
    }),
    ttl: fc.option(ttlArb, { nil: undefined }),
    dscp: fc.option(fc.integer({ min: 0, max: 63 }), { nil: undefined }),
  },
);

Deno.test("property: valid random rule sets round-trip", () => {
  fc.assert(
    fc.property(
      fc.array(ruleArb, { maxLength: 8 }),
      fc.option(ttlArb, { nil: undefined }),
      fc.option(fc.integer({ min: 0, max: 63 }), { nil: undefined }),
      (specs, gttl, gdscp) => {
        // Unique input tuples by construction: port = 1000 + index, interface "in0".
        const rules = specs.map((s, i) => {
          const r: Json = {
            input: { interface: "in0", group: s.group, port: 1000 + i },
            outputs: s.outputs,
          };
          if (s.named) r.name = `rule-${i}`;
          if (s.enabled !== undefined) r.enabled = s.enabled;
          if (s.source !== undefined) r.input.source = s.source;
          if (s.vlan !== undefined) r.input.vlan = s.vlan;
          if (s.ttl !== undefined) r.ttl = s.ttl;
          if (s.dscp !== undefined) r.dscp = s.dscp;
          return r;
        });
        const doc: Json = { rules };
        if (gttl !== undefined) doc.ttl = gttl;
        if (gdscp !== undefined) doc.dscp = gdscp;
        const c = parseConfig(doc);
        // The text path gives the same result.
        assert.deepEqual(parseConfigText(JSON.stringify(doc)), c);
        assert.equal(c.rules.length, rules.length);
        c.rules.forEach((rule, i) => {
          const r = rules[i];
          assert.equal(rule.name, r.name ?? rule.id);
          assert.equal(rule.id, ruleId(r.input));
          assert.equal(rule.enabled, r.enabled ?? true);
          assert.equal(rule.input.group, r.input.group);
          assert.equal(formatIPv4(rule.input.groupAddr), r.input.group);
          assert.equal(rule.input.port, 1000 + i);
          assert.equal(rule.input.vlanId, r.input.vlan ?? -1);
          assert.equal(rule.input.sourceAddr, r.input.source ? parseIPv4(r.input.source) : 0);
          rule.outputs.forEach((o, j) => {
            const ro = r.outputs[j];
            assert.equal(o.interface, ro.interface);
            assert.equal(o.group, ro.group);
            assert.equal(formatIPv4(o.groupAddr), ro.group);
            assert.equal(o.port, ro.port);
            assert.equal(o.ttl, ro.ttl ?? r.ttl ?? gttl ?? 1);
            assert.equal(o.dscp, ro.dscp ?? r.dscp ?? gdscp ?? 0);
            assert.equal(o.tos, o.dscp * 4);
            assert.equal(o.source_ip, ro.source_ip);
            assert.equal(o.sourceAddr, ro.source_ip ? parseIPv4(ro.source_ip) : 0);
            assert.equal(o.source_port, ro.source_port);
          });
        });
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("config: per-interface workers, fanout and cpus; bad values named", () => {
  const base = {
    rules: [{
      name: "cam1",
      input: { interface: "eth0", group: "239.1.1.1", port: 5001 },
      outputs: [{ interface: "eth1", group: "239.10.1.1", port: 6001 }],
    }],
  };
  const c = parseConfig({
    ...base,
    workers: 2,
    interfaces: { eth0: { workers: 4, cpus: [0, 1] } },
  });
  assert.equal(c.workers, 2);
  assert.deepEqual(c.interfaces, { eth0: { workers: 4, cpus: [0, 1] } });
  assert.equal(parseConfig({ ...base, worker_nice: 0 }).worker_nice, 0, "worker_nice as given");
  assert.equal(parseConfig({ ...base, worker_nice: -20 }).worker_nice, -20);
  assert.equal(parseConfig(base).worker_priority, "adaptive", "worker_priority's default");
  assert.equal(parseConfig({ ...base, worker_priority: "fixed" }).worker_priority, "fixed");
  assert.throws(
    () => parseConfig({ ...base, interfaces: { eth0: { workers: 0, fanout: "spray" } } }),
    (e: unknown) =>
      e instanceof ConfigError && /interfaces\.eth0\.workers/.test(e.message) &&
      /interfaces\.eth0\.fanout/.test(e.message),
  );
});

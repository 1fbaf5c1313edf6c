/**
 * Ranges and wildcards in rules.json (issue 13): what `check` accepts — an
 * input range "239.1.0.0/16", port "any" (or 0), `joins`; outputs that keep
 * the group or port or map the range onto another of the same length — how
 * they normalize, and every refusal with its rule, field and reason (host
 * bits, /32, unicast or too wide a range, link-local, "any" on a unicast
 * input, joins outside the range, a mapped range of another length, an
 * output sending back into its own input, duplicates however written, the
 * relay-wide IGMP join limit).
 */
import assert from "node:assert/strict";
import {
  type Config,
  ConfigError,
  MAX_JOINS,
  parseConfig,
  ruleId,
  validateRule,
} from "../../src/config/mod.ts";
import { parseIPv4 } from "../../src/common/net.ts";

type Json = Record<string, unknown>;

const ip = (s: string) => parseIPv4(s)!;

/** A one-rule config: input on eth0, the outputs given (on eth1 unless they say). */
function one(input: Json, outputs: Json[] = [{ group: "keep", port: "keep" }], extra: Json = {}) {
  return {
    rules: [{
      name: "range",
      input: { interface: "eth0", ...input },
      outputs: outputs.map((o) => ({ interface: "eth1", ...o })),
      ...extra,
    }],
  };
}

function ok(doc: unknown): Config {
  return parseConfig(doc, "rules.json");
}

/** The problems `check` reports for `doc`, one line each (file, rule, field, why). */
function refused(doc: unknown): string[] {
  try {
    parseConfig(doc, "rules.json");
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    assert.match(e.message, /^invalid configuration in rules\.json/);
    return e.message.split("\n").slice(1).map((l) => l.trim());
  }
  assert.fail("the configuration was accepted");
}

Deno.test("ranges: a range input with port any, kept and mapped outputs, normalized", () => {
  const c = ok(one({ group: "239.1.0.0/16", port: "any", joins: ["239.1.1.1", "239.1.2.3"] }, [
    { group: "keep", port: "keep" },
    { group: "239.20.0.0/16", port: 6000 },
    { group: "239.30.1.1", port: "keep" },
    { group: "10.0.5.20", port: 7000 },
  ]));
  const r = c.rules[0];
  assert.deepEqual(
    [r.input.group, r.input.port, r.input.groupAddr, r.input.prefixLen, r.input.portNumber],
    ["239.1.0.0/16", "any", ip("239.1.0.0"), 16, 0],
  );
  assert.deepEqual(r.input.joinAddrs, [ip("239.1.1.1"), ip("239.1.2.3")]);
  assert.deepEqual(
    r.outputs.map((o) => [o.group, o.port, o.groupAddr, o.hostBits, o.portNumber]),
    [
      ["keep", "keep", ip("239.1.0.0"), 16, 0], // each datagram's group and port
      ["239.20.0.0/16", 6000, ip("239.20.0.0"), 16, 6000], // host bits onto 239.20/16
      ["239.30.1.1", "keep", ip("239.30.1.1"), 0, 0], // one group, each datagram's port
      ["10.0.5.20", 7000, ip("10.0.5.20"), 0, 7000], // everything to one unicast address
    ],
  );
});

Deno.test("ranges: keep of one group and one port resolves once; port 0 is any", () => {
  const c = ok(one({ group: "239.1.1.1", port: 5001 }, [{ group: "keep", port: "keep" }]));
  const o = c.rules[0].outputs[0];
  assert.deepEqual([o.groupAddr, o.hostBits, o.portNumber], [ip("239.1.1.1"), 0, 5001]);
  assert.deepEqual(c.rules[0].input.joinAddrs, [ip("239.1.1.1")]);
  const z = ok(one({ group: "239.1.1.1", port: 0 }, [{ group: "239.2.2.2", port: 6000 }]));
  assert.equal(z.rules[0].input.port, "any");
  assert.equal(z.rules[0].input.portNumber, 0);
  // one input however its port is written: the same id, and two rules are one input twice
  const any = { interface: "eth0", group: "239.1.1.1", port: "any" as const };
  assert.equal(ruleId({ ...any, port: 0 }), ruleId(any));
  const both = {
    rules: [0, "any"].map((port, k) => ({
      name: `r${k}`,
      input: { interface: "eth0", group: "239.1.1.1", port },
      outputs: [{ interface: "eth1", group: "239.2.2.2", port: 6000 }],
    })),
  };
  const lines = refused(both);
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^rule 1 "r1": input: same input \(eth0 239\.1\.1\.1:any\) as enabled/);
});

Deno.test("ranges: a range needs a network address, a real prefix, multicast", () => {
  const cases: [string, RegExp][] = [
    ["239.1.1.0/16", /"239\.1\.1\.0\/16" has host bits set: .* is "239\.1\.0\.0\/16"/],
    ["239.1.1.1/32", /"239\.1\.1\.1\/32" is one address: write "239\.1\.1\.1"/],
    ["10.0.0.0/8", /a range must be multicast.*got "10\.0\.0\.0\/8"/],
    ["224.0.0.0/3", /a range must be multicast.*no wider than \/4/],
    ["224.0.0.0/16", /"224\.0\.0\.0\/16" includes 224\.0\.0\.0\/24.*allow_link_local/],
  ];
  for (const [group, why] of cases) {
    const lines = refused(one({ group, port: "any" }));
    assert.equal(lines.length, 1, `${group}: ${lines.join(" | ")}`);
    assert.match(lines[0], /^rule 0 "range": input\.group: /);
    assert.match(lines[0], why);
  }
  // a link-local range with allow_link_local, and 224.0.0.0/4 (all of multicast) with it
  ok(one({ group: "224.0.0.0/16", port: "any" }, undefined, { allow_link_local: true }));
  ok(one({ group: "224.0.0.0/4", port: 5000 }, undefined, { allow_link_local: true }));
  // structurally: a prefix length over 32 or with a leading zero is not a range
  for (const group of ["239.1.0.0/33", "239.1.0.0/016", "239.1.0.0/"]) {
    assert.match(refused(one({ group, port: 1 }))[0], /input\.group: must be an IPv4 address/);
  }
});

Deno.test("ranges: port any needs a multicast input (a unicast input's port is claimed)", () => {
  const lines = refused(one({ group: "10.0.0.5", port: "any" }, [{ group: "239.2.2.2", port: 1 }]));
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^rule 0 "range": input\.port: "any" needs a multicast input: .*claimed/);
  ok(one({ group: "239.1.1.1", port: "any" }, [{ group: "239.2.2.2", port: 1 }]));
});

Deno.test("ranges: joins are groups inside the range, each once, and only for a range", () => {
  const lines = refused(one({
    group: "239.1.0.0/16",
    port: "any",
    joins: ["239.1.1.1", "239.2.0.1", "239.1.1.1"],
  }));
  assert.deepEqual(lines, [
    'rule 0 "range": input.joins[1]: 239.2.0.1 is outside the input range 239.1.0.0/16: only ' +
    "groups the rule relays can be joined for it",
    'rule 0 "range": input.joins[2]: duplicate of joins[0] (239.1.1.1)',
  ]);
  assert.match(
    refused(one({ group: "239.1.1.1", port: 1, joins: ["239.1.1.1"] }))[0],
    /input\.joins: lists the groups of a range to join, but the input is one address/,
  );
  assert.match(refused(one({ group: "239.1.0.0/16", port: 1, joins: [] }))[0], /input\.joins/);
});

Deno.test("ranges: a mapped range has the input range's length and is multicast", () => {
  const cases: [Json, Json, RegExp][] = [
    [
      { group: "239.1.1.1", port: 1 },
      { group: "239.20.0.0/16", port: 6000 },
      /outputs\[0\]\.group: is a range, but the input is one address/,
    ],
    [
      { group: "239.1.0.0/16", port: 1 },
      { group: "239.20.0.0/24", port: 6000 },
      /outputs\[0\]\.group: is a \/24, but the input range is a \/16/,
    ],
    [
      { group: "239.1.0.0/16", port: 1 },
      { group: "10.20.0.0/16", port: 6000 },
      /outputs\[0\]\.group: a mapped range must be multicast/,
    ],
    [
      { group: "239.1.0.0/16", port: 1 },
      { group: "239.20.1.0/16", port: 6000 },
      /outputs\[0\]\.group: "239\.20\.1\.0\/16" has host bits set/,
    ],
  ];
  for (const [input, output, why] of cases) {
    const lines = refused(one(input, [output]));
    assert.equal(lines.length, 1, lines.join(" | "));
    assert.match(lines[0], /^rule 0 "range": /);
    assert.match(lines[0], why);
  }
});

Deno.test("ranges: an output on the input's interface may not send back into the input", () => {
  const back: [Json, Json][] = [
    [{ group: "239.1.0.0/16", port: "any" }, { group: "keep", port: "keep" }],
    [{ group: "239.1.0.0/16", port: 5000 }, { group: "239.1.0.0/16", port: 5000 }],
    [{ group: "239.1.0.0/16", port: "any" }, { group: "239.1.7.7", port: 6000 }],
    [{ group: "239.1.0.0/16", port: 5000 }, { group: "239.1.7.7", port: "keep" }],
    [{ group: "239.1.1.1", port: "any" }, { group: "keep", port: 6000 }],
  ];
  for (const [input, output] of back) {
    const lines = refused(one(input, [{ ...output, interface: "eth0" }]));
    assert.equal(lines.length, 1, lines.join(" | "));
    assert.match(
      lines[0],
      /^rule 0 "range": outputs\[0\]: sends on the input's interface to .*, back into the rule's own input \(eth0 239\.1\..*\); it would forward the stream into itself$/,
    );
  }
  const fine: [Json, Json][] = [
    [{ group: "239.1.0.0/16", port: "any" }, { group: "239.2.0.0/16", port: "keep" }],
    [{ group: "239.1.0.0/16", port: 5000 }, { group: "keep", port: 6000 }],
    [{ group: "239.1.0.0/16", port: "any" }, { group: "239.2.7.7", port: 6000 }],
    [{ group: "239.1.1.1", port: 5000 }, { group: "keep", port: 6000 }],
  ];
  for (const [input, output] of fine) ok(one(input, [{ ...output, interface: "eth0" }]));
  // the exact case keeps its message
  assert.match(
    refused(one({ group: "239.1.1.1", port: 5000 }, [{
      interface: "eth0",
      group: "keep",
      port: "keep",
    }]))[0],
    /outputs\[0\]: same interface, group and port as the rule's input \(eth0 239\.1\.1\.1:5000\)/,
  );
});

Deno.test("ranges: duplicate outputs however written (keep of a range is that range)", () => {
  const lines = refused(one({ group: "239.1.0.0/16", port: 5000 }, [
    { group: "keep", port: "keep" },
    { group: "239.1.0.0/16", port: 5000 },
    { group: "239.1.0.0", port: 5000 }, // one group: another output
  ]));
  assert.deepEqual(lines, [
    'rule 0 "range": outputs[1]: duplicate of outputs[0] (same interface, group and port: ' +
    "eth1 239.1.0.0/16:5000)",
  ]);
});

Deno.test("ranges: the IGMP joins of the enabled rules are capped relay-wide", () => {
  const per = 256;
  const n = Math.floor(MAX_JOINS / per) + 1;
  const rules = Array.from({ length: n }, (_, k) => ({
    name: `r${k}`,
    input: {
      interface: "eth0",
      group: `239.${k >> 8}.${k & 255}.0/24`,
      port: "any",
      joins: Array.from({ length: per }, (_, j) => `239.${k >> 8}.${k & 255}.${j}`),
    },
    outputs: [{ interface: "eth1", group: "keep", port: "keep" }],
  }));
  const lines = refused({ rules });
  assert.deepEqual(lines, [
    `config: rules: asks for ${n * per} IGMP joins in its enabled rules (one per multicast ` +
    `input group, one per group of a range's "joins"); at most ${MAX_JOINS} are allowed per ` +
    "relay",
  ]);
  // one fewer rule fits; an added rule is held to the same count
  const fits = ok({ rules: rules.slice(0, n - 1) });
  assert.throws(
    () => validateRule(rules[n - 1], fits),
    (e: unknown) => e instanceof ConfigError && /IGMP joins/.test(e.message),
  );
});

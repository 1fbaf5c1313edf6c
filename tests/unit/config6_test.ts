/**
 * IPv6 rules in rules.json (issue 14): what is accepted and how it is
 * normalized (addresses as words, families, translation, `hops`), every
 * error with its field, and the specs and table rules the relay makes of
 * them; the JSON Schema agrees with zod on IPv6 addresses.
 */
import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../../src/config/mod.ts";
import { ruleSpecs } from "../../src/relay/relay_config.ts";
import { buildTables, Slots } from "../../src/relay/tables.ts";
import { describeInput } from "../../src/config/ids.ts";
import { parseIPv6 } from "../../src/common/net6.ts";

function problems(rule: unknown): string[] {
  try {
    parseConfig({ rules: [rule] }, "t.json");
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.field}: ${i.message}`);
    throw e;
  }
  return [];
}

const out6 = { interface: "e1", group: "ff15::2", port: 5002 };

Deno.test("IPv6 rules: normalized with the addresses as words, translation both ways, hops", () => {
  const c = parseConfig({
    rules: [
      {
        name: "six",
        input: { interface: "e0", group: "ff3e::1", port: 5001, source: "2001:db8::1" },
        outputs: [
          { ...out6, hops: "decrement", dscp: 46, source_ip: "2001:db8:2::1" },
          { interface: "e1", group: "239.1.1.1", port: 5003 },
          { interface: "e0", group: "keep", port: 6000 },
        ],
      },
      {
        name: "four",
        hops: 4,
        input: { interface: "e0", group: "239.9.9.9", port: 5001 },
        outputs: [{ interface: "e1", group: "2001:db8:2::9", port: 5004 }],
      },
    ],
  }, "t.json");
  const [six, four] = c.rules;
  assert.equal(six.input.family, 6);
  assert.deepEqual(six.input.group6, parseIPv6("ff3e::1"));
  assert.deepEqual(six.input.source6, parseIPv6("2001:db8::1"));
  assert.deepEqual(six.input.joinAddrs, [], "an IPv6 group is joined with MLD, not IGMP");
  assert.deepEqual(six.outputs.map((o) => o.family), [6, 4, 6]);
  assert.equal(six.outputs[0].ttl, "decrement");
  assert.equal(six.outputs[0].tos, 46 << 2);
  assert.deepEqual(six.outputs[0].source6, parseIPv6("2001:db8:2::1"));
  assert.deepEqual(six.outputs[2].group6, parseIPv6("ff3e::1"), '"keep" of an IPv6 group');
  assert.equal(four.outputs[0].family, 6);
  assert.equal(four.outputs[0].ttl, 4, "the rule's hops is its ttl");
  // specs and table rules carry the IPv6 addresses to the data path
  const specs = ruleSpecs(c.rules);
  assert.deepEqual(specs[0].input.group6, parseIPv6("ff3e::1"));
  assert.deepEqual(specs[0].outputs[0].dst6, parseIPv6("ff15::2"));
  assert.equal(specs[0].outputs[1].dst6, undefined);
  const t = buildTables(specs, new Slots(), 1, ["e0"]).get("e0")!;
  assert.deepEqual(t.rules.find((r) => r.name === "six")!.source6, parseIPv6("2001:db8::1"));
  // two IPv6 outputs whose low 32 bits are equal are two outputs
  const twin = parseConfig({
    rules: [{
      input: { interface: "e0", group: "ff15::1", port: 1 },
      outputs: [{ ...out6, group: "ff15::1:9" }, { ...out6, group: "ff15::2:9" }],
    }],
  }, "t.json");
  const slots = buildTables(ruleSpecs(twin.rules), new Slots(), 1, ["e0"]).get("e0")!.rules[0]
    .outputs.map((o) => o.slot);
  assert.equal(new Set(slots).size, 2);
  assert.equal(describeInput(six.input), "e0 [ff3e::1]:5001 from 2001:db8::1");
});

Deno.test("IPv6 rules: every problem named with its field", () => {
  const rule = (input: Record<string, unknown>, outputs: unknown[] = [out6], more = {}) => ({
    input: { interface: "e0", port: 5001, ...input },
    outputs,
    ...more,
  });
  const cases: [unknown, RegExp][] = [
    [rule({ group: "FF3E::1", source: "2001:db8::1" }), /input\.group: write "ff3e::1"/],
    [rule({ group: "ff3e::1" }), /input\.source: is required: ff3e::1 is a source-specific/],
    [rule({ group: "ff02::1" }), /input\.group: ff02::1: multicast below admin-local/],
    [rule({ group: "ff01::1" }), /input\.group: ff01::1 is interface-local/],
    [rule({ group: "ff10::1" }), /input\.group: ff10::1 has a reserved multicast scope/],
    [rule({ group: "2001:db8::1" }), /input\.group: .*IPv6 unicast inputs are not supported/],
    [rule({ group: "ff15::1", source: "10.0.0.1" }), /input\.source: 10\.0\.0\.1 is an IPv4/],
    [rule({ group: "239.1.1.1", source: "fd00::1" }), /input\.source: fd00::1 is an IPv6/],
    [rule({ group: "ff15::1", source: "ff15::2" }), /input\.source: .*multicast/],
    [rule({ group: "ff15::1", joins: ["239.1.1.1"] }), /input\.joins: .*one IPv6 group/],
    [
      rule({ group: "ff15::1" }, [{ ...out6, source_ip: "10.0.0.1" }]),
      /source_ip: 10\.0\.0\.1 is an IPv4/,
    ],
    [rule({ group: "ff15::1" }, [{ ...out6, group: "::1" }]), /outputs\[0\]\.group: .*loopback/],
    [
      rule({ group: "ff15::1" }, [{ ...out6, group: "::ffff:10.0.0.1" }]),
      /write "::ffff:a00:1"|IPv4-mapped/,
    ],
    [rule({ group: "ff15::1" }, [{ ...out6, ttl: 2, hops: 3 }]), /outputs\[0\]\.hops: .*give one/],
    [rule({ group: "ff15::1" }, [out6], { ttl: 2, hops: 3 }), /hops: .*give one of them/],
    [
      rule({ group: "ff15::1" }, [{ ...out6, group: "239.20.0.0/16" }]),
      /outputs\[0\]\.group: is a range, but the input is one address/,
    ],
    [
      rule({ group: "ff15::1" }, [{ interface: "e0", group: "keep", port: "keep" }]),
      /outputs\[0\]: same interface, group and port as the rule's input \(e0 \[ff15::1\]:5001\)/,
    ],
    [rule({ group: "ff15::1%e0" }), /input\.group: must be/],
  ];
  for (const [r, want] of cases) {
    const p = problems(r);
    assert.ok(p.some((m) => want.test(m)), `${JSON.stringify(r)}: ${want}\n${p.join("\n")}`);
  }
  // link-local groups with allow_link_local
  assert.deepEqual(problems(rule({ group: "ff02::1:3" }, [out6], { allow_link_local: true })), []);
  // the other family's output source is fine where it matches its own group
  assert.deepEqual(
    problems(rule({ group: "239.1.1.1" }, [{ ...out6, source_ip: "fe80::1" }])),
    [],
  );
});

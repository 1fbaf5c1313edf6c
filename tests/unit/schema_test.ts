/**
 * The JSON Schema of rules.json: the committed file is what the code
 * generates (`deno task schema` regenerates it), `cli.ts schema` prints it, it
 * compiles under Ajv's strict mode, accepts the valid fixtures and rejects the
 * structurally invalid ones, and for random rules it agrees with the zod
 * validator the relay uses. The topology configurations of docs/topologies.md
 * are valid and shown there.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { Ajv2020 } from "ajv/dist/2020.js";
import {
  loadConfig,
  MAX_JOINS_PER_RULE,
  MAX_OUTPUTS_PER_RULE,
  MAX_RULES,
  RuleSchema,
} from "../../src/config/mod.ts";
import {
  DESCRIPTIONS,
  rulesJsonSchema,
  rulesJsonSchemaText,
} from "../../src/config/json_schema.ts";

const REPO = new URL("../..", import.meta.url).pathname;
const COMMITTED = `${REPO}schema/rules.schema.json`;
const FIX = `${REPO}tests/fixtures/config`;

function validator() {
  const ajv = new Ajv2020({ allErrors: true, strict: true, formats: { ipv4: true } });
  const schema = rulesJsonSchema();
  return { ajv, schema, config: ajv.compile(schema) };
}

Deno.test("schema/rules.schema.json matches the zod schema (run `deno task schema`)", () => {
  const committed = Deno.readTextFileSync(COMMITTED);
  assert.equal(
    committed,
    rulesJsonSchemaText(),
    "schema/rules.schema.json is stale: run `deno task schema` and commit the result",
  );
});

Deno.test("cli.ts schema prints the committed schema (exit 0)", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", `${REPO}cli.ts`, "schema"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.equal(new TextDecoder().decode(out.stdout), Deno.readTextFileSync(COMMITTED));
});

/** Follow a path of keys through a JSON value. */
function at(v: unknown, path: string): unknown {
  return path.split(".").reduce((x, k) => (x as Record<string, unknown>)?.[k], v);
}

Deno.test("schema: every property is typed and described; ranges come from the code", () => {
  const s = rulesJsonSchema();
  const rule = at(s, "properties.rules.items");
  assert.deepEqual(at(rule, "properties.input.required"), ["interface", "group", "port"]);
  assert.equal(at(rule, "additionalProperties"), false);
  // a port, or every port: "any" (or 0) in an input, "keep" (the datagram's own) in an output
  assert.deepEqual(at(rule, "properties.input.properties.port.anyOf"), [
    { type: "integer", minimum: 0, maximum: 65535 },
    { const: "any" },
  ]);
  assert.deepEqual(at(rule, "properties.outputs.items.properties.port.anyOf"), [
    { type: "integer", minimum: 1, maximum: 65535 },
    { const: "keep" },
  ]);
  assert.equal(at(rule, "properties.input.properties.joins.maxItems"), MAX_JOINS_PER_RULE);
  assert.equal(at(rule, "properties.outputs.maxItems"), MAX_OUTPUTS_PER_RULE);
  assert.equal(at(s, "properties.rules.maxItems"), MAX_RULES);
  assert.deepEqual(at(s, "required"), ["rules"]);
  // every described path exists (no stale descriptions)
  const text = JSON.stringify(s);
  for (const d of Object.values(DESCRIPTIONS)) assert.ok(text.includes(JSON.stringify(d)), d);
});

Deno.test("schema accepts every valid fixture and the README example", () => {
  const { config } = validator();
  const files = [...Deno.readDirSync(FIX)].map((e) => e.name).filter((f) => f.startsWith("valid-"));
  assert.ok(files.length >= 3);
  for (const f of files) {
    const ok = config(JSON.parse(Deno.readTextFileSync(`${FIX}/${f}`)));
    assert.ok(ok, `${f}: ${JSON.stringify(config.errors)}`);
  }
  const readme = Deno.readTextFileSync(`${REPO}README.md`);
  const m = readme.match(/### rules\.json\s+```json\n([\s\S]*?)```/);
  assert.ok(m, "README rules.json example not found");
  assert.ok(config(JSON.parse(m[1])), JSON.stringify(config.errors));
});

Deno.test("the topology configurations (docs/topologies.md) pass the schema and `check`'s loader", async () => {
  const { config } = validator();
  const dir = `${REPO}examples/topologies`;
  const files = [...Deno.readDirSync(dir)].map((e) => e.name).filter((f) => f.endsWith(".json"));
  assert.ok(files.length >= 4);
  const doc = Deno.readTextFileSync(`${REPO}docs/topologies.md`);
  for (const f of files) {
    assert.ok(
      config(JSON.parse(Deno.readTextFileSync(`${dir}/${f}`))),
      `${f}: ${JSON.stringify(config.errors)}`,
    );
    const c = await loadConfig(`${dir}/${f}`);
    assert.ok(c.rules.length > 0, f);
    // The document shows the file as it is: the first json block after its name.
    const at = doc.indexOf(`(../examples/topologies/${f})`);
    assert.ok(at >= 0, `docs/topologies.md links ${f}`);
    const block = doc.slice(at).match(/```json\n([\s\S]*?)```/);
    assert.ok(block, `docs/topologies.md shows ${f}`);
    assert.deepEqual(JSON.parse(block[1]), JSON.parse(Deno.readTextFileSync(`${dir}/${f}`)), f);
  }
});

Deno.test("schema rejects structurally invalid fixtures, naming the field", () => {
  const { config } = validator();
  const cases: Record<string, string> = {
    "invalid-port-range.json": "/port",
    "invalid-unknown-key.json": "additionalProperties",
    "invalid-missing-rules.json": "rules",
    "invalid-no-outputs.json": "/outputs",
    "invalid-types.json": "/rules/",
  };
  for (const [f, needle] of Object.entries(cases)) {
    const ok = config(JSON.parse(Deno.readTextFileSync(`${FIX}/${f}`)));
    assert.equal(ok, false, `${f} should be rejected`);
    assert.ok(
      JSON.stringify(config.errors).includes(needle),
      `${f}: ${JSON.stringify(config.errors)}`,
    );
  }
});

// Values that are valid for some fields and invalid for others.
const anyLeaf = fc.oneof(
  fc.integer({ min: -2, max: 70000 }),
  fc.constantFrom(0, 1, 63, 64, 255, 256, 4094, 4095, 65535, 65536, 1.5, 2, 3),
  fc.constantFrom("decrement", "239.1.1.1", "10.0.0.5", "01.2.3.4", "1.2.3", "256.1.1.1"),
  fc.constantFrom("239.1.0.0/16", "1.2.3.4/33", "1.2.3.4/016", "1.2.3.4/", "any", "keep", "ANY"),
  fc.constantFrom("eth0", "a/b", "a b", ".", "..", "x".repeat(15), "x".repeat(16), "", "r:1"),
  fc.constantFrom("e\u009b2J", "eth\u202e0", "a\u200bb", "caf\u00e9", "\u00a0x", "e\u007f"),
  fc.constantFrom(true, false, null, "true", "hash", [], {}),
);
/** Mostly a valid value for the field, sometimes anything. */
const field = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 20, arbitrary: valid }, { weight: 1, arbitrary: anyLeaf });
const ifaceArb = field(fc.constantFrom("eth0", "eth1", "r:1", "x".repeat(15)));
const addrArb = field(fc.constantFrom("239.1.1.1", "10.0.0.5", "0.0.0.0", "255.255.255.255"));
const portArb = field(fc.integer({ min: 1, max: 65535 }));
// ranges and wildcards: valid in some fields (input group/port, output group/port), not others
// (anyLeaf brings each field the others' values)
const inGroupArb = field(fc.constantFrom("239.1.1.1", "10.0.0.5", "239.1.0.0/16", "239.0.0.0/8"));
const outGroupArb = field(fc.constantFrom("239.1.1.1", "10.0.0.5", "239.20.0.0/16", "keep"));
const inPortArb = field(fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.constant("any")));
const outPortArb = field(fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.constant("keep")));
const joinsArb = field(fc.array(fc.constantFrom("239.1.1.1", "239.1.2.3"), { maxLength: 3 }));
const ttlArb = field(fc.oneof(fc.integer({ min: 1, max: 255 }), fc.constant("decrement")));
const dscpArb = field(fc.integer({ min: 0, max: 63 }));
const boolArb = field(fc.boolean());
const inputRecord = fc.record({
  interface: ifaceArb,
  group: inGroupArb,
  port: inPortArb,
  source: addrArb,
  vlan: field(fc.integer({ min: 0, max: 4094 })),
  joins: joinsArb,
}, { requiredKeys: [] });
const inputArb = fc.oneof(
  { weight: 6, arbitrary: inputRecord },
  { weight: 1, arbitrary: inputRecord.map((o) => ({ ...o, ouptut: 1 })) }, // unknown key
);
const outputArb = fc.record({
  interface: ifaceArb,
  group: outGroupArb,
  port: outPortArb,
  ttl: ttlArb,
  dscp: dscpArb,
  source_ip: addrArb,
  source_port: portArb,
}, { requiredKeys: [] });
const ruleArb = fc.record({
  name: field(fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/)),
  enabled: boolArb,
  input: field(inputArb),
  outputs: field(fc.array(outputArb, { minLength: 1, maxLength: 3 })),
  ttl: ttlArb,
  dscp: dscpArb,
  allow_link_local: boolArb,
}, { requiredKeys: [] });

Deno.test("property: the JSON Schema and the zod rule schema agree on random rules", () => {
  const { ajv, schema } = validator();
  const rule = ajv.compile({
    $schema: schema.$schema as string,
    ...(at(schema, "properties.rules.items") as Record<string, unknown>),
  });
  const seen = { valid: 0, invalid: 0 };
  fc.assert(
    fc.property(ruleArb, (r) => {
      const zod = RuleSchema.safeParse(r).success;
      const json = rule(r) as boolean;
      assert.equal(json, zod, `zod ${zod}, JSON Schema ${json}: ${JSON.stringify(r)}`);
      seen[zod ? "valid" : "invalid"]++;
    }),
    // about 3 % of the random rules are valid (each field may hold another's value): 8000 runs
    // give about 320 valid ones, far from the floor below whatever the seed
    { numRuns: 8000 },
  );
  // both outcomes must be exercised for the agreement to mean something
  assert.ok(seen.valid >= 100 && seen.invalid >= 100, JSON.stringify(seen));
  console.log(`  ${seen.valid} valid, ${seen.invalid} invalid rules: zod and JSON Schema agree`);
});

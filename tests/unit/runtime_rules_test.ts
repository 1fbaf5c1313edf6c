/**
 * Runtime rules (config `runtime_rules`, src/relay/runtime_rules.ts): what
 * `ctl add`, `remove`, `add-output` and `remove-output` change is written to
 * the runtime rules file, so that reading the configuration again (a reload,
 * a restart) gives the same rules; rules of the configuration files are
 * changed only transiently; a file that cannot be written changes nothing.
 * The relay is not started: these are the configuration side of the changes
 * (the data path's side is in tests/netns/live_test.ts).
 */
import assert from "node:assert/strict";
import { loadConfig } from "../../src/config/mod.ts";
import { DefinedInFileError, Relay, RuleNotFoundError } from "../../src/relay/relay.ts";
import { RuntimeRulesError } from "../../src/relay/runtime_rules.ts";

/** A rule relaying group 239.1.1.n to 239.2.1.n. */
function rule(name: string, n: number) {
  return {
    name,
    input: { interface: "eth0", group: `239.1.1.${n}`, port: 5000 },
    outputs: [{ interface: "eth1", group: `239.2.1.${n}`, port: 5000 }],
  };
}

async function setup(runtime = "state/runtime.json") {
  const dir = await Deno.makeTempDir({ prefix: "mcr-runtime-" });
  await Deno.mkdir(`${dir}/state`);
  const path = `${dir}/rules.json`;
  await Deno.writeTextFile(
    path,
    JSON.stringify({ ttl: 3, runtime_rules: runtime, rules: [rule("file", 1)] }),
  );
  const relay = new Relay(await loadConfig(path), { configPath: path });
  return { dir, path, relay };
}

const names = (c: { rules: { name: string }[] }) => c.rules.map((r) => r.name);

Deno.test("runtime rules: ctl changes are written to the file, and reading the configuration again gives them back", async () => {
  const { dir, path, relay } = await setup();
  try {
    assert.equal(relay.runtimeRules?.path, `${dir}/state/runtime.json`);
    await relay.addRule(rule("a", 2));
    await relay.addRule(rule("b", 3));
    const text = await Deno.readTextFile(`${dir}/state/runtime.json`);
    assert.match(text, /^\/\/ mcr runtime rules/, "a JSONC file that says what it is");
    assert.deepEqual(names(await loadConfig(path)), ["file", "a", "b"]);
    // defaults of the main file still apply to runtime rules (written as the client gave them)
    assert.equal((await loadConfig(path)).rules[1].outputs[0].ttl, 3);

    await relay.changeOutputs(
      "a",
      (o) => [...o, { interface: "eth2", group: "239.3.1.2", port: 6000 }],
    );
    let again = await loadConfig(path);
    assert.deepEqual(again.rules[1].outputs.map((o) => o.interface), ["eth1", "eth2"]);
    await relay.changeOutputs("a", (o) => o.filter((x) => x.interface !== "eth1"));
    again = await loadConfig(path);
    assert.deepEqual(again.rules[1].outputs.map((o) => o.interface), ["eth2"]);
    assert.deepEqual(relay.config.rules[1].outputs.map((o) => o.interface), ["eth2"]);

    await relay.removeRule("b");
    assert.deepEqual(names(await loadConfig(path)), ["file", "a"]);
    // a reload reads the runtime file again: nothing is lost, nothing doubled
    const summary = await relay.reload();
    assert.deepEqual([summary.added, summary.removed], [[], []]);
    assert.deepEqual(names(relay.config), ["file", "a"]);
    assert.ok(relay.runtimeRules?.has("a") && !relay.runtimeRules.has("file"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runtime rules: a rule of the configuration files changes only transiently", async () => {
  const { dir, path, relay } = await setup();
  try {
    await assert.rejects(relay.removeRule("file"), DefinedInFileError);
    await assert.rejects(
      relay.changeOutputs(
        "file",
        (o) => [...o, { interface: "eth2", group: "239.3.1.1", port: 6000 }],
      ),
      DefinedInFileError,
    );
    assert.deepEqual(names(relay.config), ["file"], "nothing changed");
    await relay.changeOutputs(
      "file",
      (o) => [...o, { interface: "eth2", group: "239.3.1.1", port: 6000 }],
      { transient: true },
    );
    assert.equal(relay.config.rules[0].outputs.length, 2);
    assert.equal(relay.config.rules[0].outputs[0].ttl, 3, "resolved values kept");
    await relay.removeRule("file", { transient: true });
    assert.deepEqual(names(relay.config), []);
    assert.deepEqual(names(await loadConfig(path)), ["file"], "the files are untouched");
    await assert.rejects(relay.removeRule("nope"), RuleNotFoundError);
    // transient additions are not written either
    await relay.addRule(rule("t", 4), { transient: true });
    assert.deepEqual(names(await loadConfig(path)), ["file"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runtime rules: a file that cannot be written changes nothing", async () => {
  const { dir, path, relay } = await setup("missing-dir/runtime.json");
  try {
    await assert.rejects(relay.addRule(rule("a", 2)), RuntimeRulesError);
    assert.deepEqual(names(relay.config), ["file"]);
    assert.deepEqual(names(await loadConfig(path)), ["file"]);
    await Deno.mkdir(`${dir}/missing-dir`);
    await relay.addRule(rule("a", 2));
    assert.deepEqual(names(await loadConfig(path)), ["file", "a"]);
    const leftovers = [...Deno.readDirSync(`${dir}/missing-dir`)].map((e) => e.name);
    assert.deepEqual(leftovers, ["runtime.json"], "no temporary file left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runtime rules: without runtime_rules nothing is written", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mcr-runtime-" });
  try {
    const path = `${dir}/rules.json`;
    await Deno.writeTextFile(path, JSON.stringify({ rules: [rule("file", 1)] }));
    const relay = new Relay(await loadConfig(path), { configPath: path });
    assert.equal(relay.runtimeRules, undefined);
    await relay.addRule(rule("a", 2));
    await relay.removeRule("file");
    assert.deepEqual(names(relay.config), ["a"]);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["rules.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

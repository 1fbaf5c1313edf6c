/**
 * `include` (src/config/include.ts): files named by paths and globs relative
 * to the including file join its rules, validated as one document; problems
 * name the file (and the rule's index in it); limits and the main file's
 * keys are enforced; a reload sees what the files hold now.
 */
import assert from "node:assert/strict";
import {
  ConfigError,
  loadConfig,
  MAX_INCLUDE_PATTERNS,
  parseConfig,
  setQuoteValues,
} from "../../src/config/mod.ts";

/** A rule relaying group 239.1.1.n to 239.2.1.n. */
function rule(name: string, n: number, port = 5000) {
  return {
    name,
    input: { interface: "eth0", group: `239.1.1.${n}`, port },
    outputs: [{ interface: "eth1", group: `239.2.1.${n}`, port }],
  };
}

/** A fresh directory with `files` (path → text or JSON value) in it. */
async function tree(files: Record<string, unknown>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "mcr-include-" });
  for (const [path, v] of Object.entries(files)) {
    const full = `${dir}/${path}`;
    await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(full, typeof v === "string" ? v : JSON.stringify(v, null, 2));
  }
  return dir;
}

async function refused(path: string): Promise<ConfigError> {
  try {
    await loadConfig(path);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

Deno.test("include: globs and paths relative to the including file, in order, each file once", async () => {
  const dir = await tree({
    "etc/rules.json": {
      ttl: 3,
      include: ["rules.d/*.json", "extra/one.jsonc", "rules.d/b.json"],
      rules: [rule("main", 1)],
    },
    "etc/rules.d/b.json": { rules: [rule("b1", 3), rule("b2", 4)] },
    "etc/rules.d/a.json": { rules: [rule("a1", 2)] },
    "etc/rules.d/ignored.txt": "not json",
    "etc/extra/one.jsonc": '{\n  // a comment\n  "rules": [' + JSON.stringify(rule("x", 5)) +
      ",],\n}",
  });
  try {
    const c = await loadConfig(`${dir}/etc/rules.json`);
    assert.deepEqual(c.rules.map((r) => r.name), ["main", "a1", "b1", "b2", "x"]);
    assert.equal(c.ttl, 3, "settings of the main file apply to included rules");
    assert.ok(c.rules.every((r) => r.outputs[0].ttl === 3));
    // an empty rules.d is fine
    await Deno.writeTextFile(
      `${dir}/etc/rules.json`,
      JSON.stringify({ include: ["rules.d/*.json", "extra/one.jsonc"], rules: [rule("main", 1)] }),
    );
    await Deno.remove(`${dir}/etc/rules.d`, { recursive: true });
    await Deno.mkdir(`${dir}/etc/rules.d`);
    await Deno.remove(`${dir}/etc/extra/one.jsonc`);
    const e = await refused(`${dir}/etc/rules.json`);
    assert.match(e.message, /cannot read the file .*extra\/one\.jsonc/, "a plain path must exist");
    await Deno.writeTextFile(`${dir}/etc/extra/one.jsonc`, '{ "rules": [] }');
    assert.deepEqual((await loadConfig(`${dir}/etc/rules.json`)).rules.map((r) => r.name), [
      "main",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("include: a problem names its file and the rule's index there; conflicts across files are found", async () => {
  const bad = rule("bad", 7);
  bad.outputs[0].port = 70000;
  const dir = await tree({
    "rules.json": { include: ["d/*.json"], rules: [rule("main", 1)] },
    "d/a.json": { rules: [rule("a1", 2), bad] },
    "d/b.json": { rules: [rule("dup", 2)] },
  });
  try {
    const e = await refused(`${dir}/rules.json`);
    assert.match(e.message, new RegExp(`in ${dir}/rules\\.json`));
    const lines = e.message.split("\n").slice(1).map((l) => l.trim());
    assert.ok(
      lines.some((l) => l.startsWith('d/a.json rule 1 "bad": outputs[0].port:')),
      e.message,
    );
    assert.ok(
      lines.some((l) =>
        l.startsWith('d/b.json rule 0 "dup": input:') && /d\/a\.json rule 0 "a1"/.test(l)
      ),
      e.message,
    );
    const issue = e.issues.find((i) => i.rule?.name === "bad")!;
    assert.deepEqual([issue.file, issue.rule?.index, issue.path], ["d/a.json", 1, [
      "rules",
      2,
      "outputs",
      0,
      "port",
    ]]);
    // A syntax error names the included file, line and column.
    await Deno.writeTextFile(`${dir}/d/b.json`, '{\n  "rules": [\n    oops\n  ]\n}');
    const s = await refused(`${dir}/rules.json`);
    assert.match(s.message, /in d\/b\.json/);
    assert.deepEqual([s.issues[0].line, s.issues[0].column], [3, 5]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("include: included files hold rules only; limits; the main file is not included again", async () => {
  const dir = await tree({
    "rules.json": { include: ["*.json"], rules: [rule("main", 1)] },
    "more.json": { rules: [rule("m", 2)], ttl: 4 },
  });
  try {
    const e = await refused(`${dir}/rules.json`);
    assert.match(e.message, /in more\.json/);
    assert.match(e.message, /may not \("ttl"\): only "rules"/);
    // Without quoting (the daemon), no key of the file is repeated.
    setQuoteValues(false);
    try {
      const q = await refused(`${dir}/rules.json`);
      assert.doesNotMatch(q.message, /ttl/);
    } finally {
      setQuoteValues(true);
    }
    await Deno.writeTextFile(`${dir}/more.json`, JSON.stringify({ rules: [rule("m", 2)] }));
    // "*.json" matches rules.json itself: skipped, not read twice.
    assert.deepEqual((await loadConfig(`${dir}/rules.json`)).rules.map((r) => r.name), [
      "main",
      "m",
    ]);
    const many = {
      include: Array.from({ length: MAX_INCLUDE_PATTERNS + 1 }, () => "x.json"),
      rules: [],
    };
    await Deno.writeTextFile(`${dir}/rules.json`, JSON.stringify(many));
    assert.match(
      (await refused(`${dir}/rules.json`)).message,
      /include: has more than 64 patterns/,
    );
    await Deno.writeTextFile(`${dir}/rules.json`, JSON.stringify({ include: "x.json", rules: [] }));
    assert.match((await refused(`${dir}/rules.json`)).message, /include: must be a list/);
    // Nested includes are refused (settings and include belong in the main file).
    await Deno.writeTextFile(
      `${dir}/rules.json`,
      JSON.stringify({ include: ["more.json"], rules: [] }),
    );
    await Deno.writeTextFile(`${dir}/more.json`, JSON.stringify({ include: ["x"], rules: [] }));
    assert.match((await refused(`${dir}/rules.json`)).message, /in more\.json/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("include: a document parsed in memory cannot include (no file to resolve from)", () => {
  assert.throws(
    () => parseConfig({ include: ["a.json"], rules: [] }),
    /include: is read from a configuration file only/,
  );
});

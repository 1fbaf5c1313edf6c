/**
 * Reading and parsing rules.json safely: only regular files, at most
 * MAX_CONFIG_BYTES, UTF-8, at most MAX_CONFIG_VALUES JSON values; with
 * `quoteValues: false` (the running daemon) no error quotes the file's content.
 */
import assert from "node:assert/strict";
import {
  ConfigError,
  loadConfig,
  MAX_CONFIG_BYTES,
  MAX_CONFIG_VALUES,
  MAX_OUTPUT_SLOTS,
  MAX_REPORTED_ISSUES,
  MAX_RULES,
  parseConfigText,
} from "../../src/config/mod.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "mcr-cfgfile-" });
}

/** Resolves with `p`'s outcome, or rejects when it takes longer than `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(t));
}

/** The ConfigError `p` rejects with. */
async function configErrorOf(p: Promise<unknown>): Promise<ConfigError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
    return e;
  }
  assert.fail("expected a ConfigError");
}

/** The ConfigError `f` throws. */
function thrown(f: () => unknown): ConfigError {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
    return e;
  }
  assert.fail("expected a ConfigError");
}

Deno.test({
  name: "loadConfig: a file larger than MAX_CONFIG_BYTES is refused before it is read",
  ...opts,
  async fn() {
    const dir = await tempDir();
    try {
      const path = `${dir}/big.json`;
      {
        // Sparse: no disk space, and reading it whole would take 64 MiB of memory.
        using f = await Deno.open(path, { create: true, write: true });
        await f.truncate(MAX_CONFIG_BYTES + 1);
      }
      const e = await configErrorOf(loadConfig(path));
      assert.match(e.message, /cannot read the file .*big\.json: /);
      assert.match(e.message, new RegExp(`larger than ${MAX_CONFIG_BYTES} bytes`));
      // Exactly at the cap the file is read (and is not JSON: it is all NUL bytes).
      {
        using f = await Deno.open(path, { write: true });
        await f.truncate(MAX_CONFIG_BYTES);
      }
      const at = await configErrorOf(loadConfig(path));
      assert.doesNotMatch(at.message, /larger than/);
      assert.match(at.message, /invalid JSON at line 1, column 1/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "loadConfig: only regular files (a directory, a FIFO, /dev/zero are refused at once)",
  ...opts,
  async fn() {
    const dir = await tempDir();
    const fifo = `${dir}/rules.json`;
    let blocked = false;
    try {
      const d = await configErrorOf(loadConfig(dir));
      assert.match(d.message, /not a regular file \(a directory\)/);

      const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
      assert.equal(mk.code, 0, "mkfifo");
      // Opening a FIFO for reading waits for a writer: the reader must not even open it.
      const f = await within(configErrorOf(loadConfig(fifo)), 20_000, "loadConfig(FIFO)").catch(
        (e) => {
          blocked = true;
          throw e;
        },
      );
      assert.match(f.message, /not a regular file \(a FIFO\)/);

      const z = await within(configErrorOf(loadConfig("/dev/zero")), 20_000, "loadConfig(zero)");
      assert.match(z.message, /not a regular file \(a character device\)/);
    } finally {
      if (blocked) {
        // Unblock the old reader so the test process can end.
        await new Deno.Command("timeout", { args: ["2", "sh", "-c", `echo > ${fifo}`] }).output();
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "loadConfig: a file that is not UTF-8 is refused as such",
  ...opts,
  async fn() {
    const dir = await tempDir();
    try {
      const path = `${dir}/latin1.json`;
      // {"rules": [], "x": "caf<E9>"} in ISO 8859-1
      await Deno.writeFile(path, new Uint8Array([...new TextEncoder().encode('{"x": "caf'), 0xe9]));
      const e = await configErrorOf(loadConfig(path));
      assert.match(e.message, /latin1\.json: .*not UTF-8 text/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** The largest configuration the relay can run: MAX_RULES rules, MAX_OUTPUT_SLOTS outputs, every field set. */
function largestRunnable(): string {
  const rules = Array.from({ length: MAX_RULES }, (_, i) => ({
    name: `rule-${i}`,
    enabled: true,
    input: {
      interface: "eth0",
      group: `239.${i >> 8}.${i & 255}.1`,
      port: 5000,
      source: "10.0.0.1",
      vlan: 100,
    },
    outputs: Array.from({ length: MAX_OUTPUT_SLOTS / MAX_RULES }, (_, j) => ({
      interface: `eth${j + 1}`,
      group: `239.${100 + j}.${i >> 8}.${i & 255}`,
      port: 6000,
      ttl: 8,
      dscp: 46,
      source_ip: "10.0.0.2",
      source_port: 7000,
    })),
    ttl: 16,
    dscp: 10,
    allow_link_local: false,
  }));
  return JSON.stringify({ rules }, null, 2);
}

Deno.test("parseConfigText: at most MAX_CONFIG_VALUES JSON values; the largest runnable file fits", () => {
  const big = largestRunnable();
  assert.ok(big.length < MAX_CONFIG_BYTES);
  const count = (v: unknown): number =>
    1 +
    (typeof v === "object" && v !== null
      ? Object.values(v).map(count).reduce((a, b) => a + b, 0)
      : 0);
  assert.equal(count(JSON.parse(big)), 2_949_122, "the figure in MAX_CONFIG_VALUES' comment");
  assert.equal(big.length, 78_547_117, "the figure in MAX_CONFIG_BYTES' comment");
  assert.equal(parseConfigText(big, "largest.json").rules.length, MAX_RULES);

  const values = MAX_CONFIG_VALUES + 1;
  // {"rules": [], "x": [0,0,...]}: the root, "rules", "x" and its elements are values.
  const over = `{"rules": [], "x": [${"0,".repeat(values - 4)}0]}`;
  const e = thrown(() => parseConfigText(over, "many.json"));
  assert.equal(e.issues.length, 1);
  assert.match(
    e.message,
    new RegExp(
      `too large at line 1, column \\d+: more than ${
        MAX_CONFIG_VALUES.toLocaleString("en-US")
      } JSON values`,
    ),
  );
  // One fewer parses (and fails only for the unknown key).
  const at = `{"rules": [], "x": [${"0,".repeat(values - 5)}0]}`;
  assert.match(thrown(() => parseConfigText(at)).message, /config: x: unknown key/);
});

Deno.test("parseConfigText: comments and trailing commas are allowed; problems keep their line", () => {
  const c = parseConfigText(
    '{\n  // the rules\n  "rules": [ /* none yet */ ],\n  "ttl": 4, // default\n}\n',
  );
  assert.equal(c.rules.length, 0);
  assert.equal(c.ttl, 4);
  const e = thrown(() => parseConfigText('{\n  // the rules\n  "rules": [],\n  "rules": []\n}'));
  assert.deepEqual([e.issues[0].line, e.issues[0].column], [4, 3]);
  assert.match(e.issues[0].message, /duplicate key/);
});

Deno.test("parseConfigText: quoteValues false names the field and the problem, never the content", () => {
  const secret = "s3cr3t-t0ken";
  const noQuote = { quoteValues: false };
  const cases: [string, RegExp][] = [
    [
      `{"rules": [], "ttl": "${secret}"}`,
      /config: ttl: must be an integer from 1 to 255 .*\(got a string\)/,
    ],
    [`{"rules": "${secret}"}`, /config: rules: must be an array \(got a string\)/],
    [
      `{"rules": [{"name": "${secret} x", "input": {"interface": "eth0", "group": "239.1.1.1", ` +
      `"port": 1}, "outputs": [{"interface": "eth1", "group": "239.2.2.2", "port": 1}]}]}`,
      /rule 0: name: must be a name of 1 to 64 characters .*\(got a string\)/,
    ],
    [`${secret}`, /invalid JSON at line 1, column 1: expected a value, unexpected character$/m],
    [`{"${secret}": 1, "${secret}": 2}`, /invalid JSON at line 1, column 21: duplicate key$/m],
    [
      `{"rules": [], "${secret}": 1 x}`,
      /expected ',' or '}' after property value, unexpected character$/m,
    ],
  ];
  for (const [text, re] of cases) {
    const e = thrown(() => parseConfigText(text, "f.json", noQuote));
    assert.match(e.message, re, text);
    assert.ok(!e.message.includes(secret), e.message);
    assert.ok(!e.message.includes("'s'"), e.message);
    assert.ok(!JSON.stringify(e.issues).includes(secret), JSON.stringify(e.issues));
  }
  // By default (cli.ts check: the operator's own file) the values are quoted.
  assert.match(
    thrown(() => parseConfigText(`{"rules": [], "ttl": "${secret}"}`)).message,
    new RegExp(`got "${secret}"`),
  );
  assert.match(thrown(() => parseConfigText(secret)).message, /unexpected character 's'/);
});

Deno.test("ConfigError: lists at most MAX_REPORTED_ISSUES problems and says how many more", () => {
  const rule = '{"input": {"interface": "a/b", "group": "x", "port": -1}, "outputs": []}';
  const n = 400; // 4 problems each
  const e = thrown(() => parseConfigText(`{"rules": [${Array(n).fill(rule).join(",")}]}`));
  assert.equal(e.issues.length, MAX_REPORTED_ISSUES);
  assert.equal(e.omitted, 4 * n - MAX_REPORTED_ISSUES);
  assert.match(e.message, /^invalid configuration \(1600 problems\):/);
  assert.match(e.message, /\.\.\. and 600 more \(the first 1000 are listed\)$/);
  assert.equal(e.message.split("\n").length, 1 + MAX_REPORTED_ISSUES + 1);
});

/**
 * The command line as a user meets it: `cli.ts check` and a relay started with
 * a bad config both reject it with the message the user needs and the
 * documented exit code; usage errors exit 2. Runs `cli.ts` as a subprocess.
 */
import assert from "node:assert/strict";
import { MAX_INPUT_SLOTS } from "../../src/config/limits.ts";
import { runDeno } from "../../lab/netns.ts";

const REPO = new URL("../..", import.meta.url).pathname;
const FIX = `${REPO}tests/fixtures/config`;
const expected: Record<string, string[]> = JSON.parse(
  Deno.readTextFileSync(`${FIX}/expected-errors.json`),
);

function cli(...args: string[]) {
  return runDeno(["run", "--allow-read", "--allow-env", "--allow-ffi", `${REPO}cli.ts`, ...args]);
}

for (const f of [...Deno.readDirSync(FIX)].map((e) => e.name).sort()) {
  if (f.startsWith("valid-")) {
    Deno.test(`cli check accepts ${f} (exit 0)`, async () => {
      const r = await cli("check", "--config", `${FIX}/${f}`);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /valid \(\d+ rules\)/);
    });
  } else if (f.startsWith("invalid-") && expected[f]) {
    Deno.test(`cli check rejects ${f} with the user's message (exit 1)`, async () => {
      const r = await cli("check", "--config", `${FIX}/${f}`);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      for (const s of expected[f]) {
        assert.ok(r.stderr.includes(s), `missing "${s}" in:\n${r.stderr}`);
      }
    });
  }
}

Deno.test("cli check --json lists issues with rule index, name and field", async () => {
  const r = await cli("check", "--json", "--config", `${FIX}/invalid-link-local.json`);
  assert.equal(r.code, 1);
  const j = JSON.parse(r.stdout);
  assert.equal(j.valid, false);
  assert.equal(j.issues[0].rule.index, 0);
  assert.equal(j.issues[0].rule.name, "ospf");
  assert.equal(j.issues[0].field, "input.group");
});

Deno.test("cli check: JSON syntax error names line and column (exit 1)", async () => {
  const r = await cli("check", "--config", `${REPO}tests/fixtures/cli/syntax-error.json.txt`);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /line \d+/);
  assert.match(r.stderr, /column \d+/);
});

Deno.test("cli check: unreadable file is an invalid config with the reason (exit 1)", async () => {
  const r = await cli("check", "--config", `${FIX}/does-not-exist.json`);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot read the file/);
});

Deno.test("the relay refuses an invalid config before touching the network (exit 1)", async () => {
  const r = await cli("--config", `${FIX}/invalid-loop.json`);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /would forward the stream into itself/);
});

Deno.test("usage errors exit 2 and show usage", async () => {
  const a = await cli("check");
  assert.equal(a.code, 2);
  assert.match(a.stderr, /check needs --config/);
  const b = await cli("frobnicate");
  assert.equal(b.code, 2);
  assert.match(b.stderr, /unknown command "frobnicate"/);
  const c = await cli("--no-such-flag");
  assert.equal(c.code, 2);
  const d = await cli("--config", "x.json", "--log-level", "loud");
  assert.equal(d.code, 2);
});

Deno.test("check and the relay refuse more input interfaces than the relay has slots alike, naming the limit (exit 1)", async () => {
  const n = MAX_INPUT_SLOTS + 1;
  const rules = Array.from({ length: n }, (_, k) => ({
    name: `r${k}`,
    input: { interface: `v${k}`, group: "239.1.1.1", port: 5000 },
    outputs: [{ interface: "eth1", group: "239.200.1.1", port: 6000 }],
  }));
  const file = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(file, JSON.stringify({ rules }));
    const msg = `rules: has ${n} input interfaces in its enabled rules; at most ` +
      `${MAX_INPUT_SLOTS} are allowed per relay`;
    const check = await cli("check", "--config", file);
    assert.equal(check.code, 1, check.stdout + check.stderr);
    assert.ok(check.stderr.includes(msg), check.stderr);
    const start = await cli("--config", file);
    assert.equal(start.code, 1, start.stdout + start.stderr);
    assert.ok(start.stderr.includes(msg), start.stderr);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("--version prints mcr and the version in deno.json (exit 0)", async () => {
  const { version } = JSON.parse(Deno.readTextFileSync(`${REPO}deno.json`));
  const r = await cli("--version");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `mcr ${version}\n`);
});

Deno.test("a mistyped command or option is a usage error that suggests the right one", async () => {
  const cases: [string[], RegExp][] = [
    [["chek", "--config", "x.json"], /unknown command "chek"[\s\S]*did you mean check\?/i],
    [["--confg", "x.json"], /unknown option "--confg"[\s\S]*did you mean --config\?/i],
    [["check", "--jsn"], /unknown option "--jsn"[\s\S]*did you mean --json\?/i],
    [["ctl", "lst"], /unknown command "lst"[\s\S]*did you mean list\?/i],
    [["ctl", "stats", "--sortt", "pps"], /unknown option "--sortt"[\s\S]*did you mean --sort\?/i],
    [["top", "--intervall", "2"], /unknown option "--intervall"[\s\S]*did you mean --interval\?/i],
  ];
  for (const [args, want] of cases) {
    const r = await cli(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, want, args.join(" "));
  }
});

Deno.test("ctl options are read before and after its command, also as --opt=value", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mcr-cli-" });
  try {
    for (
      const args of [
        ["ctl", "--json", "--control-socket", `${dir}/none.sock`, "ping"],
        ["ctl", "ping", "--json", `--control-socket=${dir}/none.sock`],
      ]
    ) {
      const r = await cli(...args);
      assert.equal(r.code, 3, r.stdout + r.stderr); // unreachable, not a usage error
      const reply = JSON.parse(r.stdout);
      assert.equal(reply.error.code, "unreachable");
      assert.ok(reply.error.message.includes(`${dir}/none.sock`), reply.error.message);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("help: mcr help, mcr help COMMAND and --help exit 0; ctl without a command exits 2", async () => {
  for (const args of [["help"], ["help", "ctl"], ["--help"], ["ctl", "--help"], ["ctl", "help"]]) {
    const r = await cli(...args);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stdout, /^Usage: mcr/, args.join(" "));
  }
  const bare = await cli("ctl");
  assert.equal(bare.code, 2);
  assert.match(bare.stderr, /^Usage: mcr ctl/);
});

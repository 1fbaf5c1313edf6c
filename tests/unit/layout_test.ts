/**
 * The layout rules the project keeps (see README "Layout"): product code
 * (cli.ts, mod.ts, src/, ffi/) never imports test, lab or bench tooling; no
 * TypeScript file is longer than 500 lines without saying why at its top;
 * importing mod.ts and `cli.ts check` need no permission beyond reading the
 * file (nothing prompts).
 */
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { REPO, runDeno } from "../../lab/netns.ts";

const LONG = 500;

async function tsFiles(): Promise<string[]> {
  const out = await new Deno.Command("git", {
    args: ["ls-files", "--cached", "--others", "--exclude-standard", "*.ts"],
    cwd: REPO,
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter((f) =>
    f && !f.startsWith("bench/results/") && !f.startsWith("build")
  );
}

const isProduct = (f: string) =>
  f === "cli.ts" || f === "mod.ts" || f.startsWith("src/") || f.startsWith("ffi/");

Deno.test("layout: product code imports no lab, test or bench module", async () => {
  const bad: string[] = [];
  for (const f of (await tsFiles()).filter(isProduct)) {
    const text = await Deno.readTextFile(join(REPO, f));
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) {
      const target = relative(REPO, resolve(dirname(join(REPO, f)), m[1]));
      if (/^(lab|tests|bench)\//.test(target)) bad.push(`${f} imports ${target}`);
    }
  }
  assert.deepEqual(bad, []);
});

Deno.test("layout: a .ts file over 500 lines says why at its top", async () => {
  const bad: string[] = [];
  for (const f of await tsFiles()) {
    const text = await Deno.readTextFile(join(REPO, f));
    const lines = text.split("\n");
    if (lines.length <= LONG) continue;
    if (!lines.slice(0, 40).some((l) => l.includes("Long file:"))) {
      bad.push(`${f} (${lines.length} lines)`);
    }
  }
  assert.deepEqual(bad, []);
});

Deno.test("layout: importing mod.ts and cli.ts check prompt for nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mcr-layout-" });
  try {
    const cfg = `${dir}/rules.json`;
    await Deno.writeTextFile(cfg, JSON.stringify({ rules: [] }));
    const check = await runDeno([
      "run",
      "--no-prompt",
      "--allow-read",
      `${REPO}/cli.ts`,
      "check",
      "--config",
      cfg,
    ]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /valid \(0 rules\)/);
    // inside the repository, so that deno.json's import map applies (build/ is not tracked)
    await Deno.mkdir(`${REPO}/build`, { recursive: true });
    const imp = `${REPO}/build/layout-import-${crypto.randomUUID().slice(0, 8)}.ts`;
    await Deno.writeTextFile(
      imp,
      `import * as mcr from ${JSON.stringify(`${REPO}/mod.ts`)};\n` +
        `console.log(typeof mcr.Relay, typeof mcr.parseConfig);\n`,
    );
    const r = await runDeno(["run", "--no-prompt", imp]).finally(() => Deno.remove(imp));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "function function");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

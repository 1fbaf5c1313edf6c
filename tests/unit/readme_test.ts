/**
 * The README's shell blocks are pasteable on a fresh machine: no line calls a
 * bare `deno` or `cli.ts` (neither is on a fresh machine's PATH: deno comes
 * through `npx -y deno@2.9.6`, the command through `deno task install`); every
 * `npx -y deno@2.9.6 task NAME` names a task of deno.json; every `mcr ...`
 * line is a command line mcr accepts (parsed by the real parser, ctl
 * arguments checked as `mcr ctl` checks them — nothing is run).
 */
import assert from "node:assert/strict";
import { REPO } from "../../lab/netns.ts";
import { type CliActions, runCli } from "../../src/cli/program.ts";
import { requestFor } from "../../src/client/ctl.ts";

const DOCS = ["README.md", "packaging/README.md"];

/** The command lines of a markdown file's ```sh blocks (comments dropped, `\` lines joined). */
function shellLines(md: string): string[] {
  const out: string[] = [];
  for (const m of md.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const joined = m[1].replace(/\\\n\s*/g, " ");
    for (const raw of joined.split("\n")) {
      const line = raw.replace(/(^|\s+)#.*$/, "").trim();
      if (line) out.push(line);
    }
  }
  return out;
}

/** Words of a simple command line (no quoting is used in the README's mcr lines). */
function words(line: string): string[] {
  return line.split(/\s+/);
}

const ok = () => Promise.resolve(0);
const ACTIONS: CliActions = {
  run: ok,
  check: ok,
  top: ok,
  schema: ok,
  tool: ok,
  print: ok,
  ctl: (v, w) => {
    requestFor(v, w);
    return ok();
  },
};

for (const doc of DOCS) {
  Deno.test(`${doc}: every shell line can be pasted on a fresh machine`, async () => {
    const lines = shellLines(await Deno.readTextFile(`${REPO}/${doc}`));
    const tasks = JSON.parse(await Deno.readTextFile(`${REPO}/deno.json`)).tasks;
    assert.ok(lines.length > 0);
    let mcrLines = 0;
    for (const line of lines) {
      for (const segment of line.split(/&&|\|\|/).map((s) => s.trim())) {
        const w = words(segment).filter((x) => !/^[A-Z_]+=/.test(x)); // VAR=value prefixes
        assert.ok(!["deno", "cli.ts", "./cli.ts"].includes(w[0]), `${doc}: "${segment}"`);
        if (w[0] === "npx") {
          assert.deepEqual(w.slice(0, 3), ["npx", "-y", "deno@2.9.6"], segment);
          if (w[3] === "task") assert.ok(w[4] in tasks, `${doc}: no task "${w[4]}": ${segment}`);
        }
        if (w[0] === "mcr") {
          mcrLines++;
          const err: string[] = [];
          const code = await runCli(w.slice(1), ACTIONS, {
            out: () => {},
            err: (t) => err.push(t),
          });
          assert.equal(code, 0, `${doc}: "${segment}": ${err.join("")}`);
        }
      }
    }
    if (doc === "README.md") assert.ok(mcrLines >= 10, `${mcrLines} mcr lines checked`);
  });
}

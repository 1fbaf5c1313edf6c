/**
 * The man pages and shell completions are generated from the command
 * definitions: `cli.ts man` renders without a groff warning and documents
 * every command and option `--help` knows (mcr(8)) and every rules.json field
 * of the JSON Schema (mcr.json(5)); `cli.ts completion bash|zsh|fish` complete
 * every command and option, and option values from their choices, in the real
 * shells (each skipped with a reason when that shell is not installed).
 */
import assert from "node:assert/strict";
import type { Command } from "commander";
import { REPO, runDeno } from "../../lab/netns.ts";
import { buildProgram, type CliActions } from "../../src/cli/program.ts";
import { rulesJsonSchema } from "../../src/config/json_schema.ts";

const done = () => Promise.resolve(0);
const NOOP: CliActions = {
  run: done,
  check: done,
  ctl: done,
  top: done,
  schema: done,
  tool: done,
  print: done,
};

/** Every command of the tree, with its path ("ctl list"). */
function commands(c: Command, path = ""): { path: string; cmd: Command }[] {
  return c.commands.flatMap((s) => {
    const p = path ? `${path} ${s.name()}` : s.name();
    return [{ path: p, cmd: s }, ...commands(s, p)];
  });
}

async function cli(...args: string[]) {
  const r = await runDeno(["run", "--allow-read", `${REPO}/cli.ts`, ...args]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

function have(cmd: string): boolean {
  return new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
    .outputSync().success;
}

async function sh(shell: string, args: string[], stdin?: string) {
  const p = new Deno.Command(shell, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { HOME: "/nonexistent", NO_COLOR: "1" },
  }).spawn();
  if (stdin !== undefined) {
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const o = await p.output();
  const d = new TextDecoder();
  return { code: o.code, stdout: d.decode(o.stdout), stderr: d.decode(o.stderr) };
}

/** roff source → the words a reader sees (escapes of "-" and "\" undone). */
function plain(roff: string): string {
  return roff.replaceAll("\\-", "-").replaceAll("\\e", "\\").replace(/\\f[BIR]/g, "");
}

const noGroff = have("groff") ? null : "groff not installed (apt-get install groff-base)";
if (noGroff) console.warn(`man page rendering check skipped: ${noGroff}`);

Deno.test("mcr(8) documents every command and option --help knows", async () => {
  const page = plain(await cli("man", "mcr"));
  assert.match(page, /^\.TH MCR 8 /m);
  for (const { path, cmd } of commands(buildProgram(NOOP))) {
    assert.ok(page.includes(`mcr ${path}`), `mcr(8) lacks "mcr ${path}"`);
    for (const o of cmd.options) {
      assert.ok(page.includes(o.long!), `mcr(8) lacks ${o.long} of "mcr ${path}"`);
      assert.ok(page.includes(o.description), `mcr(8) lacks the description of ${o.long}`);
    }
  }
  for (const section of ["EXIT STATUS", "SIGNALS", "ENVIRONMENT", "FILES", "SEE ALSO"]) {
    assert.match(page, new RegExp(`^\\.SH ${section}$`, "m"));
  }
});

Deno.test("mcr.json(5) documents every field of the rules.json JSON Schema", async () => {
  const page = plain(await cli("man", "mcr.json"));
  assert.match(page, /^\.TH MCR\\&\.JSON 5 /m);
  const paths: [string, string][] = [];
  const walk = (s: Record<string, unknown>, path: string) => {
    for (const [k, v] of Object.entries((s.properties ?? {}) as Record<string, never>)) {
      const p = path ? `${path}.${k}` : k;
      paths.push([p, (v as { description: string }).description]);
      walk(v, p);
      const items = (v as { items?: Record<string, unknown> }).items;
      if (items?.properties) walk(items, `${p}[]`);
      const extra = (v as { additionalProperties?: Record<string, unknown> }).additionalProperties;
      if (extra && typeof extra === "object" && extra.properties) walk(extra, `${p}.NAME`);
    }
  };
  walk(rulesJsonSchema(), "");
  assert.ok(paths.some(([p]) => p === "rules[].outputs[].ttl"), "nested fields are walked");
  for (const [p, description] of paths) {
    assert.ok(page.includes(`.B ${p}\n`), `mcr.json(5) lacks field ${p}`);
    const words = description.replaceAll("`", "").split(" ").slice(0, 4).join(" ");
    assert.ok(page.replace(/\s+/g, " ").includes(words), `${p}: description "${words}…"`);
  }
});

Deno.test({
  name: "both man pages render with groff without a warning",
  ignore: noGroff !== null,
  async fn() {
    for (const page of ["mcr", "mcr.json"]) {
      const roff = await cli("man", page);
      const r = await sh("groff", ["-man", "-Tutf8", "-ww", "-z"], roff);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "", `${page}: groff warned:\n${r.stderr}`);
    }
  },
});

/** bash: COMPREPLY for the words typed so far (the last one is being completed). */
const BASH_DRIVER = `
source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); COMPREPLY=()
_mcr
printf '%s\\n' "\${COMPREPLY[@]}"
`;

async function bashComplete(script: string, words: string[]): Promise<string[]> {
  const r = await sh("bash", ["-c", BASH_DRIVER, "bash", script, ...words]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split("\n").filter((l) => l);
}

/** The expectations every shell must meet: words typed → words offered. */
function expectations(program: Command): [string[], string[], string[]][] {
  const ctl = program.commands.find((c) => c.name() === "ctl")!;
  const add = ctl.commands.find((c) => c.name() === "add")!;
  return [
    // [typed, must offer, must not offer]
    [["mcr", ""], program.commands.map((c) => c.name()), []],
    [["mcr", "ct"], ["ctl"], ["check", "top"]],
    [["mcr", "ctl", ""], ctl.commands.map((c) => c.name()), ["run"]],
    [["mcr", "ctl", "add", "--"], add.options.map((o) => o.long!), []],
    [["mcr", "ctl", "stats", "--sort", ""], ["name", "pps", "bps", "packets", "drops"], []],
    [["mcr", "--log-level", ""], ["trace", "debug", "info", "warning", "error", "fatal"], []],
    [["mcr", "--config", "x.json", "--log-f"], ["--log-format"], ["--log-level"]],
    [["mcr", "ctl", "rm", "--j"], ["--json"], []],
    [["mcr", "ctl", "--json", "list", "--"], ["--interface", "--summary"], ["--rule"]],
    [["mcr", "completion", ""], ["bash", "zsh", "fish"], []],
  ];
}

function checkOffers(shell: string, typed: string[], got: string[], want: string[], not: string[]) {
  for (const w of want) {
    assert.ok(got.includes(w), `${shell}: "${typed.join(" ")}" should offer ${w}; got ${got}`);
  }
  for (const w of not) {
    assert.ok(!got.includes(w), `${shell}: "${typed.join(" ")}" should not offer ${w}`);
  }
}

async function scriptFile(shell: string): Promise<string> {
  const f = await Deno.makeTempFile({ prefix: "mcr-completion-", suffix: `.${shell}` });
  await Deno.writeTextFile(f, await cli("completion", shell));
  return f;
}

Deno.test("bash completion: commands, options and option values from the command tree", async () => {
  const f = await scriptFile("bash");
  try {
    for (const [typed, want, not] of expectations(buildProgram(NOOP))) {
      checkOffers("bash", typed, await bashComplete(f, typed), want, not);
    }
    // a FILE value completes file names
    const dir = await Deno.makeTempDir({ prefix: "mcr-completion-" });
    await Deno.writeTextFile(`${dir}/rules.json`, "{}");
    const files = await bashComplete(f, ["mcr", "check", "--config", `${dir}/ru`]);
    assert.deepEqual(files, [`${dir}/rules.json`]);
    await Deno.remove(dir, { recursive: true });
  } finally {
    await Deno.remove(f);
  }
});

const noFish = have("fish") ? null : "fish not installed (apt-get install fish)";
if (noFish) console.warn(`fish completion check skipped: ${noFish}`);

Deno.test({
  name: "fish completion: the same offers, in fish",
  ignore: noFish !== null,
  async fn() {
    const f = await scriptFile("fish");
    try {
      for (const [typed, want, not] of expectations(buildProgram(NOOP))) {
        const line = typed.join(" ");
        const r = await sh("fish", [
          "--no-config",
          "-c",
          `source ${f}; complete -C${JSON.stringify(line)}`,
        ]);
        assert.equal(r.code, 0, r.stderr);
        const got = r.stdout.split("\n").map((l) => l.split("\t")[0]).filter((l) => l);
        checkOffers("fish", typed, got, want, not);
      }
    } finally {
      await Deno.remove(f);
    }
  },
});

const noZsh = have("zsh") ? null : "zsh not installed (apt-get install zsh)";
if (noZsh) console.warn(`zsh completion check skipped: ${noZsh}`);

/** zsh: the completion function with compsys's output functions replaced by printers. */
const ZSH_DRIVER = `
compdef() { :; }
_describe() { local n=\${@[-1]}; local x; for x in "\${(@P)n}"; do print -r -- "\${x%%:*}"; done; }
compadd() { shift; print -rl -- "$@"; }
_files() { print -r -- FILES; }
_net_interfaces() { print -r -- INTERFACES; }
source "$1"; shift
words=("$@"); CURRENT=$#words
_mcr
`;

Deno.test({
  name: "zsh completion: the same offers, in zsh",
  ignore: noZsh !== null,
  async fn() {
    const f = await scriptFile("zsh");
    try {
      const syntax = await sh("zsh", ["-n", f]);
      assert.equal(syntax.code, 0, syntax.stderr);
      for (const [typed, want, not] of expectations(buildProgram(NOOP))) {
        const r = await sh("zsh", ["-f", "-c", ZSH_DRIVER, "zsh", f, ...typed]);
        assert.equal(r.code, 0, r.stderr);
        // compsys keeps what starts with the word being completed
        const got = r.stdout.split("\n").map((l) => l.replaceAll("\\:", ":"))
          .filter((l) => l && l.startsWith(typed[typed.length - 1]));
        checkOffers("zsh", typed, got, want, not);
      }
    } finally {
      await Deno.remove(f);
    }
  },
});

/**
 * Shell completion scripts (bash, zsh, fish) generated from the command tree
 * of program.ts: the same commands, options, choices and descriptions as
 * `--help`. Static scripts (no call back into mcr per Tab): a Tab costs no
 * Deno start-up. Option values complete from the option's choices, files for
 * FILE/PATH values, network interfaces for IF values.
 *
 * @module
 */
import type { Argument, Command, Option } from "commander";

/** Shells `mcr completion` writes a script for. */
export const COMPLETION_SHELLS = ["bash", "zsh", "fish"] as const;
/** One of {@link COMPLETION_SHELLS}. */
export type CompletionShell = typeof COMPLETION_SHELLS[number];

/** What a value completes to. */
type ValueKind = { choices: string[] } | "file" | "interface" | "none";

/** A word offered at one command path, with its description. */
interface Word {
  word: string;
  description: string;
}

/** An option taking a value, and how its value completes. */
interface ValueOption {
  flags: string[];
  kind: ValueKind;
}

/** One command path ("" = the program, "ctl list"): what completes there. */
export interface CompletionNode {
  path: string;
  /** Subcommands and options (long and short). */
  words: Word[];
  /** Options that take a value. */
  valued: ValueOption[];
  /** What a positional argument completes to (the first of the command's arguments). */
  operand: ValueKind;
  /** Subcommand words (names and aliases) and the name each leads to. */
  steps: [word: string, name: string][];
}

function kindOf(placeholder: string, choices: readonly string[] | undefined): ValueKind {
  if (choices?.length) return { choices: [...choices] };
  if (/FILE|PATH/.test(placeholder)) return "file";
  if (/^<?\[?IF\]?>?$/.test(placeholder.replace(/[<>[\]]/g, ""))) return "interface";
  return "none";
}

function optionFlags(o: Option): string[] {
  return [o.short, o.long].filter((f): f is string => !!f);
}

function optionValue(o: Option): ValueKind | null {
  if (!o.required && !o.optional) return null;
  const m = /[<[]([^>\]]+)[>\]]/.exec(o.flags);
  return kindOf(m ? m[1] : "", o.argChoices);
}

function argumentKind(a: Argument | undefined): ValueKind {
  if (!a) return "none";
  return kindOf(a.name(), a.argChoices);
}

const visible = (c: Command) => c.commands.filter((s) => !(s as { _hidden?: boolean })._hidden);

/**
 * Every command path of `program` with what completes there. Options of a
 * command also apply below it (commander reads a parent's options after a
 * subcommand too); the program's node also offers the relay's options, as
 * `mcr --config F` runs the relay.
 */
export function completionNodes(program: Command): CompletionNode[] {
  const nodes: CompletionNode[] = [];
  const visit = (c: Command, path: string, inherited: Option[]) => {
    const own = [...c.options];
    const opts = [...inherited, ...own];
    const subs = visible(c);
    if (path === "") {
      const run = subs.find((s) => s.name() === "run");
      if (run) opts.push(...run.options);
    }
    const words: Word[] = subs.map((s) => ({
      // summary: the short line --help lists commands with
      word: s.name(),
      description: s.summary() || s.description(),
    }));
    for (const s of subs) {
      for (const a of s.aliases()) words.push({ word: a, description: s.description() });
    }
    const help = c.commands.length
      ? [{ word: "help", description: "show help for a command" }]
      : [];
    words.push(...help);
    for (const o of opts) {
      for (const f of optionFlags(o)) words.push({ word: f, description: o.description });
    }
    if ((c as { _helpOption?: unknown })._helpOption !== null) {
      words.push({ word: "--help", description: "show help" });
    }
    const valued = opts.flatMap((o) => {
      const k = optionValue(o);
      return k ? [{ flags: optionFlags(o), kind: k }] : [];
    });
    nodes.push({
      path,
      words: dedupe(words),
      valued,
      operand: argumentKind(c.registeredArguments[0]),
      steps: subs.flatMap((s) =>
        [s.name(), ...s.aliases()].map((w): [string, string] => [w, s.name()])
      ),
    });
    // Options of the program itself (--help, --version) stop at its subcommands
    // (positional options); a subcommand's own options carry on below it.
    for (const s of subs) {
      visit(s, path ? `${path} ${s.name()}` : s.name(), path ? opts : []);
    }
  };
  visit(program, "", []);
  return nodes;
}

function dedupe(words: Word[]): Word[] {
  const seen = new Set<string>();
  return words.filter((w) => !seen.has(w.word) && seen.add(w.word));
}

/** The completion script of `program` for `shell`. */
export function completionScript(program: Command, shell: CompletionShell): string {
  const nodes = completionNodes(program);
  const name = program.name();
  switch (shell) {
    case "bash":
      return bash(name, nodes);
    case "zsh":
      return zsh(name, nodes);
    case "fish":
      return fish(name, nodes);
  }
}

/** Single-quoted for sh/bash/zsh/fish ('...' with ' as '\''; fish: \'). */
function q(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

/** Each subcommand word at each path: `"PATH|WORD"` → the path it leads to (aliases too). */
function subcommandSteps(nodes: CompletionNode[]): [string, string][] {
  return nodes.flatMap((n) =>
    n.steps.map(([word, name]): [string, string] => [
      `${n.path}|${word}`,
      n.path ? `${n.path} ${name}` : name,
    ])
  );
}

/** `"PATH|FLAG"` of every option that takes a value. */
function valuedFlags(nodes: CompletionNode[]): string[] {
  return nodes.flatMap((n) => n.valued.flatMap((v) => v.flags.map((f) => `${n.path}|${f}`)));
}

/** The shared "which command path are we in" walk (bash and zsh). */
function pathWalk(nodes: CompletionNode[], words: string, first: string, count: string): string {
  const steps = subcommandSteps(nodes).map(([k, to]) => `      ${q(k)}) __path=${q(to)} ;;`);
  return [
    `  local __path='' __i __w`,
    `  for ((__i = ${first}; __i < ${count}; __i++)); do`,
    `    __w=\${${words}[__i]}`,
    `    if [[ -z $__path && $__i -eq ${first} && $__w == -* && $__w != -h && $__w != --help ` +
    `&& $__w != -V && $__w != --version ]]; then __path=run; fi`,
    `    case "$__path|$__w" in`,
    `      ${valuedFlags(nodes).map(q).join("|") || "''"}) ((__i++)); continue ;;`,
    ...steps,
    `    esac`,
    `  done`,
  ].join("\n");
}

function bashValues(kind: ValueKind): string {
  if (kind === "file") {
    return `compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur"))`;
  }
  if (kind === "interface") {
    return `COMPREPLY=($(compgen -W "$(ls /sys/class/net 2>/dev/null)" -- "$cur"))`;
  }
  if (kind === "none") return "COMPREPLY=()";
  return `COMPREPLY=($(compgen -W ${q(kind.choices.join(" "))} -- "$cur"))`;
}

function bash(name: string, nodes: CompletionNode[]): string {
  const fn = `_${name.replace(/\W/g, "_")}`;
  const valueArms = nodes.flatMap((n) =>
    n.valued.map((v) =>
      `    ${v.flags.map((f) => q(`${n.path}|${f}`)).join("|")}) ${bashValues(v.kind)}; return ;;`
    )
  );
  const wordArms = nodes.map((n) => {
    const words = n.words.map((w) => w.word).join(" ");
    const operand = n.operand === "none"
      ? ""
      : `\n      [[ $cur != -* ]] && { ${bashValues(n.operand)}; return; }`;
    return `    ${q(n.path)})${operand}\n      COMPREPLY=($(compgen -W ${q(words)} -- "$cur")) ;;`;
  });
  return `# bash completion for ${name} (generated by \`${name} completion bash\`)
${fn}() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]}
${pathWalk(nodes, "COMP_WORDS", "1", "COMP_CWORD")}
  case "$__path|$prev" in
${valueArms.join("\n")}
  esac
  case "$__path" in
${wordArms.join("\n")}
  esac
}
complete -F ${fn} ${name}
`;
}

function zshValues(kind: ValueKind): string {
  if (kind === "file") return "_files";
  if (kind === "interface") return "_net_interfaces";
  if (kind === "none") return "_message value";
  return `compadd -- ${kind.choices.map(q).join(" ")}`;
}

function zsh(name: string, nodes: CompletionNode[]): string {
  const fn = `_${name.replace(/\W/g, "_")}`;
  const valueArms = nodes.flatMap((n) =>
    n.valued.map((v) =>
      `    ${v.flags.map((f) => q(`${n.path}|${f}`)).join("|")}) ${zshValues(v.kind)}; return ;;`
    )
  );
  const wordArms = nodes.map((n) => {
    const described = n.words.map((w) => q(`${w.word.replaceAll(":", "\\:")}:${w.description}`));
    const operand = n.operand === "none"
      ? ""
      : `\n      [[ $cur != -* ]] && { ${zshValues(n.operand)}; return; }`;
    return `    ${q(n.path)})${operand}\n      __words=(${described.join(" ")}) ;;`;
  });
  return `#compdef ${name}
# zsh completion for ${name} (generated by \`${name} completion zsh\`)
${fn}() {
  local cur=\${words[CURRENT]} prev=\${words[CURRENT-1]}
  local -a __words
${pathWalk(nodes, "words", "2", "CURRENT")}
  case "$__path|$prev" in
${valueArms.join("\n")}
  esac
  case "$__path" in
${wordArms.join("\n")}
  esac
  _describe -t words ${q(name)} __words
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  ${fn} "$@"
else
  compdef ${fn} ${name}
fi
`;
}

/** fish single quotes: \\ and \\' are the escapes. */
function fq(s: string): string {
  return `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

function fish(name: string, nodes: CompletionNode[]): string {
  const fn = `__${name.replace(/\W/g, "_")}_path`;
  const steps = subcommandSteps(nodes);
  const lines = [
    `# fish completion for ${name} (generated by \`${name} completion fish\`)`,
    `function ${fn}`,
    `    set -l words (commandline -opc)`,
    `    set -l path ''`,
    `    set -l skip 0`,
    `    for i in (seq 2 (count $words))`,
    `        set -l w $words[$i]`,
    `        if test $skip -eq 1`,
    `            set skip 0`,
    `            continue`,
    `        end`,
    `        if test -z "$path"; and test $i -eq 2; and string match -q -- '-*' $w; and not contains -- $w -h --help -V --version`,
    `            set path run`,
    `        end`,
    `        if contains -- "$path|$w" ${valuedFlags(nodes).map(fq).join(" ")}`,
    `            set skip 1`,
    `            continue`,
    `        end`,
    `        switch "$path|$w"`,
    ...steps.map(([k, to]) => `            case ${fq(k)}\n                set path ${fq(to)}`),
    `        end`,
    `    end`,
    `    echo $path`,
    `end`,
    `complete -c ${name} -f`,
  ];
  const fishValues = (kind: ValueKind): string => {
    if (kind === "file") return "-r -F";
    if (kind === "interface") return "-x -a '(__fish_print_interfaces)'";
    if (kind === "none") return "-x";
    return `-x -a ${fq(kind.choices.join(" "))}`;
  };
  for (const n of nodes) {
    const cond = `-n ${fq(`test "$(${fn})" = ${fq(n.path)}`)}`;
    const valuedFlags = new Map(n.valued.flatMap((v) => v.flags.map((f) => [f, v.kind] as const)));
    for (const w of n.words) {
      const d = `-d ${fq(w.description.split(". ")[0])}`;
      if (w.word.startsWith("--")) {
        const k = valuedFlags.get(w.word);
        lines.push(
          `complete -c ${name} ${cond} -l ${w.word.slice(2)} ${k ? fishValues(k) + " " : ""}${d}`,
        );
      } else if (w.word.startsWith("-")) {
        const k = valuedFlags.get(w.word);
        lines.push(
          `complete -c ${name} ${cond} -s ${w.word.slice(1)} ${k ? fishValues(k) + " " : ""}${d}`,
        );
      } else {
        lines.push(`complete -c ${name} ${cond} -a ${fq(w.word)} ${d}`);
      }
    }
    if (n.operand !== "none") lines.push(`complete -c ${name} ${cond} ${fishValues(n.operand)}`);
  }
  return lines.join("\n") + "\n";
}

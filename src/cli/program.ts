/**
 * The mcr command line, defined once (npm `commander`): every command, option
 * and argument with its description. `--help`, the man page mcr(8)
 * (`man.ts`) and the bash/zsh/fish completions (`completion.ts`) are all
 * generated from this tree, so they cannot disagree with what is parsed.
 *
 * The tree only parses and dispatches: what a command does comes from the
 * {@link CliActions} the caller supplies (cli.ts), so building it loads
 * nothing that needs a permission. Usage errors (unknown command or option,
 * with commander's "did you mean" suggestion; a missing or bad argument) exit
 * with {@link EXIT}.usage.
 *
 * @module
 */
import { Argument, Command, CommanderError, Option } from "commander";
import { MCR_VERSION } from "../common/version.ts";
import { LOG_LEVELS } from "../common/log.ts";
import { DEFAULT_CONTROL_SOCKET } from "../control/protocol.ts";
import { SORT_KEYS } from "../control/results.ts";
import { COMPLETION_SHELLS, completionScript, type CompletionShell } from "./completion.ts";
import { EXIT, HELP_FOOTER, MAN_PAGES, type ManPage } from "./doc.ts";
import { CAPTURE_SUMMARY, captureOptions, type CaptureValues } from "./capture_options.ts";

export { EXIT };

/** The name the command is installed as. */
export const PROGRAM = "mcr";

/** Options of `mcr run` (the relay), keyed by their long flag. */
export interface RunValues {
  config?: string;
  "log-level": string;
  "log-format": string;
  "ready-file"?: string;
  json: boolean;
  "control-socket"?: string;
  /** True with --no-control. */
  "no-control": boolean;
  metrics?: string;
}

/** Options of `mcr check`. */
export interface CheckValues {
  config?: string;
  json: boolean;
}

/** Options of `mcr ctl` and its subcommands, keyed by their long flag. */
export interface CtlValues extends CaptureValues {
  "control-socket"?: string;
  source?: string;
  stdin?: boolean;
  json?: boolean;
  timeout?: string;
  rule?: string;
  name?: string;
  "input-interface"?: string;
  "input-group"?: string;
  "input-port"?: string;
  "input-source"?: string;
  vlan?: string;
  outputs?: string;
  ttl?: string;
  dscp?: string;
  interface?: string;
  group?: string;
  all?: boolean;
  summary?: boolean;
  sort?: string;
  limit?: string;
  transient?: boolean;
}

/** Options of `mcr top`, keyed by their long flag. */
export interface TopValues {
  "control-socket": string;
  interval: string;
  count?: string;
  sort: string;
  interface?: string;
  group?: string;
  limit?: string;
}

/** What the commands do; each returns the exit code. */
export interface CliActions {
  /** Run the relay. */
  run(v: RunValues): Promise<number>;
  /** Validate a configuration file. */
  check(v: CheckValues): Promise<number>;
  /** One `ctl` command: `words` is the command and its arguments (`["remove", "cam1"]`). */
  ctl(v: CtlValues, words: string[]): Promise<number>;
  /** The live view. */
  top(v: TopValues): Promise<number>;
  /** Print the JSON Schema of rules.json. */
  schema(): Promise<number>;
  /** Run a C traffic tool (`mcr-gen`, `mcr-sink`) with these arguments. */
  tool(name: string, args: string[]): Promise<number>;
  /** Print text to stdout (man pages, completions). */
  print(text: string): Promise<number>;
}

/** A usage error raised by an action: exits {@link EXIT}.usage with the message. */
export class UsageError extends Error {
  /** @param message what is wrong, without a prefix */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** camelCase option names (commander's) → the long flags they come from. */
function byFlag<T>(opts: Record<string, unknown>, cmd: Command): T {
  const out: Record<string, unknown> = {};
  const negated = new Set<string>();
  for (let c: Command | null = cmd; c; c = c.parent) {
    for (const o of c.options) if (o.negate) negated.add(o.attributeName());
  }
  for (const [k, v] of Object.entries(opts)) {
    const flag = k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    if (negated.has(k)) out[`no-${flag}`] = v === false;
    else out[flag] = v;
  }
  return out as T;
}

/** The option `--NAME <VALUE>` restricted to `choices` (listed in help and completions). */
function choice(flags: string, description: string, choices: readonly string[]): Option {
  return new Option(flags, description).choices(choices);
}

/**
 * `choices` shown in help and offered by completions, but checked by the
 * action (which words its own error, e.g. `ctl stats --sort`).
 */
function hinted(flags: string, description: string, choices: readonly string[]): Option {
  const o = new Option(flags, description);
  o.argChoices = [...choices];
  return o;
}

function relayCommand(cmd: Command, a: CliActions, done: Done): Command {
  return cmd
    .summary("run the relay (the default command)")
    .description(
      "Run the relay in the foreground until SIGINT/SIGTERM, then print the final per-rule " +
        "counters (a table, or JSON with --json). The default command.",
    )
    .option("-c, --config <FILE>", "the rules file (rules.json, see mcr.json(5))")
    .addOption(
      choice("--log-level <LEVEL>", "log level", LOG_LEVELS).default("info"),
    )
    .addOption(
      choice("--log-format <FORMAT>", "text, or json (JSON lines)", ["text", "json"])
        .default("text"),
    )
    .option("--ready-file <PATH>", "create PATH once every rule is forwarding (for scripts)")
    .option("--json", "print the final counters as JSON")
    .option(
      "--control-socket <PATH>",
      `control socket (default: config control.socket, else ${DEFAULT_CONTROL_SOCKET}; ` +
        "its directory must not be group- or world-writable)",
    )
    .option("--no-control", "no control socket")
    .option(
      "--metrics <HOST:PORT>",
      "serve Prometheus metrics and /healthz (default: config metrics.listen; off when " +
        "neither is set)",
    )
    .action((_o, c: Command) => done(a.run(byFlag<RunValues>(c.opts(), c))));
}

/** Help of `--transient` (ctl add, remove, add-output, remove-output). */
const TRANSIENT = "change the running rules only, not the runtime rules file: the next reload " +
  "or restart undoes it (a rule of the configuration files changes only so)";

function ctlCommands(ctl: Command, a: CliActions, done: Done): void {
  const run = (name: string) => (...xs: unknown[]) => {
    const c = xs[xs.length - 1] as Command;
    return done(a.ctl(byFlag<CtlValues>(c.optsWithGlobals(), c), [name, ...c.args]));
  };
  const sub = (name: string, description: string) =>
    ctl.command(name).description(description).allowExcessArguments().action(run(name));
  sub("version", "daemon and protocol version");
  sub("ping", "is the daemon answering?");
  for (const name of ["list", "stats"]) {
    sub(
      name,
      name === "list"
        ? "rules with their state (active/pending/error/disabled) and counters"
        : "counters and rates per rule, output, interface and worker; drops",
    )
      .argument("[NAME]", "one rule (by name, else by id)")
      .option("--interface <IF>", "rules whose input is on IF or with an output on IF")
      .option("--group <G>", "rules whose input group is G or with an output to G")
      .option(
        "--all",
        "every matching rule (default: a summary and the top rules when more than 50 match)",
      )
      .option("--summary", "the summary even for a few rules")
      .addOption(
        hinted(
          "--sort <KEY>",
          "order: name ascending, the others highest first; a summary's top rules: pps",
          SORT_KEYS,
        ),
      )
      .option("--limit <N>", "at most N rules (a summary's top: 10)")
      .addHelpText(
        "after",
        "\nWith --json: every matching rule (or --summary, --limit) as JSON Lines: a header " +
          "record, then one record per rule" +
          (name === "stats" ? ", then per interface and per worker" : "") +
          ", printed as they arrive.",
      );
  }
  sub("workers", "data-path workers");
  sub("add", "add a rule: from flags, or a rule object as in rules.json (--rule JSON)")
    .argument("[JSON]", "the rule object (as --rule)")
    .option("--rule <JSON>", "a rule object as in rules.json")
    .option("--name <NAME>", "rule name")
    .option("--input-interface <IF>", "input interface")
    .option("--input-group <G>", "input group, range of groups (239.1.0.0/16) or unicast address")
    .option("--input-port <P>", 'input UDP port, or "any"')
    .option("--input-source <S>", "only datagrams from source S")
    .option("--vlan <V>", "match 802.1Q VLAN V")
    .option(
      "--outputs <G:P:IF,...>",
      'outputs, GROUP:PORT:INTERFACE separated by commas; GROUP may be "keep" or, for a range ' +
        'input, a range of its length; PORT "keep"',
    )
    .option("--ttl <T>", "TTL of the outputs (1-255 or decrement)")
    .option("--dscp <D>", "DSCP of the outputs")
    .option("--transient", TRANSIENT);
  sub("remove", "remove a rule by name or id").alias("rm").argument("<NAME|ID>", "the rule")
    .option("--transient", TRANSIENT);
  sub(
    "add-output",
    "add an output to a rule; its other outputs keep flowing and keep their counters",
  )
    .argument("<RULE>", "the rule's name")
    .argument("<G:P:IF[:TTL]>", "GROUP:PORT:INTERFACE, and a TTL (1-255 or decrement)")
    .option("--transient", TRANSIENT);
  sub("remove-output", "remove an output of a rule; its other outputs keep flowing")
    .argument("<RULE>", "the rule's name")
    .argument("<G:P:IF>", "GROUP:PORT:INTERFACE")
    .option("--transient", TRANSIENT);
  sub("diff", "what a reload of the daemon's config file would change (running vs file)");
  sub("log-level", "show or set log levels, live")
    .addArgument(new Argument("[ACTION]", "get (default) or set").choices(["get", "set"]))
    .addArgument(new Argument("[LEVEL]", `with set: ${LOG_LEVELS.join("|")}`))
    .addArgument(
      new Argument(
        "[CATEGORY]",
        'e.g. supervisor, control, worker ("default" drops an override)',
      ),
    );
  sub("role", "show the role, or make the relay active or a standby (it sends nothing)")
    .addArgument(new Argument("[ROLE]", "active or standby").choices(["active", "standby"]))
    .option("--source <NAME>", 'who sets it, for stats and the event (default "ctl")')
    .option("--stdin", "roles from stdin, one a line (ROLE [SOURCE]), on one connection");
  captureOptions(sub("capture", CAPTURE_SUMMARY));
  sub("reload", "re-read the config file (default: the daemon's) and apply only the difference")
    .argument("[FILE]", "a configuration file the daemon may read");
  sub("check", "validate a file without applying it, and show what a reload would change")
    .argument(
      "[FILE]",
      "the daemon reads only its config file and *.json files in the same directory; " +
        "check others with `mcr check --config FILE`",
    );
}

/** Builds `mcr ctl` (also used alone by {@link parseCtl}). */
function ctlCommand(cmd: Command, a: CliActions, done: Done): Command {
  cmd
    .description("talk to a running relay through its control socket")
    // ctl's options anywhere, also after its command (`ctl list --json`); the
    // program's positional options (for gen/sink) must not be inherited here
    .enablePositionalOptions(false)
    .option("--control-socket <PATH>", "the control socket", DEFAULT_CONTROL_SOCKET)
    .option("--json", "machine-readable output")
    .option("--timeout <MS>", "reply timeout in milliseconds", "10000")
    .addHelpText("after", `\n${HELP_FOOTER.ctl}`);
  ctlCommands(cmd, a, done);
  return cmd;
}

function topCommand(cmd: Command, a: CliActions, done: Done): Command {
  return cmd
    .summary("live view of rules and interfaces (pps, Mbit/s, drops)")
    .description(
      "Live view of rules and interfaces (pps, Mbit/s, drops), refreshed every second: a " +
        "summary of every rule and the top rules, as many as fit the terminal. s changes the " +
        "order; q or Ctrl-C quits.",
    )
    .option("--control-socket <PATH>", "the control socket", DEFAULT_CONTROL_SOCKET)
    .option("--interval <SECONDS>", "refresh interval (at least 0.1)", "1")
    .option(
      "--count <N>",
      "draw N frames and exit (for scripts; frames are printed one after another)",
    )
    .addOption(hinted("--sort <KEY>", "order of the rules", SORT_KEYS).default("pps"))
    .option("--interface <IF>", "rules whose input or an output is on IF")
    .option("--group <G>", "rules whose input group is G or with an output to G")
    .option("--limit <N>", "show N rules (default: what fits, 20 when not a terminal)")
    .action((_o, c: Command) => done(a.top(byFlag<TopValues>(c.opts(), c))));
}

function toolCommand(
  cmd: Command,
  tool: string,
  description: string,
  a: CliActions,
  done: Done,
): Command {
  return cmd
    .description(`${description} (the C tool ${tool}; \`mcr ${cmd.name()} --help\` is its help)`)
    .argument("[ARGS...]", `${tool} options`)
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .passThroughOptions()
    .action((args: string[]) => done(a.tool(tool, args)));
}

/** Takes the exit code of the action that ran (commander's actions return nothing). */
type Done = (code: Promise<number>) => Promise<void>;

/**
 * The whole command tree with its actions; `done` receives the exit code of
 * the action that ran. Build it again for each parse: commander keeps the
 * parsed values on the tree.
 */
export function buildProgram(a: CliActions, done: Done = async () => {}): Command {
  const program = new Command(PROGRAM)
    .description("mcr — userspace IPv4 multicast relay for Linux")
    .version(`${PROGRAM} ${MCR_VERSION}`, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help for a command")
    .helpCommand("help [COMMAND]", "show help for a command")
    .enablePositionalOptions()
    .showSuggestionAfterError()
    .addHelpText("after", `\n${HELP_FOOTER.mcr}`);
  relayCommand(program.command("run"), a, done);
  program.command("check")
    .description("validate a configuration: exit 0 when valid, 1 when invalid")
    .option("-c, --config <FILE>", "the rules file")
    .option("--json", "machine-readable result")
    .action((_o, c: Command) => done(a.check(byFlag<CheckValues>(c.opts(), c))));
  ctlCommand(program.command("ctl"), a, done);
  topCommand(program.command("top"), a, done);
  program.command("schema")
    .description("print the JSON Schema of rules.json (for editors)")
    .action(() => done(a.schema()));
  toolCommand(program.command("gen"), "mcr-gen", "paced test-traffic generator", a, done);
  toolCommand(
    program.command("sink"),
    "mcr-sink",
    "receiver: loss, duplicates, order, latency",
    a,
    done,
  );
  program.command("completion")
    .description("print the shell completion script (bash, zsh or fish)")
    .addArgument(new Argument("<SHELL>", "the shell").choices(COMPLETION_SHELLS))
    .action((shell: CompletionShell) => done(a.print(completionScript(buildProgram(a), shell))));
  program.command("man")
    .description("print a manual page (roff): mcr(8), or mcr.json(5)")
    .addArgument(
      new Argument("[PAGE]", "the page").choices(Object.keys(MAN_PAGES)).default("mcr"),
    )
    .action((page: ManPage) =>
      done(import("./man.ts").then(async (m) => a.print(await m.manPage(buildProgram(a), page))))
    );
  return program;
}

/** The leading words that pick a command, so `mcr --config F` runs the relay. */
const ROOT_FLAGS = new Set(["-h", "--help", "-V", "--version"]);

/** Quote style of mcr's messages: commander's 'x' → "x". */
function mcrQuotes(message: string): string {
  return message.replace(/^error: /, "").replace(/'([^'\n]*)'/g, '"$1"');
}

/** "mcr", "mcr ctl" or "mcr top": the prefix of an error from command `c`. */
function prefixOf(c: Command): string {
  const path: string[] = [];
  for (let x: Command | null = c; x; x = x.parent) path.unshift(x.name());
  return path.slice(0, 2).filter((n) => ["mcr", "ctl", "top"].includes(n)).join(" ");
}

/** Where output goes (tests capture it). */
export interface CliOutput {
  out(text: string): void;
  err(text: string): void;
}

const STDIO: CliOutput = {
  out: (t) => Deno.stdout.writeSync(new TextEncoder().encode(t)),
  err: (t) => Deno.stderr.writeSync(new TextEncoder().encode(t)),
};

/**
 * Parse `argv` and run the command it names; returns the exit code. An
 * argument list that starts with an option (or is empty) runs the relay.
 */
export async function runCli(
  argv: string[],
  a: CliActions,
  io: CliOutput = STDIO,
): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(a, async (p) => {
    code = await p;
  });
  let current: Command = program;
  const setup = (c: Command) => {
    c.exitOverride().configureOutput({
      writeOut: io.out,
      writeErr: io.err,
      outputError: () => {}, // printed below, in mcr's words
      // plain help: commander would read NO_COLOR/FORCE_COLOR, and check, ctl
      // and top run without --allow-env (packaging/mcr.sh)
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    });
    c.hook("preSubcommand", (_parent, sub) => {
      current = sub;
    });
    c.commands.forEach(setup);
  };
  setup(program);
  const args = argv.length === 0 || (argv[0].startsWith("-") && !ROOT_FLAGS.has(argv[0]))
    ? ["run", ...argv]
    : argv;
  try {
    await program.parseAsync(args, { from: "user" });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return EXIT.ok;
      // help printed: asked for (`mcr help`, exit 0), or a command was missing (`mcr ctl`)
      if (e.code === "commander.help") return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return usage(io, current, mcrQuotes(e.message));
    }
    if (e instanceof UsageError) return usage(io, current, e.message);
    throw e;
  }
}

function usage(io: CliOutput, c: Command, message: string): number {
  const path = prefixOf(c);
  const full: string[] = [];
  for (let x: Command | null = c; x; x = x.parent) full.unshift(x.name());
  io.err(
    `${path}: ${message}\nUsage: ${full.slice(0, -1).concat(c.name()).join(" ")} ${c.usage()}\n` +
      `Run "${full.join(" ")} --help" for more.\n`,
  );
  return EXIT.usage;
}

/**
 * The request a `ctl` command line makes (the arguments after `ctl`),
 * parsed as `mcr ctl` parses it.
 * @throws {UsageError} saying what is wrong
 */
export function parseCtl(
  argv: string[],
  toRequest: (v: CtlValues, words: string[]) => { cmd: string; args: Record<string, unknown> },
): { cmd: string; args: Record<string, unknown> } {
  let req: { cmd: string; args: Record<string, unknown> } | undefined;
  const a: CliActions = {
    run: () => Promise.resolve(EXIT.ok),
    check: () => Promise.resolve(EXIT.ok),
    top: () => Promise.resolve(EXIT.ok),
    schema: () => Promise.resolve(EXIT.ok),
    tool: () => Promise.resolve(EXIT.ok),
    print: () => Promise.resolve(EXIT.ok),
    ctl: (v, words) => {
      req = toRequest(v, words);
      return Promise.resolve(EXIT.ok);
    },
  };
  const ctl = ctlCommand(new Command("ctl"), a, async () => {});
  const quiet = (c: Command) => {
    c.exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
    c.commands.forEach(quiet);
  };
  quiet(ctl);
  try {
    // synchronous: the action above calls toRequest (which throws its usage errors) at once
    ctl.parse(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) throw new UsageError(mcrQuotes(e.message));
    throw e;
  }
  if (!req) throw new UsageError("missing command");
  return req;
}

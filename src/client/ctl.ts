/**
 * `cli.ts ctl`: the thin client. Tables for people, `--json` for machines
 * (the reply's `result`, or the whole error reply, on stdout; for `list` and
 * `stats`, JSON Lines: one record per line, printed as the daemon streams
 * them).
 *
 * Exit codes: 0 ok; 1 the daemon refused the request (invalid rule, no such
 * rule, invalid file, a `check` that found problems); 2 usage error; 3 the
 * daemon could not be reached or answered nonsense.
 *
 * Everything printed goes through `termSafe` (text) or `jsonTermSafe`
 * (`--json`): a string from the daemon cannot move the cursor, recolour,
 * retitle or reorder the terminal.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ControlClient, ControlConnectionError, ControlRefusedError } from "./client.ts";
import { DEFAULT_CONTROL_SOCKET, type ErrReply, type Reply } from "../control/protocol.ts";
import { SORT_KEYS, type SortKey, type ViewArgs, type WorkerInfo } from "../control/results.ts";
import { formatWorkers, jsonTermSafe, termSafe } from "./format.ts";
import { jsonLines, RecordPrinter, RecordStreamError } from "./listing.ts";

/** Exit codes of `ctl`. */
export const CTL_EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3 } as const;

/** Usage text of `ctl`. */
export const CTL_USAGE =
  `Usage: cli.ts ctl [--control-socket PATH] [--json] [--timeout MS] COMMAND [ARGS]

Commands:
  version                      daemon and protocol version
  ping                         is the daemon answering?
  list [NAME] [FILTER] [VIEW]  rules with state (active/pending/error/disabled) and counters
  stats [NAME] [FILTER] [VIEW] counters and rates per rule, output, interface, worker; drops
      NAME                     one rule (by name, else by id)
      --interface IF           rules whose input is on IF or with an output on IF
      --group G                rules whose input group is G or with an output to G
                               (a range holding G counts)
      --all                    every matching rule (default: a summary and the top
                               rules when more than 50 match)
      --summary                the summary even for a few rules
      --sort KEY               ${SORT_KEYS.join("|")} (name ascending, others
                               highest first; a summary's top rules: pps)
      --limit N                at most N rules (a summary's top: 10)
      with --json: every matching rule (or --summary, --limit) as JSON Lines:
      a header record, then one record per rule (stats: then per interface,
      per worker), printed as they arrive
  workers                      data-path workers
  add --input-interface IF --input-group G --input-port P --outputs G:P:IF[,G:P:IF...]
      [--name NAME] [--input-source S] [--vlan V] [--ttl T] [--dscp D]
      G may be a range (239.1.0.0/16) and P "any" for the input; an output's G
      "keep" or a range of the input range's length, its P "keep"
  add --rule JSON              a rule object as in rules.json (or the JSON as an argument)
  remove NAME|ID               remove a rule by name or id
  log-level get                levels in force
  log-level set LEVEL [CATEGORY]   trace|debug|info|warning|error|fatal; CATEGORY e.g.
                               supervisor, control, worker ("default" drops an override)
  reload [FILE]                re-read the config file (default: the daemon's) and apply
                               only the difference
  check [FILE]                 validate a file without applying it (and show what a
                               reload would change)
                               FILE: the daemon reads only its config file and *.json
                               files in the same directory; check others with
                               \`cli.ts check --config FILE\`

Options:
  --control-socket PATH        default ${DEFAULT_CONTROL_SOCKET}
  --json                       machine-readable output
  --timeout MS                 reply timeout (default 10000)

Exit codes: 0 ok, 1 refused by the daemon (or check found problems),
2 usage error, 3 daemon unreachable.`;

class CtlUsage extends Error {}

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        "control-socket": { type: "string", default: DEFAULT_CONTROL_SOCKET },
        json: { type: "boolean", default: false },
        timeout: { type: "string", default: "10000" },
        help: { type: "boolean", short: "h", default: false },
        rule: { type: "string" },
        name: { type: "string" },
        "input-interface": { type: "string" },
        "input-group": { type: "string" },
        "input-port": { type: "string" },
        "input-source": { type: "string" },
        vlan: { type: "string" },
        outputs: { type: "string" },
        ttl: { type: "string" },
        dscp: { type: "string" },
        interface: { type: "string" },
        group: { type: "string" },
        all: { type: "boolean", default: false },
        summary: { type: "boolean", default: false },
        sort: { type: "string" },
        limit: { type: "string" },
      },
    });
  } catch (e) {
    throw new CtlUsage((e as Error).message);
  }
}

type Values = ReturnType<typeof parse>["values"];

/** A number flag (kept as written when not a number, so the daemon names the problem). */
function numFlag(v: string | undefined): number | string | undefined {
  if (v === undefined) return undefined;
  return /^-?\d+$/.test(v) ? Number(v) : v;
}

/** "G:P:IF" (IF may contain ":", e.g. eth0:1) → an output object. */
export function parseOutputSpec(
  spec: string,
): { interface: string; group: string; port: number | string } {
  const m = /^([^:]+):([^:]+):(.+)$/.exec(spec.trim());
  if (!m) throw new CtlUsage(`--outputs: expected GROUP:PORT:INTERFACE, got "${spec}"`);
  return { group: m[1], port: numFlag(m[2])!, interface: m[3] };
}

/** Build the rule object of `ctl add` from flags or JSON. */
export function ruleFromArgs(v: Values, positionals: string[]): Record<string, unknown> {
  const json = v.rule ?? positionals[0];
  if (json !== undefined) {
    let rule: unknown;
    try {
      rule = JSON.parse(json);
    } catch (e) {
      throw new CtlUsage(`add: the rule is not valid JSON: ${(e as Error).message}`);
    }
    if (typeof rule !== "object" || rule === null || Array.isArray(rule)) {
      throw new CtlUsage("add: the rule must be a JSON object");
    }
    return rule as Record<string, unknown>;
  }
  const need = ["input-interface", "input-group", "input-port", "outputs"] as const;
  const missing = need.filter((k) => v[k] === undefined);
  if (missing.length) {
    throw new CtlUsage(
      `add needs ${missing.map((m) => `--${m}`).join(", ")} (or --rule JSON)`,
    );
  }
  const input: Record<string, unknown> = {
    interface: v["input-interface"],
    group: v["input-group"],
    port: numFlag(v["input-port"]),
  };
  if (v["input-source"] !== undefined) input.source = v["input-source"];
  if (v.vlan !== undefined) input.vlan = numFlag(v.vlan);
  const rule: Record<string, unknown> = {};
  if (v.name !== undefined) rule.name = v.name;
  rule.input = input;
  rule.outputs = v.outputs!.split(",").filter((s) => s.trim()).map(parseOutputSpec);
  if (v.ttl !== undefined) rule.ttl = v.ttl === "decrement" ? v.ttl : numFlag(v.ttl);
  if (v.dscp !== undefined) rule.dscp = numFlag(v.dscp);
  return rule;
}

/**
 * The arguments of `list`/`stats` from the command line: the filter, the
 * view (`--json` or `--all`: every rule; `--summary`; else `auto`), order
 * and limit, always streamed.
 */
export function viewArgsFor(v: Values, rest: string[], cmd: string): ViewArgs {
  if (rest.length > 1) throw new CtlUsage(`${cmd}: unexpected argument "${rest[1]}"`);
  if (v.all && v.summary) throw new CtlUsage(`${cmd}: --all and --summary exclude each other`);
  if (v.sort !== undefined && !(SORT_KEYS as readonly string[]).includes(v.sort)) {
    throw new CtlUsage(`${cmd}: --sort must be one of ${SORT_KEYS.join(", ")}`);
  }
  let limit: number | undefined;
  if (v.limit !== undefined) {
    limit = /^\d+$/.test(v.limit) ? Number(v.limit) : NaN;
    if (!(Number.isSafeInteger(limit) && limit >= 1)) {
      throw new CtlUsage(`${cmd}: --limit must be a positive integer`);
    }
  }
  const a: ViewArgs = {
    view: v.summary ? "summary" : v.all || v.json ? "full" : "auto",
    stream: true,
  };
  if (rest[0] !== undefined) a.rule = rest[0];
  if (v.interface !== undefined) a.interface = v.interface;
  if (v.group !== undefined) a.group = v.group;
  if (v.sort !== undefined) a.sort = v.sort as SortKey;
  if (limit !== undefined) a.limit = limit;
  return a;
}

/** The request a command line makes. */
export function requestFor(
  v: Values,
  positionals: string[],
): { cmd: string; args: Record<string, unknown> } {
  const [cmd, ...rest] = positionals;
  const noMore = (n: number) => {
    if (rest.length > n) throw new CtlUsage(`${cmd}: unexpected argument "${rest[n]}"`);
  };
  switch (cmd) {
    case undefined:
      throw new CtlUsage("missing command");
    case "list":
    case "stats":
      return { cmd, args: { ...viewArgsFor(v, rest, cmd) } };
    case "version":
    case "ping":
    case "workers":
      noMore(0);
      return { cmd, args: {} };
    case "add":
      noMore(1);
      return { cmd, args: { rule: ruleFromArgs(v, rest) } };
    case "remove":
    case "rm":
      if (rest.length !== 1) throw new CtlUsage("remove needs one NAME or ID");
      return { cmd: "remove", args: { rule: rest[0] } };
    case "log-level": {
      const [action = "get", level, category] = rest;
      noMore(3);
      if (action === "get") return { cmd, args: { action, ...(level ? { category: level } : {}) } };
      if (action !== "set" || !level) {
        throw new CtlUsage('log-level: use "log-level get" or "log-level set LEVEL [CATEGORY]"');
      }
      return { cmd, args: { action, level, ...(category ? { category } : {}) } };
    }
    case "reload":
      noMore(1);
      return { cmd, args: rest[0] ? { path: absolute(rest[0]) } : {} };
    case "check":
      noMore(1);
      return { cmd, args: rest[0] ? { path: absolute(rest[0]) } : {} };
    default:
      throw new CtlUsage(`unknown command "${cmd}"`);
  }
}

/**
 * The request a `ctl` command line makes (arguments after `ctl`).
 * @throws {Error} a usage error, saying what is wrong
 */
export function ctlRequest(argv: string[]): { cmd: string; args: Record<string, unknown> } {
  const p = parse(argv);
  return requestFor(p.values, p.positionals);
}

function absolute(p: string): string {
  return p.startsWith("/") ? p : `${Deno.cwd()}/${p}`;
}

function human(cmd: string, result: unknown): string {
  const r = result as Record<string, unknown>;
  switch (cmd) {
    case "version":
      return `mcr ${r.version} (protocol ${r.protocol}, deno ${r.deno}), pid ${r.pid}, ` +
        `config ${r.config ?? "-"}, up ${r.uptime_s} s`;
    case "ping":
      return `pong (up ${r.uptime_s} s)`;
    case "workers":
      return formatWorkers(r.workers as WorkerInfo[]);
    case "add": {
      const rule = r.rule as { name: string; id: string; state?: string };
      return `added ${rule.name} (id ${rule.id})${rule.state ? `, ${rule.state}` : ""}`;
    }
    case "remove":
      return (r.removed as { name: string; id: string }[]).map((x) =>
        `removed ${x.name} (id ${x.id})`
      ).join("\n");
    case "log-level": {
      const cats = Object.entries(r.categories as Record<string, string>);
      return [`global: ${r.global}`, ...cats.map(([k, l]) => `${k}: ${l}`)].join("\n");
    }
    case "reload":
    case "check": {
      const d = (cmd === "check" ? r.diff : r) as Record<string, string[]> | undefined;
      if (cmd === "check" && !r.valid) return String(r.message);
      const lines = cmd === "check"
        ? [`${r.path}: valid (${r.rules} rules)`]
        : [`reloaded ${r.path}`];
      if (d) {
        for (const k of ["added", "removed", "changed", "unchanged"]) {
          lines.push(`  ${k.padEnd(9)} ${d[k].length ? d[k].join(", ") : "-"}`);
        }
        if (d.restart_needed.length) {
          lines.push(`  restart needed for: ${d.restart_needed.join(", ")}`);
        }
      }
      return lines.join("\n");
    }
    default:
      return JSON.stringify(result, null, 2);
  }
}

/** Report an error reply; returns the exit code. */
function refused(v: Values, cmd: string, reply: ErrReply): number {
  if (v.json) console.log(jsonTermSafe(JSON.stringify(reply)));
  else console.error(termSafe(`mcr ctl: ${cmd}: ${reply.error.message} [${reply.error.code}]`));
  return reply.error.code === "bad_request" || reply.error.code === "unsupported_version"
    ? CTL_EXIT.unreachable
    : CTL_EXIT.refused;
}

const encoder = new TextEncoder();

/** Stdout was closed by its reader (`ctl list | head`): stop quietly. */
class StdoutClosed extends Error {}

/** Write all of `text` to stdout (blocking, so a slow reader slows the stream down). */
function print(text: string): void {
  const b = encoder.encode(text);
  let off = 0;
  try {
    while (off < b.length) off += Deno.stdout.writeSync(b.subarray(off));
  } catch (e) {
    if (e instanceof Deno.errors.BrokenPipe) throw new StdoutClosed();
    throw e;
  }
}

/**
 * `list`/`stats`: print the records as they arrive, as JSON Lines or tables.
 * @throws {ControlRefusedError} {ControlConnectionError} {RecordStreamError}
 */
async function streamed(
  v: Values,
  cmd: "list" | "stats",
  args: Record<string, unknown>,
  timeoutMs: number,
): Promise<number> {
  await using c = await ControlClient.connect(v["control-socket"]!, timeoutMs);
  const printer = v.json ? null : new RecordPrinter(cmd, (text) => print(termSafe(text) + "\n"));
  for await (const records of c.stream(cmd, args)) {
    if (printer) printer.push(records);
    else print(jsonLines(records));
  }
  printer?.end();
  return CTL_EXIT.ok;
}

/** Run `ctl` with its arguments; returns the exit code. */
export async function runCtl(argv: string[]): Promise<number> {
  let v: Values;
  let req: { cmd: string; args: Record<string, unknown> };
  try {
    const p = parse(argv);
    v = p.values;
    if (v.help || p.positionals[0] === "help") {
      console.log(CTL_USAGE);
      return CTL_EXIT.ok;
    }
    req = requestFor(v, p.positionals);
  } catch (e) {
    if (e instanceof CtlUsage) {
      console.error(termSafe(`mcr ctl: ${e.message}\n\n${CTL_USAGE}`));
      return CTL_EXIT.usage;
    }
    throw e;
  }
  const timeout = Number(v.timeout);
  const timeoutMs = Number.isFinite(timeout) && timeout > 0 ? timeout : 10_000;
  const unreachable = (message: string) => {
    if (v.json) {
      console.log(
        jsonTermSafe(JSON.stringify({ ok: false, error: { code: "unreachable", message } })),
      );
    } else console.error(termSafe(`mcr ctl: ${message}`));
    return CTL_EXIT.unreachable;
  };
  if (req.cmd === "list" || req.cmd === "stats") {
    try {
      return await streamed(v, req.cmd, req.args, timeoutMs);
    } catch (e) {
      if (e instanceof StdoutClosed) return CTL_EXIT.ok;
      if (e instanceof ControlRefusedError) return refused(v, req.cmd, e.reply);
      if (e instanceof ControlConnectionError || e instanceof RecordStreamError) {
        return unreachable(e.message);
      }
      throw e;
    }
  }
  let reply: Reply;
  try {
    await using c = await ControlClient.connect(v["control-socket"]!, timeoutMs);
    reply = await c.request(req.cmd, req.args);
  } catch (e) {
    if (!(e instanceof ControlConnectionError)) throw e;
    return unreachable(e.message);
  }
  if (!reply.ok) return refused(v, req.cmd, reply);
  if (v.json) console.log(jsonTermSafe(JSON.stringify(reply.result)));
  else console.log(termSafe(human(req.cmd, reply.result)));
  if (req.cmd === "check" && !(reply.result as { valid: boolean }).valid) return CTL_EXIT.refused;
  return CTL_EXIT.ok;
}

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
import { ControlClient, ControlConnectionError, ControlRefusedError } from "./client.ts";
import type { ErrReply, Reply } from "../control/protocol.ts";
import {
  type PoolWorkerInfo,
  SORT_KEYS,
  type SortKey,
  type ViewArgs,
  type WorkerInfo,
} from "../control/results.ts";
import { formatWorkers, jsonTermSafe, termSafe } from "./format.ts";
import { jsonLines, RecordPrinter, RecordStreamError } from "./listing.ts";
import { type CtlValues, parseCtl, UsageError } from "../cli/program.ts";
import { followRoles } from "./role_follow.ts";
import type { RoleDiff } from "../relay/role.ts";
import { captureArgs, runCapture } from "./capture.ts";
import { hostPort } from "../common/net6.ts";

/** How long `role --stdin` keeps trying to reach the relay for one role (ms). */
const FOLLOW_RETRY_MS = 30_000;

/** Exit codes of `ctl`. */
export const CTL_EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3 } as const;

/** Option values of `ctl`, keyed by their long flag. */
type Values = CtlValues;

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
  if (!m) throw new UsageError(`--outputs: expected GROUP:PORT:INTERFACE, got "${spec}"`);
  return { group: m[1], port: numFlag(m[2])!, interface: m[3] };
}

/**
 * "G:P:IF[:TTL]" → an output object (`ctl add-output`): a last part that is a
 * number or "decrement" after the interface is the TTL.
 */
export function parseOutputWithTtl(spec: string): Record<string, unknown> {
  const m = /^(.+):(\d+|decrement)$/.exec(spec.trim());
  if (m && m[1].split(":").length >= 3) {
    const out: Record<string, unknown> = parseOutputSpec(m[1]);
    out.ttl = m[2] === "decrement" ? "decrement" : Number(m[2]);
    return out;
  }
  return parseOutputSpec(spec);
}

/** `transient: true` when --transient was given. */
function transient(v: Values): { transient?: true } {
  return v.transient ? { transient: true } : {};
}

/** Build the rule object of `ctl add` from flags or JSON. */
export function ruleFromArgs(v: Values, positionals: string[]): Record<string, unknown> {
  const json = v.rule ?? positionals[0];
  if (json !== undefined) {
    let rule: unknown;
    try {
      rule = JSON.parse(json);
    } catch (e) {
      throw new UsageError(`add: the rule is not valid JSON: ${(e as Error).message}`);
    }
    if (typeof rule !== "object" || rule === null || Array.isArray(rule)) {
      throw new UsageError("add: the rule must be a JSON object");
    }
    return rule as Record<string, unknown>;
  }
  const need = ["input-interface", "input-group", "input-port", "outputs"] as const;
  const missing = need.filter((k) => v[k] === undefined);
  if (missing.length) {
    throw new UsageError(
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
  if (rest.length > 1) throw new UsageError(`${cmd}: unexpected argument "${rest[1]}"`);
  if (v.all && v.summary) throw new UsageError(`${cmd}: --all and --summary exclude each other`);
  if (v.sort !== undefined && !(SORT_KEYS as readonly string[]).includes(v.sort)) {
    throw new UsageError(`${cmd}: --sort must be one of ${SORT_KEYS.join(", ")}`);
  }
  let limit: number | undefined;
  if (v.limit !== undefined) {
    limit = /^\d+$/.test(v.limit) ? Number(v.limit) : NaN;
    if (!(Number.isSafeInteger(limit) && limit >= 1)) {
      throw new UsageError(`${cmd}: --limit must be a positive integer`);
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
    if (rest.length > n) throw new UsageError(`${cmd}: unexpected argument "${rest[n]}"`);
  };
  switch (cmd) {
    case undefined:
      throw new UsageError("missing command");
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
      return { cmd, args: { rule: ruleFromArgs(v, rest), ...transient(v) } };
    case "remove":
    case "rm":
      if (rest.length !== 1) throw new UsageError("remove needs one NAME or ID");
      return { cmd: "remove", args: { rule: rest[0], ...transient(v) } };
    case "add-output":
    case "remove-output": {
      if (rest.length !== 2) throw new UsageError(`${cmd} needs RULE and GROUP:PORT:INTERFACE`);
      const out = cmd === "add-output" ? parseOutputWithTtl(rest[1]) : parseOutputSpec(rest[1]);
      return { cmd, args: { rule: rest[0], output: out, ...transient(v) } };
    }
    case "diff":
      noMore(0);
      return { cmd, args: {} };
    case "log-level": {
      const [action = "get", level, category] = rest;
      noMore(3);
      if (action === "get") return { cmd, args: { action, ...(level ? { category: level } : {}) } };
      if (action !== "set" || !level) {
        throw new UsageError('log-level: use "log-level get" or "log-level set LEVEL [CATEGORY]"');
      }
      return { cmd, args: { action, level, ...(category ? { category } : {}) } };
    }
    case "role": {
      noMore(1);
      const role = rest[0];
      if (role !== undefined && role !== "active" && role !== "standby") {
        throw new UsageError(`role: ROLE must be "active" or "standby" (got "${role}")`);
      }
      if (role !== undefined && v.stdin) throw new UsageError("role: a ROLE or --stdin, not both");
      if (role === undefined && v.source !== undefined && !v.stdin) {
        throw new UsageError("role: --source needs a ROLE (or --stdin)");
      }
      return {
        cmd,
        args: role ? { role, ...(v.source !== undefined ? { source: v.source } : {}) } : {},
      };
    }
    case "capture":
      if (rest.length !== 1) throw new UsageError("capture needs one RULE (name or id)");
      return { cmd, args: captureArgs(v, rest[0]) };
    case "reload":
      noMore(1);
      return { cmd, args: rest[0] ? { path: absolute(rest[0]) } : {} };
    case "check":
      noMore(1);
      return { cmd, args: rest[0] ? { path: absolute(rest[0]) } : {} };
    default:
      throw new UsageError(`unknown command "${cmd}"`);
  }
}

/**
 * The request a `ctl` command line makes (arguments after `ctl`).
 * @throws {UsageError} saying what is wrong
 */
export function ctlRequest(argv: string[]): { cmd: string; args: Record<string, unknown> } {
  return parseCtl(argv, requestFor);
}

function absolute(p: string): string {
  return p.startsWith("/") ? p : `${Deno.cwd()}/${p}`;
}

/** Whether a change lasts (the runtime rules file), and warnings, as lines. */
function lasting(r: Record<string, unknown>): string[] {
  const lines = r.persisted ? [`saved in ${r.file}`] : r.note ? [`note: ${r.note}`] : [];
  for (const w of (r.warnings as string[] | undefined) ?? []) lines.push(`warning: ${w}`);
  return lines;
}

/** The diff line of a file whose `role` is not the one in force (role.ts `RoleDiff`). */
export function roleDiffLine(d: RoleDiff): string {
  return `  role      the file says ${d.file}, ${d.in_force} in force: ` +
    (d.applies
      ? `a reload makes the relay ${d.file} (the file's role was edited)`
      : "kept at reload (set at run time; edit the file's role to change it)");
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
      return formatWorkers(r.workers as WorkerInfo[], (r.pool ?? []) as PoolWorkerInfo[]);
    case "add": {
      const rule = r.rule as { name: string; id: string; state?: string };
      return [
        `added ${rule.name} (id ${rule.id})${rule.state ? `, ${rule.state}` : ""}`,
        ...lasting(r),
      ].join("\n");
    }
    case "remove":
      return [
        ...(r.removed as { name: string; id: string }[]).map((x) =>
          `removed ${x.name} (id ${x.id})`
        ),
        ...lasting(r),
      ].join("\n");
    case "add-output":
    case "remove-output": {
      const rule = r.rule as {
        name: string;
        outputs: { interface: string; group: string; port: number }[];
      };
      const outs = rule.outputs.map((o) => `${o.interface} ${hostPort(o.group, o.port)}`).join(
        ", ",
      );
      return [`${rule.name}: ${rule.outputs.length} outputs (${outs})`, ...lasting(r)].join("\n");
    }
    case "diff": {
      const lines = [`${r.path} against the running rules:`];
      for (const k of ["added", "removed", "changed", "unchanged"]) {
        const names = r[k] as string[];
        lines.push(`  ${k.padEnd(9)} ${names.length ? names.join(", ") : "-"}`);
      }
      const restart = r.restart_needed as string[];
      if (restart.length) lines.push(`  restart needed for: ${restart.join(", ")}`);
      if (r.role) lines.push(roleDiffLine(r.role as RoleDiff));
      return lines.join("\n");
    }
    case "role": {
      const head = r.changed === false
        ? `role ${r.role} (unchanged)`
        : r.previous !== undefined
        ? `role ${r.role} (was ${r.previous})`
        : `role ${r.role}`;
      return `${head}; since ${r.since}, set by ${r.set_by}, ${r.changes} changes`;
    }
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
        const role = (d as unknown as { role?: RoleDiff }).role;
        if (role) lines.push(roleDiffLine(role));
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

/**
 * Run one `ctl` command (`words`: the command and its arguments, as parsed
 * by src/cli/program.ts); returns the exit code.
 * @throws {UsageError} when the arguments make no request
 */
export async function runCtl(v: Values, words: string[]): Promise<number> {
  const req = requestFor(v, words);
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
  if (req.cmd === "role" && v.stdin) {
    try {
      return await followRoles(v["control-socket"]!, {
        input: Deno.stdin.readable,
        source: v.source ?? "ctl",
        timeoutMs,
        retryMs: FOLLOW_RETRY_MS,
        log: (line) => console.log(line),
      });
    } catch (e) {
      if (e instanceof ControlConnectionError) return unreachable(e.message);
      throw e;
    }
  }
  if (req.cmd === "capture") {
    try {
      return await runCapture(v, req.args, timeoutMs);
    } catch (e) {
      if (e instanceof ControlRefusedError) return refused(v, req.cmd, e.reply);
      if (e instanceof ControlConnectionError || e instanceof RecordStreamError) {
        return unreachable(e.message);
      }
      throw e;
    }
  }
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

/**
 * The control commands: each takes the request's `args` and returns the
 * reply's `result`, or throws a {@link ControlError}. Shared by the control
 * socket server; the metrics endpoint and `top` use the same snapshots.
 *
 * @module
 */
import { dirname, isAbsolute, normalize, resolve } from "node:path";
import {
  ConfigError,
  parseConfigSource,
  parseConfigText,
  readConfigFile,
  type RuleConfig,
} from "../config/mod.ts";
import { logger } from "../common/log.ts";
import { RUNTIME_HANDLERS } from "./runtime_commands.ts";
import { CAPTURE_HANDLERS } from "./capture_command.ts";
import { flag, str } from "./args.ts";
import {
  DefinedInFileError,
  type Relay,
  type ReloadSummary,
  RuleNotFoundError,
} from "../relay/relay.ts";
import { RuntimeRulesError } from "../relay/runtime_rules.ts";
import type { ListedRule, StatsResult } from "./results.ts";
import type { HealthTracker } from "./health.ts";
import { ControlError, PROTOCOL_VERSION, StreamedResult } from "./protocol.ts";
import { noRates, type RateTracker } from "./rates.ts";
import {
  listedRule,
  listRecords,
  listResult,
  listView,
  parseViewArgs,
  statsRecords,
  statsResult,
  statsView,
} from "./views.ts";
import { MCR_VERSION } from "../common/version.ts";
import { hostPort } from "../common/net6.ts";

/** What the commands work on. */
export interface ControlContext {
  /** The relay. */
  relay: Relay;
  /** Rate sampler over `relay.stats()`. */
  rates: RateTracker;
  /** `performance.now()` when the daemon started. */
  startedAt: number;
  /** Follows the relay's events for /healthz and the reload metrics (health.ts). */
  health?: HealthTracker;
}

/** When the snapshot is taken and since when the daemon runs. */
function clock(ctx: ControlContext) {
  return {
    time: new Date().toISOString(),
    uptime_s: Math.round((performance.now() - ctx.startedAt) / 100) / 10,
  };
}

/** A stats snapshot with rates, every rule (also used by the metrics endpoint). */
export function statsWithRates(ctx: ControlContext): StatsResult {
  return statsResult(
    statsView(ctx.relay.stats(), ctx.rates.rates(), clock(ctx), parseViewArgs("stats", {})),
  );
}

/**
 * The rules of the configuration in force, with state and counters: every
 * one, or the one named `name`.
 */
export function listRules(ctx: ControlContext, name?: string): ListedRule[] {
  const v = listView(
    ctx.relay.config.rules,
    ctx.relay.stats(),
    ctx.rates.rates(),
    parseViewArgs("list", name === undefined ? {} : { rule: name }),
  );
  return listResult(v).rules;
}

const log = logger("control");

function invalidConfig(
  e: ConfigError,
  code: "invalid_rule" | "invalid_config",
  hint = "",
): ControlError {
  return new ControlError(code, e.message + hint, e.issues);
}

/**
 * Run a live rule change, turning its errors into control errors: invalid
 * (with `hint(e)` added to the message), no such rule, defined in the
 * configuration files, runtime rules file not written.
 */
async function change<T>(
  f: () => Promise<T>,
  code: "invalid_rule",
  hint: (e: ConfigError) => string = () => "",
): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof ConfigError) throw invalidConfig(e, code, hint(e));
    if (e instanceof RuleNotFoundError) throw new ControlError("not_found", e.message);
    if (e instanceof DefinedInFileError) throw new ControlError("defined_in_file", e.message);
    if (e instanceof RuntimeRulesError) throw new ControlError("not_saved", e.message);
    throw e;
  }
}

/**
 * Whether a change lasts: `persisted` when the runtime rules file keeps it
 * (`file`), else a `note` that the next reload or restart undoes it.
 */
function persistence(ctx: ControlContext, transient: boolean) {
  const rt = ctx.relay.runtimeRules;
  if (rt && !transient) return { persisted: true, file: rt.path };
  return {
    persisted: false,
    note: rt
      ? "transient: the next reload or restart undoes it"
      : "not kept: the next reload or restart undoes it (set runtime_rules in the configuration " +
        "to keep ctl changes)",
  };
}

/** Most interface names a warning lists. */
const LISTED_INTERFACES = 32;

/**
 * A warning for each of `names` that does not exist (a typo, or an interface
 * still to come: the rule waits for it, `pending`), listing the ones that do.
 */
function missingInterfaces(ctx: ControlContext, names: string[]): string[] {
  const known = ctx.relay.interfaceNames();
  if (!known) return [];
  const have = new Set(known);
  const shown = known.slice(0, LISTED_INTERFACES).join(", ") +
    (known.length > LISTED_INTERFACES ? `, ... (${known.length} in all)` : "");
  return [...new Set(names)].filter((n) => !have.has(n)).map((n) =>
    `interface ${n} does not exist (yet): what needs it waits for it. Existing interfaces: ${
      shown || "none"
    }`
  );
}

/** A rule as `list` shows it, without rates. */
function listedRuleOf(ctx: ControlContext, rule: RuleConfig): ListedRule {
  const [stats] = ctx.relay.ruleStats([rule.id]);
  return listedRule(stats ? { c: rule, s: stats } : { c: rule }, noRates());
}

/** A command handler. */
export type Handler = (ctx: ControlContext, args: Record<string, unknown>) => Promise<unknown>;

/** Every command by name (see docs/control.md). */
export const HANDLERS: Record<string, Handler> = {
  version: (ctx) =>
    Promise.resolve({
      version: MCR_VERSION,
      protocol: PROTOCOL_VERSION,
      deno: Deno.version.deno,
      pid: Deno.pid,
      config: ctx.relay.configPath ?? null,
      uptime_s: Math.round((performance.now() - ctx.startedAt) / 100) / 10,
    }),

  ping: (ctx) =>
    Promise.resolve({
      pong: true,
      uptime_s: Math.round((performance.now() - ctx.startedAt) / 100) / 10,
    }),

  list(ctx, args) {
    const a = parseViewArgs("list", args);
    const v = listView(ctx.relay.config.rules, ctx.relay.stats(), ctx.rates.rates(), a);
    return Promise.resolve(a.stream ? new StreamedResult(listRecords(v)) : listResult(v));
  },

  stats(ctx, args) {
    const a = parseViewArgs("stats", args);
    const disabled = ctx.relay.config.rules.filter((r) => !r.enabled);
    const v = statsView(ctx.relay.stats(), ctx.rates.rates(), clock(ctx), a, disabled);
    return Promise.resolve(a.stream ? new StreamedResult(statsRecords(v)) : statsResult(v));
  },

  workers: (ctx) => {
    const s = ctx.relay.stats();
    return Promise.resolve({ workers: s.workers, pool: s.pool });
  },

  async add(ctx, args) {
    const raw = args.rule;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      throw new ControlError("bad_args", "args.rule must be a rule object (as in rules.json)");
    }
    const opts = { transient: flag(args, "transient") };
    const rule = await change(() => ctx.relay.addRule(raw, opts), "invalid_rule", (e) =>
      // the same input as a rule in force: say how to change that rule instead
      e.issues.some((i) => i.field === "input" && /same input/.test(i.message))
        ? " (to send this stream to more destinations, add them to that rule with " +
          "`mcr ctl add-output RULE GROUP:PORT:INTERFACE`)"
        : "");
    log.info("rule {rule} added ({input}, {outputs} outputs)", {
      rule: rule.name,
      input: `${rule.input.interface} ${hostPort(rule.input.group, rule.input.port)}`,
      interface: rule.input.interface,
      outputs: rule.outputs.length,
    });
    // the new rule alone (a whole listing costs seconds at 65,536 rules); no rate yet
    const [stats] = ctx.relay.ruleStats([rule.id]);
    const warnings = missingInterfaces(ctx, [
      rule.input.interface,
      ...rule.outputs.map((o) => o.interface),
    ]);
    return {
      rule: listedRule(stats ? { c: rule, s: stats } : { c: rule }, noRates()),
      ...persistence(ctx, opts.transient),
      ...(warnings.length ? { warnings } : {}),
    };
  },

  async remove(ctx, args) {
    const which = str(args, "rule", true);
    const opts = { transient: flag(args, "transient") };
    const gone = await change(() => ctx.relay.removeRule(which, opts), "invalid_rule");
    for (const r of gone) {
      log.info("rule {rule} removed", { rule: r.name, interface: r.input.interface });
    }
    return {
      removed: gone.map((r) => ({ id: r.id, name: r.name })),
      ...persistence(ctx, opts.transient),
    };
  },

  async "add-output"(ctx, args) {
    const name = str(args, "rule", true);
    const out = args.output;
    if (typeof out !== "object" || out === null || Array.isArray(out)) {
      throw new ControlError("bad_args", "args.output must be an output object (as in rules.json)");
    }
    const opts = { transient: flag(args, "transient") };
    const rule = await change(
      () => ctx.relay.changeOutputs(name, (outputs) => [...outputs, { ...out }], opts),
      "invalid_rule",
    );
    log.info("rule {rule}: output added ({outputs} outputs)", {
      rule: rule.name,
      interface: rule.input.interface,
      outputs: rule.outputs.length,
    });
    return { rule: listedRuleOf(ctx, rule), ...persistence(ctx, opts.transient) };
  },

  async "remove-output"(ctx, args) {
    const name = str(args, "rule", true);
    const out = args.output;
    if (typeof out !== "object" || out === null || Array.isArray(out)) {
      throw new ControlError("bad_args", "args.output must name interface, group and port");
    }
    const want = out as Record<string, unknown>;
    const opts = { transient: flag(args, "transient") };
    const same = (o: Record<string, unknown>) =>
      o.interface === want.interface && o.group === want.group && o.port === want.port;
    const rule = await change(
      () =>
        ctx.relay.changeOutputs(name, (outputs) => {
          const kept = outputs.filter((o) => !same(o));
          if (kept.length === outputs.length) {
            throw new ControlError(
              "not_found",
              `rule "${name}" has no output ${
                hostPort(String(want.group), String(want.port))
              } on ${want.interface}`,
            );
          }
          return kept;
        }, opts),
      "invalid_rule",
    );
    log.info("rule {rule}: output removed ({outputs} outputs)", {
      rule: rule.name,
      interface: rule.input.interface,
      outputs: rule.outputs.length,
    });
    return { rule: listedRuleOf(ctx, rule), ...persistence(ctx, opts.transient) };
  },

  async diff(ctx) {
    const file = ctx.relay.configPath;
    if (file === undefined) {
      throw new ControlError("bad_args", "the relay was not started from a file: nothing to diff");
    }
    try {
      return ctx.relay.diff(await parseConfigSource(await readConfigFile(file), file), file);
    } catch (e) {
      if (e instanceof ConfigError) throw invalidConfig(e, "invalid_config");
      throw e;
    }
  },

  async reload(ctx, args) {
    const requested = str(args, "path");
    const path = requested === undefined
      ? undefined
      : await readablePath(ctx.relay.configPath, requested);
    let summary: ReloadSummary;
    try {
      summary = await ctx.relay.reload(path);
    } catch (e) {
      if (e instanceof ConfigError) {
        log.error("reload refused, nothing changed: {error}", { error: e.message });
        throw invalidConfig(e, "invalid_config");
      }
      throw e;
    }
    logReload(summary);
    return summary;
  },

  async check(ctx, args) {
    const path = str(args, "path");
    const text = args.text;
    if (text !== undefined && typeof text !== "string") {
      throw new ControlError("bad_args", "args.text must be a string (the file's contents)");
    }
    const source = text === undefined
      ? (path ?? ctx.relay.configPath)
      : (str(args, "source") ?? path ?? "request");
    if (source === undefined) {
      throw new ControlError("bad_args", "give args.path or args.text (no configuration file)");
    }
    try {
      let content = text;
      // Includes resolve from the file's directory (text alone: from the running file's).
      let base = path ?? ctx.relay.configPath;
      if (content === undefined) {
        const file = path === undefined ? source : await readablePath(ctx.relay.configPath, path);
        content = await readConfigFile(file);
        base = file;
      }
      const config = base === undefined
        ? parseConfigText(content, source)
        : await parseConfigSource(content, base);
      return {
        valid: true,
        path: source,
        rules: config.rules.length,
        diff: ctx.relay.diff(config, source),
      };
    } catch (e) {
      if (e instanceof ConfigError) {
        return { valid: false, path: source, message: e.message, issues: e.issues };
      }
      throw e;
    }
  },

  ...RUNTIME_HANDLERS,
  ...CAPTURE_HANDLERS,
};

/**
 * The file the daemon reads when a client names `requested` in `check` or
 * `reload`: the daemon's configuration file (`configPath`), or a `*.json` file
 * in the same directory. Anything else is `forbidden`, decided from the path's
 * text before the file system is asked, so that the reply does not tell whether
 * a file outside exists. A path inside that resolves (through symbolic links)
 * to a file elsewhere is forbidden too; the resolved path is what gets read,
 * so the link cannot be swapped between this check and the read.
 *
 * The files a client may have read are those an operator keeps beside the
 * configuration (a new version to `check` before it replaces the old); the
 * daemon, which may run with more rights than the client, is no reader of
 * other files for it. What is read is bounded as any configuration file
 * (`readConfigFile`: a regular file, at most MAX_CONFIG_BYTES).
 *
 * @throws {ControlError} bad_args (not absolute) or forbidden
 */
export async function readablePath(
  configPath: string | undefined,
  requested: string,
): Promise<string> {
  if (!isAbsolute(requested)) {
    throw new ControlError("bad_args", `args.path must be an absolute path (got a relative one)`);
  }
  if (configPath === undefined) {
    throw new ControlError(
      "forbidden",
      "the daemon was not started from a configuration file, so it reads no file for a client " +
        "(check: send the text as args.text)",
    );
  }
  const configured = resolve(configPath);
  const dir = dirname(configured);
  const policy = `the daemon reads only its configuration file ${configured} and *.json ` +
    `files in ${dir} for a client`;
  const beside = (p: string, d: string) => dirname(p) === d && p.endsWith(".json");
  const wanted = normalize(requested);
  if (wanted !== configured && !beside(wanted, dir)) {
    throw new ControlError("forbidden", `${requested}: ${policy}`);
  }
  let real: string;
  try {
    real = await Deno.realPath(wanted);
  } catch {
    return wanted; // missing, or not searchable: the reader says which
  }
  const realConfigured = await Deno.realPath(configured).catch(() => configured);
  const realDir = await Deno.realPath(dir).catch(() => dir);
  if (real !== realConfigured && !beside(real, realDir)) {
    throw new ControlError("forbidden", `${requested} leads out of ${dir}: ${policy}`);
  }
  return real;
}

/** Log what a reload changed (also used for SIGHUP). */
export function logReload(s: ReloadSummary): void {
  log.info(
    "reloaded {path}: {added} added, {removed} removed, {changed} changed, {unchanged} unchanged",
    {
      path: s.path,
      added: s.added.length,
      removed: s.removed.length,
      changed: s.changed.length,
      unchanged: s.unchanged.length,
    },
  );
  if (s.restart_needed.length > 0) {
    log.warn("reload: {settings} changed in {path}; they take effect after a restart", {
      settings: s.restart_needed.join(", "),
      path: s.path,
    });
  }
}

/** Run one command; unknown names give `unknown_command`. */
export function runCommand(
  ctx: ControlContext,
  cmd: string,
  args: Record<string, unknown>,
): Promise<unknown> {
  const h = Object.hasOwn(HANDLERS, cmd) ? HANDLERS[cmd] : undefined;
  if (!h) {
    return Promise.reject(
      new ControlError(
        "unknown_command",
        `unknown command "${cmd}" (known: ${Object.keys(HANDLERS).join(", ")})`,
      ),
    );
  }
  return h(ctx, args);
}

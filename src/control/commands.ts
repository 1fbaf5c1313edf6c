/**
 * The control commands: each takes the request's `args` and returns the
 * reply's `result`, or throws a {@link ControlError}. Shared by the control
 * socket server; the metrics endpoint and `top` use the same snapshots.
 *
 * @module
 */
import { dirname, isAbsolute, normalize, resolve } from "node:path";
import { ConfigError, parseConfigText, readConfigFile } from "../config/mod.ts";
import { getLogLevels, isLogLevel, logger, LogLevelError, setLogLevel } from "../common/log.ts";
import { type Relay, type ReloadSummary, RuleNotFoundError } from "../relay/relay.ts";
import type { ListedRule, ListState, StatsResult } from "./results.ts";
import { ControlError, PROTOCOL_VERSION } from "./protocol.ts";
import type { Rates, RateTracker } from "./rates.ts";
import denoJson from "../../deno.json" with { type: "json" };

/** mcr's version (from deno.json). */
export const MCR_VERSION: string = denoJson.version;

/** What the commands work on. */
export interface ControlContext {
  /** The relay. */
  relay: Relay;
  /** Rate sampler over `relay.stats()`. */
  rates: RateTracker;
  /** `performance.now()` when the daemon started. */
  startedAt: number;
}

/** A stats snapshot with rates (also used by the metrics endpoint and `top`). */
export function statsWithRates(ctx: ControlContext): StatsResult {
  const s = ctx.relay.stats();
  const r: Rates = ctx.rates.rates();
  const zero = { pps: 0, bps: 0 };
  const rnd = (x: number) => Math.round(x * 10) / 10;
  const rate = (x: { pps: number; bps: number } | undefined) => ({
    pps: rnd((x ?? zero).pps),
    bps: Math.round((x ?? zero).bps),
  });
  return {
    time: new Date().toISOString(),
    uptime_s: Math.round((performance.now() - ctx.startedAt) / 100) / 10,
    rate_window_s: r.window_s,
    rules: s.rules.map((rule) => ({
      ...rule,
      ...rate(r.rules.get(rule.id)),
      outputs: rule.outputs.map((o, k) => ({ ...o, ...rate(r.outputs.get(rule.id)?.[k]) })),
    })),
    interfaces: s.interfaces.map((i) => {
      const x = r.interfaces.get(i.name);
      return { ...i, ...rate(x), kernel_drops_ps: rnd(x?.kernel_drops_ps ?? 0) };
    }),
    workers: s.workers,
    pool: s.pool,
    drops: s.drops,
    drops_ps: Object.fromEntries(Object.keys(s.drops).map((k) => [k, rnd(r.drops[k] ?? 0)])),
    ...(s.igmp ? { igmp: s.igmp } : {}),
    ...(s.fds ? { fds: s.fds } : {}),
  };
}

/** The rules of the configuration in force, with state and counters. */
export function listRules(ctx: ControlContext): ListedRule[] {
  const st = statsWithRates(ctx);
  const byId = new Map(st.rules.map((r) => [`${r.id}|${r.name}`, r]));
  return ctx.relay.config.rules.map((c) => {
    const s = c.enabled ? byId.get(`${c.id}|${c.name}`) : undefined;
    const state: ListState = !c.enabled ? "disabled" : s?.state ?? "pending";
    return {
      id: c.id,
      name: c.name,
      enabled: c.enabled,
      state,
      ...(s?.reason ? { reason: s.reason } : {}),
      input: {
        interface: c.input.interface,
        group: c.input.group,
        port: c.input.port,
        ...(c.input.source ? { source: c.input.source } : {}),
        ...(c.input.vlan ? { vlan: c.input.vlan } : {}),
      },
      outputs: c.outputs.map((o, i) => {
        const so = s?.outputs[i];
        return {
          interface: o.interface,
          group: o.group,
          port: o.port,
          ttl: o.ttl,
          dscp: o.dscp,
          state: !c.enabled ? "disabled" : so?.state ?? "pending",
          ...(so?.reason ? { reason: so.reason } : {}),
          packets: so?.packets ?? 0,
          bytes: so?.bytes ?? 0,
          pps: so?.pps ?? 0,
          bps: so?.bps ?? 0,
        };
      }),
      packets: s?.packets ?? 0,
      bytes: s?.bytes ?? 0,
      pps: s?.pps ?? 0,
      bps: s?.bps ?? 0,
    };
  });
}

function str(args: Record<string, unknown>, key: string, required: true): string;
function str(args: Record<string, unknown>, key: string, required?: false): string | undefined;
function str(args: Record<string, unknown>, key: string, required = false): string | undefined {
  const v = args[key];
  if (v === undefined && !required) return undefined;
  if (typeof v !== "string" || v.length === 0) {
    throw new ControlError("bad_args", `args.${key} must be a non-empty string`);
  }
  return v;
}

const log = logger("control");

function invalidConfig(e: ConfigError, code: "invalid_rule" | "invalid_config"): ControlError {
  return new ControlError(code, e.message, e.issues);
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

  list: (ctx) => Promise.resolve({ rules: listRules(ctx) }),

  stats: (ctx) => Promise.resolve(statsWithRates(ctx)),

  workers: (ctx) => {
    const s = ctx.relay.stats();
    return Promise.resolve({ workers: s.workers, pool: s.pool });
  },

  async add(ctx, args) {
    const raw = args.rule;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      throw new ControlError("bad_args", "args.rule must be a rule object (as in rules.json)");
    }
    try {
      const rule = await ctx.relay.addRule(raw);
      log.info("rule {rule} added ({input}, {outputs} outputs)", {
        rule: rule.name,
        input: `${rule.input.interface} ${rule.input.group}:${rule.input.port}`,
        interface: rule.input.interface,
        outputs: rule.outputs.length,
      });
      ctx.rates.sample();
      const listed = listRules(ctx).find((r) => r.id === rule.id && r.name === rule.name);
      return { rule: listed ?? { id: rule.id, name: rule.name } };
    } catch (e) {
      if (e instanceof ConfigError) throw invalidConfig(e, "invalid_rule");
      throw e;
    }
  },

  async remove(ctx, args) {
    const which = str(args, "rule", true);
    try {
      const gone = await ctx.relay.removeRule(which);
      for (const r of gone) {
        log.info("rule {rule} removed", { rule: r.name, interface: r.input.interface });
      }
      return { removed: gone.map((r) => ({ id: r.id, name: r.name })) };
    } catch (e) {
      if (e instanceof RuleNotFoundError) throw new ControlError("not_found", e.message);
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
      if (content === undefined) {
        const file = path === undefined ? source : await readablePath(ctx.relay.configPath, path);
        content = await readConfigFile(file);
      }
      const config = parseConfigText(content, source);
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

  "log-level"(_ctx, args) {
    const action = str(args, "action") ?? (args.level === undefined ? "get" : "set");
    const category = str(args, "category");
    if (action === "get") return Promise.resolve(getLogLevels());
    if (action !== "set") {
      throw new ControlError("bad_args", `args.action must be "get" or "set" (got "${action}")`);
    }
    const level = args.level;
    const next = level === "default" && category ? null : isLogLevel(level) ? level : undefined;
    if (next === undefined) {
      throw new ControlError(
        "bad_args",
        "args.level must be one of trace, debug, info, warning, error, fatal" +
          (category ? ', or "default" to drop the category override' : ""),
      );
    }
    try {
      setLogLevel(next, category);
    } catch (e) {
      if (e instanceof LogLevelError) throw new ControlError("bad_args", e.message);
      throw e;
    }
    log.info("log level of {category} set to {level}", {
      category: category ?? "(global)",
      level,
    });
    return Promise.resolve(getLogLevels());
  },
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

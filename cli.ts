/**
 * mcr command line.
 *
 *   deno run --allow-ffi --allow-read --allow-env cli.ts --config rules.json
 *   deno run --allow-read cli.ts check --config rules.json
 *
 * Exit codes: 0 success; 1 invalid configuration; 2 usage error;
 * 3 runtime failure (libmcr missing, permission denied, no interface could be
 * opened). See README.md.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "./src/config/mod.ts";
import { Relay } from "./src/relay/relay.ts";
import type { RelayStats } from "./src/relay/stats.ts";
import { logger, setupLogging } from "./src/common/log.ts";
import type { LogLevel } from "@logtape/logtape";
import { controlOptions, ControlPlaneError, startControlPlane } from "./src/control/daemon.ts";
import { sdNotify } from "./ffi/mod.ts";

/** Exit codes. */
export const EXIT = { ok: 0, invalid: 1, usage: 2, runtime: 3 } as const;

const USAGE = `mcr — userspace multicast relay

Usage:
  cli.ts [run] --config FILE [--log-level LEVEL] [--log-format text|json]
                             [--ready-file PATH] [--json]
                             [--control-socket PATH | --no-control]
                             [--metrics HOST:PORT]
  cli.ts check --config FILE [--json]
  cli.ts ctl [--control-socket PATH] [--json] COMMAND   (see cli.ts ctl --help)
  cli.ts top [--control-socket PATH]
  cli.ts schema                      (JSON Schema of rules.json)
  cli.ts gen  [mcr-gen options]      (paced test-traffic generator)
  cli.ts sink [mcr-sink options]     (receiver: loss, duplicates, order, latency)
  cli.ts help

run      Run the relay in the foreground until SIGINT/SIGTERM, then print the
         final per-rule counters (a table, or JSON with --json).
check    Validate a configuration: exit 0 when valid, 1 when invalid.
ctl      Talk to a running relay: version, ping, list, add, remove, stats,
         workers, log-level, reload, check.
top      Live view of rules and interfaces (pps, Mbit/s, drops).
schema   Print the JSON Schema of rules.json (generated from the validator;
         committed as schema/rules.schema.json for editors).

Options:
  -c, --config FILE      rules.json
  --log-level LEVEL      trace|debug|info|warning|error|fatal (default info)
  --log-format FORMAT    text (default) or json (JSON lines)
  --ready-file PATH      create PATH once every rule is forwarding (for scripts)
  --json                 machine-readable output
  --control-socket PATH  control socket (default: config control.socket, else
                         /run/mcr/control.sock; its directory must not be
                         group- or world-writable)
  --no-control           no control socket
  --metrics HOST:PORT    serve Prometheus metrics and /healthz (default: config
                         metrics.listen; off when neither is set)

SIGHUP re-reads the config file and applies only the difference (as ctl reload).
Under systemd (Type=notify) the relay reports READY=1 once forwarding,
RELOADING=1/READY=1 around reloads and STOPPING=1 on shutdown.
Exit codes: 0 ok, 1 invalid configuration, 2 usage error, 3 runtime failure.
Minimal permissions: --allow-ffi --allow-read --allow-env --allow-write=/run/mcr
--allow-net=unix:/run/mcr/control.sock (the control socket; --allow-write also
for --ready-file; add 127.0.0.1:9464 to --allow-net with --metrics); -A works
too. Needs CAP_NET_RAW. ctl/top need --allow-read --allow-write
--allow-net=unix:SOCKET.`;

class UsageError extends Error {}

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: "string", short: "c" },
        "log-level": { type: "string", default: "info" },
        "log-format": { type: "string", default: "text" },
        "ready-file": { type: "string" },
        json: { type: "boolean", default: false },
        "control-socket": { type: "string" },
        "no-control": { type: "boolean", default: false },
        metrics: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** One formatter for every number (toLocaleString builds one per call: seconds at 262,144 outputs). */
const NUMBER_FORMAT = new Intl.NumberFormat("en-US");

function fmtNum(n: number): string {
  return NUMBER_FORMAT.format(n);
}

/** Render final counters as a table for people. */
export function formatStats(s: RelayStats): string {
  const rows: string[][] = [[
    "RULE",
    "STATE",
    "INPUT",
    "PACKETS",
    "BYTES",
    "OUTPUT",
    "SENT",
    "DROPPED",
  ]];
  for (const r of s.rules) {
    const input = `${r.input.interface} ${r.input.group}:${r.input.port}`;
    r.outputs.forEach((o, i) => {
      rows.push([
        i === 0 ? r.name : "",
        i === 0 ? r.state : "",
        i === 0 ? input : "",
        i === 0 ? fmtNum(r.packets) : "",
        i === 0 ? fmtNum(r.bytes) : "",
        `${o.interface} ${o.group}:${o.port}${o.state === "error" ? " (error)" : ""}`,
        fmtNum(o.packets),
        fmtNum(o.ring_full + o.errors + o.ttl_expired),
      ]);
    });
  }
  const w = rows[0].map(() => 0);
  for (const r of rows) for (let c = 0; c < r.length; c++) w[c] = Math.max(w[c], r[c].length);
  const lines = rows.map((r) => r.map((v, c) => v.padEnd(w[c])).join("  ").trimEnd());
  const drops = Object.entries(s.drops).filter(([, v]) => v > 0).map(([k, v]) =>
    `${k}=${fmtNum(v)}`
  );
  const ifs = s.interfaces.map((i) =>
    `${i.name}: ${i.state}, frames ${fmtNum(i.frames)}, kernel drops ${fmtNum(i.kernel_drops)}`
  );
  return [...lines, "", ...ifs, `drops: ${drops.length ? drops.join(" ") : "none"}`].join("\n");
}

async function cmdCheck(args: ReturnType<typeof parse>["values"]): Promise<number> {
  if (!args.config) throw new UsageError("check needs --config FILE");
  try {
    const c = await loadConfig(args.config);
    if (args.json) console.log(JSON.stringify({ valid: true, rules: c.rules.length }));
    else console.log(`${args.config}: valid (${c.rules.length} rules)`);
    return EXIT.ok;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    if (args.json) console.log(JSON.stringify({ valid: false, issues: e.issues }));
    else console.error(e.message);
    return EXIT.invalid;
  }
}

async function cmdRun(args: ReturnType<typeof parse>["values"]): Promise<number> {
  if (!args.config) throw new UsageError("the relay needs --config FILE");
  const level = args["log-level"] as LogLevel;
  if (!["trace", "debug", "info", "warning", "error", "fatal"].includes(level)) {
    throw new UsageError(`--log-level: unknown level "${level}"`);
  }
  const format = args["log-format"];
  if (format !== "text" && format !== "json") {
    throw new UsageError(`--log-format: expected text or json, got "${format}"`);
  }
  setupLogging(level, format);
  const log = logger("cli");
  let config;
  try {
    config = await loadConfig(args.config);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      return EXIT.invalid;
    }
    throw e;
  }
  const relay = new Relay(config, { configPath: args.config });
  // systemd Type=notify: RELOADING=1 … READY=1 around every reload (SIGHUP or `ctl reload`).
  relay.on((ev) => {
    if (ev.type !== "reload") return;
    if (ev.phase === "start") notify("RELOADING=1\nSTATUS=reloading");
    else notify(`READY=1\nSTATUS=${statusLine(relay.stats())}`);
  });
  let plane;
  try {
    plane = await startControlPlane(relay, controlOptions(args, config));
  } catch (e) {
    if (!(e instanceof ControlPlaneError)) throw e;
    console.error(`mcr: ${e.message}`);
    return EXIT.runtime;
  }
  let stopping: Promise<void> | undefined;
  const done = Promise.withResolvers<void>();
  const onSignal = () => {
    if (!stopping) notify("STOPPING=1");
    stopping ??= plane.close().then(() => relay.stop()).then(() => done.resolve());
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  await relay.start();
  if (relay.permissionDenied) {
    const why = relay.stats().workers.find((w) => w.reason)?.reason ?? "permission denied";
    console.error(
      `mcr: cannot open AF_PACKET sockets: ${why}\n` +
        "mcr needs CAP_NET_RAW: run as root, or grant it (systemd AmbientCapabilities=CAP_NET_RAW, " +
        "or setpriv --inh-caps=+net_raw --ambient-caps=+net_raw)",
    );
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await plane.close();
    await relay.stop();
    return EXIT.runtime;
  }
  const st = relay.stats();
  const active = st.rules.filter((r) => r.state === "active").length;
  log.info("{active} of {total} rules forwarding", { active, total: st.rules.length });
  if (args["ready-file"]) await Deno.writeTextFile(args["ready-file"], "ready\n");
  notify(`READY=1\nSTATUS=${statusLine(st)}`);
  await done.promise;
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
  const final = relay.stats();
  if (args.json) console.log(JSON.stringify(final));
  else console.log(formatStats(final));
  return EXIT.ok;
}

/** systemd STATUS= text: how many rules forward. */
function statusLine(s: RelayStats): string {
  const active = s.rules.filter((r) => r.state === "active").length;
  return `${active} of ${s.rules.length} rules forwarding`;
}

/** sd_notify (through libmcr); never fatal: a failure is logged. */
function notify(state: string): void {
  try {
    sdNotify(state);
  } catch (e) {
    logger("cli").warning("sd_notify failed: {error}", { error: (e as Error).message });
  }
}

/** Find a C tool (build/ next to the repo, or next to the executable). */
function toolPath(name: string): string {
  const here = new URL(".", import.meta.url).pathname;
  const exe = Deno.execPath();
  const cands = [`${here}build/${name}`, `${exe.slice(0, exe.lastIndexOf("/"))}/${name}`];
  for (const c of cands) {
    try {
      Deno.statSync(c);
      return c;
    } catch { /* next */ }
  }
  throw new Error(`${name} not found (tried ${cands.join(", ")}); run \`deno task build\``);
}

/** Run a traffic tool with the given arguments, passing stdio through. */
async function runTool(name: string, args: string[]): Promise<number> {
  const st = await new Deno.Command(toolPath(name), {
    args,
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  return st.code;
}

/** Entry point; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "ctl") {
    const { runCtl } = await import("./src/client/ctl.ts");
    return await runCtl(argv.slice(1));
  }
  if (argv[0] === "top") {
    const { runTop } = await import("./src/client/top.ts");
    return await runTop(argv.slice(1));
  }
  if (argv[0] === "gen" || argv[0] === "sink") {
    try {
      return await runTool(`mcr-${argv[0]}`, argv.slice(1));
    } catch (e) {
      console.error(`mcr: ${(e as Error).message}`);
      return EXIT.runtime;
    }
  }
  try {
    const { values, positionals } = parse(argv);
    const cmd = positionals[0] ?? "run";
    if (values.help || cmd === "help") {
      console.log(USAGE);
      return EXIT.ok;
    }
    if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
    switch (cmd) {
      case "check":
        return await cmdCheck(values);
      case "run":
        return await cmdRun(values);
      case "schema": {
        const { rulesJsonSchemaText } = await import("./src/config/json_schema.ts");
        await Deno.stdout.write(new TextEncoder().encode(rulesJsonSchemaText()));
        return EXIT.ok;
      }
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`mcr: ${e.message}\n\n${USAGE}`);
      return EXIT.usage;
    }
    console.error(`mcr: ${(e as Error).message}`);
    return EXIT.runtime;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));

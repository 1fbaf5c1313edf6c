/**
 * mcr command line: what each command does. The commands, options and their
 * help are defined in src/cli/program.ts; the installed `mcr` runs this file
 * (scripts/install.sh, packaging/mcr.sh).
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
import { ConfigError, loadConfig } from "./src/config/mod.ts";
import { Relay } from "./src/relay/relay.ts";
import type { RelayStats } from "./src/relay/stats.ts";
import { logger, setupLogging } from "./src/common/log.ts";
import type { LogLevel } from "@logtape/logtape";
import { controlOptions, ControlPlaneError, startControlPlane } from "./src/control/daemon.ts";
import { sdNotify } from "./ffi/mod.ts";
import {
  type CheckValues,
  type CliActions,
  EXIT,
  runCli,
  type RunValues,
  UsageError,
} from "./src/cli/program.ts";

/** Exit codes. */
export { EXIT };

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

async function cmdCheck(args: CheckValues): Promise<number> {
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

async function cmdRun(args: RunValues): Promise<number> {
  if (!args.config) throw new UsageError("the relay needs --config FILE");
  // --log-level and --log-format are checked against their choices by the parser
  setupLogging(args["log-level"] as LogLevel, args["log-format"] as "text" | "json");
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
    if (ev.type === "role") notify(`STATUS=${statusLine(relay)}`);
    if (ev.type !== "reload") return;
    if (ev.phase === "start") notify("RELOADING=1\nSTATUS=reloading");
    else notify(`READY=1\nSTATUS=${statusLine(relay)}`);
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
  await announceReady(relay, args["ready-file"]);
  await done.promise;
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
  const final = relay.stats();
  if (args.json) console.log(JSON.stringify(final));
  else console.log(formatStats(final));
  return EXIT.ok;
}

/** Log how many rules forward, write the ready file, tell systemd. */
async function announceReady(relay: Relay, readyFile: string | undefined): Promise<void> {
  const line = statusLine(relay);
  logger("cli").info(line);
  if (readyFile) await Deno.writeTextFile(readyFile, "ready\n");
  notify(`READY=1\nSTATUS=${line}`);
}

/**
 * systemd STATUS= text and the ready log line: how many rules forward (on a standby: are ready
 * to). Counted without a stats snapshot (at 65,536 rules that is tens of MB of garbage the heap
 * would keep growing into).
 */
function statusLine(relay: Relay): string {
  const n = relay.ruleStateCounts();
  const total = n.active + n.pending + n.error;
  if (relay.role.current === "standby") return `standby: ${n.active} of ${total} rules ready`;
  return `${n.active} of ${total} rules forwarding`;
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

/** What each command does (the command line itself is src/cli/program.ts). */
const ACTIONS: CliActions = {
  run: cmdRun,
  check: cmdCheck,
  async ctl(v, words) {
    const { runCtl } = await import("./src/client/ctl.ts");
    return await runCtl(v, words);
  },
  async top(v) {
    const { runTop } = await import("./src/client/top.ts");
    return await runTop(v);
  },
  async schema() {
    const { rulesJsonSchemaText } = await import("./src/config/json_schema.ts");
    await Deno.stdout.write(new TextEncoder().encode(rulesJsonSchemaText()));
    return EXIT.ok;
  },
  async tool(name, args) {
    try {
      return await runTool(name, args);
    } catch (e) {
      console.error(`mcr: ${(e as Error).message}`);
      return EXIT.runtime;
    }
  },
  async print(text) {
    await Deno.stdout.write(new TextEncoder().encode(text));
    return EXIT.ok;
  },
};

/** Entry point; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    return await runCli(argv, ACTIONS);
  } catch (e) {
    console.error(`mcr: ${(e as Error).message}`);
    return EXIT.runtime;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));

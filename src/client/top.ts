/**
 * `cli.ts top`: a live terminal view of rules and interfaces (packets per
 * second, Mbit/s, drops), refreshed every second from the daemon's `stats`
 * over the control socket, like `top`. `q` or Ctrl-C quits.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ControlClient, ControlConnectionError } from "./client.ts";
import type { StatsResult } from "../control/results.ts";
import {
  formatDrops,
  formatInterfaces,
  formatRuleRates,
  mbit,
  num,
  rate,
  termSafe,
} from "./format.ts";
import { DEFAULT_CONTROL_SOCKET } from "../control/protocol.ts";

/** Usage text of `top`. */
export const TOP_USAGE = `Usage: cli.ts top [--control-socket PATH] [--interval SECONDS] [--count N]

A live view of rules and interfaces (pps, Mbit/s, drops), refreshed every
second. q or Ctrl-C quits. --count N draws N frames and exits (for scripts;
frames are then printed one after another instead of redrawn).`;

const enc = new TextEncoder();

/** Render one screen (daemon strings escaped: see `termSafe`). */
export function renderTop(s: StatsResult, socket: string, width = 120): string {
  const totalPps = s.interfaces.reduce((a, i) => a + i.pps, 0);
  const totalBps = s.interfaces.reduce((a, i) => a + i.bps, 0);
  const sent = s.rules.reduce((a, r) => a + r.outputs.reduce((b, o) => b + o.pps, 0), 0);
  const active = s.rules.filter((r) => r.state === "active").length;
  const head = [
    `mcr top — ${s.time.replace("T", " ").replace(/\.\d+Z$/, "Z")}  up ${s.uptime_s} s  ${socket}`,
    `rules: ${s.rules.length} (${active} active)  in: ${rate(totalPps)} pps ${
      mbit(totalBps)
    } Mbit/s` +
    `  out: ${rate(sent)} pps  kernel drops: ${
      num(s.interfaces.reduce((a, i) => a + i.kernel_drops, 0))
    }`,
    "",
  ];
  const body = [formatInterfaces(s), "", formatRuleRates(s), "", formatDrops(s)];
  return termSafe([...head, ...body].join("\n")).split("\n").map((l) => l.slice(0, width))
    .join("\n");
}

/** Run `top`; returns the exit code (0, 2 usage, 3 daemon unreachable). */
export async function runTop(argv: string[]): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args: argv,
      options: {
        "control-socket": { type: "string", default: DEFAULT_CONTROL_SOCKET },
        interval: { type: "string", default: "1" },
        count: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (e) {
    console.error(`mcr top: ${(e as Error).message}\n\n${TOP_USAGE}`);
    return 2;
  }
  if (v.help) {
    console.log(TOP_USAGE);
    return 0;
  }
  const interval = Number(v.interval);
  const count = v.count === undefined ? Infinity : Number(v.count);
  if (!(interval >= 0.1) || !(count >= 1)) {
    console.error(`mcr top: --interval must be >= 0.1 and --count >= 1\n\n${TOP_USAGE}`);
    return 2;
  }
  const socket = v["control-socket"]!;
  let client: ControlClient;
  try {
    client = await ControlClient.connect(socket);
  } catch (e) {
    console.error(`mcr top: ${(e as Error).message}`);
    return 3;
  }
  const live = Deno.stdout.isTerminal() && count === Infinity;
  let quit = false;
  const wake = Promise.withResolvers<void>();
  const stop = () => {
    quit = true;
    wake.resolve();
  };
  const raw = live && Deno.stdin.isTerminal();
  if (raw) {
    Deno.stdin.setRaw(true, { cbreak: true });
    (async () => {
      const b = new Uint8Array(16);
      for (;;) {
        const n = await Deno.stdin.read(b).catch(() => null);
        if (n === null || quit) break;
        if (b.subarray(0, n).some((c) => c === 0x71 /* q */ || c === 0x03 /* ^C */)) break;
      }
      stop();
    })();
  }
  const onSig = () => stop();
  Deno.addSignalListener("SIGINT", onSig);
  if (live) Deno.stdout.writeSync(enc.encode("\x1b[?1049h\x1b[?25l")); // alt screen, hide cursor
  let code = 0;
  try {
    for (let frame = 0; frame < count && !quit; frame++) {
      const r = await client.request<StatsResult>("stats");
      if (!r.ok) throw new ControlConnectionError(r.error.message);
      const { columns } = live ? Deno.consoleSize() : { columns: 200 };
      const screen = renderTop(r.result, socket, columns);
      Deno.stdout.writeSync(enc.encode(live ? `\x1b[H\x1b[2J${screen}\n` : `${screen}\n\n`));
      if (frame + 1 < count) {
        let t: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          wake.promise,
          new Promise((res) => t = setTimeout(res, interval * 1000)),
        ]);
        clearTimeout(t);
      }
    }
  } catch (e) {
    if (!(e instanceof ControlConnectionError)) throw e;
    code = 3;
    if (live) Deno.stdout.writeSync(enc.encode("\x1b[?25h\x1b[?1049l"));
    console.error(`mcr top: ${e.message}`);
  } finally {
    Deno.removeSignalListener("SIGINT", onSig);
    if (live && code === 0) Deno.stdout.writeSync(enc.encode("\x1b[?25h\x1b[?1049l"));
    quit = true;
    if (raw) {
      try {
        Deno.stdin.setRaw(false);
      } catch { /* not a tty any more */ }
    }
    await client.close();
  }
  return code;
}

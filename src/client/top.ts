/**
 * `cli.ts top`: a live terminal view of rules and interfaces (packets per
 * second, Mbit/s, drops), refreshed every second from the daemon's `stats`
 * over the control socket, like `top`. It asks for a summary and only the
 * rules that fit the screen (the daemon filters and orders them), so it costs
 * the same with 10 rules or 65,536. `s` changes the order, `q` or Ctrl-C
 * quits.
 *
 * @module
 */
import { ControlClient, ControlConnectionError } from "./client.ts";
import {
  outputDrops,
  SORT_KEYS,
  type SortKey,
  type StatsResult,
  type ViewArgs,
} from "../control/results.ts";
import {
  filterText,
  formatDrops,
  INTERFACE_COLUMNS,
  interfaceRow,
  mbit,
  num,
  rate,
  roleText,
  RULE_LINE_COLUMNS,
  ruleLine,
  stateText,
  table,
  termSafe,
} from "./format.ts";
import { type TopValues, UsageError } from "../cli/program.ts";

const enc = new TextEncoder();

/** Rules shown when the output is not a terminal and --limit is absent. */
export const TOP_DEFAULT_RULES = 20;

/** Rows of the screen `renderTop` never gives to rules (head, tables' titles, drops). */
const TOP_FIXED_ROWS = 9;

/** The `stats` arguments of one frame of `top` showing `rules` rules. */
export function topArgs(
  rules: number,
  sort: SortKey,
  filter: Pick<ViewArgs, "interface" | "group">,
): ViewArgs {
  return { ...filter, view: "summary", sort, limit: Math.max(1, rules) };
}

/**
 * Render one screen (daemon strings escaped: see `termSafe`) of `width`
 * columns and at most `height` rows: the rules table gets the rows the head,
 * the interfaces (at most a third of the screen) and the drops leave.
 */
export function renderTop(
  s: StatsResult,
  socket: string,
  width = 120,
  height = Infinity,
): string {
  const totalPps = s.interfaces.reduce((a, i) => a + i.pps, 0);
  const totalBps = s.interfaces.reduce((a, i) => a + i.bps, 0);
  const sum = s.summary;
  const sent = sum?.out_pps ??
    s.rules.reduce((a, r) => a + r.outputs.reduce((b, o) => b + o.pps, 0), 0);
  const drops = sum?.drops ??
    s.rules.reduce((a, r) => a + r.outputs.reduce((b, o) => b + outputDrops(o), 0), 0);
  const states = sum?.by_state ?? {
    active: s.rules.filter((r) => r.state === "active").length,
    pending: s.rules.filter((r) => r.state === "pending").length,
    error: s.rules.filter((r) => r.state === "error").length,
    disabled: 0,
  };
  const matched = s.matched ?? s.rules.length;
  const filter = s.filter && filterText(s.filter);
  const head = [
    `mcr top — ${s.time.replace("T", " ").replace(/\.\d+Z$/, "Z")}  up ${s.uptime_s} s  ` +
    `${s.role ? `${roleText(s.role.role)}  ` : ""}${socket}`,
    `rules: ${num(matched)}${filter ? ` matching ${filter}` : ""} (${stateText(states)})  ` +
    `in: ${rate(totalPps)} pps ${mbit(totalBps)} Mbit/s  out: ${rate(sent)} pps  ` +
    `kernel drops: ${num(s.interfaces.reduce((a, i) => a + i.kernel_drops, 0))}  ` +
    `output drops: ${num(drops)}`,
    "",
  ];
  const room = height - TOP_FIXED_ROWS;
  const maxIfs = Math.max(1, Math.floor(room / 3));
  const ifs = s.interfaces.length <= maxIfs
    ? s.interfaces
    : [...s.interfaces].sort((a, b) => b.pps - a.pps).slice(0, maxIfs - 1);
  const ifText = s.interfaces.length === 0
    ? ["no input interfaces"]
    : table([INTERFACE_COLUMNS, ...ifs.map(interfaceRow)]).split("\n");
  if (ifs.length < s.interfaces.length) {
    ifText.push(`… ${num(s.interfaces.length - ifs.length)} more interfaces (by pps)`);
  }
  const ruleRows = Math.max(1, Math.min(s.rules.length, room - ifText.length));
  const rules = s.rules.slice(0, ruleRows);
  const by = s.sort ? ` by ${s.sort}` : "";
  const ruleText = rules.length === 0
    ? ["no rules"]
    : table([RULE_LINE_COLUMNS, ...rules.map(ruleLine)]).split("\n");
  const shown = rules.length < matched ? `top ${rules.length} of ${num(matched)} rules${by}` : "";
  const body = [
    ...ifText,
    "",
    ...ruleText,
    ...(shown ? [`(${shown}; s: order)`] : []),
    "",
    formatDrops(s),
  ];
  return termSafe([...head, ...body].join("\n")).split("\n").map((l) => l.slice(0, width))
    .join("\n");
}

/**
 * Run `top` with its options (parsed by src/cli/program.ts); returns the
 * exit code (0, 3 daemon unreachable).
 * @throws {UsageError} for an out-of-range option value
 */
export async function runTop(v: TopValues): Promise<number> {
  const interval = Number(v.interval);
  const count = v.count === undefined ? Infinity : Number(v.count);
  const limit = v.limit === undefined ? undefined : Number(v.limit);
  if (
    !(interval >= 0.1) || !(count >= 1) ||
    (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 1)) ||
    !(SORT_KEYS as readonly string[]).includes(v.sort!)
  ) {
    throw new UsageError(
      `--interval must be >= 0.1, --count and --limit >= 1, --sort one of ${SORT_KEYS.join(", ")}`,
    );
  }
  let sort = v.sort as SortKey;
  const filter = {
    ...(v.interface !== undefined ? { interface: v.interface } : {}),
    ...(v.group !== undefined ? { group: v.group } : {}),
  };
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
  /** Resolved when a key asks for a new frame at once. */
  let redraw = Promise.withResolvers<void>();
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
        const keys = b.subarray(0, n);
        if (keys.some((c) => c === 0x71 /* q */ || c === 0x03 /* ^C */)) break;
        if (keys.includes(0x73 /* s */)) {
          sort = SORT_KEYS[(SORT_KEYS.indexOf(sort) + 1) % SORT_KEYS.length];
          redraw.resolve();
        }
      }
      stop();
    })();
  }
  const onSig = () => stop();
  Deno.addSignalListener("SIGINT", onSig);
  if (live) Deno.stdout.writeSync(enc.encode("\x1b[?1049h\x1b[?25l")); // alt screen, hide cursor
  let code = 0;
  let usage: string | null = null;
  try {
    for (let frame = 0; frame < count && !quit; frame++) {
      const { columns, rows } = live ? Deno.consoleSize() : { columns: 200, rows: Infinity };
      const shown = limit ?? (live ? rows - TOP_FIXED_ROWS : TOP_DEFAULT_RULES);
      const r = await client.request<StatsResult>("stats", { ...topArgs(shown, sort, filter) });
      if (!r.ok) {
        if (r.error.code === "bad_args") {
          usage = `mcr top: ${r.error.message}`;
          break;
        }
        throw new ControlConnectionError(r.error.message);
      }
      const screen = renderTop(r.result, socket, columns, live ? rows : Infinity);
      Deno.stdout.writeSync(enc.encode(live ? `\x1b[H\x1b[2J${screen}\n` : `${screen}\n\n`));
      if (frame + 1 < count) {
        let t: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          wake.promise,
          redraw.promise,
          new Promise((res) => t = setTimeout(res, interval * 1000)),
        ]);
        clearTimeout(t);
        redraw = Promise.withResolvers<void>();
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
  if (usage !== null) {
    console.error(termSafe(usage));
    return 2;
  }
  return code;
}

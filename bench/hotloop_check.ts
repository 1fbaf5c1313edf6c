/**
 * Runs the hot-loop microbenchmarks and compares the per-packet cost with
 * `bench/hotloop_baseline.json`. Exits 1 when any bench is more than 25 %
 * slower (p75) than its baseline. Not part of the tests (no timing
 * assertions there): run it by hand or in a dedicated CI job.
 *
 *     deno run -A bench/hotloop_check.ts            # compare
 *     deno run -A bench/hotloop_check.ts --update   # write a new baseline
 *
 * @module
 */
import { HOTLOOP_COMMAND, type PerPacket, runHotloop } from "./lib/hotloop_run.ts";

/** Allowed slowdown before a bench counts as a regression. */
export const TOLERANCE = 0.25;

/** The baseline file's shape. */
export interface HotloopBaseline {
  /** How and where it was measured. */
  measured: { date: string; cpu: string; deno: string; command: string };
  /** ns per packet by bench name. */
  ns_per_packet: Record<string, PerPacket>;
}

const BASELINE = new URL("./hotloop_baseline.json", import.meta.url);

function cpuModel(): string {
  try {
    return Deno.readTextFileSync("/proc/cpuinfo").match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "?";
  } catch {
    return "?";
  }
}

if (import.meta.main) {
  const now = await runHotloop();
  if (Deno.args.includes("--update")) {
    const b: HotloopBaseline = {
      measured: {
        date: new Date().toISOString(),
        cpu: cpuModel(),
        deno: Deno.version.deno,
        command: HOTLOOP_COMMAND,
      },
      ns_per_packet: Object.fromEntries(
        Object.entries(now).map((
          [k, v],
        ) => [k, { avg: +v.avg.toFixed(1), p75: +v.p75.toFixed(1) }]),
      ),
    };
    await Deno.writeTextFile(BASELINE, JSON.stringify(b, null, 2) + "\n");
    console.log(`wrote ${BASELINE.pathname}`);
  }
  const base = JSON.parse(await Deno.readTextFile(BASELINE)) as HotloopBaseline;
  let bad = 0;
  console.log("bench                 ns/pkt p75  baseline   change   (avg ns/pkt)");
  for (const [name, v] of Object.entries(now)) {
    const b = base.ns_per_packet[name];
    const change = b ? v.p75 / b.p75 - 1 : NaN;
    const flag = b === undefined ? "  (no baseline)" : change > TOLERANCE ? "  REGRESSION" : "";
    if (flag === "  REGRESSION") bad++;
    console.log(
      `${name.padEnd(20)} ${v.p75.toFixed(1).padStart(10)} ${
        (b ? b.p75.toFixed(1) : "-").padStart(9)
      } ${(Number.isNaN(change) ? "-" : `${(change * 100).toFixed(1)} %`).padStart(8)}   (${
        v.avg.toFixed(1)
      })${flag}`,
    );
  }
  console.log(
    `baseline: ${base.measured.date}, ${base.measured.cpu}, deno ${base.measured.deno}; tolerance +${
      TOLERANCE * 100
    } %`,
  );
  if (bad) {
    console.error(`${bad} bench(es) regressed by more than ${TOLERANCE * 100} %`);
    Deno.exit(1);
  }
}

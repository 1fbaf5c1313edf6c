/**
 * Runs `deno bench --json bench/hotloop_bench.ts` in a child process and
 * converts the per-iteration times into nanoseconds per packet.
 *
 * @module
 */
import { BATCH } from "./hotloop_fixture.ts";
import { REPO } from "../../lab/netns.ts";

/** Per-packet cost of one bench, in ns. */
export interface PerPacket {
  /** Mean time per iteration / BATCH. */
  avg: number;
  /** 75th percentile time per iteration / BATCH (robust to GC pauses). */
  p75: number;
}

/** The command line used (for the record). */
export const HOTLOOP_COMMAND = "deno bench --json bench/hotloop_bench.ts";

/** Run the hot-loop benches; returns per-packet figures by bench name. */
export async function runHotloop(): Promise<Record<string, PerPacket>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["bench", "--json", `${REPO}/bench/hotloop_bench.ts`],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`deno bench failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`);
  }
  const j = JSON.parse(text) as {
    benches: { name: string; results: { ok?: { avg: number; p75: number } }[] }[];
  };
  const res: Record<string, PerPacket> = {};
  for (const b of j.benches) {
    const ok = b.results[0]?.ok;
    if (!ok) throw new Error(`bench ${b.name} failed`);
    res[b.name] = { avg: ok.avg / BATCH, p75: ok.p75 / BATCH };
  }
  return res;
}

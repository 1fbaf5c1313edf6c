/**
 * Runs bench/options_bench.ts and prints, per variant, the hot loop's cost
 * per packet and what the options add to a rule without them (p75 of one
 * iteration ÷ 256; the iteration's own bookkeeping is in every variant),
 * the lowest of `--runs` runs (default 5: the machine is rarely quiet).
 * Measurement only: no pass or fail.
 *
 *     deno run -A bench/options_check.ts [--runs 5]
 *
 * @module
 */
import { REPO } from "../lab/netns.ts";
import { BATCH } from "./options_bench.ts";

const runs = Number(Deno.args[Deno.args.indexOf("--runs") + 1] || 5);
const per = new Map<string, number>();
for (let r = 0; r < runs; r++) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["bench", "--json", `${REPO}/bench/options_bench.ts`],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  const j = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    benches: { name: string; results: { ok?: { avg: number; p75: number } }[] }[];
  };
  for (const b of j.benches) {
    const ns = b.results[0].ok!.p75 / BATCH;
    per.set(b.name, Math.min(per.get(b.name) ?? Infinity, ns));
  }
}
const none = per.get("options/none")!;
console.log("variant".padEnd(30) + "ns/packet (p75)  added");
for (const [name, ns] of per) {
  console.log(
    `${name.padEnd(30)}${ns.toFixed(1).padStart(15)}  ${(ns - none).toFixed(1).padStart(5)}`,
  );
}

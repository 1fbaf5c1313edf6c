/**
 * Background processes the benchmarks start in namespaces, tracked so that a
 * signal or an error kills every one of them.
 *
 * @module
 */
import { Proc } from "../../lab/netns.ts";

const tracked = new Set<Proc>();

/** Start a tracked background process in a namespace. */
export function spawnTracked(ns: string, cmd: string[], env: Record<string, string> = {}): Proc {
  const p = new Proc(ns, cmd, env);
  tracked.add(p);
  p.child.status.finally(() => tracked.delete(p));
  return p;
}

/** SIGKILL every process still tracked (signal and error paths). */
export function killTracked(): void {
  for (const p of tracked) p.kill("SIGKILL");
}

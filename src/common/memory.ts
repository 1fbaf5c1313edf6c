/**
 * Returning start-up garbage to the operating system.
 *
 * Loading a large rule set (tens of thousands of rules) allocates several
 * times what the tables finally hold: the parsed file, validated and
 * normalized copies, the messages to the workers (structured clones). V8
 * collects that garbage only when it needs the space again, and keeps the
 * heap it grew to until then: at 65,536 rules the relay would stay about
 * 140 MiB larger than what it holds (README "Memory"). One full collection
 * right after such a load, while nothing waits for the thread, hands those
 * pages back.
 *
 * V8 offers its collector to scripts only under the `--expose-gc` flag. The
 * flag is set here at run time (`node:v8` setFlagsFromString, as Node.js
 * programs do) and the function taken from a fresh context (`node:vm`),
 * in each isolate that asks (the supervisor and every worker). Where that is
 * not available the call does nothing and says so.
 *
 * @module
 */
import v8 from "node:v8";
import vm from "node:vm";

/** A rule set or change at least this large is followed by a full collection (see callers). */
export const RELEASE_MIN_RULES = 2048;

let collect: (() => void) | null | undefined;

function collector(): (() => void) | null {
  if (collect !== undefined) return collect;
  try {
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc");
    collect = typeof gc === "function" ? gc as () => void : null;
  } catch {
    collect = null;
  }
  return collect;
}

/**
 * Run one full garbage collection of this isolate, so that the heap shrinks
 * to what is alive. Blocks the calling thread for its duration (about 0.2 to
 * 0.4 s at 65,536 rules): call it only where nothing waits (after a load,
 * never on the data path while it forwards).
 * @returns the time it took in ms, or null when V8's collector is not available
 */
export function releaseMemory(): number | null {
  const gc = collector();
  if (!gc) return null;
  const t0 = performance.now();
  gc();
  return performance.now() - t0;
}

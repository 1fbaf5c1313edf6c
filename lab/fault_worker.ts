/**
 * A data-path worker with a fault switch, for tests that crash a worker (the
 * relay's own worker module has none): it runs the relay's worker
 * (`serveWorker`) and, about every 50 ms of its loop, looks for the file
 * `$MCR_LAB_FAULT_DIR/crash-<interface>-<member>` for every input interface
 * it serves (member: its index among the interface's fanout members). When
 * one is there, the worker removes it and throws, as a crash in the data
 * path would (every interface the worker serves loses its ring until the
 * restart).
 *
 * Use: `new Relay(config, { workerModule: new URL("lab/fault_worker.ts", …).href })`
 * with MCR_LAB_FAULT_DIR set in the environment (workers share it).
 *
 * @module
 */
import { serveWorker } from "../src/datapath/worker.ts";

/** How often the loop looks for the switch file (ms). */
const LOOK_MS = 50;

const dir = (() => {
  try {
    return Deno.env.get("MCR_LAB_FAULT_DIR");
  } catch {
    return undefined;
  }
})();
let last = 0;

serveWorker({
  onPass(w) {
    if (!dir) return;
    const now = performance.now();
    if (now - last < LOOK_MS) return;
    last = now;
    for (const i of w.inputs) {
      const path = `${dir}/crash-${i.interface}-${i.member}`;
      try {
        Deno.removeSync(path);
      } catch {
        continue; // no switch (or not ours to remove)
      }
      throw new Error(`injected fault (${path})`);
    }
  },
});

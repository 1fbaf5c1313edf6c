/**
 * A data-path worker with a fault switch, for tests that crash a worker (the
 * relay's own worker module has none): it runs the relay's worker
 * (`serveWorker`) and, about every 50 ms of its loop, looks for the file
 * `$MCR_LAB_FAULT_DIR/crash-<interface>-<index>`. When it is there, the
 * worker removes it and throws, as a crash in the data path would.
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
    const path = `${dir}/crash-${w.interface}-${w.index}`;
    try {
      Deno.removeSync(path);
    } catch {
      return; // no switch (or not ours to remove)
    }
    throw new Error(`injected fault (${path})`);
  },
});

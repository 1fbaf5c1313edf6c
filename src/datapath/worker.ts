/**
 * The data path: runs inside a Deno Worker, one of a fixed pool. A worker
 * serves every input interface the supervisor gives it — an RX ring on each,
 * a member of that interface's fanout group — and sends on the output
 * interfaces their rules name (one TX ring or socket per output interface,
 * shared by all its inputs, one forwarder). It loops:
 *
 *   wait on all its rings at once (one blocking call in C, ffi `RxSet`) →
 *   for each ready ring: parse + match every frame of the batch against
 *   that interface's rules → write forward descriptors → one submit (one
 *   kick per TX ring) → release.
 *
 * No FFI call and no allocation per packet: the rings, the descriptor arrays
 * and the counters are typed-array views created once. Counters go straight
 * into a SharedArrayBuffer the supervisor reads (counters.ts), the
 * forwarder's included.
 *
 * Changes: the supervisor posts messages (open or close an interface's
 * ring, a rule delta for one interface, a version marker, start or stop a
 * capture of a rule: capture.ts) and bumps
 * `Ctl.seq`; the worker notices between batches, yields one turn to its
 * event loop so that they come in, and handles in order what has arrived
 * (the rest on a later pass: the loop never waits for a message). Frames
 * keep queueing in the kernel rings meanwhile, so none is missed, and a rule
 * delta touches only the rules it names, so a change costs the same in a
 * table of 50,000 rules as in one of 5.
 *
 * The worker thread takes the nice value the supervisor gives it
 * (`worker_nice`, default -10) while it falls behind — half a ring or
 * more still waiting after a batch, or kernel drops — when the process may raise it (priority.ts):
 * a worker kept waiting for a CPU by other processes lets its rings
 * overflow, and the kernel's own forwarding would run ahead of those
 * processes too. With `worker_priority: fixed` it keeps it all the time.
 *
 * A ring that fails is closed and reported (the supervisor reopens it after
 * a backoff); the worker's other interfaces keep forwarding. An input link
 * that goes down is not a failure: the kernel unhooks the ring's socket and
 * hooks it in again when the link is back. An input MTU that grows beyond
 * what the ring's slots hold reopens that ring.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import {
  Errno,
  Forwarder,
  ifaceByName,
  pinThread,
  type RxRing,
  RxSet,
  setThreadNice,
  threadNice,
} from "../../ffi/mod.ts";
import type { McrError } from "../../ffi/errors.ts";
import { BatchProcessor } from "./batch.ts";
import { WorkerPriority } from "./priority.ts";
import { HOLD_SLOTS, kernelNowUs } from "./reorder.ts";
import { WorkerCaptures } from "./capture.ts";
import { countStandby } from "./standby.ts";
import { In, W } from "./counters.ts";
import { MAX_INPUT_SLOTS, MAX_OUTPUT_SLOTS } from "../config/limits.ts";
import { LINK_GEN } from "./link_table.ts";
import { RELEASE_MIN_RULES, releaseMemory } from "../common/memory.ts";
import { linkLayout, linkTypeProblem } from "./link_types.ts";
import { Outputs } from "./outputs.ts";
import { type Input, InputRings } from "./input_rings.ts";
import {
  type CloseMessage,
  Ctl,
  type OpenMessage,
  ROLE_STANDBY,
  type RulesMessage,
  type SupervisorMessage,
  type WorkerEvent,
  type WorkerInit,
} from "./messages.ts";

/**
 * Extension points of a worker module that wraps this one (`serveWorker`):
 * for instrumentation and fault injection in the lab; the relay's own worker
 * module uses none.
 */
export interface WorkerHooks {
  /** Called once per pass of the data-path loop; a throw fails the worker (as a crash). */
  onPass?(worker: WorkerView): void;
}

/** What a hook sees of a worker. */
export interface WorkerView {
  /** Worker index in the pool. */
  readonly index: number;
  /** The input interfaces it serves, with its index among each one's fanout members. */
  readonly inputs: readonly { readonly interface: string; readonly member: number }[];
}

const self_ = self as unknown as {
  postMessage(m: WorkerEvent): void;
  onmessage: ((e: MessageEvent) => void) | null;
  close(): void;
};

let init: WorkerInit | undefined;
const inbox: SupervisorMessage[] = [];

function post(m: WorkerEvent): void {
  self_.postMessage(m);
}

const LEVEL_INDEX = { debug: 1, info: 2, warning: 3, error: 4 } as const;

/** Post a log message to the supervisor unless the worker's level (Ctl.logLevel) filters it. */
function log(level: "debug" | "info" | "warning" | "error", message: string): void {
  if (init && LEVEL_INDEX[level] < Atomics.load(init.ctl, Ctl.logLevel)) return;
  post({ type: "log", index: init?.index ?? -1, level, message });
}

function sleep0(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

/** Forward descriptors per submit (the hot loop flushes when they are full). */
const MAX_DESC = 4096;
/** Wait timeout while output frames wait to be retried (ms). */
const WAIT_BUSY_MS = 1;
/**
 * Wait timeout when idle (ms): bounds how late sync/refresh happen when no frame arrives
 * (stop, messages and link changes wake the worker at once): the wake-ups of an idle relay.
 */
const WAIT_IDLE_MS = 250;
/** Counter sync period (ms). */
const SYNC_MS = 100;
/** Output retry / health window period (ms). */
const REFRESH_MS = 1000;
/** How long a graceful stop lets queued output frames leave (ms). */
const DRAIN_MS = 500;

async function run(cfg: WorkerInit, hooks: WorkerHooks): Promise<void> {
  const counters = cfg.counters;
  const ctl = cfg.ctl;
  const fatal = (e: unknown) =>
    post({
      type: "fatal",
      index: cfg.index,
      message: (e as Error).message,
      code: (e as McrError).code,
    });
  if (cfg.cpu !== undefined) {
    try {
      pinThread(cfg.cpu);
    } catch (e) {
      log("warning", `cannot pin worker ${cfg.index} to CPU ${cfg.cpu}: ${(e as Error).message}`);
    }
  }
  const base = threadNice();
  const priority = new WorkerPriority({
    base,
    nice: cfg.nice ?? base,
    mode: cfg.priority,
    setNice: setThreadNice,
    // Not permitted (no CAP_SYS_NICE or RLIMIT_NICE): the worker runs at the process's priority.
    refused: (why) =>
      log(
        "info",
        `worker ${cfg.index} keeps the process's priority: nice ${cfg.nice} not permitted ` +
          `(${why}); see worker_nice in docs/guide.md`,
      ),
  });
  counters[W.nice] = priority.current;
  let set: RxSet, fwd: Forwarder;
  try {
    set = new RxSet({
      maxTags: MAX_INPUT_SLOTS,
      wakeFd: cfg.wakeFd,
      coalesceUs: cfg.coalesceUs,
      coalescePps: cfg.coalescePps,
    });
    fwd = new Forwarder(MAX_OUTPUT_SLOTS, MAX_DESC);
  } catch (e) {
    fatal(e);
    return;
  }
  /** The ring whose batch the hot loop is processing (for a mid-batch flush). */
  let cur: RxRing | null = null;
  /** The role of the batch being processed (read once per batch: standby.ts). */
  let standby = false;
  /** Hand `m` descriptors to the forwarder, or on a standby count them (standby.ts). */
  const submit = (ring: RxRing, m: number) => {
    if (standby) countStandby(fwd.desc, m, counters);
    else fwd.submit(ring, m);
  };
  /** Hand `m` descriptors of held frames (reorder.ts) to the forwarder, or count them (standby). */
  const submitHeld = (m: number) => {
    if (standby) countStandby(fwd.desc, m, counters);
    else fwd.submitMem(proc.reorder.desc, HOLD_SLOTS, proc.reorder.frames, m);
  };
  const proc = new BatchProcessor(
    counters,
    fwd.desc,
    MAX_DESC,
    (m) => submit(cur!, m),
    submitHeld,
  );
  /**
   * Send the held frames whose turn came (all of them with `force`: before a
   * table change or a stop), between batches (reorder.ts).
   */
  const releaseHeld = (force: boolean) => {
    if (proc.reorder.active.size === 0) return;
    standby = Atomics.load(ctl, Ctl.role) === ROLE_STANDBY;
    const m = proc.release(kernelNowUs(), force);
    if (m > 0) submitHeld(m);
    proc.reorder.sent();
  };
  const outs = new Outputs(fwd, counters, cfg.tx, cfg.txFrames, proc.broken, cfg.links);
  const view: WorkerView & { inputs: { interface: string; member: number }[] } = {
    index: cfg.index,
    inputs: [],
  };
  /** Process one batch of `n` frames of an input's ring. */
  const forward = (inp: Input, ring: RxRing, n: number) => {
    cur = ring;
    standby = Atomics.load(ctl, Ctl.role) === ROLE_STANDBY;
    const m = proc.process(ring.ring, ring.desc, n, inp.lookup, inp.base, inp.linkHeader);
    if (m > 0) submit(ring, m);
    ring.release();
  };
  const inputs = new InputRings({
    counters,
    set,
    outs,
    forward,
    log,
    changed: () => view.inputs = inputs.open(),
  });
  const bySlot = inputs.bySlot;
  const captures = new WorkerCaptures((slot, rule) => bySlot[slot]?.lookup.get(rule));
  post({ type: "ready", index: cfg.index });
  counters[W.running] = 1;

  let handled = 0;
  let lastSync = 0;
  let lastRefresh = performance.now();
  let linkGen = -1;

  const postChanges = () => {
    const changes = outs.takeChanges();
    if (changes.length) post({ type: "outputs", index: cfg.index, changes });
  };

  const open = (m: OpenMessage) => {
    const inp = inputs.inputFor(m.slot, m.gen, m.interface);
    inputs.closeRing(inp, true);
    inp.member = m.member;
    inp.link = m.link;
    inp.rx = m.rx;
    try {
      // The link type read with the index the ring binds to: a ring on a re-created
      // interface of another type fails to bind (the supervisor refuses unsupported types).
      const { ifindex, linkType } = ifaceByName(m.interface);
      const layout = linkLayout(linkType);
      if (!layout) throw new Error(linkTypeProblem("input", m.interface, linkType));
      inputs.openRing(inp, { ...m.rx, ifindex, layout });
      post({
        type: "ring",
        index: cfg.index,
        slot: m.slot,
        gen: m.gen,
        state: "open",
        geometry: { ...inp.geometry!, ifindex },
      });
    } catch (e) {
      post({
        type: "ring",
        index: cfg.index,
        slot: m.slot,
        gen: m.gen,
        state: "error",
        message: (e as Error).message,
        code: (e as McrError).code,
      });
    }
  };

  const close = (m: CloseMessage) => {
    const inp = inputs.get(m.slot);
    if (inp && m.forget) inputs.forget(inp);
    else if (inp) inputs.closeRing(inp, true);
    post({ type: "ring", index: cfg.index, slot: m.slot, gen: inp?.gen ?? 0, state: "closed" });
  };

  /** The rule deltas since the last version marker: how many, and whether the worker held none before. */
  let load: { fromEmpty: boolean; upserts: number } | null = null;

  const rules = (m: RulesMessage) => {
    load ??= { fromEmpty: inputs.ruleCount() === 0, upserts: 0 };
    load.upserts += m.upsert.length;
    const inp = inputs.inputFor(m.slot, m.gen, m.interface);
    // interfaces named for the first time: look at the link table again (not for every
    // rule: that pass reads every output, 262,144 at the most)
    if (outs.setLinks(m.links)) linkGen = -1;
    for (const slot of m.remove) inputs.removeRule(inp, slot);
    for (const r of m.upsert) inputs.upsertRule(inp, r);
    if (m.remove.length) outs.dropUnusedRings();
    if (captures.size > 0 && m.upsert.length > 0) captures.rulesChanged(m.slot);
  };

  const handle = (m: SupervisorMessage) => {
    switch (m.type) {
      case "open":
        open(m);
        break;
      case "close":
        close(m);
        break;
      case "rules":
        rules(m);
        break;
      case "capture":
        captures.start(m);
        break;
      case "capture-stop":
        captures.stop(m.id);
        break;
      case "version":
        // A large table loaded into a worker that held no rules (start, restart): nothing
        // forwarded yet, so this is the moment to hand the load's garbage back (a full
        // collection stops the loop for a fraction of a second; frames wait in the rings).
        if (load?.fromEmpty && load.upserts >= RELEASE_MIN_RULES) releaseMemory();
        load = null;
        counters[W.tableVersion] = m.version;
        post({ type: "applied", index: cfg.index, version: m.version });
        break;
    }
    handled = m.seq;
    counters[W.seq] = m.seq;
  };

  /** Whether this loop pass saw half a ring waiting after a batch, or kernel drops. */
  let behind = false;

  const sync = (closeWindow: boolean, now: number) => {
    if (inputs.syncKernel(now)) behind = true;
    const s = set.stats();
    counters[W.polls] = s.polls;
    counters[W.gathers] = s.gathers;
    counters[W.wakeups] = s.wakeups;
    counters[W.invalid] = fwd.invalid();
    counters[W.orphans] = fwd.orphans();
    outs.sync(closeWindow);
    postChanges();
    counters[W.heartbeat] = Date.now();
  };

  /** A ring failed (not a link-down notice): close it and tell the supervisor. */
  const ringFailed = (inp: Input, errno: number) => {
    const message = `RX ring on ${inp.name} failed (errno ${errno})`;
    inputs.closeRing(inp, false);
    post({
      type: "ring",
      index: cfg.index,
      slot: inp.slot,
      gen: inp.gen,
      state: "error",
      message,
    });
  };

  const onLinks = () => {
    outs.onLinks();
    inputs.checkMtu(cfg.links);
    postChanges();
  };

  try {
    for (;;) {
      if (Atomics.load(ctl, Ctl.stop) !== 0) break;
      hooks.onPass?.(view);
      const want = Atomics.load(ctl, Ctl.seq);
      if (want !== handled) {
        // Let the posted messages in (one turn of the event loop; the rings buffer meanwhile)
        // and handle what has come. What is still on its way is handled on a later pass:
        // forwarding never waits for a message.
        if (inbox.length === 0 || inbox[inbox.length - 1].seq < want) await sleep0();
        if (inbox.length) releaseHeld(true); // held frames leave under the rules they came in with
        while (inbox.length) handle(inbox.shift()!);
        postChanges();
      }
      const g = Atomics.load(cfg.links, LINK_GEN);
      if (g !== linkGen) {
        linkGen = g;
        onLinks();
      }
      const queued = fwd.service();
      // a message still on its way: only look at the rings, then yield for it again
      const n = set.wait(
        handled !== Atomics.load(ctl, Ctl.seq)
          ? 0
          : queued > 0 || proc.reorder.active.size > 0
          ? WAIT_BUSY_MS
          : WAIT_IDLE_MS,
      );
      const ready = set.ready;
      for (let k = 0; k < n; k++) {
        const inp = bySlot[ready[2 * k]]!;
        const v = ready[2 * k + 1];
        if (v > 0) {
          const ring = inp.ring!;
          // A batch short of the batch limit and of half the ring ended at an empty slot: nothing
          // waited. Otherwise one load in libmcr: is half the ring still waiting beyond it?
          if ((v >= ring.batchMax || v >= inp.geometry!.frameCount / 2) && ring.behind()) {
            behind = true;
          }
          forward(inp, ring, v);
        } else if (v === -Errno.ENETDOWN) {
          counters[inp.base + In.linkDowns]++;
          log("info", `${inp.name}: the kernel reports the input link down; still listening`);
        } else ringFailed(inp, -v);
      }
      releaseHeld(false);
      const now = performance.now();
      const refresh = now - lastRefresh > REFRESH_MS;
      if (refresh) {
        outs.retry();
        lastRefresh = now;
      }
      if (now - lastSync > SYNC_MS || refresh) {
        sync(refresh, now);
        lastSync = now;
      }
      if (behind || priority.raised) {
        priority.update(behind, now);
        behind = false;
        counters[W.nice] = priority.current;
        counters[W.priorityRaises] = priority.raises;
      }
    }
    // A graceful stop forwards what already reached the rings, and what is held.
    for (const inp of inputs.values()) inputs.closeRing(inp, true);
    releaseHeld(true);
  } catch (e) {
    fatal(e);
  } finally {
    // Leave the fanout groups first (close the RX rings): from here on the
    // groups' other members (or the restarted worker) get the flows. What
    // was still in a ring (a crash) is counted as `unprocessed`.
    for (const inp of inputs.values()) {
      try {
        inputs.closeRing(inp, false);
      } catch { /* ring may be gone */ }
    }
    try {
      const left = outs.drain(DRAIN_MS);
      if (left) log("warning", `${left} frames could not leave at shutdown`);
    } catch { /* ring may be gone */ }
    try {
      sync(false, performance.now());
    } catch { /* ring may be gone */ }
    counters[W.running] = 0;
    outs.close();
    set.close();
  }
}

/**
 * Serve as a data-path worker: wait for the supervisor's init message, run
 * the loop, report. The relay's worker module calls it with no hooks; a lab
 * module may wrap it (see {@link WorkerHooks}).
 */
export function serveWorker(hooks: WorkerHooks = {}): void {
  self_.onmessage = (e: MessageEvent) => {
    const m = e.data as WorkerInit | SupervisorMessage;
    if (m.type === "init") {
      init = m;
      run(m, hooks).finally(() => {
        post({ type: "stopped", index: m.index });
        self_.close();
      });
    } else {
      inbox.push(m);
    }
  };
}

if (import.meta.main) serveWorker();

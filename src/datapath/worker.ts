/**
 * The data path: runs inside a Deno Worker, one per input interface (and per
 * fanout member). It owns one RX ring, the TX rings of the output interfaces
 * it uses and one forwarder, and loops:
 *
 *   poll (blocks in C) → parse + match every frame of the batch → write
 *   forward descriptors → one submit (one kick per TX ring) → release.
 *
 * No FFI call and no allocation per packet: the ring, the RX descriptors,
 * the forward descriptors and the counters are typed-array views created
 * once. Counters go straight into a SharedArrayBuffer the supervisor reads.
 *
 * Rule-table changes: the supervisor posts a complete {@link WorkerTable}
 * and bumps `Ctl.wantVersion`; the worker notices between batches, yields to
 * its event loop until that table has arrived, compiles it and swaps it in
 * whole. Frames keep queueing in the kernel ring meanwhile, so none is missed.
 *
 * Link changes: the supervisor keeps a shared link table (src/relay/links.ts);
 * the worker checks its generation once per pass and hands the news to its
 * outputs (src/datapath/outputs.ts) at once. An input link that goes down is not a
 * failure: the kernel unhooks the ring's socket and hooks it in again when
 * the link is back, so the worker just keeps polling. An input MTU that
 * grows beyond what the ring's slots hold reopens the ring.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import {
  Forwarder,
  ifaceByName,
  pinThread,
  type RxOptions,
  RxRing,
  type RxStats,
} from "../../ffi/mod.ts";
import type { McrError } from "../../ffi/errors.ts";
import { Drop } from "./packet.ts";
import { BatchProcessor } from "./batch.ts";
import { DROP_BASE, If, RULE_BASE, RULE_WORDS } from "./counters.ts";
import { MAX_OUTPUT_SLOTS } from "../config/limits.ts";
import { compileTable } from "./match.ts";
import { LINK_GEN, readLink } from "./link_table.ts";
import { Outputs } from "./outputs.ts";
import {
  Ctl,
  type TableMessage,
  type WorkerEvent,
  type WorkerInit,
  type WorkerTable,
} from "./messages.ts";

/**
 * Extension points of a worker module that wraps this one (`serveWorker`):
 * for instrumentation and fault injection in the lab; the relay's own worker
 * module uses none.
 */
export interface WorkerHooks {
  /** Called once per pass of the data-path loop; a throw fails the worker (as a crash). */
  onPass?(worker: { interface: string; index: number }): void;
}

const self_ = self as unknown as {
  postMessage(m: WorkerEvent): void;
  onmessage: ((e: MessageEvent) => void) | null;
  close(): void;
};

let init: WorkerInit | undefined;
let pendingTable: WorkerTable | undefined;

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

/** Room for a frame in an RX slot: the slot minus the tpacket2 + sockaddr_ll headers. */
const RX_SLOT_OVERHEAD = 68;
/** Link header and one VLAN tag on top of the MTU. */
const L2_OVERHEAD = 18;
/** Poll timeout while output frames wait to be retried (ms). */
const POLL_BUSY_MS = 1;
/** Poll timeout when idle (ms): bounds how late stop/sync/refresh happen. */
const POLL_IDLE_MS = 100;
/** Counter sync period (ms). */
const SYNC_MS = 100;
/** Output retry / health window period (ms). */
const REFRESH_MS = 1000;

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
  let iface;
  let rx: RxRing;
  try {
    iface = ifaceByName(cfg.interface);
    rx = new RxRing({ ...cfg.rx, ifindex: iface.ifindex, wakeFd: cfg.wakeFd });
  } catch (e) {
    fatal(e);
    return;
  }
  if (cfg.cpu !== undefined) {
    try {
      pinThread(cfg.cpu);
    } catch (e) {
      log(
        "warning",
        `${cfg.interface}: cannot pin worker ${cfg.index} to CPU ${cfg.cpu}: ${
          (e as Error).message
        }`,
      );
    }
  }
  const maxDesc = Math.max(64, rx.batchMax * 4);
  const fwd = new Forwarder(MAX_OUTPUT_SLOTS, maxDesc);
  const proc = new BatchProcessor(counters, fwd.desc, maxDesc, (m) => fwd.submit(rx, m));
  const outs = new Outputs(
    fwd,
    counters,
    cfg.tx,
    proc.broken,
    cfg.links,
    (slot, state, reason) => post({ type: "output", index: cfg.index, slot, state, reason }),
  );
  let geometry = rx.geometry();
  const self = { interface: cfg.interface, index: cfg.index };
  post({ type: "ready", index: cfg.index, geometry, ifindex: iface.ifindex });
  counters[If.running] = 1;

  let version = 0;
  let lastSync = 0;
  let lastRefresh = performance.now();
  let linkGen = -1;
  let rxLinkDowns = 0;
  let rxMtuWarned = 0;
  const ruleIds = new Map<number, string>();

  const applyTable = (t: WorkerTable) => {
    outs.apply(t);
    for (const r of t.rules) {
      if (ruleIds.get(r.slot) !== r.id) {
        const base = RULE_BASE + r.slot * RULE_WORDS;
        for (let k = 0; k < RULE_WORDS; k++) counters[base + k] = 0;
        ruleIds.set(r.slot, r.id);
      }
    }
    proc.lookup = compileTable(t);
    version = t.version;
    counters[If.tableVersion] = version;
    linkGen = -1; // new interfaces may be named: look at the link table again
    post({ type: "applied", index: cfg.index, version });
    log("debug", `${cfg.interface}: rule table v${version} applied (${t.rules.length} rules)`);
  };

  const retired = { packets: 0, drops: 0, freezes: 0, polls: 0, gathers: 0 };
  const sync = (closeWindow = false, rxStats?: RxStats) => {
    const s = rxStats ?? rx.stats();
    counters[If.kernelPackets] = retired.packets + s.packets;
    counters[If.kernelDrops] = retired.drops + s.drops;
    counters[If.kernelFreezes] = retired.freezes + s.freezes;
    counters[If.polls] = retired.polls + s.polls;
    counters[If.gathers] = retired.gathers + s.gathers;
    const o = outs.sync(closeWindow);
    counters[DROP_BASE + Drop.tx_ring_full] = o.ringFull;
    counters[DROP_BASE + Drop.tx_error] = o.errors;
    counters[DROP_BASE + Drop.tx_link_down] = o.linkDown;
    counters[DROP_BASE + Drop.tx_too_big] = o.tooBig;
    counters[DROP_BASE + Drop.tx_invalid] = fwd.invalid();
    counters[If.sent] = o.sent;
    counters[If.heartbeat] = Date.now();
  };

  /** Process one batch of `n` frames of `ring`. */
  const forward = (ring: RxRing, n: number) => {
    const m = proc.process(ring.ring, ring.desc, n);
    if (m > 0) fwd.submit(ring, m);
    ring.release();
  };

  /**
   * The input MTU grew past what the ring's slots hold (frames would be
   * truncated): open a bigger ring and retire the old one. In a fanout
   * group the new ring joins first and the old one is drained before it
   * closes (at most a reordering at this membership change); without
   * fanout the old ring closes first (a frame arriving in between is lost).
   */
  const reopenRx = (mtu: number) => {
    const old = rx;
    const joinGroup = cfg.rx.fanout !== "none";
    const opts: RxOptions = { ...cfg.rx, ifindex: old.ifindex, wakeFd: cfg.wakeFd };
    if (joinGroup) {
      opts.fanoutId = geometry.fanoutId;
      opts.uniqueFanoutId = false;
    }
    const keep = old.stats();
    if (!joinGroup) {
      for (let n = old.poll(0); n > 0; n = old.poll(0)) forward(old, n);
      old.close();
    }
    const next = new RxRing(opts);
    if (joinGroup) {
      for (let n = old.poll(0); n > 0; n = old.poll(0)) forward(old, n);
      old.close();
    }
    retired.packets += keep.packets;
    retired.drops += keep.drops;
    retired.freezes += keep.freezes;
    retired.polls += keep.polls;
    retired.gathers += keep.gathers;
    rx = next;
    geometry = rx.geometry();
    log(
      "info",
      `${cfg.interface}: input MTU ${mtu}: RX ring reopened with ${geometry.frameSize}-byte slots`,
    );
  };

  const onLinks = () => {
    outs.onLinks();
    const l = readLink(cfg.links, cfg.inputLink);
    if (!l || l.ifindex !== rx.ifindex) return; // the supervisor restarts us
    if (geometry.version === 2 && l.mtu + L2_OVERHEAD > geometry.frameSize - RX_SLOT_OVERHEAD) {
      if (cfg.rx.frameSize) {
        if (rxMtuWarned !== l.mtu) {
          rxMtuWarned = l.mtu;
          log(
            "warning",
            `${cfg.interface}: MTU ${l.mtu} exceeds the configured RX frame_size ` +
              `${cfg.rx.frameSize}: longer frames are truncated (counted as truncated)`,
          );
        }
      } else {
        reopenRx(l.mtu);
      }
    }
  };

  try {
    for (;;) {
      if (Atomics.load(ctl, Ctl.stop) !== 0) break;
      hooks.onPass?.(self);
      const want = Atomics.load(ctl, Ctl.wantVersion);
      if (want !== version) {
        // Yield until the posted table arrives; the ring buffers meanwhile.
        while (!pendingTable || pendingTable.version < want) {
          await sleep0();
          if (Atomics.load(ctl, Ctl.stop) !== 0) break;
        }
        if (pendingTable && pendingTable.version !== version) applyTable(pendingTable);
        continue;
      }
      const g = Atomics.load(cfg.links, LINK_GEN);
      if (g !== linkGen) {
        linkGen = g;
        onLinks();
      }
      const queued = fwd.service();
      const n = rx.poll(queued > 0 ? POLL_BUSY_MS : POLL_IDLE_MS);
      if (rx.linkDownEvents !== rxLinkDowns) {
        rxLinkDowns = rx.linkDownEvents;
        log("info", `${cfg.interface}: the kernel reports the input link down; still listening`);
      }
      if (n > 0) forward(rx, n);
      const now = performance.now();
      const refresh = now - lastRefresh > REFRESH_MS;
      if (refresh) {
        outs.retry();
        lastRefresh = now;
      }
      if (now - lastSync > SYNC_MS || refresh) {
        sync(refresh);
        lastSync = now;
      }
    }
    // A graceful stop forwards what already reached the ring.
    for (let n = rx.poll(0); n > 0; n = rx.poll(0)) forward(rx, n);
  } catch (e) {
    fatal(e);
  } finally {
    // Leave the fanout group first (close the RX ring): from here on the
    // group's other members (or the restarted worker) get the flows. What
    // was still in the ring (a crash) is counted as `unprocessed`.
    let last: RxStats | undefined;
    try {
      last = rx.stats();
      rx.close();
      const left = last.packets - last.drops - last.frames;
      if (left > 0) counters[DROP_BASE + Drop.unprocessed] += left;
    } catch { /* ring may be gone */ }
    try {
      const left = outs.drain(500);
      if (left) log("warning", `${cfg.interface}: ${left} frames could not leave at shutdown`);
    } catch { /* ring may be gone */ }
    try {
      if (last) sync(false, last);
    } catch { /* ring may be gone */ }
    counters[If.running] = 0;
    outs.close();
    rx.close();
  }
}

/**
 * Serve as a data-path worker: wait for the supervisor's init message, run
 * the loop, report. The relay's worker module calls it with no hooks; a lab
 * module may wrap it (see {@link WorkerHooks}).
 */
export function serveWorker(hooks: WorkerHooks = {}): void {
  self_.onmessage = (e: MessageEvent) => {
    const m = e.data as WorkerInit | TableMessage;
    if (m.type === "init") {
      init = m;
      run(m, hooks).finally(() => {
        post({ type: "stopped", index: m.index });
        self_.close();
      });
    } else if (m.type === "table") {
      if (!pendingTable || m.table.version > pendingTable.version) pendingTable = m.table;
    }
  };
}

if (import.meta.main) serveWorker();

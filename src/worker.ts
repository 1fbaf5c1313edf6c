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
 * @module
 */
/// <reference lib="deno.worker" />
import {
  Forwarder,
  ifaceByName,
  pinThread,
  type RxOptions,
  RxRing,
  type Template,
  TxRing,
} from "../ffi/mcr.ts";
import { McrError } from "../ffi/errors.ts";
import { Drop } from "./packet.ts";
import { BatchProcessor } from "./datapath.ts";
import {
  Ctl,
  DROP_BASE,
  If,
  MAX_OUTPUT_SLOTS,
  Out,
  OUT_BASE,
  OUT_WORDS,
  RULE_BASE,
  RULE_WORDS,
} from "./counters.ts";
import { compileTable, outputKey, type TableOutput, type WorkerTable } from "./rules.ts";
import { isMulticast } from "./net.ts";

/** Message that starts a worker. */
export interface WorkerInit {
  /** Message type. */
  type: "init";
  /** Worker index (for logs). */
  index: number;
  /** Input interface name. */
  interface: string;
  /** RX ring options except ifindex and wakeFd. */
  rx: Omit<RxOptions, "ifindex" | "wakeFd">;
  /** TX ring options. */
  tx: { frameCount?: number; qdiscBypass?: boolean };
  /** Waker eventfd. */
  wakeFd: number;
  /** Counter block. */
  counters: Float64Array;
  /** Control block. */
  ctl: Int32Array;
  /** CPU to pin this worker to. */
  cpu?: number;
  /** Honour Ctl.fault (test hook; only set when MCR_FAULT_INJECTION=1). */
  faultInjection?: boolean;
}

/** Messages a worker posts to the supervisor. */
export type WorkerEvent =
  | { type: "ready"; index: number; geometry: unknown; ifindex: number }
  | { type: "fatal"; index: number; message: string; code?: string }
  | { type: "output"; index: number; slot: number; state: "ok" | "error"; reason?: string }
  | { type: "applied"; index: number; version: number }
  | { type: "stopped"; index: number }
  | { type: "log"; index: number; level: "debug" | "info" | "warning" | "error"; message: string };

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

function mcastMac(group: number): Uint8Array {
  return new Uint8Array([
    0x01,
    0x00,
    0x5e,
    (group >>> 16) & 0x7f,
    (group >>> 8) & 0xff,
    group & 0xff,
  ]);
}

/** Output plumbing owned by one worker: TX rings, templates, self-healing. */
class Outputs {
  /** TX ring per output interface name (with the ifindex it was opened on). */
  readonly tx = new Map<string, { ring: TxRing; ifindex: number }>();
  /** slot → the output installed there, its identity (rule id and destination) and spec key. */
  readonly specs = new Map<
    number,
    { identity: string; key: string; o: TableOutput; reason?: string }
  >();
  /** slots whose output is in error (descriptors skipped and counted). */
  readonly broken: Uint8Array;
  /** Counts carried over from earlier template lives of a slot (4 per slot). */
  readonly #carried = new Float64Array(MAX_OUTPUT_SLOTS * 4);

  constructor(
    readonly fwd: Forwarder,
    readonly counters: Float64Array,
    readonly txOpts: WorkerInit["tx"],
    readonly index: number,
    broken: Uint8Array,
  ) {
    this.broken = broken;
  }

  #txFor(name: string, ifindex: number): TxRing {
    let t = this.tx.get(name);
    if (t && t.ifindex !== ifindex) {
      this.#dropTx(name);
      t = undefined;
    }
    if (!t) {
      const ring = new TxRing({
        ifindex,
        frameCount: this.txOpts.frameCount,
        qdiscBypass: this.txOpts.qdiscBypass,
      });
      t = { ring, ifindex };
      this.tx.set(name, t);
    }
    return t.ring;
  }

  /** Close a TX ring after clearing every template that uses it. */
  #dropTx(name: string): void {
    const t = this.tx.get(name);
    if (!t) return;
    for (const [slot, s] of this.specs) {
      if (s.o.interface === name && !this.broken[slot]) {
        this.#uninstall(slot);
        this.#markBroken(slot, `output interface ${name} disappeared`);
      }
    }
    t.ring.close();
    this.tx.delete(name);
  }

  /** Fold the slot's C counters into the carried counts, then clear the template. */
  #uninstall(slot: number): void {
    const c = this.fwd.counters;
    for (let k = 0; k < 4; k++) this.#carried[slot * 4 + k] += Number(c[slot * 4 + k]);
    this.fwd.setTemplate(slot, null);
  }

  #markBroken(slot: number, reason: string): void {
    this.broken[slot] = 1;
    const s = this.specs.get(slot)!;
    if (s.reason !== reason) {
      s.reason = reason;
      post({ type: "output", index: this.index, slot, state: "error", reason });
    }
  }

  /** Try to (re)install the template of a slot. */
  #install(slot: number): void {
    const s = this.specs.get(slot)!;
    try {
      this.fwd.setTemplate(slot, this.#template(s.o));
      this.broken[slot] = 0;
      if (s.reason !== "") {
        s.reason = "";
        post({ type: "output", index: this.index, slot, state: "ok" });
      }
    } catch (e) {
      this.#markBroken(slot, e instanceof Error ? e.message : String(e));
    }
  }

  /**
   * Install templates for a table; clear slots no longer used. A slot whose
   * output keeps its identity (rule and destination) but changed settings
   * (TTL, TOS, source) keeps its counters; a slot that now holds a different
   * output (the supervisor reuses a slot freed in the same change when the
   * relay is full) starts from zero.
   */
  apply(table: WorkerTable): void {
    const used = new Set<number>();
    for (const r of table.rules) {
      for (const o of r.outputs) {
        used.add(o.slot);
        const key = JSON.stringify(o);
        const identity = outputKey(r.id, o);
        let cur = this.specs.get(o.slot);
        if (cur?.key === key && cur.identity === identity) continue;
        if (cur && cur.identity !== identity) {
          this.fwd.setTemplate(o.slot, null);
          this.broken[o.slot] = 0;
          cur = undefined;
        }
        if (cur) {
          if (!this.broken[o.slot]) this.#uninstall(o.slot);
        } else {
          this.#resetSlot(o.slot);
        }
        this.specs.set(o.slot, { identity, key, o, reason: cur?.reason });
        this.#install(o.slot);
      }
    }
    for (const slot of [...this.specs.keys()]) {
      if (used.has(slot)) continue;
      this.fwd.setTemplate(slot, null);
      this.specs.delete(slot);
      this.broken[slot] = 0;
      this.#resetSlot(slot);
    }
    // TX rings no template uses any more
    const ifs = new Set([...this.specs.values()].map((s) => s.o.interface));
    for (const name of [...this.tx.keys()]) if (!ifs.has(name)) this.#dropTx(name);
  }

  #resetSlot(slot: number): void {
    const base = OUT_BASE + slot * OUT_WORDS;
    for (let k = 0; k < OUT_WORDS; k++) this.counters[base + k] = 0;
    for (let k = 0; k < 4; k++) this.#carried[slot * 4 + k] = 0;
  }

  /**
   * Self-healing, called about once a second: drop TX rings whose interface
   * disappeared or changed index, and retry outputs in error.
   */
  refresh(): void {
    for (const [name, t] of [...this.tx]) {
      let ok = false;
      try {
        ok = ifaceByName(name).ifindex === t.ifindex;
      } catch { /* gone */ }
      if (!ok) {
        log("warning", `output interface ${name} disappeared; its outputs are in error`);
        this.#dropTx(name);
      }
    }
    for (const slot of this.specs.keys()) if (this.broken[slot]) this.#install(slot);
  }

  #template(o: TableOutput): Template {
    let iface;
    try {
      iface = ifaceByName(o.interface);
    } catch (e) {
      if (e instanceof McrError && e.code === "ENODEV") {
        throw new Error(`output interface ${o.interface} does not exist`);
      }
      throw e;
    }
    const srcIp = o.srcIp || iface.ipv4;
    if (!srcIp) {
      throw new Error(
        `output interface ${o.interface} has no IPv4 address; give the output a source_ip`,
      );
    }
    const common = {
      ifindex: iface.ifindex,
      srcIp,
      dstIp: o.dst,
      srcPort: o.srcPort,
      dstPort: o.port,
      ttl: o.ttl || 64,
      tos: o.tos,
    };
    if (!isMulticast(o.dst)) return { kind: "socket", ...common };
    if (!iface.mac) throw new Error(`output interface ${o.interface} has no hardware address`);
    return {
      kind: "ring",
      ...common,
      dstMac: mcastMac(o.dst),
      srcMac: iface.mac,
      tx: this.#txFor(o.interface, iface.ifindex),
    };
  }

  /** Copy C's per-template counters (plus carried counts) into the shared block. */
  sync(): { ringFull: number; errors: number; sent: number } {
    const c = this.fwd.counters;
    const car = this.#carried;
    let ringFull = 0, errors = 0, sent = 0;
    for (const slot of this.specs.keys()) {
      const base = OUT_BASE + slot * OUT_WORDS;
      const s = slot * 4;
      const p = Number(c[s]) + car[s];
      const rf = Number(c[s + 2]) + car[s + 2];
      const er = Number(c[s + 3]) + car[s + 3];
      this.counters[base + Out.packets] = p;
      this.counters[base + Out.bytes] = Number(c[s + 1]) + car[s + 1];
      this.counters[base + Out.ringFull] = rf;
      this.counters[base + Out.errors] = er;
      sent += p;
      ringFull += rf;
      errors += er + this.counters[base + Out.unavailable];
    }
    return { ringFull, errors, sent: sent };
  }

  /** Let queued frames leave (graceful shutdown). */
  drain(timeoutMs: number): number {
    let left = 0;
    for (const t of this.tx.values()) left += t.ring.drain(timeoutMs);
    return left;
  }

  close(): void {
    for (const slot of this.specs.keys()) {
      try {
        this.fwd.setTemplate(slot, null);
      } catch { /* closing anyway */ }
    }
    this.fwd.close();
    for (const t of this.tx.values()) t.ring.close();
    this.tx.clear();
  }
}

async function run(cfg: WorkerInit): Promise<void> {
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
  const outs = new Outputs(fwd, counters, cfg.tx, cfg.index, proc.broken);
  post({ type: "ready", index: cfg.index, geometry: rx.geometry(), ifindex: iface.ifindex });
  counters[If.running] = 1;

  const ring = rx.ring;
  const desc = rx.desc;
  let version = 0;
  let lastSync = 0;
  let lastRefresh = performance.now();
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
    post({ type: "applied", index: cfg.index, version });
    log("debug", `${cfg.interface}: rule table v${version} applied (${t.rules.length} rules)`);
  };

  const sync = () => {
    const s = rx.stats();
    counters[If.kernelPackets] = s.packets;
    counters[If.kernelDrops] = s.drops;
    counters[If.kernelFreezes] = s.freezes;
    counters[If.polls] = s.polls;
    counters[If.gathers] = s.gathers;
    const o = outs.sync();
    counters[DROP_BASE + Drop.tx_ring_full] = o.ringFull;
    counters[DROP_BASE + Drop.tx_error] = o.errors;
    counters[If.sent] = o.sent;
    counters[If.heartbeat] = Date.now();
  };

  try {
    for (;;) {
      if (Atomics.load(ctl, Ctl.stop) !== 0) break;
      if (cfg.faultInjection && Atomics.load(ctl, Ctl.fault) !== 0) {
        throw new Error("injected fault (test hook)");
      }
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
      const n = rx.poll(100);
      const now = performance.now();
      if (now - lastRefresh > 1000) {
        outs.refresh();
        lastRefresh = now;
      }
      if (n === 0) {
        if (now - lastSync > 100) {
          sync();
          lastSync = now;
        }
        continue;
      }
      const m = proc.process(ring, desc, n);
      if (m > 0) fwd.submit(rx, m);
      rx.release();
      if (now - lastSync > 100) {
        sync();
        lastSync = now;
      }
    }
  } catch (e) {
    fatal(e);
  } finally {
    try {
      const left = outs.drain(500);
      if (left) log("warning", `${cfg.interface}: ${left} frames still queued at shutdown`);
    } catch { /* ring may be gone */ }
    try {
      sync();
    } catch { /* ring may be gone */ }
    counters[If.running] = 0;
    outs.close();
    rx.close();
  }
}

self_.onmessage = (e: MessageEvent) => {
  const m = e.data as WorkerInit | { type: "table"; table: WorkerTable };
  if (m.type === "init") {
    init = m;
    run(m).finally(() => {
      post({ type: "stopped", index: m.index });
      self_.close();
    });
  } else if (m.type === "table") {
    if (!pendingTable || m.table.version > pendingTable.version) pendingTable = m.table;
  }
};

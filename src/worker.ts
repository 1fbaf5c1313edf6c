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
  MAX_OUTPUTS,
  Out,
  OUT_BASE,
  OUT_WORDS,
  RULE_BASE,
  RULE_WORDS,
} from "./counters.ts";
import { compileTable, type TableOutput, type WorkerTable } from "./rules.ts";
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

function log(level: "debug" | "info" | "warning" | "error", message: string): void {
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

/** Output plumbing owned by one worker. */
class Outputs {
  readonly tx = new Map<string, TxRing>();
  /** slot → spec key of the template installed there. */
  readonly installed = new Map<number, string>();
  /** slots whose output is in error (descriptors skipped and counted). */
  readonly broken: Uint8Array;

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
    if (!t) {
      t = new TxRing({
        ifindex,
        frameCount: this.txOpts.frameCount,
        qdiscBypass: this.txOpts.qdiscBypass,
      });
      this.tx.set(name, t);
    }
    return t;
  }

  /** Install templates for a table; clear slots no longer used. */
  apply(table: WorkerTable): void {
    const used = new Set<number>();
    for (const r of table.rules) {
      for (const o of r.outputs) {
        used.add(o.slot);
        const key = JSON.stringify(o);
        if (this.installed.get(o.slot) === key) continue;
        const fresh = !this.installed.has(o.slot);
        this.#clearCounters(o.slot, fresh);
        try {
          this.fwd.setTemplate(o.slot, this.#template(o));
          this.broken[o.slot] = 0;
          post({ type: "output", index: this.index, slot: o.slot, state: "ok" });
        } catch (e) {
          this.broken[o.slot] = 1;
          this.fwd.setTemplate(o.slot, null);
          const reason = e instanceof Error ? e.message : String(e);
          post({ type: "output", index: this.index, slot: o.slot, state: "error", reason });
        }
        this.installed.set(o.slot, key);
      }
    }
    for (const slot of [...this.installed.keys()]) {
      if (used.has(slot)) continue;
      this.fwd.setTemplate(slot, null);
      this.installed.delete(slot);
      this.broken[slot] = 0;
      this.#clearCounters(slot, true);
    }
  }

  #clearCounters(slot: number, all: boolean): void {
    const base = OUT_BASE + slot * OUT_WORDS;
    if (all) { for (let k = 0; k < OUT_WORDS; k++) this.counters[base + k] = 0; }
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
    if (isMulticast(o.dst)) {
      if (!iface.mac) throw new Error(`output interface ${o.interface} has no hardware address`);
      return {
        kind: "ring",
        ifindex: iface.ifindex,
        srcIp,
        dstIp: o.dst,
        srcPort: o.srcPort,
        dstPort: o.port,
        ttl: o.ttl || 64,
        tos: o.tos,
        dstMac: mcastMac(o.dst),
        srcMac: iface.mac,
        tx: this.#txFor(o.interface, iface.ifindex),
      };
    }
    return {
      kind: "socket",
      ifindex: iface.ifindex,
      srcIp,
      dstIp: o.dst,
      srcPort: o.srcPort,
      dstPort: o.port,
      ttl: o.ttl || 64,
      tos: o.tos,
    };
  }

  /** Copy C's per-template counters into the shared block. */
  sync(): { ringFull: number; errors: number; sent: number } {
    const c = this.fwd.counters;
    let ringFull = 0, errors = 0, sent = 0;
    for (const slot of this.installed.keys()) {
      const base = OUT_BASE + slot * OUT_WORDS;
      const s = slot * 4;
      const p = Number(c[s]), rf = Number(c[s + 2]), er = Number(c[s + 3]);
      this.counters[base + Out.packets] = p;
      this.counters[base + Out.bytes] = Number(c[s + 1]);
      this.counters[base + Out.ringFull] = rf;
      this.counters[base + Out.errors] = er;
      sent += p;
      ringFull += rf;
      errors += er + this.counters[base + Out.unavailable];
    }
    return { ringFull, errors, sent };
  }

  close(): void {
    for (const slot of this.installed.keys()) {
      try {
        this.fwd.setTemplate(slot, null);
      } catch { /* closing anyway */ }
    }
    this.fwd.close();
    for (const t of this.tx.values()) t.close();
    this.tx.clear();
  }
}

async function run(cfg: WorkerInit): Promise<void> {
  const counters = cfg.counters;
  const ctl = cfg.ctl;
  let iface;
  try {
    iface = ifaceByName(cfg.interface);
  } catch (e) {
    post({
      type: "fatal",
      index: cfg.index,
      message: (e as Error).message,
      code: (e as McrError).code,
    });
    return;
  }
  let rx: RxRing;
  try {
    rx = new RxRing({ ...cfg.rx, ifindex: iface.ifindex, wakeFd: cfg.wakeFd });
  } catch (e) {
    post({
      type: "fatal",
      index: cfg.index,
      message: (e as Error).message,
      code: (e as McrError).code,
    });
    return;
  }
  const maxDesc = Math.max(64, rx.batchMax * 4);
  const fwd = new Forwarder(MAX_OUTPUTS, maxDesc);
  const proc = new BatchProcessor(counters, fwd.desc, maxDesc, (m) => fwd.submit(rx, m));
  const outs = new Outputs(fwd, counters, cfg.tx, cfg.index, proc.broken);
  post({ type: "ready", index: cfg.index, geometry: rx.geometry(), ifindex: iface.ifindex });
  counters[If.running] = 1;

  const ring = rx.ring;
  const desc = rx.desc;
  let version = 0;
  let lastSync = 0;
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
      if (n === 0) {
        if (now - lastSync > 200) {
          sync();
          lastSync = now;
        }
        continue;
      }
      const m = proc.process(ring, desc, n);
      if (m > 0) fwd.submit(rx, m);
      rx.release();
      if (now - lastSync > 200) {
        sync();
        lastSync = now;
      }
    }
  } catch (e) {
    post({
      type: "fatal",
      index: cfg.index,
      message: (e as Error).message,
      code: (e as McrError).code,
    });
  } finally {
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

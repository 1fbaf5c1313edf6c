/**
 * The supervisor: owns the rule set, starts one data-path Worker per input
 * interface, hands each a complete versioned rule table, holds the IGMP
 * memberships, restarts a worker that fails (with backoff; an interface that
 * is missing leaves its rules `pending` until it appears) and sums the
 * workers' shared counters into {@link RelayStats}.
 *
 * @module
 */
import { ifaceByName, IgmpMembership, Waker } from "../ffi/mcr.ts";
import { formatIPv4 } from "./net.ts";
import {
  COUNTER_SLOTS,
  Ctl,
  DROP_BASE,
  If,
  newControlBlock,
  newCounterBlock,
  Out,
  OUT_BASE,
  OUT_WORDS,
  RULE_BASE,
  RULE_WORDS,
} from "./counters.ts";
import { DROP_NAMES } from "./packet.ts";
import { buildTables, type RuleSpec, Slots, type WorkerTable } from "./rules.ts";
import type { WorkerEvent, WorkerInit } from "./worker.ts";
import { logger } from "./log.ts";

/** Ring and worker tuning applied to every input interface. */
export interface DataPathOptions {
  /** RX ring options (see `RxOptions`). */
  rx?: WorkerInit["rx"];
  /** TX ring options. */
  tx?: WorkerInit["tx"];
}

/** State of a rule or output. */
export type State = "active" | "pending" | "error";

/** Counters of one output. */
export interface OutputStats {
  /** Output interface. */
  interface: string;
  /** Destination group or address. */
  group: string;
  /** Destination port. */
  port: number;
  /** active, or error with a reason. */
  state: State;
  /** Why the output is not active. */
  reason?: string;
  /** Datagrams handed to the kernel. */
  packets: number;
  /** UDP payload bytes of those. */
  bytes: number;
  /** Dropped: TX ring full. */
  ring_full: number;
  /** Dropped: send errors, and datagrams skipped while the output was in error. */
  errors: number;
  /** Dropped: TTL would reach 0 (decrement policy). */
  ttl_expired: number;
}

/** Counters of one rule. */
export interface RuleStats {
  /** Stable id. */
  id: string;
  /** Name. */
  name: string;
  /** active, pending (input interface missing) or error. */
  state: State;
  /** Why the rule is not active. */
  reason?: string;
  /** Input match. */
  input: { interface: string; group: string; port: number; source?: string; vlan?: number };
  /** Datagrams matched. */
  packets: number;
  /** UDP payload bytes matched. */
  bytes: number;
  /** Per output. */
  outputs: OutputStats[];
}

/** Counters of one input interface. */
export interface InterfaceStats {
  /** Interface name. */
  name: string;
  /** running, pending (missing) or error. */
  state: "running" | "pending" | "error" | "starting";
  /** Why it is not running. */
  reason?: string;
  /** Frames taken from the ring. */
  frames: number;
  /** Wire bytes of those. */
  bytes: number;
  /** Frames that matched a rule. */
  matched: number;
  /** Datagrams sent (all outputs of rules on this interface). */
  sent: number;
  /** Kernel: frames that reached the ring (incl. dropped). */
  kernel_packets: number;
  /** Kernel: frames dropped because the ring was full. */
  kernel_drops: number;
  /** Kernel: V3 queue freezes. */
  kernel_freezes: number;
  /** poll() syscalls. */
  polls: number;
  /** Adaptive gather sleeps. */
  gathers: number;
  /** Worker restarts. */
  restarts: number;
}

/** A snapshot of every counter. */
export interface RelayStats {
  /** Per rule. */
  rules: RuleStats[];
  /** Per input interface. */
  interfaces: InterfaceStats[];
  /** Drops by reason, summed over interfaces. */
  drops: Record<string, number>;
}

const GAUGES = new Set<number>([If.tableVersion, If.heartbeat, If.running]);

interface Runtime {
  name: string;
  state: InterfaceStats["state"];
  reason?: string;
  worker: Worker | null;
  counters: Float64Array;
  retired: Float64Array;
  ctl: Int32Array;
  waker: Waker;
  table: WorkerTable;
  restarts: number;
  backoffMs: number;
  timer?: ReturnType<typeof setTimeout>;
  stopping: boolean;
  stopped?: () => void;
  ready?: (ok: boolean) => void;
}

/** The relay's control half (see module doc). */
export class Supervisor {
  readonly #log = logger("supervisor");
  readonly #slots = new Slots();
  readonly #rt = new Map<string, Runtime>();
  readonly #igmp = new Map<string, { m: IgmpMembership | null; refs: number; error?: string }>();
  readonly #outState = new Map<number, { state: State; reason?: string }>();
  #rules: RuleSpec[] = [];
  #version = 0;
  #opts: DataPathOptions;
  #closed = false;

  /** @param opts ring/worker tuning */
  constructor(opts: DataPathOptions = {}) {
    this.#opts = opts;
  }

  /** Current rules. */
  get rules(): readonly RuleSpec[] {
    return this.#rules;
  }

  /**
   * Replace the rule set: computes new tables (unchanged rules keep their
   * counter slots), starts/stops workers for interfaces that gained/lost all
   * rules, updates IGMP memberships. Resolves when every running worker has
   * its new table (or failed).
   */
  async setRules(rules: RuleSpec[]): Promise<void> {
    if (this.#closed) throw new Error("relay is stopped");
    this.#rules = rules;
    const version = ++this.#version;
    const tables = buildTables(rules, this.#slots, version, this.#rt.keys());
    this.#syncIgmp(rules);
    const waits: Promise<unknown>[] = [];
    for (const [name, table] of tables) {
      let rt = this.#rt.get(name);
      if (table.rules.length === 0) {
        if (rt) {
          this.#rt.delete(name);
          waits.push(this.#stopRuntime(rt));
        }
        continue;
      }
      if (!rt) {
        rt = this.#newRuntime(name, table);
        this.#rt.set(name, rt);
        waits.push(this.#startWorker(rt));
      } else {
        rt.table = table;
        if (rt.worker) {
          rt.worker.postMessage({ type: "table", table });
          Atomics.store(rt.ctl, Ctl.wantVersion, version);
          rt.waker.wake();
          waits.push(this.#waitVersion(rt, version));
        }
      }
    }
    await Promise.all(waits);
  }

  #newRuntime(name: string, table: WorkerTable): Runtime {
    return {
      name,
      state: "starting",
      worker: null,
      counters: newCounterBlock(),
      retired: new Float64Array(COUNTER_SLOTS),
      ctl: newControlBlock(),
      waker: new Waker(),
      table,
      restarts: 0,
      backoffMs: 500,
      stopping: false,
    };
  }

  #waitVersion(rt: Runtime, version: number): Promise<void> {
    return new Promise((resolve) => {
      const t0 = Date.now();
      const check = () => {
        if (
          !rt.worker || rt.stopping || rt.counters[If.tableVersion] >= version ||
          Date.now() - t0 > 5000
        ) resolve();
        else setTimeout(check, 2);
      };
      check();
    });
  }

  #startWorker(rt: Runtime): Promise<boolean> {
    const w = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
    rt.worker = w;
    rt.state = "starting";
    Atomics.store(rt.ctl, Ctl.stop, 0);
    Atomics.store(rt.ctl, Ctl.wantVersion, rt.table.version);
    rt.counters = newCounterBlock();
    const ready = new Promise<boolean>((resolve) => rt.ready = resolve);
    w.onmessage = (e: MessageEvent<WorkerEvent>) => this.#onEvent(rt, w, e.data);
    w.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#onEvent(rt, w, { type: "fatal", index: 0, message: e.message });
      this.#onEvent(rt, w, { type: "stopped", index: 0 });
    };
    const init: WorkerInit = {
      type: "init",
      index: 0,
      interface: rt.name,
      rx: this.#opts.rx ?? {},
      tx: this.#opts.tx ?? {},
      wakeFd: rt.waker.fd,
      counters: rt.counters,
      ctl: rt.ctl,
    };
    w.postMessage(init);
    w.postMessage({ type: "table", table: rt.table });
    return ready;
  }

  #onEvent(rt: Runtime, w: Worker, ev: WorkerEvent): void {
    if (rt.worker !== w && ev.type !== "stopped") return;
    switch (ev.type) {
      case "ready":
        rt.state = "running";
        rt.reason = undefined;
        rt.backoffMs = 500;
        this.retryJoins();
        this.#log.info("{interface}: forwarding (ring {geometry})", {
          interface: rt.name,
          geometry: JSON.stringify(ev.geometry),
        });
        break;
      case "applied":
        if (ev.version === rt.table.version) {
          rt.ready?.(true);
          rt.ready = undefined;
        }
        break;
      case "output": {
        const prev = this.#outState.get(ev.slot);
        this.#outState.set(ev.slot, {
          state: ev.state === "ok" ? "active" : "error",
          reason: ev.reason,
        });
        if (ev.state === "error" && prev?.reason !== ev.reason) {
          this.#log.warn("output {slot} on rules of {interface}: {reason}", {
            slot: ev.slot,
            interface: rt.name,
            reason: ev.reason,
          });
        }
        break;
      }
      case "log":
        this.#log[ev.level === "warning" ? "warn" : ev.level]("{interface}: {message}", {
          interface: rt.name,
          message: ev.message,
        });
        break;
      case "fatal": {
        const missing = ev.code === "ENODEV";
        rt.state = missing ? "pending" : "error";
        rt.reason = missing ? `input interface ${rt.name} does not exist` : ev.message;
        if (!rt.stopping) {
          this.#log[missing ? "warn" : "error"]("{interface}: {reason}; retrying in {ms} ms", {
            interface: rt.name,
            reason: rt.reason,
            ms: rt.backoffMs,
          });
        }
        rt.ready?.(false);
        rt.ready = undefined;
        break;
      }
      case "stopped":
        if (rt.worker === w) {
          for (let k = 0; k < COUNTER_SLOTS; k++) {
            if (!GAUGES.has(k)) rt.retired[k] += rt.counters[k];
          }
          rt.counters = newCounterBlock();
          rt.worker = null;
        }
        try {
          w.terminate();
        } catch { /* already gone */ }
        if (rt.stopping) {
          rt.stopped?.();
        } else {
          if (rt.state === "running" || rt.state === "starting") {
            rt.state = "error";
            rt.reason ??= "worker stopped unexpectedly";
          }
          rt.restarts++;
          const delay = rt.backoffMs;
          rt.backoffMs = Math.min(rt.backoffMs * 2, 10_000);
          rt.timer = setTimeout(() => {
            rt.timer = undefined;
            if (!rt.stopping && !this.#closed) this.#startWorker(rt);
          }, delay);
        }
        break;
    }
  }

  #stopRuntime(rt: Runtime): Promise<void> {
    rt.stopping = true;
    if (rt.timer !== undefined) clearTimeout(rt.timer);
    const w = rt.worker;
    if (!w) {
      rt.waker.close();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const killer = setTimeout(() => {
        this.#log.warn("{interface}: worker did not stop in time; terminating", {
          interface: rt.name,
        });
        this.#onEvent(rt, w, { type: "stopped", index: 0 });
      }, 3000);
      rt.stopped = () => {
        clearTimeout(killer);
        rt.waker.close();
        resolve();
      };
      Atomics.store(rt.ctl, Ctl.stop, 1);
      rt.waker.wake();
    });
  }

  #syncIgmp(rules: RuleSpec[]): void {
    const want = new Map<string, { ifname: string; group: number; source: number }>();
    for (const r of rules) {
      const k = `${r.input.interface}|${r.input.group}|${r.input.source}`;
      want.set(k, { ifname: r.input.interface, group: r.input.group, source: r.input.source });
    }
    for (const [k, v] of this.#igmp) {
      if (!want.has(k)) {
        v.m?.close();
        this.#igmp.delete(k);
      }
    }
    for (const [k, w] of want) {
      const cur = this.#igmp.get(k);
      if (cur?.m) continue;
      this.#igmp.set(k, this.#join(w.ifname, w.group, w.source));
    }
  }

  #join(ifname: string, group: number, source: number) {
    try {
      // Resolve lazily through the FFI wrapper (ifindex by name).
      const m = new IgmpMembership(ifindexOf(ifname), group, source);
      return { m, refs: 1 };
    } catch (e) {
      const error = (e as Error).message;
      this.#log.warn("IGMP join {group} on {interface} failed: {error}", {
        group: formatIPv4(group),
        interface: ifname,
        error,
      });
      return { m: null, refs: 1, error };
    }
  }

  /** Retry IGMP joins that failed (e.g. the interface was missing). */
  retryJoins(): void {
    for (const [k, v] of this.#igmp) {
      if (v.m) continue;
      const [ifname, g, s] = k.split("|");
      try {
        v.m = new IgmpMembership(ifindexOf(ifname), Number(g), Number(s));
        v.error = undefined;
      } catch { /* still failing */ }
    }
  }

  /** Snapshot of all counters. */
  stats(): RelayStats {
    const sum = (rt: Runtime, k: number) => rt.retired[k] + rt.counters[k];
    const drops: Record<string, number> = {};
    for (const n of DROP_NAMES) drops[n] = 0;
    const interfaces: InterfaceStats[] = [];
    for (const rt of this.#rt.values()) {
      for (let d = 0; d < DROP_NAMES.length; d++) drops[DROP_NAMES[d]] += sum(rt, DROP_BASE + d);
      interfaces.push({
        name: rt.name,
        state: rt.state,
        ...(rt.reason ? { reason: rt.reason } : {}),
        frames: sum(rt, If.frames),
        bytes: sum(rt, If.bytes),
        matched: sum(rt, If.matched),
        sent: sum(rt, If.sent),
        kernel_packets: sum(rt, If.kernelPackets),
        kernel_drops: sum(rt, If.kernelDrops),
        kernel_freezes: sum(rt, If.kernelFreezes),
        polls: sum(rt, If.polls),
        gathers: sum(rt, If.gathers),
        restarts: rt.restarts,
      });
    }
    const rules: RuleStats[] = [];
    for (const rt of this.#rt.values()) {
      for (const r of rt.table.rules) {
        const rb = RULE_BASE + r.slot * RULE_WORDS;
        const spec = this.#rules.find((x) => x.id === r.id);
        const state: State = rt.state === "running"
          ? "active"
          : rt.state === "starting"
          ? "pending"
          : rt.state;
        rules.push({
          id: r.id,
          name: r.name,
          state,
          ...(rt.reason && state !== "active" ? { reason: rt.reason } : {}),
          input: {
            interface: rt.name,
            group: formatIPv4(r.group),
            port: r.port,
            ...(r.source ? { source: formatIPv4(r.source) } : {}),
            ...(r.vlan >= 0 ? { vlan: r.vlan } : {}),
          },
          packets: sum(rt, rb),
          bytes: sum(rt, rb + 1),
          outputs: r.outputs.map((o, i) => {
            const ob = OUT_BASE + o.slot * OUT_WORDS;
            const st = this.#outState.get(o.slot);
            return {
              interface: spec?.outputs[i]?.interface ?? o.interface,
              group: formatIPv4(o.dst),
              port: o.port,
              state: st?.state ?? "pending",
              ...(st?.reason ? { reason: st.reason } : {}),
              packets: sum(rt, ob + Out.packets),
              bytes: sum(rt, ob + Out.bytes),
              ring_full: sum(rt, ob + Out.ringFull),
              errors: sum(rt, ob + Out.errors) + sum(rt, ob + Out.unavailable),
              ttl_expired: sum(rt, ob + Out.ttlExpired),
            };
          }),
        });
      }
    }
    return { rules, interfaces, drops };
  }

  /** Stop every worker (their final counters are kept) and leave all groups. */
  async stop(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#rt.values()].map((rt) => this.#stopRuntime(rt)));
    for (const v of this.#igmp.values()) v.m?.close();
    this.#igmp.clear();
  }
}

function ifindexOf(name: string): number {
  return ifaceByName(name).ifindex;
}

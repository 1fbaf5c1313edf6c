/**
 * The supervisor: owns the rule set, starts one data-path Worker per input
 * interface, hands each a complete versioned rule table, holds the IGMP
 * memberships, restarts a worker that fails (with backoff) and sums the
 * workers' shared counters into {@link RelayStats}.
 *
 * It watches every interface through the link table (src/links.ts): an
 * input interface that does not exist costs no worker — its rules are
 * `pending` until it appears, and its workers stop when it goes; an input
 * link that is down or without carrier puts its rules in `error` (the
 * workers keep their rings: the kernel resumes delivery when the link comes
 * back). Each input interface is locked (src/ffi InputLock) so that a second
 * relay in the same network namespace cannot capture it too.
 *
 * @module
 */
import { type FanoutModeName, IgmpMembership, InputLock, Waker } from "../ffi/mod.ts";
import { Errno, McrError } from "../ffi/errors.ts";
import { IFF_UP, type LinkChange, linkProblem, Links, linkUsable } from "./links.ts";
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
import { planTables, type RuleSpec, Slots, type WorkerTable } from "./rules.ts";
import type { WorkerEvent, WorkerInit } from "./worker.ts";
import { levelFor, LOG_LEVELS, logger, onLogLevelChange } from "./log.ts";

/** Ring and worker tuning applied to every input interface. */
export interface DataPathOptions {
  /** RX ring options (see `RxOptions`). */
  rx?: WorkerInit["rx"];
  /** TX ring options. */
  tx?: WorkerInit["tx"];
  /** Workers per input interface (default 1). */
  workers?: number;
  /** Per input interface overrides. */
  interfaces?: Record<string, { workers?: number; fanout?: FanoutModeName; cpus?: number[] }>;
  /**
   * The data-path worker module (a URL; default: src/worker.ts). A module
   * that wraps the relay's own (`serveWorker` with hooks) can instrument the
   * data path; the lab uses it to inject faults.
   */
  workerModule?: string;
}

/** The relay's own data-path worker module. */
const WORKER_MODULE = new URL("./worker.ts", import.meta.url).href;

/** One data-path worker. */
export interface WorkerStats {
  /** Input interface. */
  interface: string;
  /** Index among the interface's workers. */
  index: number;
  /** running, starting, pending (interface missing) or error. */
  state: "running" | "starting" | "pending" | "error";
  /** Why it is not running. */
  reason?: string;
  /** Restarts so far. */
  restarts: number;
  /** Frames this worker took from its ring (all its lives). */
  frames: number;
  /** Milliseconds since its last loop pass (heartbeat); null when not running. */
  heartbeat_age_ms: number | null;
  /** CPU it is pinned to, if any. */
  cpu?: number;
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
  /** Datagrams the kernel took for sending. */
  packets: number;
  /** UDP payload bytes of those. */
  bytes: number;
  /** Dropped: TX ring full. */
  ring_full: number;
  /** Dropped: send errors, and datagrams skipped while the output could not be installed. */
  errors: number;
  /** Dropped: TTL would reach 0 (decrement policy). */
  ttl_expired: number;
  /** Dropped: the output link was down, without carrier, or gone. */
  link_down: number;
  /** Dropped: longer than the output MTU with DF set. */
  too_big: number;
  /** Of packets: sent as IPv4 fragments (longer than the output MTU, DF clear). */
  fragmented: number;
  /** Waiting in a TX ring for the kernel (a gauge): matched = packets + drops + queued. */
  queued: number;
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
  /**
   * running; down (exists, but the link is down or has no carrier: nothing
   * can arrive); pending (does not exist); error (see reason); starting.
   */
  state: "running" | "down" | "pending" | "error" | "starting";
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
  /** Workers (fanout members) on this interface. */
  workers: number;
  /** Fanout group id (kernel-chosen). */
  fanout_id: number;
}

/** A snapshot of every counter. */
export interface RelayStats {
  /** Per rule. */
  rules: RuleStats[];
  /** Per input interface. */
  interfaces: InterfaceStats[];
  /** Drops by reason, summed over interfaces. */
  drops: Record<string, number>;
  /** Per worker. */
  workers: WorkerStats[];
}

const GAUGES = new Set<number>([If.tableVersion, If.heartbeat, If.running]);

interface Slot {
  index: number;
  state: WorkerStats["state"];
  reason?: string;
  worker: Worker | null;
  counters: Float64Array;
  ctl: Int32Array;
  waker: Waker;
  restarts: number;
  /** Frames taken by earlier lives of this worker. */
  retiredFrames: number;
  /** Failed for a reason retrying cannot fix (permission denied): not restarted. */
  permanent?: boolean;
  /** Resolves when the current start attempt runs the table (true) or failed (false). */
  starting?: Promise<boolean>;
  backoffMs: number;
  timer?: ReturnType<typeof setTimeout>;
  ready?: (ok: boolean) => void;
  stopped?: () => void;
  cpu?: number;
}

interface Runtime {
  name: string;
  table: WorkerTable;
  slots: Slot[];
  /** Sum of the counter blocks of workers that have stopped (kept across restarts). */
  retired: Float64Array;
  fanout: FanoutModeName;
  fanoutId: number;
  /** Being removed for good. */
  stopping: boolean;
  /** Workers stopped because the interface is gone (or locked by another relay). */
  parked: boolean;
  /** The input lock while workers may run. */
  lock: InputLock | null;
  /** Interface index the lock and workers belong to. */
  ifindex: number;
  /** Why the lock could not be taken (another relay captures the interface). */
  lockError?: string;
  /** Retry of the lock. */
  lockTimer?: ReturnType<typeof setTimeout>;
  /** Serializes start/park transitions. */
  transition: Promise<void>;
  /** "Does not exist" has been logged for the current absence. */
  announcedMissing?: boolean;
}

/** How often to retry an input lock held by another relay (ms). */
const LOCK_RETRY_MS = 2000;

/** A state change the relay reports to subscribers (`Relay.on`). */
export type RelayEvent =
  | { type: "rule"; rule: string; id: string; state: State; reason?: string }
  | {
    type: "interface";
    interface: string;
    state: InterfaceStats["state"] | "removed";
    reason?: string;
  }
  | { type: "output"; rule: string; output: string; state: State; reason?: string }
  | {
    type: "worker";
    interface: string;
    index: number;
    state: WorkerStats["state"];
    reason?: string;
  };

/** The relay's control half (see module doc). */
export class Supervisor {
  readonly #log = logger("supervisor");
  readonly #slots = new Slots();
  readonly #rt = new Map<string, Runtime>();
  readonly #igmp = new Map<string, { m: IgmpMembership | null; error?: string }>();
  readonly #outState = new Map<number, { state: State; reason?: string }>();
  #version = 0;
  #opts: DataPathOptions;
  #closed = false;
  readonly #listeners = new Set<(ev: RelayEvent) => void>();
  readonly #lastState = new Map<string, string>();
  readonly #links = new Links();
  #linksStarted?: Promise<void>;

  /** Subscribe to state changes; returns an unsubscribe function. */
  on(listener: (ev: RelayEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(ev: RelayEvent): void {
    for (const l of this.#listeners) {
      try {
        l(ev);
      } catch (e) {
        this.#log.error("event listener failed: {error}", { error: (e as Error).message });
      }
    }
  }

  /** Diff current states against the last reported ones and emit the changes. */
  #publish(): void {
    if (this.#listeners.size === 0) return;
    const st = this.stats();
    const seen = new Set<string>();
    const diff = (key: string, state: string, reason: string | undefined, ev: () => RelayEvent) => {
      seen.add(key);
      const v = `${state}|${reason ?? ""}`;
      if (this.#lastState.get(key) === v) return;
      this.#lastState.set(key, v);
      this.#emit(ev());
    };
    for (const i of st.interfaces) {
      diff(`i:${i.name}`, i.state, i.reason, () => ({
        type: "interface",
        interface: i.name,
        state: i.state,
        ...(i.reason ? { reason: i.reason } : {}),
      }));
    }
    for (const w of st.workers) {
      diff(`w:${w.interface}:${w.index}`, w.state, w.reason, () => ({
        type: "worker",
        interface: w.interface,
        index: w.index,
        state: w.state,
        ...(w.reason ? { reason: w.reason } : {}),
      }));
    }
    for (const r of st.rules) {
      diff(`r:${r.id}`, r.state, r.reason, () => ({
        type: "rule",
        rule: r.name,
        id: r.id,
        state: r.state,
        ...(r.reason ? { reason: r.reason } : {}),
      }));
      for (const o of r.outputs) {
        const name = `${o.interface} ${o.group}:${o.port}`;
        diff(`o:${r.id}:${name}`, o.state, o.reason, () => ({
          type: "output",
          rule: r.name,
          output: name,
          state: o.state,
          ...(o.reason ? { reason: o.reason } : {}),
        }));
      }
    }
    for (const k of [...this.#lastState.keys()]) {
      if (seen.has(k)) continue;
      this.#lastState.delete(k);
      if (k.startsWith("i:")) {
        this.#emit({ type: "interface", interface: k.slice(2), state: "removed" });
      }
    }
  }

  /** @param opts ring/worker tuning */
  constructor(opts: DataPathOptions = {}) {
    this.#opts = opts;
    // Workers drop messages below their category's level at the source.
    this.#unlisten = onLogLevelChange(() => {
      for (const rt of this.#rt.values()) {
        for (const sl of rt.slots) this.#pushLogLevel(rt.name, sl);
      }
    });
    this.#links.on((c) => this.#onLink(c));
  }

  /** The link table (what the kernel says about each interface). */
  get links(): Links {
    return this.#links;
  }

  /** A link changed: wake every worker (they read the table), and act on input interfaces. */
  #onLink(c: LinkChange): void {
    if (this.#closed) return;
    for (const rt of this.#rt.values()) for (const sl of rt.slots) sl.waker.wake();
    const rt = this.#rt.get(c.name);
    if (rt) {
      const was = linkProblem(c.name, c.prev), now = linkProblem(c.name, c.next);
      if (!c.prev) this.#log.info("input interface {interface} appeared", { interface: c.name });
      else if (!c.next) {
        this.#log.warn("input interface {interface} is gone; its rules are pending", {
          interface: c.name,
        });
        rt.announcedMissing = true;
      } else if (was !== now) {
        if (now) this.#log.warn(`input ${now}`, { interface: c.name });
        else this.#log.info("input interface {interface} is up", { interface: c.name });
      }
      this.#transition(rt, () => this.#reconcile(rt));
      if (c.next && c.prev?.ifindex !== c.next.ifindex) this.#rejoin(c.name);
    }
    this.#publishSoon();
  }

  /** Run `f` after the runtime's earlier start/park transitions. */
  #transition(rt: Runtime, f: () => Promise<void>): Promise<void> {
    const run = rt.transition.then(f, f);
    rt.transition = run.catch((e) => {
      this.#log.error("{interface}: {error}", { interface: rt.name, error: (e as Error).message });
    });
    return rt.transition;
  }

  /**
   * Bring an input interface's workers in line with its link: none while the
   * interface is missing or locked by another relay; running (on the current
   * interface index) otherwise.
   */
  async #reconcile(rt: Runtime): Promise<void> {
    if (rt.stopping || this.#closed) return;
    const link = this.#links.get(rt.name);
    const running = rt.slots.some((sl) => sl.worker);
    if (!link || (rt.lock && link.ifindex !== rt.ifindex)) {
      if (running || rt.lock) await this.#park(rt);
      if (!link) {
        const reason = `input interface ${rt.name} does not exist`;
        // one line when it goes pending (the link monitor logs when it is gone or back)
        if (!rt.announcedMissing && !rt.slots.some((sl) => sl.reason === reason)) {
          this.#log.warn(
            "input interface {interface} does not exist; its rules are pending until it appears",
            { interface: rt.name },
          );
        }
        rt.announcedMissing = true;
        for (const sl of rt.slots) {
          sl.state = "pending";
          sl.reason = reason;
        }
        this.#publishSoon();
        return;
      }
      rt.announcedMissing = false;
    }
    if (!rt.lock) {
      clearTimeout(rt.lockTimer);
      rt.lockTimer = undefined;
      try {
        rt.lock = new InputLock(link.ifindex);
        rt.ifindex = link.ifindex;
        if (rt.lockError) {
          this.#log.info("{interface}: input lock taken", { interface: rt.name });
        }
        rt.lockError = undefined;
      } catch (e) {
        const msg = e instanceof McrError && e.errno === Errno.EADDRINUSE
          ? `input interface ${rt.name} is already captured by another mcr relay in this ` +
            `network namespace (lock @mcr/rx/${link.ifindex}); retrying every ${
              LOCK_RETRY_MS / 1000
            } s`
          : (e as Error).message;
        if (rt.lockError !== msg) {
          this.#log.error("{interface}: {reason}", { interface: rt.name, reason: msg });
        }
        rt.lockError = msg;
        for (const sl of rt.slots) {
          sl.state = "error";
          sl.reason = msg;
        }
        rt.lockTimer = setTimeout(() => {
          rt.lockTimer = undefined;
          this.#transition(rt, () => this.#reconcile(rt));
        }, LOCK_RETRY_MS);
        this.#publishSoon();
        return;
      }
    }
    // A packet socket cannot join a fanout group on an interface that is
    // administratively down: start once it is up (its rules are in error
    // meanwhile, and the link monitor calls us again).
    if (!(link.flags & IFF_UP)) return;
    if (!rt.slots.some((sl) => sl.worker || sl.timer !== undefined)) {
      rt.parked = false;
      for (const sl of rt.slots) sl.backoffMs = 250;
      await this.#startRuntime(rt);
    }
  }

  /** Stop an interface's workers (kept for later) and release its lock. */
  async #park(rt: Runtime): Promise<void> {
    rt.parked = true;
    await Promise.all(rt.slots.map((sl) => this.#stopSlot(rt, sl, false)));
    for (const sl of rt.slots) sl.state = "pending";
    rt.fanoutId = 0;
    rt.lock?.close();
    rt.lock = null;
  }

  readonly #unlisten: () => void;

  #pushLogLevel(iface: string, sl: Slot): void {
    Atomics.store(sl.ctl, Ctl.logLevel, LOG_LEVELS.indexOf(levelFor(["worker", iface])));
  }

  /**
   * Replace the rule set: computes new tables (unchanged rules keep their
   * counter slots and never miss a datagram), starts/stops workers for
   * interfaces that gained/lost all rules, updates IGMP memberships. Resolves
   * when every running worker has its new table (or failed; a failed worker is
   * restarted with the new table).
   *
   * All or nothing: the change is checked completely (slot capacity, with the
   * slots of rules and outputs that go away counted as free; the new
   * interfaces' wakers) before anything changes. It rejects only then, and
   * then nothing changed: rules, slots, tables, IGMP and workers are as they
   * were.
   * @throws {CapacityError} when the rules need more slots than the relay has
   */
  async setRules(rules: RuleSpec[]): Promise<void> {
    if (this.#closed) throw new Error("relay is stopped");
    this.#linksStarted ??= this.#links.start();
    await this.#linksStarted;
    const version = this.#version + 1;
    const plan = planTables(rules, this.#slots, version, this.#rt.keys());
    const inUse = new Set<string>();
    for (const r of rules) {
      inUse.add(r.input.interface);
      for (const o of r.outputs) inUse.add(o.interface);
    }
    const started = new Map<string, Runtime>();
    try {
      for (const t of plan.tables.values()) {
        const links: Record<string, number> = {
          [t.interface]: this.#links.slot(t.interface, inUse),
        };
        for (const r of t.rules) {
          for (const o of r.outputs) links[o.interface] = this.#links.slot(o.interface, inUse);
        }
        t.links = links;
      }
      for (const [name, table] of plan.tables) {
        if (table.rules.length > 0 && !this.#rt.has(name)) {
          started.set(name, this.#newRuntime(name, table));
        }
      }
    } catch (e) {
      for (const rt of started.values()) for (const sl of rt.slots) sl.waker.close();
      throw e;
    }
    // Nothing below fails: the change is applied from here on.
    plan.commit();
    this.#version = version;
    // Freed slots start their next life at zero (retired counts included).
    for (const rt of this.#rt.values()) {
      for (const slot of plan.freed.rules) {
        for (let k = 0; k < RULE_WORDS; k++) rt.retired[RULE_BASE + slot * RULE_WORDS + k] = 0;
      }
      for (const slot of plan.freed.outputs) {
        for (let k = 0; k < OUT_WORDS; k++) rt.retired[OUT_BASE + slot * OUT_WORDS + k] = 0;
      }
    }
    for (const slot of plan.freed.outputs) this.#outState.delete(slot);
    this.#syncIgmp(rules);
    const waits: Promise<unknown>[] = [];
    for (const [name, table] of plan.tables) {
      const rt = this.#rt.get(name);
      if (table.rules.length === 0) {
        if (rt) {
          this.#rt.delete(name);
          waits.push(this.#stopRuntime(rt));
        }
        continue;
      }
      if (!rt) {
        const created = started.get(name)!;
        this.#rt.set(name, created);
        waits.push(this.#transition(created, () => this.#reconcile(created)));
      } else {
        rt.table = table;
        for (const sl of rt.slots) {
          if (!sl.worker) continue;
          sl.worker.postMessage({ type: "table", table });
          Atomics.store(sl.ctl, Ctl.wantVersion, version);
          sl.waker.wake();
          waits.push(this.#waitVersion(sl, version));
        }
      }
    }
    // The tables are in force; a worker that fails to start is restarted with them.
    for (const r of await Promise.allSettled(waits)) {
      if (r.status === "rejected") {
        this.#log.error("applying rule table v{version}: {error}", {
          version,
          error: r.reason instanceof Error ? r.reason.message : String(r.reason),
        });
      }
    }
    this.#publish();
  }

  #newRuntime(name: string, table: WorkerTable): Runtime {
    const o = this.#opts.interfaces?.[name] ?? {};
    const n = Math.max(1, o.workers ?? this.#opts.workers ?? 1);
    const slots: Slot[] = [];
    for (let i = 0; i < n; i++) {
      slots.push({
        index: i,
        state: "starting",
        worker: null,
        counters: newCounterBlock(),
        ctl: newControlBlock(),
        waker: new Waker(),
        restarts: 0,
        retiredFrames: 0,
        backoffMs: 250,
        cpu: o.cpus?.length ? o.cpus[i % o.cpus.length] : undefined,
      });
    }
    return {
      name,
      table,
      slots,
      retired: new Float64Array(COUNTER_SLOTS),
      fanout: o.fanout ?? this.#opts.rx?.fanout ?? "hash",
      fanoutId: 0,
      stopping: false,
      parked: false,
      lock: null,
      ifindex: 0,
      transition: Promise.resolve(),
    };
  }

  /**
   * Start an interface's workers and resolve once every one of them runs the
   * table (or failed). Traffic is only announced as forwarding after the
   * fanout group is complete: a member joining later would move flows between
   * workers, and a flow that moves mid-stream can be reordered.
   */
  async #startRuntime(rt: Runtime): Promise<void> {
    const ok = await this.#startSlot(rt, rt.slots[0]);
    if (!ok) return;
    // The ready handler of worker 0 started the others (they need its fanout id).
    await Promise.all(rt.slots.slice(1).map((sl) => sl.starting ?? Promise.resolve(false)));
  }

  #waitVersion(sl: Slot, version: number): Promise<void> {
    return new Promise((resolve) => {
      const t0 = Date.now();
      const check = () => {
        if (!sl.worker || sl.counters[If.tableVersion] >= version || Date.now() - t0 > 5000) {
          resolve();
        } else setTimeout(check, 2);
      };
      check();
    });
  }

  /**
   * Start one worker. The first member of an interface's fanout group asks the
   * kernel for a free group id; the others join that id. Resolves when the
   * worker runs the current table (true) or failed (false).
   */
  #startSlot(rt: Runtime, sl: Slot): Promise<boolean> {
    const alive = rt.slots.some((x) => x !== sl && x.state === "running");
    if (!alive) rt.fanoutId = 0;
    const w = new Worker(this.#opts.workerModule ?? WORKER_MODULE, { type: "module" });
    sl.worker = w;
    sl.state = "starting";
    Atomics.store(sl.ctl, Ctl.stop, 0);
    Atomics.store(sl.ctl, Ctl.wantVersion, rt.table.version);
    this.#pushLogLevel(rt.name, sl);
    sl.counters = newCounterBlock();
    const ready = new Promise<boolean>((resolve) => sl.ready = resolve);
    sl.starting = ready;
    w.onmessage = (e: MessageEvent<WorkerEvent>) => this.#onEvent(rt, sl, w, e.data);
    w.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#onEvent(rt, sl, w, { type: "fatal", index: sl.index, message: e.message });
      this.#onEvent(rt, sl, w, { type: "stopped", index: sl.index });
    };
    const rx = { ...(this.#opts.rx ?? {}), fanout: rt.fanout };
    if (rt.fanout !== "none") {
      if (rt.fanoutId) rx.fanoutId = rt.fanoutId;
      else rx.uniqueFanoutId = true;
    }
    const init: WorkerInit = {
      type: "init",
      index: sl.index,
      interface: rt.name,
      rx,
      tx: this.#opts.tx ?? {},
      wakeFd: sl.waker.fd,
      counters: sl.counters,
      ctl: sl.ctl,
      cpu: sl.cpu,
      links: this.#links.table,
      inputLink: this.#links.slot(rt.name),
    };
    w.postMessage(init);
    w.postMessage({ type: "table", table: rt.table });
    return ready;
  }

  #onEvent(rt: Runtime, sl: Slot, w: Worker, ev: WorkerEvent): void {
    if (sl.worker !== w && ev.type !== "stopped") return;
    this.#handle(rt, sl, w, ev);
    if (ev.type !== "log" && ev.type !== "applied") this.#publishSoon();
  }

  #publishTimer?: ReturnType<typeof setTimeout>;

  /**
   * Publish state changes once per burst of worker events (a table with many
   * outputs reports each of them): one stats() walk instead of one per event.
   */
  #publishSoon(): void {
    if (this.#listeners.size === 0 || this.#publishTimer !== undefined || this.#closed) return;
    this.#publishTimer = setTimeout(() => {
      this.#publishTimer = undefined;
      this.#publish();
    }, 10);
  }

  #handle(rt: Runtime, sl: Slot, w: Worker, ev: WorkerEvent): void {
    switch (ev.type) {
      case "ready": {
        sl.state = "running";
        sl.reason = undefined;
        const g = ev.geometry as { fanoutId?: number };
        if (!rt.fanoutId && g.fanoutId) rt.fanoutId = g.fanoutId;
        this.#log.info("{interface}: worker {index} forwarding (ring {geometry})", {
          interface: rt.name,
          index: sl.index,
          geometry: JSON.stringify(ev.geometry),
        });
        if (sl.index === 0 || !rt.slots.some((x) => x !== sl && x.state === "running")) {
          this.#rejoin(rt.name);
        }
        // Start the other fanout members once the group id is known.
        for (const o of rt.slots) {
          if (o !== sl && !o.worker && o.timer === undefined && !rt.stopping) {
            this.#startSlot(rt, o);
          }
        }
        break;
      }
      case "applied":
        if (ev.version === rt.table.version) {
          sl.backoffMs = 250;
          sl.ready?.(true);
          sl.ready = undefined;
        }
        break;
      case "output": {
        const prev = this.#outState.get(ev.slot);
        this.#outState.set(ev.slot, {
          state: ev.state === "ok" ? "active" : "error",
          reason: ev.reason,
        });
        if (ev.state === "error" && prev?.reason !== ev.reason) {
          this.#log.warn("{interface}: output {output}: {reason}", {
            interface: rt.name,
            output: this.#outputName(ev.slot),
            reason: ev.reason,
          });
        } else if (ev.state === "ok" && prev?.state === "error") {
          this.#log.info("{interface}: output {output} recovered", {
            interface: rt.name,
            output: this.#outputName(ev.slot),
          });
        }
        break;
      }
      case "log":
        // Worker messages log under mcr.worker.<interface>, so per-category levels apply.
        logger("worker", rt.name)[ev.level === "warning" ? "warn" : ev.level](
          "{interface}: worker {index}: {message}",
          { interface: rt.name, index: sl.index, message: ev.message },
        );
        break;
      case "fatal": {
        const missing = ev.code === "ENODEV" || ev.code === "ENETDOWN" || ev.code === "ENXIO";
        const exists = this.#links.get(rt.name) !== undefined;
        sl.state = missing && !exists ? "pending" : "error";
        // Missing privileges do not heal by retrying: no restart, and callers can tell.
        sl.permanent = ev.code === "EPERM" || ev.code === "EACCES";
        sl.reason = sl.state === "pending"
          ? `input interface ${rt.name} does not exist`
          : `worker ${sl.index}: ${ev.message}`;
        if (!rt.stopping && !rt.parked && sl.state !== "pending") {
          this.#log.error("{interface}: {reason}; retrying in {ms} ms", {
            interface: rt.name,
            reason: sl.reason,
            ms: sl.backoffMs,
          });
        }
        sl.ready?.(false);
        sl.ready = undefined;
        break;
      }
      case "stopped":
        if (sl.worker === w) {
          this.#retire(rt, sl.counters);
          sl.retiredFrames += sl.counters[If.frames];
          sl.counters = newCounterBlock();
          sl.worker = null;
        }
        try {
          w.terminate();
        } catch { /* already gone */ }
        if (rt.stopping || rt.parked) {
          sl.stopped?.();
        } else if (!this.#links.get(rt.name)) {
          // gone: the link monitor starts the workers again when it is back
          sl.state = "pending";
          sl.reason = `input interface ${rt.name} does not exist`;
          sl.stopped?.();
        } else if (sl.permanent) {
          this.#log.error("{interface}: {reason}; not retrying", {
            interface: rt.name,
            reason: sl.reason,
          });
        } else if (!this.#closed) {
          if (sl.state === "running" || sl.state === "starting") {
            sl.state = "error";
            sl.reason ??= `worker ${sl.index} stopped unexpectedly`;
          }
          sl.restarts++;
          const delay = sl.backoffMs;
          // A missing interface is checked cheaply and often; real faults back off further.
          sl.backoffMs = Math.min(sl.backoffMs * 2, sl.state === "pending" ? 2000 : 10_000);
          sl.timer = setTimeout(() => {
            sl.timer = undefined;
            if (rt.stopping || rt.parked || this.#closed || !rt.lock) return;
            // Members other than the first wait for a running member (the group id).
            const anyRunning = rt.slots.some((x) => x.state === "running");
            if (sl.index === 0 || anyRunning || rt.slots.every((x) => !x.worker)) {
              this.#startSlot(rt, sl);
            }
          }, delay);
        }
        break;
    }
  }

  /**
   * Fold a stopped worker's counters into its interface's retired sums: every
   * interface-level counter, and the rule and output counters of the slots in
   * the interface's table. A slot that is not in the table holds the counts of
   * a rule or output that went away; they must not reappear when the slot is
   * given to another one.
   */
  #retire(rt: Runtime, counters: Float64Array): void {
    for (let k = 0; k < RULE_BASE; k++) if (!GAUGES.has(k)) rt.retired[k] += counters[k];
    for (const r of rt.table.rules) {
      const rb = RULE_BASE + r.slot * RULE_WORDS;
      for (let k = rb; k < rb + RULE_WORDS; k++) rt.retired[k] += counters[k];
      for (const o of r.outputs) {
        const ob = OUT_BASE + o.slot * OUT_WORDS;
        for (let k = 0; k < OUT_WORDS; k++) {
          if (k !== Out.queued) rt.retired[ob + k] += counters[ob + k]; // a gauge
        }
      }
    }
  }

  #outputName(slot: number): string {
    for (const rt of this.#rt.values()) {
      for (const r of rt.table.rules) {
        for (const o of r.outputs) {
          if (o.slot === slot) {
            return `${o.interface} ${formatIPv4(o.dst)}:${o.port} of rule ${r.name}`;
          }
        }
      }
    }
    return `#${slot}`;
  }

  async #stopRuntime(rt: Runtime): Promise<void> {
    rt.stopping = true;
    clearTimeout(rt.lockTimer);
    await rt.transition;
    await Promise.all(rt.slots.map((sl) => this.#stopSlot(rt, sl, true)));
    rt.lock?.close();
    rt.lock = null;
  }

  /** Stop a worker; `final` also closes its waker (the runtime goes away). */
  #stopSlot(rt: Runtime, sl: Slot, final: boolean): Promise<void> {
    if (sl.timer !== undefined) clearTimeout(sl.timer);
    sl.timer = undefined;
    const w = sl.worker;
    if (!w) {
      if (final) sl.waker.close();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const killer = setTimeout(() => {
        this.#log.warn("{interface}: worker {index} did not stop in time; terminating", {
          interface: rt.name,
          index: sl.index,
        });
        this.#onEvent(rt, sl, w, { type: "stopped", index: sl.index });
      }, 3000);
      sl.stopped = () => {
        clearTimeout(killer);
        sl.stopped = undefined;
        if (final) sl.waker.close();
        resolve();
      };
      Atomics.store(sl.ctl, Ctl.stop, 1);
      sl.waker.wake();
    });
  }

  /** True when some worker failed for lack of privileges (CAP_NET_RAW). */
  get permissionDenied(): boolean {
    for (const rt of this.#rt.values()) if (rt.slots.some((sl) => sl.permanent)) return true;
    return false;
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
      if (this.#igmp.get(k)?.m) continue;
      this.#igmp.set(k, this.#join(w.ifname, w.group, w.source));
    }
  }

  #join(ifname: string, group: number, source: number) {
    const link = this.#links.get(ifname);
    if (!link) return { m: null, error: `interface ${ifname} does not exist` };
    try {
      return { m: new IgmpMembership(link.ifindex, group, source) };
    } catch (e) {
      const error = (e as Error).message;
      this.#log.warn("{interface}: IGMP join of {group} failed: {error}", {
        group: formatIPv4(group),
        interface: ifname,
        error,
      });
      return { m: null, error };
    }
  }

  /** (Re)join every membership on an interface (it may have been re-created). */
  #rejoin(ifname: string): void {
    for (const [k, v] of this.#igmp) {
      const [name, g, s] = k.split("|");
      if (name !== ifname) continue;
      v.m?.close();
      this.#igmp.set(k, this.#join(name, Number(g), Number(s)));
    }
  }

  /** Snapshot of all counters. */
  stats(): RelayStats {
    const drops: Record<string, number> = {};
    for (const n of DROP_NAMES) drops[n] = 0;
    const interfaces: InterfaceStats[] = [];
    const workers: WorkerStats[] = [];
    const rules: RuleStats[] = [];
    const now = Date.now();
    for (const rt of this.#rt.values()) {
      const sum = (k: number) => {
        let v = rt.retired[k];
        for (const sl of rt.slots) v += sl.counters[k];
        return v;
      };
      for (let d = 0; d < DROP_NAMES.length; d++) drops[DROP_NAMES[d]] += sum(DROP_BASE + d);
      const states = rt.slots.map((sl) => sl.state);
      const link = this.#links.get(rt.name);
      const inputProblem = link && !linkUsable(link)
        ? `input ${linkProblem(rt.name, link)}`
        : undefined;
      let state: InterfaceStats["state"] = !link
        ? "pending"
        : rt.lockError
        ? "error"
        : inputProblem
        ? "down"
        : states.every((x) => x === "running")
        ? "running"
        : states.includes("pending")
        ? "pending"
        : states.includes("error")
        ? "error"
        : "starting";
      const reason = !link
        ? `input interface ${rt.name} does not exist`
        : rt.lockError ?? inputProblem ?? rt.slots.find((sl) => sl.reason)?.reason;
      if (state === "pending" && link) state = "starting"; // workers on their way
      interfaces.push({
        name: rt.name,
        state,
        ...(reason && state !== "running" ? { reason } : {}),
        frames: sum(If.frames),
        bytes: sum(If.bytes),
        matched: sum(If.matched),
        sent: sum(If.sent),
        kernel_packets: sum(If.kernelPackets),
        kernel_drops: sum(If.kernelDrops),
        kernel_freezes: sum(If.kernelFreezes),
        polls: sum(If.polls),
        gathers: sum(If.gathers),
        restarts: rt.slots.reduce((a, sl) => a + sl.restarts, 0),
        workers: rt.slots.length,
        fanout_id: rt.fanoutId,
      });
      for (const sl of rt.slots) {
        const hb = sl.counters[If.heartbeat];
        workers.push({
          interface: rt.name,
          index: sl.index,
          state: sl.state,
          ...(sl.reason && sl.state !== "running" ? { reason: sl.reason } : {}),
          restarts: sl.restarts,
          frames: sl.retiredFrames + sl.counters[If.frames],
          heartbeat_age_ms: sl.worker && hb ? Math.max(0, now - hb) : null,
          ...(sl.cpu !== undefined ? { cpu: sl.cpu } : {}),
        });
      }
      // A rule forwards while at least one fanout member runs and its input link is up.
      const ruleState: State = state === "pending" || state === "starting"
        ? "pending"
        : state === "running" || (state === "error" && states.includes("running"))
        ? "active"
        : "error";
      for (const r of rt.table.rules) {
        const rb = RULE_BASE + r.slot * RULE_WORDS;
        rules.push({
          id: r.id,
          name: r.name,
          state: ruleState,
          ...(reason && ruleState !== "active" ? { reason } : {}),
          input: {
            interface: rt.name,
            group: formatIPv4(r.group),
            port: r.port,
            ...(r.source ? { source: formatIPv4(r.source) } : {}),
            ...(r.vlan >= 0 ? { vlan: r.vlan } : {}),
          },
          packets: sum(rb),
          bytes: sum(rb + 1),
          outputs: r.outputs.map((o) => {
            const ob = OUT_BASE + o.slot * OUT_WORDS;
            const st = this.#outState.get(o.slot);
            return {
              interface: o.interface,
              group: formatIPv4(o.dst),
              port: o.port,
              state: st?.state ?? "pending",
              ...(st?.reason && st.state !== "active" ? { reason: st.reason } : {}),
              packets: sum(ob + Out.packets),
              bytes: sum(ob + Out.bytes),
              ring_full: sum(ob + Out.ringFull),
              errors: sum(ob + Out.errors) + sum(ob + Out.unavailable),
              ttl_expired: sum(ob + Out.ttlExpired),
              link_down: sum(ob + Out.linkDown),
              too_big: sum(ob + Out.tooBig),
              fragmented: sum(ob + Out.fragmented),
              queued: sum(ob + Out.queued),
            };
          }),
        });
      }
    }
    return { rules, interfaces, drops, workers };
  }

  /** Stop every worker (their final counters are kept) and leave all groups. */
  async stop(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unlisten();
    clearTimeout(this.#publishTimer);
    this.#publishTimer = undefined;
    await Promise.all([...this.#rt.values()].map((rt) => this.#stopRuntime(rt)));
    this.#publish(); // the final states, once
    for (const v of this.#igmp.values()) v.m?.close();
    this.#igmp.clear();
    await this.#links.stop();
  }
}

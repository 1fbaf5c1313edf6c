/**
 * The workers of one input interface (`InputWorkers`): its fanout group's
 * members (Deno Workers running src/datapath/worker.ts), their lifecycle —
 * start (the first member asks the kernel for a free fanout group id, the
 * others join it), table changes, stop, restart with backoff after a failure
 * —, their shared counter and control blocks, and the counters of earlier
 * worker lives (retired sums), so that a restart loses no count.
 *
 * The supervisor decides whether an interface's workers should run (link
 * present and up, input lock held); this module runs them.
 *
 * @module
 */
import { type FanoutModeName, type InputLock, Waker } from "../../ffi/mod.ts";
import { levelFor, LOG_LEVELS, logger } from "../common/log.ts";
import {
  COUNTER_SLOTS,
  If,
  newCounterBlock,
  Out,
  OUT_BASE,
  OUT_WORDS,
  RULE_BASE,
  RULE_WORDS,
} from "../datapath/counters.ts";
import {
  Ctl,
  newControlBlock,
  type TxRingOptions,
  type WorkerEvent,
  type WorkerInit,
  type WorkerTable,
} from "../datapath/messages.ts";
import type { Links } from "./links.ts";
import type { WorkerStats } from "./stats.ts";

/** Ring and worker tuning applied to every input interface. */
export interface DataPathOptions {
  /** RX ring options (see `RxOptions`). */
  rx?: WorkerInit["rx"];
  /** TX ring options. */
  tx?: TxRingOptions;
  /** Workers per input interface (default 1). */
  workers?: number;
  /** Per input interface overrides. */
  interfaces?: Record<string, { workers?: number; fanout?: FanoutModeName; cpus?: number[] }>;
  /**
   * The data-path worker module (a URL; default: src/datapath/worker.ts). A
   * module that wraps the relay's own (`serveWorker` with hooks) can
   * instrument the data path; the lab uses it to inject faults.
   */
  workerModule?: string;
}

/** The relay's own data-path worker module. */
const WORKER_MODULE = new URL("../datapath/worker.ts", import.meta.url).href;
/** Counter words that are gauges (not summed into the retired counts). */
const GAUGES = new Set<number>([If.tableVersion, If.heartbeat, If.running]);
/** First restart delay; doubled per failure. */
const BACKOFF_START_MS = 250;
/** Longest restart delay. */
const BACKOFF_MAX_MS = 10_000;
/** How long a worker may take to stop before it is terminated. */
const STOP_TIMEOUT_MS = 3000;
/** How long a table change waits for a worker to apply it. */
const APPLY_TIMEOUT_MS = 5000;

/** What an `InputWorkers` needs from the supervisor. */
export interface WorkerHost {
  /** Ring and worker tuning. */
  readonly opts: DataPathOptions;
  /** The link table (shared with the workers). */
  readonly links: Links;
  /** True once the relay is stopping. */
  closed(): boolean;
  /** A worker reported the state of one of its outputs. */
  outputReport(group: InputWorkers, ev: Extract<WorkerEvent, { type: "output" }>): void;
  /** A group's first worker forwards (its memberships may need a rejoin). */
  groupReady(group: InputWorkers): void;
  /** Something subscribers may want to hear about changed. */
  changed(): void;
}

/** One member of an interface's fanout group: a worker and its lives. */
export interface Member {
  /** Index in the group. */
  index: number;
  /** What it is doing. */
  state: WorkerStats["state"];
  /** Why it is not running. */
  reason?: string;
  /** The current worker, if one runs. */
  worker: Worker | null;
  /** The current life's counter block. */
  counters: Float64Array;
  /** Control block (shared with the worker). */
  ctl: Int32Array;
  /** Cuts the worker's blocking poll short. */
  waker: Waker;
  /** Restarts so far. */
  restarts: number;
  /** Frames taken by earlier lives of this worker. */
  retiredFrames: number;
  /** Failed for a reason retrying cannot fix (permission denied): not restarted. */
  permanent?: boolean;
  /** Resolves when the current start attempt runs the table (true) or failed (false). */
  starting?: Promise<boolean>;
  /** Delay of the next restart. */
  backoffMs: number;
  /** Pending restart. */
  timer?: ReturnType<typeof setTimeout>;
  /** Settles `starting`. */
  ready?: (ok: boolean) => void;
  /** Called when a requested stop is complete. */
  stopped?: () => void;
  /** CPU it is pinned to. */
  cpu?: number;
}

/** The workers of one input interface (see module doc). */
export class InputWorkers {
  readonly #log = logger("supervisor");
  /** Fanout group members. */
  readonly members: Member[] = [];
  /** Sum of the counter blocks of workers that have stopped (kept across restarts). */
  readonly retired: Float64Array = new Float64Array(COUNTER_SLOTS);
  /** Fanout mode. */
  readonly fanout: FanoutModeName;
  /** Fanout group id (kernel-chosen by the first member). */
  fanoutId = 0;
  /** Being removed for good. */
  stopping = false;
  /** Workers stopped because the interface is gone (or locked by another relay). */
  parked = false;
  /** The input lock while workers may run. */
  lock: InputLock | null = null;
  /** Interface index the lock and workers belong to. */
  ifindex = 0;
  /** Why the lock could not be taken (another relay captures the interface). */
  lockError?: string;
  /** Retry of the lock. */
  lockTimer?: ReturnType<typeof setTimeout>;
  /** Serializes start/park transitions (the supervisor's). */
  transition: Promise<void> = Promise.resolve();
  /** "Does not exist" has been logged for the current absence. */
  announcedMissing = false;

  /**
   * @param name input interface
   * @param table the rule table its workers run
   * @param host the supervisor
   */
  constructor(readonly name: string, public table: WorkerTable, readonly host: WorkerHost) {
    const opts = host.opts;
    const o = opts.interfaces?.[name] ?? {};
    const n = Math.max(1, o.workers ?? opts.workers ?? 1);
    try {
      for (let i = 0; i < n; i++) {
        this.members.push({
          index: i,
          state: "starting",
          worker: null,
          counters: newCounterBlock(),
          ctl: newControlBlock(),
          waker: new Waker(),
          restarts: 0,
          retiredFrames: 0,
          backoffMs: BACKOFF_START_MS,
          cpu: o.cpus?.length ? o.cpus[i % o.cpus.length] : undefined,
        });
      }
    } catch (e) {
      this.closeWakers();
      throw e;
    }
    this.fanout = o.fanout ?? opts.rx?.fanout ?? "hash";
  }

  /** True when a member failed for lack of privileges (CAP_NET_RAW). */
  get permissionDenied(): boolean {
    return this.members.some((m) => m.permanent);
  }

  /** Whether a worker runs or is about to be restarted. */
  get active(): boolean {
    return this.members.some((m) => m.worker || m.timer !== undefined);
  }

  /** Wake every worker (the link table changed). */
  wake(): void {
    for (const m of this.members) m.waker.wake();
  }

  /** Tell every worker the log level in force for its category (mcr.worker.<if>). */
  pushLogLevels(): void {
    for (const m of this.members) {
      Atomics.store(m.ctl, Ctl.logLevel, LOG_LEVELS.indexOf(levelFor(["worker", this.name])));
    }
  }

  /**
   * Start the workers and resolve once every one of them runs the table (or
   * failed). Traffic is only announced as forwarding after the fanout group
   * is complete: a member joining later would move flows between workers,
   * and a flow that moves mid-stream can be reordered.
   */
  async start(): Promise<void> {
    this.parked = false;
    for (const m of this.members) m.backoffMs = BACKOFF_START_MS;
    const ok = await this.#startMember(this.members[0]);
    if (!ok) return;
    // The ready handler of worker 0 started the others (they need its fanout id).
    await Promise.all(this.members.slice(1).map((m) => m.starting ?? Promise.resolve(false)));
  }

  /** Hand every running worker a new table; the promises settle when each applied it. */
  postTable(table: WorkerTable): Promise<void>[] {
    this.table = table;
    const waits: Promise<void>[] = [];
    for (const m of this.members) {
      if (!m.worker) continue;
      m.worker.postMessage({ type: "table", table });
      Atomics.store(m.ctl, Ctl.wantVersion, table.version);
      m.waker.wake();
      waits.push(this.#waitVersion(m, table.version));
    }
    return waits;
  }

  #waitVersion(m: Member, version: number): Promise<void> {
    return new Promise((resolve) => {
      const t0 = Date.now();
      const check = () => {
        if (
          !m.worker || m.counters[If.tableVersion] >= version ||
          Date.now() - t0 > APPLY_TIMEOUT_MS
        ) {
          resolve();
        } else setTimeout(check, 2);
      };
      check();
    });
  }

  /**
   * Start one worker. The first member of the fanout group asks the kernel
   * for a free group id; the others join that id. Resolves when the worker
   * runs the current table (true) or failed (false).
   */
  #startMember(m: Member): Promise<boolean> {
    const alive = this.members.some((x) => x !== m && x.state === "running");
    if (!alive) this.fanoutId = 0;
    const opts = this.host.opts;
    const w = new Worker(opts.workerModule ?? WORKER_MODULE, { type: "module" });
    m.worker = w;
    m.state = "starting";
    Atomics.store(m.ctl, Ctl.stop, 0);
    Atomics.store(m.ctl, Ctl.wantVersion, this.table.version);
    this.pushLogLevels();
    m.counters = newCounterBlock();
    const ready = new Promise<boolean>((resolve) => m.ready = resolve);
    m.starting = ready;
    w.onmessage = (e: MessageEvent<WorkerEvent>) => this.#onEvent(m, w, e.data);
    w.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#onEvent(m, w, { type: "fatal", index: m.index, message: e.message });
      this.#onEvent(m, w, { type: "stopped", index: m.index });
    };
    const rx = { ...(opts.rx ?? {}), fanout: this.fanout };
    if (this.fanout !== "none") {
      if (this.fanoutId) rx.fanoutId = this.fanoutId;
      else rx.uniqueFanoutId = true;
    }
    const init: WorkerInit = {
      type: "init",
      index: m.index,
      interface: this.name,
      rx,
      tx: opts.tx ?? {},
      wakeFd: m.waker.fd,
      counters: m.counters,
      ctl: m.ctl,
      cpu: m.cpu,
      links: this.host.links.table,
      inputLink: this.host.links.slot(this.name),
    };
    w.postMessage(init);
    w.postMessage({ type: "table", table: this.table });
    return ready;
  }

  #onEvent(m: Member, w: Worker, ev: WorkerEvent): void {
    if (m.worker !== w && ev.type !== "stopped") return;
    this.#handle(m, w, ev);
    if (ev.type !== "log" && ev.type !== "applied") this.host.changed();
  }

  #handle(m: Member, w: Worker, ev: WorkerEvent): void {
    switch (ev.type) {
      case "ready": {
        m.state = "running";
        m.reason = undefined;
        const g = ev.geometry as { fanoutId?: number };
        if (!this.fanoutId && g.fanoutId) this.fanoutId = g.fanoutId;
        this.#log.info("{interface}: worker {index} forwarding (ring {geometry})", {
          interface: this.name,
          index: m.index,
          geometry: JSON.stringify(ev.geometry),
        });
        if (m.index === 0 || !this.members.some((x) => x !== m && x.state === "running")) {
          this.host.groupReady(this);
        }
        // Start the other fanout members once the group id is known.
        for (const o of this.members) {
          if (o !== m && !o.worker && o.timer === undefined && !this.stopping) {
            this.#startMember(o);
          }
        }
        break;
      }
      case "applied":
        if (ev.version === this.table.version) {
          m.backoffMs = BACKOFF_START_MS;
          m.ready?.(true);
          m.ready = undefined;
        }
        break;
      case "output":
        this.host.outputReport(this, ev);
        break;
      case "log":
        // Worker messages log under mcr.worker.<interface>, so per-category levels apply.
        logger("worker", this.name)[ev.level === "warning" ? "warn" : ev.level](
          "{interface}: worker {index}: {message}",
          { interface: this.name, index: m.index, message: ev.message },
        );
        break;
      case "fatal": {
        const missing = ev.code === "ENODEV" || ev.code === "ENETDOWN" || ev.code === "ENXIO";
        const exists = this.host.links.get(this.name) !== undefined;
        m.state = missing && !exists ? "pending" : "error";
        // Missing privileges do not heal by retrying: no restart, and callers can tell.
        m.permanent = ev.code === "EPERM" || ev.code === "EACCES";
        m.reason = m.state === "pending"
          ? `input interface ${this.name} does not exist`
          : `worker ${m.index}: ${ev.message}`;
        if (!this.stopping && !this.parked && m.state !== "pending") {
          this.#log.error("{interface}: {reason}; retrying in {ms} ms", {
            interface: this.name,
            reason: m.reason,
            ms: m.backoffMs,
          });
        }
        m.ready?.(false);
        m.ready = undefined;
        break;
      }
      case "stopped":
        this.#onStopped(m, w);
        break;
    }
  }

  #onStopped(m: Member, w: Worker): void {
    if (m.worker === w) {
      this.#retire(m.counters);
      m.retiredFrames += m.counters[If.frames];
      m.counters = newCounterBlock();
      m.worker = null;
    }
    try {
      w.terminate();
    } catch { /* already gone */ }
    if (this.stopping || this.parked) {
      m.stopped?.();
    } else if (!this.host.links.get(this.name)) {
      // gone: the link monitor starts the workers again when it is back
      m.state = "pending";
      m.reason = `input interface ${this.name} does not exist`;
      m.stopped?.();
    } else if (m.permanent) {
      this.#log.error("{interface}: {reason}; not retrying", {
        interface: this.name,
        reason: m.reason,
      });
    } else if (!this.host.closed()) {
      if (m.state === "running" || m.state === "starting") {
        m.state = "error";
        m.reason ??= `worker ${m.index} stopped unexpectedly`;
      }
      m.restarts++;
      const delay = m.backoffMs;
      m.backoffMs = Math.min(m.backoffMs * 2, BACKOFF_MAX_MS);
      m.timer = setTimeout(() => {
        m.timer = undefined;
        if (this.stopping || this.parked || this.host.closed() || !this.lock) return;
        // Members other than the first wait for a running member (the group id).
        const anyRunning = this.members.some((x) => x.state === "running");
        if (m.index === 0 || anyRunning || this.members.every((x) => !x.worker)) {
          this.#startMember(m);
        }
      }, delay);
    }
  }

  /**
   * Fold a stopped worker's counters into the retired sums: every
   * interface-level counter, and the rule and output counters of the slots in
   * the table. A slot that is not in the table holds the counts of a rule or
   * output that went away; they must not reappear when the slot is given to
   * another one.
   */
  #retire(counters: Float64Array): void {
    for (let k = 0; k < RULE_BASE; k++) if (!GAUGES.has(k)) this.retired[k] += counters[k];
    for (const r of this.table.rules) {
      const rb = RULE_BASE + r.slot * RULE_WORDS;
      for (let k = rb; k < rb + RULE_WORDS; k++) this.retired[k] += counters[k];
      for (const o of r.outputs) {
        const ob = OUT_BASE + o.slot * OUT_WORDS;
        for (let k = 0; k < OUT_WORDS; k++) {
          if (k !== Out.queued) this.retired[ob + k] += counters[ob + k]; // a gauge
        }
      }
    }
  }

  /** Zero the retired sums of slots freed by a rule change (their next life starts at 0). */
  forget(freed: { rules: readonly number[]; outputs: readonly number[] }): void {
    for (const slot of freed.rules) {
      this.retired.fill(0, RULE_BASE + slot * RULE_WORDS, RULE_BASE + (slot + 1) * RULE_WORDS);
    }
    for (const slot of freed.outputs) {
      this.retired.fill(0, OUT_BASE + slot * OUT_WORDS, OUT_BASE + (slot + 1) * OUT_WORDS);
    }
  }

  /** Stop a worker; `final` also closes its waker (the group goes away). */
  stopMember(m: Member, final: boolean): Promise<void> {
    if (m.timer !== undefined) clearTimeout(m.timer);
    m.timer = undefined;
    const w = m.worker;
    if (!w) {
      if (final) m.waker.close();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const killer = setTimeout(() => {
        this.#log.warn("{interface}: worker {index} did not stop in time; terminating", {
          interface: this.name,
          index: m.index,
        });
        this.#onEvent(m, w, { type: "stopped", index: m.index });
      }, STOP_TIMEOUT_MS);
      m.stopped = () => {
        clearTimeout(killer);
        m.stopped = undefined;
        if (final) m.waker.close();
        resolve();
      };
      Atomics.store(m.ctl, Ctl.stop, 1);
      m.waker.wake();
    });
  }

  /** Stop the workers (kept for later) and release the lock. */
  async park(): Promise<void> {
    this.parked = true;
    await Promise.all(this.members.map((m) => this.stopMember(m, false)));
    for (const m of this.members) m.state = "pending";
    this.fanoutId = 0;
    this.lock?.close();
    this.lock = null;
  }

  /** Stop for good: workers, wakers, lock. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.lockTimer);
    await this.transition;
    await Promise.all(this.members.map((m) => this.stopMember(m, true)));
    this.lock?.close();
    this.lock = null;
  }

  /** Close the wakers of a group that never started (a refused change). */
  closeWakers(): void {
    for (const m of this.members) m.waker.close();
  }
}

/**
 * The data-path workers (`DataWorker`: one Deno Worker running
 * src/datapath/worker.ts, its counter and control blocks and its waker) and
 * the pool they form (`Pool`).
 *
 * The pool has a fixed number of workers (`workers: N`, default 1) whatever
 * the number of interfaces: every input interface is served by all of them
 * (one RX ring in each, members of the interface's fanout group), and each
 * worker sends on every output interface its rules name. An interface
 * configured with its own `workers` or `cpus` gets dedicated workers instead,
 * which serve it alone (pinned to those CPUs).
 *
 * A worker that fails is restarted with a backoff; the supervisor then sends
 * the new life everything it serves (`WorkerHost.replay`). Its counters are
 * handed to the supervisor first (`WorkerHost.retire`), so no count is lost.
 *
 * @module
 */
import type { FanoutModeName } from "../../ffi/mod.ts";
import type { PriorityMode } from "../config/schema.ts";
import { DEFAULT_WORKER_PRIORITY } from "../config/limits.ts";
import { Waker } from "../../ffi/mod.ts";
import { levelFor, LOG_LEVELS, logger } from "../common/log.ts";
import { newCounterBlock, W, W_WORDS } from "../datapath/counters.ts";
import {
  Ctl,
  type InputRxOptions,
  newControlBlock,
  ROLE_ACTIVE,
  ROLE_STANDBY,
  type TxRingOptions,
  type UnsentMessage,
  type WorkerEvent,
  type WorkerInit,
} from "../datapath/messages.ts";

/** Per input interface tuning (rules.json `interfaces`). */
export interface InterfaceOptions {
  /** Dedicated workers for this interface (instead of the shared pool). */
  workers?: number;
  /** Fanout mode of its workers' rings. */
  fanout?: FanoutModeName;
  /** CPUs its dedicated workers are pinned to. */
  cpus?: number[];
  /** RX ring slots of each of its rings (instead of the size chosen from the interface count). */
  rxFrameCount?: number;
  /** TX ring slots of each TX ring on it. */
  txFrameCount?: number;
  /** Expected peak rate (packets/s): rings on it are sized to hold 50 ms of it. */
  ratePps?: number;
  /** Capture promiscuously on it (a mirror port). */
  promisc?: boolean;
}

/** Ring and worker tuning of the relay. */
export interface DataPathOptions {
  /** RX ring options for every input interface. */
  rx?: InputRxOptions;
  /** TX ring options. */
  tx?: TxRingOptions;
  /** Size of the shared worker pool (default 1). */
  workers?: number;
  /** CPUs the pool's workers are pinned to (worker i on cpus[i % length]). */
  cpus?: number[];
  /**
   * Nice value every worker thread asks for (undefined: left as it is). A
   * worker that may not raise its priority keeps the process's and says so.
   */
  workerNice?: number;
  /** When the workers take `workerNice` (default adaptive: while they fall behind). */
  workerPriority?: PriorityMode;
  /** Per interface overrides. */
  interfaces?: Record<string, InterfaceOptions>;
  /**
   * The data-path worker module (a URL; default: src/datapath/worker.ts). A
   * module that wraps the relay's own (`serveWorker` with hooks) can
   * instrument the data path; the lab uses it to inject faults.
   */
  workerModule?: string;
}

/** The relay's own data-path worker module. */
const WORKER_MODULE = new URL("../datapath/worker.ts", import.meta.url).href;
/** First restart delay; doubled per failure. */
export const BACKOFF_START_MS = 250;
/** Longest restart delay. */
export const BACKOFF_MAX_MS = 10_000;
/** Worker-section words that count (the others are gauges). */
const RETIRED_WORDS = [W.polls, W.gathers, W.wakeups, W.invalid, W.orphans, W.priorityRaises];
/** How long a worker may take to stop before it is terminated. */
const STOP_TIMEOUT_MS = 3000;

/** What a `DataWorker` needs from the supervisor. */
export interface WorkerHost {
  /** Ring and worker tuning. */
  readonly opts: DataPathOptions;
  /** The shared link table. */
  readonly linkTable: Int32Array;
  /** True once the relay is stopping. */
  closed(): boolean;
  /** True while the relay is a standby (its workers send nothing: datapath/standby.ts). */
  standby: boolean;
  /** Init fields the supervisor chooses (TX ring sizes, gathering). */
  initFor(w: DataWorker): Pick<WorkerInit, "tx" | "txFrames" | "coalesceUs" | "coalescePps">;
  /** A (re)started worker runs: send it everything it serves. */
  replay(w: DataWorker): void;
  /** A worker's life ended: fold its counter block into the retired sums. */
  retire(w: DataWorker, counters: Float64Array): void;
  /** A worker failed (it is restarted after a backoff unless the failure is permanent). */
  failed(w: DataWorker, reason: string): void;
  /** A worker reported something about its rings or outputs. */
  event(w: DataWorker, ev: WorkerEvent): void;
  /** Something subscribers may want to hear about changed. */
  changed(): void;
}

/** One data-path worker and its lives (see module doc). */
export class DataWorker {
  readonly #log = logger("supervisor");
  /** Control block (shared with the worker). */
  readonly ctl: Int32Array = newControlBlock();
  /** Cuts the worker's blocking wait short. */
  readonly waker: Waker = new Waker();
  /** The current life's counter block. */
  counters: Float64Array = newCounterBlock();
  /** Worker-section counts ({@link W}) of earlier lives (gauges excluded). */
  readonly retired: Float64Array = new Float64Array(W_WORDS);
  /** The running Deno Worker, if any. */
  worker: Worker | null = null;
  /** What it is doing. */
  state: "starting" | "running" | "error" | "stopped" = "stopped";
  /** Why it is not running. */
  reason?: string;
  /** Restarts so far. */
  restarts = 0;
  /** Failed for a reason retrying cannot fix (permission denied): not restarted. */
  permanent = false;
  /** Delay of the next restart. */
  backoffMs = BACKOFF_START_MS;
  #timer?: ReturnType<typeof setTimeout>;
  #seq = 0;
  #stopping = false;
  #stopped?: () => void;

  /**
   * @param index worker index (pool workers first, then dedicated ones)
   * @param host the supervisor
   * @param cpu CPU to pin it to
   * @param dedicated the interface it serves alone, if it is a dedicated worker
   */
  constructor(
    readonly index: number,
    readonly host: WorkerHost,
    readonly cpu?: number,
    readonly dedicated?: string,
  ) {}

  /** Whether a worker runs or is about to be restarted. */
  get alive(): boolean {
    return this.worker !== null || this.#timer !== undefined;
  }

  /** Tell the worker the log level in force for its category (mcr.worker). */
  pushLogLevel(): void {
    Atomics.store(this.ctl, Ctl.logLevel, LOG_LEVELS.indexOf(levelFor(["worker"])));
  }

  /**
   * Tell the worker the relay's role: it reads it once per batch, so the next
   * batch runs with it (datapath/standby.ts).
   */
  pushRole(): void {
    Atomics.store(this.ctl, Ctl.role, this.host.standby ? ROLE_STANDBY : ROLE_ACTIVE);
  }

  /** Start a life (no-op while one runs). */
  start(): void {
    if (this.worker || this.#stopping || this.host.closed()) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const w = new Worker(this.host.opts.workerModule ?? WORKER_MODULE, { type: "module" });
    this.worker = w;
    this.state = "starting";
    this.#seq = 0;
    Atomics.store(this.ctl, Ctl.stop, 0);
    Atomics.store(this.ctl, Ctl.seq, 0);
    this.pushLogLevel();
    this.pushRole();
    w.onmessage = (e: MessageEvent<WorkerEvent>) => this.#onEvent(w, e.data);
    w.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#onEvent(w, { type: "fatal", index: this.index, message: e.message });
      this.#onEvent(w, { type: "stopped", index: this.index });
    };
    const init: WorkerInit = {
      type: "init",
      index: this.index,
      links: this.host.linkTable,
      wakeFd: this.waker.fd,
      counters: this.counters,
      ctl: this.ctl,
      cpu: this.cpu,
      nice: this.host.opts.workerNice,
      priority: this.host.opts.workerPriority ?? DEFAULT_WORKER_PRIORITY,
      ...this.host.initFor(this),
    };
    w.postMessage(init);
  }

  /** Post a message to the running worker (dropped when none runs: a restart replays). */
  send(m: UnsentMessage): void {
    if (!this.worker) return;
    const seq = ++this.#seq;
    this.worker.postMessage({ ...m, seq });
    Atomics.store(this.ctl, Ctl.seq, seq);
    this.waker.wake();
  }

  /** True once the running worker has applied table `version` (or none runs). */
  applied(version: number): boolean {
    return !this.worker || this.state !== "running" || this.counters[W.tableVersion] >= version;
  }

  #onEvent(w: Worker, ev: WorkerEvent): void {
    if (this.worker !== w && ev.type !== "stopped") return;
    switch (ev.type) {
      case "ready":
        this.state = "running";
        this.reason = undefined;
        this.#log.debug("worker {index} running", { index: this.index });
        this.host.replay(this);
        break;
      case "fatal":
        this.state = "error";
        this.reason = `worker ${this.index}: ${ev.message}`;
        // Missing privileges do not heal by retrying: no restart, and callers can tell.
        this.permanent = ev.code === "EPERM" || ev.code === "EACCES";
        break;
      case "stopped":
        this.#onStopped(w);
        break;
      case "log":
        logger("worker")[ev.level === "warning" ? "warn" : ev.level](
          "worker {index}: {message}",
          { index: this.index, message: ev.message },
        );
        return;
      default:
        if (ev.type === "applied") this.settle(); // it handles messages: a healthy life
        this.host.event(this, ev);
    }
    this.host.changed();
  }

  #onStopped(w: Worker): void {
    if (this.worker === w) {
      for (const k of RETIRED_WORDS) this.retired[k] += this.counters[k];
      this.host.retire(this, this.counters);
      this.counters = newCounterBlock();
      this.worker = null;
    }
    try {
      w.terminate();
    } catch { /* already gone */ }
    if (this.#stopping || this.host.closed()) {
      this.state = "stopped";
      this.#stopped?.();
      return;
    }
    if (this.state === "running" || this.state === "starting") {
      this.state = "error";
      this.reason ??= `worker ${this.index} stopped unexpectedly`;
    }
    const reason = this.reason ?? `worker ${this.index} stopped`;
    this.host.failed(this, reason);
    if (this.permanent) {
      this.#log.error("{reason}; not retrying", { reason });
      return;
    }
    this.#log.error("{reason}; restarting in {ms} ms", { reason, ms: this.backoffMs });
    this.restarts++;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.start();
    }, delay);
  }

  /** A life ran long enough: the next failure restarts it quickly again. */
  settle(): void {
    this.backoffMs = BACKOFF_START_MS;
  }

  /** Stop for good (waker closed); resolves when the worker has stopped. */
  stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const w = this.worker;
    if (!w) {
      this.state = "stopped";
      this.waker.close();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const killer = setTimeout(() => {
        this.#log.warn("worker {index} did not stop in time; terminating", { index: this.index });
        this.#onEvent(w, { type: "stopped", index: this.index });
      }, STOP_TIMEOUT_MS);
      this.#stopped = () => {
        clearTimeout(killer);
        this.#stopped = undefined;
        this.waker.close();
        resolve();
      };
      Atomics.store(this.ctl, Ctl.stop, 1);
      this.waker.wake();
    });
  }
}

/** Workers in the shared pool (`workers`, default 1). */
export function poolSize(opts: DataPathOptions): number {
  return Math.max(1, opts.workers ?? 1);
}

/**
 * Dedicated workers of input interface `name`: its own `workers`, else one
 * per CPU of its `cpus`; 0 when it has neither (the shared pool serves it).
 */
export function dedicatedWorkers(opts: DataPathOptions, name: string): number {
  const o = opts.interfaces?.[name];
  if (o?.workers === undefined && o?.cpus === undefined) return 0;
  return Math.max(1, o.workers ?? o.cpus?.length ?? 1);
}

/** CPU of the `i`-th worker pinned round robin over `cpus` (none when the list is empty). */
function cpuOf(cpus: readonly number[] | undefined, i: number): number | undefined {
  return cpus?.length ? cpus[i % cpus.length] : undefined;
}

/** The shared workers and the dedicated ones (see module doc). */
export class Pool {
  /** The shared pool. */
  readonly shared: DataWorker[] = [];
  /** Dedicated workers by interface. */
  readonly dedicated = new Map<string, DataWorker[]>();
  #next: number;

  /** @param host the supervisor */
  constructor(readonly host: WorkerHost) {
    const n = poolSize(host.opts);
    for (let i = 0; i < n; i++) this.shared.push(new DataWorker(i, host, cpuOf(host.opts.cpus, i)));
    this.#next = n;
  }

  /** Whether `name` has dedicated workers (its own `workers` or `cpus`). */
  isDedicated(name: string): boolean {
    return dedicatedWorkers(this.host.opts, name) > 0;
  }

  /** The workers that serve input interface `name` (dedicated ones are created here). */
  workersFor(name: string): DataWorker[] {
    const n = dedicatedWorkers(this.host.opts, name);
    if (n === 0) return this.shared;
    let d = this.dedicated.get(name);
    if (!d) {
      const cpus = this.host.opts.interfaces![name].cpus;
      d = [];
      for (let i = 0; i < n; i++) {
        d.push(new DataWorker(this.#next++, this.host, cpuOf(cpus, i), name));
      }
      this.dedicated.set(name, d);
    }
    return d;
  }

  /** Stop and forget the dedicated workers of an interface that has no rules any more. */
  async release(name: string): Promise<void> {
    const d = this.dedicated.get(name);
    if (!d) return;
    this.dedicated.delete(name);
    await Promise.all(d.map((w) => w.stop()));
  }

  /** Every worker. */
  *all(): IterableIterator<DataWorker> {
    yield* this.shared;
    for (const d of this.dedicated.values()) yield* d;
  }

  /** Stop every worker. */
  async stop(): Promise<void> {
    await Promise.all([...this.all()].map((w) => w.stop()));
  }
}

/**
 * One input interface (`Input`): its rules (a versioned table), its input
 * slot (counter section) and the workers that serve it — its fanout group's
 * members, each an RX ring in one data-path worker (pool.ts) — and their
 * rings' lifecycle: open (the first member asks the kernel for a free fanout
 * group id, the others join it), close, reopen with backoff after a failure.
 *
 * Whether the rings should be open follows the interface's link and its
 * input lock ({@link Input.reconcile}): open while the link is present, of
 * a link type mcr can capture (link_types.ts), up, and the lock held (a
 * second relay in the same network namespace cannot capture the interface
 * too; the lock is retried while another holds it). On a link type it
 * cannot capture (loopback, GRE, ...) its rules are in error with the
 * reason, and no ring is opened: its frames would not parse.
 *
 * @module
 */
import { Errno, type FanoutModeName, InputLock, McrError } from "../../ffi/mod.ts";
import { logger } from "../common/log.ts";
import type { InputRxOptions, TableRule, WorkerEvent, WorkerTable } from "../datapath/messages.ts";
import { IFF_UP, linkProblem } from "../datapath/link_table.ts";
import { linkTypeProblem } from "../datapath/link_types.ts";
import type { LinkChange, Links } from "./links.ts";
import { BACKOFF_MAX_MS, BACKOFF_START_MS, type DataWorker } from "./pool.ts";

/** How often to retry an input lock held by another relay (ms). */
const LOCK_RETRY_MS = 2000;
/** How long closing a ring may take before the worker is assumed gone. */
const CLOSE_TIMEOUT_MS = 3000;

/** What a member's ring is doing. */
export type MemberState = "starting" | "running" | "pending" | "error";

/** One fanout member of an input interface: its ring in one worker. */
export interface Member {
  /** The interface. */
  readonly input: Input;
  /** Index among the interface's members. */
  readonly index: number;
  /** The worker that holds the ring. */
  readonly worker: DataWorker;
  /** What its ring is doing. */
  state: MemberState;
  /** Why it is not running. */
  reason?: string;
  /** Ring reopens after a failure. */
  restarts: number;
  /** Failed for a reason retrying cannot fix (permission denied). */
  permanent: boolean;
  /** Delay of the next reopen. */
  backoffMs: number;
  /** Pending reopen. */
  timer?: ReturnType<typeof setTimeout>;
  /** An open request is in flight (with a request for a new fanout group id). */
  opening: false | "join" | "new";
  /** Resolves a close request once the worker confirms it (or is gone). */
  closing?: () => void;
  /** Frames taken by earlier lives of its worker. */
  retiredFrames: number;
}

/** What an `Input` needs from the supervisor. */
export interface InputHost {
  /** The link table. */
  readonly links: Links;
  /** True once the relay is stopping. */
  closed(): boolean;
  /** The interface's first ring runs (its memberships may need a rejoin). */
  groupReady(input: Input): void;
  /** Something subscribers may want to hear about changed. */
  changed(): void;
}

/** One input interface and its members (see module doc). */
export class Input {
  readonly #log = logger("supervisor");
  /** Fanout members. */
  readonly members: Member[];
  /** Fanout mode. */
  readonly fanout: FanoutModeName;
  /** Fanout group id (kernel-chosen by the first member). */
  fanoutId = 0;
  /** The supervisor wants the rings open. */
  active = false;
  /** Being removed for good. */
  stopping = false;
  /** The input lock while rings may be open. */
  lock: InputLock | null = null;
  /** Interface index the lock and rings belong to. */
  ifindex = 0;
  /** Why the input lock could not be taken (another relay captures the interface). */
  lockError?: string;
  /** Retry of the lock. */
  lockTimer?: ReturnType<typeof setTimeout>;
  /** Serializes start/park transitions (the supervisor's). */
  transition: Promise<void> = Promise.resolve();
  /** "Does not exist" has been logged for the current absence. */
  announcedMissing = false;
  /** Why the interface's link type cannot be captured (logged once per reason). */
  #linkTypeError?: string;
  #settle: (() => void)[] = [];

  /**
   * @param name interface name
   * @param slot input slot (counter section, ring tag)
   * @param gen generation of this slot assignment
   * @param table its rules
   * @param workers the workers that serve it (one member each)
   * @param rx RX ring options for its rings
   * @param host the supervisor
   */
  constructor(
    readonly name: string,
    readonly slot: number,
    readonly gen: number,
    public table: WorkerTable,
    workers: readonly DataWorker[],
    readonly rx: InputRxOptions,
    readonly host: InputHost,
  ) {
    this.fanout = rx.fanout ?? "hash";
    this.members = workers.map((worker, index) => ({
      input: this,
      index,
      worker,
      state: "pending",
      restarts: 0,
      permanent: false,
      backoffMs: BACKOFF_START_MS,
      opening: false,
      retiredFrames: 0,
    }));
  }

  /** True when a member failed for lack of privileges (CAP_NET_RAW). */
  get permissionDenied(): boolean {
    return this.members.some((m) => m.permanent || m.worker.permanent);
  }

  /** The member held by `w`, if any. */
  memberOf(w: DataWorker): Member | undefined {
    return this.members.find((m) => m.worker === w);
  }

  /**
   * {@link reconcile} after the earlier start/park transitions (they run one
   * at a time); its failure is logged.
   */
  reconcileSoon(): Promise<void> {
    const f = () => this.reconcile();
    const run = this.transition.then(f, f);
    this.transition = run.catch((e) => {
      this.#log.error("{interface}: {error}", {
        interface: this.name,
        error: (e as Error).message,
      });
    });
    return this.transition;
  }

  /**
   * Bring an input interface's rings in line with its link: closed while the
   * interface is missing or locked by another relay; open (on the current
   * interface index) otherwise.
   */
  async reconcile(): Promise<void> {
    if (this.stopping || this.host.closed()) return;
    const link = this.host.links.get(this.name);
    if (!link || (this.lock && link.ifindex !== this.ifindex)) {
      if (this.active || this.lock) await this.park();
      if (!link) {
        const reason = `input interface ${this.name} does not exist`;
        // one line when it goes pending (the link monitor logs when it is gone or back)
        if (!this.announcedMissing && !this.members.some((m) => m.reason === reason)) {
          this.#log.warn(
            "input interface {interface} does not exist; its rules are pending until it appears",
            { interface: this.name },
          );
        }
        this.announcedMissing = true;
        for (const m of this.members) {
          m.state = "pending";
          m.reason = reason;
        }
        this.host.changed();
        return;
      }
      this.announcedMissing = false;
    }
    if (this.#refuseLinkType(link.type)) {
      if (this.active || this.lock) await this.park();
      for (const m of this.members) {
        m.state = "error";
        m.reason = this.#linkTypeError;
      }
      this.host.changed();
      return;
    }
    if (!this.lock && !this.#takeLock(link.ifindex)) return;
    // A packet socket cannot join a fanout group on an interface that is
    // administratively down: open once it is up (its rules are in error
    // meanwhile, and the link monitor calls us again).
    if (!(link.flags & IFF_UP)) return;
    for (const w of new Set(this.members.map((m) => m.worker))) w.start();
    if (!this.active) await this.start();
  }

  /**
   * True when the interface's link type `type` cannot be captured: the reason is in
   * `#linkTypeError` (logged when it changes).
   */
  #refuseLinkType(type: number): boolean {
    const why = linkTypeProblem("input", this.name, type);
    if (why !== undefined && why !== this.#linkTypeError) {
      this.#log.error("{reason}; its rules are in error", { reason: why });
    }
    this.#linkTypeError = why;
    return why !== undefined;
  }

  /** The interface changed (link monitor): say what changed, and bring the rings in line. */
  linkChanged(c: LinkChange): void {
    const was = linkProblem(c.name, c.prev), now = linkProblem(c.name, c.next);
    if (!c.prev) this.#log.info("input interface {interface} appeared", { interface: c.name });
    else if (!c.next) {
      this.#log.warn("input interface {interface} is gone; its rules are pending", {
        interface: c.name,
      });
      this.announcedMissing = true;
    } else if (was !== now) {
      if (now) this.#log.warn(`input ${now}`, { interface: c.name });
      else this.#log.info("input interface {interface} is up", { interface: c.name });
    }
    this.reconcileSoon();
  }

  /** Take the input lock of `ifindex`; on failure say why and retry later. */
  #takeLock(ifindex: number): boolean {
    clearTimeout(this.lockTimer);
    this.lockTimer = undefined;
    try {
      this.lock = new InputLock(ifindex);
      this.ifindex = ifindex;
      if (this.lockError) this.#log.info("{interface}: input lock taken", { interface: this.name });
      this.lockError = undefined;
      return true;
    } catch (e) {
      const msg = e instanceof McrError && e.errno === Errno.EADDRINUSE
        ? `input interface ${this.name} is already captured by another mcr relay in this ` +
          `network namespace (lock @mcr/rx/${ifindex}); retrying every ${LOCK_RETRY_MS / 1000} s`
        : (e as Error).message;
      if (this.lockError !== msg) {
        this.#log.error("{interface}: {reason}", { interface: this.name, reason: msg });
      }
      this.lockError = msg;
      for (const m of this.members) {
        m.state = "error";
        m.reason = msg;
      }
      this.lockTimer = setTimeout(() => {
        this.lockTimer = undefined;
        this.reconcileSoon();
      }, LOCK_RETRY_MS);
      this.host.changed();
      return false;
    }
  }

  /** Send rule changes to every member's worker. */
  sendRules(upsert: TableRule[], remove: number[], links: Record<string, number>): void {
    for (const m of this.members) this.#sendRules(m, upsert, remove, links);
  }

  #sendRules(m: Member, upsert: TableRule[], remove: number[], links: Record<string, number>) {
    m.worker.send({
      type: "rules",
      slot: this.slot,
      gen: this.gen,
      interface: this.name,
      upsert,
      remove,
      links,
    });
  }

  /** A (re)started worker: send it every rule, and open its ring if the rings should be open. */
  replay(m: Member): void {
    this.#sendRules(m, this.table.rules, [], this.table.links ?? {});
    m.opening = false;
    if (this.active) {
      m.state = "starting";
      this.#pump();
    }
  }

  /** Open the rings; resolves once every member runs or failed. */
  start(): Promise<void> {
    this.active = true;
    for (const m of this.members) {
      m.backoffMs = BACKOFF_START_MS;
      if (m.state !== "running") m.state = "starting";
    }
    this.#pump();
    return this.#settled();
  }

  /** Resolves when no member is on its way (all running, failed or pending). */
  #settled(): Promise<void> {
    if (!this.members.some((m) => m.state === "starting" && !m.permanent)) return Promise.resolve();
    return new Promise((r) => this.#settle.push(r));
  }

  #checkSettled(): void {
    if (this.members.some((m) => m.state === "starting" && !m.permanent && m.worker.alive)) return;
    const s = this.#settle;
    this.#settle = [];
    for (const r of s) r();
  }

  /**
   * Send the open requests that can go now. Without a running member the
   * group has no id yet: one member asks for a new one, the others wait for
   * it (two members asking at once would make two groups, and every frame
   * would be delivered twice).
   */
  #pump(): void {
    if (!this.active || this.stopping || this.host.closed()) return;
    const group = this.fanout !== "none";
    const running = this.members.some((m) => m.state === "running");
    for (const m of this.members) {
      if (m.state === "running" || m.opening || m.timer !== undefined || m.permanent) continue;
      if (m.worker.state !== "running") continue; // its replay opens it
      if (group && !running) {
        if (this.members.some((x) => x.opening === "new")) return;
        this.#open(m, "new");
        return;
      }
      this.#open(m, "join");
    }
  }

  #open(m: Member, how: "join" | "new"): void {
    m.opening = how;
    m.state = "starting";
    const rx: InputRxOptions = { ...this.rx, fanout: this.fanout };
    if (this.fanout !== "none") {
      if (how === "new") rx.uniqueFanoutId = true;
      else rx.fanoutId = this.fanoutId;
    }
    m.worker.send({
      type: "open",
      slot: this.slot,
      gen: this.gen,
      interface: this.name,
      member: m.index,
      link: this.host.links.slot(this.name),
      rx,
    });
  }

  /** A member's worker reported on its ring. */
  onRing(m: Member, ev: Extract<WorkerEvent, { type: "ring" }>): void {
    switch (ev.state) {
      case "open": {
        const first = !this.members.some((x) => x !== m && x.state === "running");
        m.opening = false;
        m.state = "running";
        m.reason = undefined;
        m.backoffMs = BACKOFF_START_MS;
        if (first && ev.geometry) this.fanoutId = ev.geometry.fanoutId;
        this.#log.info(
          "{interface}: member {member} forwarding in worker {worker} (ring {geometry})",
          {
            interface: this.name,
            member: m.index,
            worker: m.worker.index,
            geometry: JSON.stringify(ev.geometry),
          },
        );
        if (first) this.host.groupReady(this);
        this.#pump();
        break;
      }
      case "error": {
        m.opening = false;
        const missing = ev.code === "ENODEV" || ev.code === "ENETDOWN" || ev.code === "ENXIO";
        const exists = this.host.links.get(this.name) !== undefined;
        m.state = missing && !exists ? "pending" : "error";
        m.permanent = ev.code === "EPERM" || ev.code === "EACCES";
        m.reason = m.state === "pending"
          ? `input interface ${this.name} does not exist`
          : `worker ${m.worker.index}: ${ev.message}`;
        if (m.state === "error" && this.active && !this.stopping) {
          this.#log.error("{interface}: {reason}{retry}", {
            interface: this.name,
            reason: m.reason,
            retry: m.permanent ? "; not retrying" : `; retrying in ${m.backoffMs} ms`,
          });
          if (!m.permanent) this.#retryLater(m);
        }
        this.#pump();
        break;
      }
      case "closed":
        m.opening = false;
        if (m.state !== "error") m.state = "pending";
        m.closing?.();
        m.closing = undefined;
        break;
    }
    this.#checkSettled();
  }

  #retryLater(m: Member): void {
    clearTimeout(m.timer);
    const delay = m.backoffMs;
    m.backoffMs = Math.min(m.backoffMs * 2, BACKOFF_MAX_MS);
    m.timer = setTimeout(() => {
      m.timer = undefined;
      m.restarts++;
      this.#pump();
    }, delay);
  }

  /** A worker failed: its members' rings are gone (its replay reopens them). */
  workerFailed(w: DataWorker, reason: string): void {
    for (const m of this.members) {
      if (m.worker !== w) continue;
      m.opening = false;
      if (m.state === "running" || m.state === "starting") {
        m.state = "error";
        m.reason = reason;
      }
      m.closing?.();
      m.closing = undefined;
    }
    this.#pump(); // another member may take over the group id
    this.#checkSettled();
  }

  #close(m: Member, forget: boolean): Promise<void> {
    clearTimeout(m.timer);
    m.timer = undefined;
    if (m.worker.state !== "running") {
      m.opening = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        m.closing = undefined;
        resolve();
      }, CLOSE_TIMEOUT_MS);
      m.closing = () => {
        clearTimeout(t);
        resolve();
      };
      m.worker.send({ type: "close", slot: this.slot, forget });
    });
  }

  /** Close the rings (the rules stay) and release the lock. */
  async park(): Promise<void> {
    this.active = false;
    await Promise.all(this.members.map((m) => this.#close(m, false)));
    for (const m of this.members) if (m.state !== "error" || !m.permanent) m.state = "pending";
    this.fanoutId = 0;
    this.lock?.close();
    this.lock = null;
    this.#checkSettled();
  }

  /** Stop for good: rings closed, rules and counters dropped in every worker, lock released. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.active = false;
    clearTimeout(this.lockTimer);
    await this.transition;
    await Promise.all(this.members.map((m) => this.#close(m, true)));
    this.lock?.close();
    this.lock = null;
    this.#checkSettled();
  }
}

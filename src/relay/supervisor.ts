/**
 * The supervisor: owns the rule set and the data-path workers. It turns a
 * rule set into versioned tables (stable counter slots, all or nothing:
 * tables.ts) and sends each input interface's workers only what changed
 * (inputs.ts), runs the worker pool (pool.ts), keeps the IGMP memberships
 * (igmp.ts) and the UDP port claims of unicast inputs (port_claims.ts), runs
 * captures (capture.ts), and reports stats (stats.ts) and state changes
 * (events.ts). It watches every interface through the link table (links.ts):
 * a missing input interface costs no ring — its rules are `pending` until it
 * appears, its rings close when it goes; an input link down or without
 * carrier puts its rules in `error` (the rings stay open: the kernel resumes
 * delivery when the link is back). Each input interface is locked (ffi
 * `InputLock`) so that a second relay in the same network namespace cannot
 * capture it too.
 *
 * @module
 */
import { MAX_INPUT_SLOTS } from "../config/limits.ts";
import { logger, onLogLevelChange } from "../common/log.ts";
import {
  COUNTER_SLOTS,
  In,
  IN_WORDS,
  inBase,
  OUT_BASE,
  OUT_WORDS,
  zeroRule,
} from "../datapath/counters.ts";
import type { InputRxOptions, WorkerEvent, WorkerTable } from "../datapath/messages.ts";
import { type RelayEvent, StateEvents } from "./events.ts";
import { Memberships } from "./igmp.ts";
import { MldMemberships } from "./mld.ts";
import { PortClaims } from "./port_claims.ts";
import { Input, type InputHost } from "./inputs.ts";
import { type LinkChange, Links } from "./links.ts";
import { type DataPathOptions, type DataWorker, Pool, type WorkerHost } from "./pool.ts";
import { rxRingFor, type WorkerRings, workerRings } from "./rings.ts";
import {
  collectRuleStats,
  collectStats,
  type RelayStats,
  type RuleStats,
  type StatsSource,
} from "./stats.ts";
import { collectCounters, type CounterSnapshot } from "./counter_snapshot.ts";
import { type RuleSpec, SlotAllocator, Slots } from "./tables.ts";
import {
  planRuleChange,
  planRuleSet,
  type PlanSlots,
  type RulePlan,
  type Tables,
} from "./rule_plans.ts";
import { OutputErrors } from "./output_errors.ts";
import { inputStates, ruleErrorsOf } from "./states.ts";
import { OutputLinkTypes } from "./output_link_types.ts";
import { StreamMonitor } from "./stream_monitor.ts";
import { PathMonitor } from "./path_monitor.ts";
import { Captures } from "./capture.ts";
import { retireWorker } from "./retire.ts";

/** Events of a burst of worker reports are published together after this (ms). */
const PUBLISH_DELAY_MS = 10;
/** How long a rule change waits for the workers to apply it (ms). */
const APPLY_TIMEOUT_MS = 5000;

/** The relay's control half (see module doc). */
export class Supervisor {
  readonly #log = logger("supervisor");
  readonly #slots = new Slots();
  readonly #inputSlots = new SlotAllocator(MAX_INPUT_SLOTS, "input interface");
  #gen = 0;
  /** Input interfaces with rules. */
  readonly #inputs = new Map<string, Input>();
  /** Every input whose slot is assigned, by slot (those being removed included). */
  readonly #bySlot = new Map<number, Set<Input>>();
  /** Outputs in error, as the workers report them. */
  readonly #outErrors = new OutputErrors(
    this.#log,
    () => [...this.#inputs.values()].map((g) => g.table.rules),
  );
  /** Counts of earlier worker lives (counter-block layout). */
  readonly #retired = new Float64Array(COUNTER_SLOTS);
  readonly #links = new Links();
  readonly #igmp = new Memberships(this.#links);
  readonly #mld = new MldMemberships(this.#links);
  readonly #claims = new PortClaims(this.#links, { changed: () => this.#publishSoon() });
  readonly #outputTypes = new OutputLinkTypes((name) => this.#links.get(name));
  /** What follows every rule change besides the tables (`sync`: a new set; `change`: a delta). */
  readonly #followers = [this.#igmp, this.#mld, this.#claims, this.#outputTypes];
  /** Rules' own errors: a refused port claim, an output on a link type mcr cannot send on. */
  readonly #ruleErrors = ruleErrorsOf(this.#claims.errors, this.#outputTypes.errors);
  readonly #events = new StateEvents();
  readonly #pool: Pool;
  readonly #inputHost: InputHost;
  readonly #unlisten: () => void;
  readonly #unlistenAddresses: () => void;
  readonly #opts: DataPathOptions;
  #linksStarted?: Promise<void>;
  #version = 0;
  #closed = false;
  #publishTimer?: ReturnType<typeof setTimeout>;
  /** Tell the subscribers about an event. */
  readonly #emit = (e: RelayEvent) => this.#events.emit(e);
  /** Rates and alarms of the rules with `health`. */
  readonly #streams = new StreamMonitor(() => this.statsSource(), this.#emit);
  /** What follows the tables: the stream monitor, the failover rules' paths (path_monitor.ts). */
  readonly #monitors = [this.#streams, new PathMonitor(() => this.statsSource(), this.#emit)];
  /** Captures running (`mcr ctl capture`). */
  readonly captures = new Captures({ inputs: this.#inputs, closed: () => this.#closed });

  /** @param opts ring/worker tuning */
  constructor(opts: DataPathOptions = {}) {
    this.#opts = opts;
    const host: WorkerHost = {
      opts,
      linkTable: this.#links.table,
      closed: () => this.#closed,
      standby: false,
      initFor: (w) => this.#initFor(w),
      replay: (w) => this.#replay(w),
      retire: (w, c) => this.#retire(w, c),
      failed: (w, reason) => {
        for (const i of this.#allInputs()) i.workerFailed(w, reason);
        this.#outErrors.deleteWorker(w.index);
      },
      event: (w, ev) => this.#onEvent(w, ev),
      changed: () => this.#publishSoon(),
    };
    this.#pool = new Pool(host);
    this.#inputHost = {
      links: this.#links,
      closed: () => this.#closed,
      groupReady: (g) => {
        this.#igmp.rejoin(g.name);
        this.#mld.rejoin(g.name);
      },
      changed: () => this.#publishSoon(),
    };
    // Workers drop messages below their category's level at the source.
    this.#unlisten = onLogLevelChange(() => {
      for (const w of this.#pool.all()) w.pushLogLevel();
    });
    this.#links.on((c) => this.#onLink(c));
    this.#unlistenAddresses = this.#links.onAddress(() => {
      if (!this.#closed) this.#claims.addressesChanged();
    });
  }

  /** The link table (what the kernel says about each interface). */
  get links(): Links {
    return this.#links;
  }

  /** Subscribe to state changes; returns an unsubscribe function. */
  on(listener: (ev: RelayEvent) => void): () => void {
    return this.#events.on(listener);
  }

  /** Make the data path a standby (relay/role.ts) or active again: each worker's next batch. */
  setStandby(standby: boolean): void {
    this.#pool.host.standby = standby;
    for (const w of this.#pool.all()) w.pushRole();
  }

  /** Tell subscribers about an event that is not a state change (a reload). */
  emit(ev: RelayEvent): void {
    this.#events.emit(ev);
  }

  /** Snapshot of all counters and states. */
  stats(): RelayStats {
    const s = collectStats(this.statsSource());
    // the IGMP memberships' counts, limits and refusals; the UDP port claims'
    return { ...s, igmp: this.#igmp.stats(), mld: this.#mld.stats(), claims: this.#claims.stats() };
  }

  /** The counters rates are computed from (see {@link collectCounters}). */
  counters(): CounterSnapshot {
    return collectCounters(this.statsSource());
  }

  /** The stats of the rules with these ids (see {@link collectRuleStats}). */
  ruleStats(ids: ReadonlySet<string>): RuleStats[] {
    return collectRuleStats(this.statsSource(), ids);
  }

  /** What counters and states are read from (stats.ts: `collectStats`, `countRuleStates`). */
  statsSource(): StatsSource {
    return {
      inputs: this.#inputs.values(),
      workers: this.#pool.all(),
      retired: this.#retired,
      links: this.#links,
      outputErrors: this.#outErrors.map,
      ruleErrors: this.#ruleErrors,
      streams: this.#streams,
    };
  }

  /** True when some ring or worker failed for lack of privileges (CAP_NET_RAW). */
  get permissionDenied(): boolean {
    for (const g of this.#inputs.values()) if (g.permissionDenied) return true;
    return false;
  }

  *#allInputs(): IterableIterator<Input> {
    for (const set of this.#bySlot.values()) yield* set;
  }

  #publish(): void {
    if (!this.#events.listened) return;
    const errors = this.#outErrors;
    this.#events.publish(inputStates(this.statsSource()), errors.map, errors.takeChanged(), {
      errors: this.#ruleErrors,
      changed: [...this.#claims.takeChanged(), ...this.#outputTypes.takeChanged()],
    });
  }

  /**
   * Publish state changes once per burst of worker events (a table with many
   * outputs reports each of them): one comparison of states instead of one per event.
   */
  #publishSoon(): void {
    if (!this.#events.listened || this.#publishTimer !== undefined || this.#closed) return;
    this.#publishTimer = setTimeout(() => {
      this.#publishTimer = undefined;
      this.#publish();
    }, PUBLISH_DELAY_MS);
  }

  /** TX ring sizes and gathering for a worker (its rings are sized from what it will serve). */
  #initFor(w: DataWorker): WorkerRings {
    const outputs = new Set<string>();
    for (const g of this.#inputs.values()) {
      if (!g.memberOf(w)) continue;
      for (const r of g.table.rules) for (const o of r.outputs) outputs.add(o.interface);
    }
    return workerRings(this.#opts, outputs);
  }

  /** A (re)started worker: send it every input it serves, then the version in force. */
  #replay(w: DataWorker): void {
    for (const g of this.#inputs.values()) {
      const m = g.memberOf(w);
      if (m) g.replay(m);
    }
    this.captures.replay(w);
    w.send({ type: "version", version: this.#version });
  }

  /**
   * Fold a worker's last counter block into the retired sums: for each input
   * it served (the current assignment of the slot), the input section, the
   * rules in its table and their outputs. Slots not in a table hold counts
   * of rules or outputs that went away; they must not reappear when the
   * slot is given to another one.
   */
  #retire(w: DataWorker, c: Float64Array): void {
    retireWorker(this.#retired, c, this.#inputs.values(), w);
  }

  #onEvent(w: DataWorker, ev: WorkerEvent): void {
    if (ev.type === "ring") {
      for (const g of this.#bySlot.get(ev.slot) ?? []) {
        const m = g.memberOf(w);
        if (!m) continue;
        // "closed" answers a close request (its gen is 0 when the worker had nothing there)
        if (ev.gen === g.gen || (ev.state === "closed" && m.closing)) {
          g.onRing(m, ev);
          break;
        }
      }
    } else if (ev.type === "outputs") {
      this.#outErrors.report(w.index, ev.changes);
    }
  }

  /** A link changed: wake every worker (they read the table), and act on input interfaces. */
  #onLink(c: LinkChange): void {
    if (this.#closed) return;
    for (const w of this.#pool.all()) w.waker.wake();
    this.#claims.linkChanged(c.name);
    this.#outputTypes.linkChanged(c, [...this.#inputs.values()].map((g) => g.table));
    const g = this.#inputs.get(c.name);
    if (g) {
      g.linkChanged(c);
      if (c.next && c.prev?.ifindex !== c.next.ifindex) {
        this.#igmp.rejoin(c.name);
        this.#mld.rejoin(c.name);
      }
    }
    this.#publishSoon();
  }

  /** RX ring options for a new input interface (sized from the interfaces its workers serve). */
  #rxFor(name: string, sharedInputs: number): InputRxOptions {
    const dedicated = this.#pool.isDedicated(name);
    return rxRingFor(this.#opts, name, dedicated ? 1 : sharedInputs, this.#links.get(name)?.mtu);
  }

  /** Resolves once every running worker runs table `version` (or a timeout passed). */
  #waitApplied(version: number): Promise<void> {
    const workers = [...this.#pool.all()];
    for (const w of workers) w.send({ type: "version", version });
    return new Promise((resolve) => {
      const t0 = Date.now();
      const check = () => {
        if (workers.every((w) => w.applied(version))) return resolve();
        if (Date.now() - t0 <= APPLY_TIMEOUT_MS) return void setTimeout(check, 2);
        const late = workers.filter((w) => !w.applied(version)).map((w) => w.index);
        this.#log.warn(
          "rule table v{version} not yet applied by worker(s) {workers} after {ms} ms",
          { version, workers: late.join(", "), ms: APPLY_TIMEOUT_MS },
        );
        resolve();
      };
      check();
    });
  }

  /**
   * Replace the rule set: computes new tables (unchanged rules keep their
   * counter slots and never miss a datagram), sends each input interface's
   * workers what changed, opens rings on interfaces that gained rules and
   * closes those of interfaces that lost all, updates IGMP memberships.
   * Resolves when every running worker has the new rules (or failed; a
   * failed worker is restarted with them).
   *
   * All or nothing: the change is checked completely (slot capacity, with the
   * slots of rules, outputs and input interfaces that go away counted as
   * free) before anything changes. It rejects only then, and then nothing
   * changed: rules, slots, tables, IGMP and rings are as they were.
   * @throws {CapacityError} when the rules need more slots than the relay has
   */
  async setRules(rules: RuleSpec[]): Promise<void> {
    await this.#change((current, slots, version) => {
      const plan = planRuleSet(rules, current, slots, version);
      return { plan, sockets: () => this.#followers.forEach((f) => f.sync(rules)) };
    });
  }

  /**
   * Apply a change to the rule set in force: `add` rules join (a rule whose
   * id is in force is replaced), `remove` rules leave. The same result as
   * {@link setRules} with the changed set, in time proportional to the change
   * (the tables, slots and IGMP memberships of the other rules are not
   * touched): adding one rule to 65,536 takes effect within milliseconds.
   * All or nothing, like setRules.
   * @throws {CapacityError} when the change needs more slots than the relay has
   */
  async changeRules(add: RuleSpec[], remove: RuleSpec[]): Promise<void> {
    await this.#change((current, slots, version) => {
      const plan = planRuleChange(add, remove, current, slots, version);
      const sockets = () => this.#followers.forEach((f) => f.change(add, remove));
      return { plan, sockets };
    });
  }

  /**
   * Plan a change (may throw: nothing changed), commit it, update the
   * kernel sockets the rules need (`sockets`: IGMP memberships, UDP port
   * claims), install it.
   */
  async #change(
    planner: (current: Tables, slots: PlanSlots, version: number) => {
      plan: RulePlan;
      sockets: () => void;
    },
  ): Promise<void> {
    if (this.#closed) throw new Error("relay is stopped");
    this.#linksStarted ??= this.#links.start();
    await this.#linksStarted;
    const version = this.#version + 1;
    const current = new Map<string, WorkerTable>();
    for (const [name, g] of this.#inputs) current.set(name, g.table);
    const slots = { rules: this.#slots, inputs: this.#inputSlots, links: this.#links };
    const { plan, sockets } = planner(current, slots, version);
    // Nothing below fails: the change is applied from here on.
    plan.commit();
    this.#version = version;
    sockets();
    await this.#install(plan, version);
    for (const m of this.#monitors) m.refresh();
  }

  /**
   * Put planned (and committed) tables in force: zero the counters of freed
   * slots, send each input interface's workers what changed (`delta`), open
   * rings on interfaces that gained their first rules and close those of
   * interfaces that lost their last, then wait until every running worker
   * runs `version`.
   */
  async #install(plan: RulePlan, version: number): Promise<void> {
    const { tables, inputs } = plan;
    let shared = 0; // input interfaces the pool serves once the change is in force
    for (const name of new Set([...this.#inputs.keys(), ...tables.tables.keys()])) {
      const t = tables.tables.get(name);
      if ((!t || t.rules.length > 0) && !this.#pool.isDedicated(name)) shared++;
    }
    // Freed slots start their next life at zero (retired counts included).
    for (const slot of tables.freed.rules) {
      zeroRule(this.#retired, slot);
    }
    for (const slot of tables.freed.outputs) {
      this.#retired.fill(0, OUT_BASE + slot * OUT_WORDS, OUT_BASE + (slot + 1) * OUT_WORDS);
      this.#outErrors.deleteSlot(slot);
    }
    const waits: Promise<unknown>[] = [];
    for (const [name, table] of tables.tables) {
      const g = this.#inputs.get(name);
      if (table.rules.length === 0) {
        if (g) {
          this.#inputs.delete(name);
          waits.push(g.stop().then(() => this.#removed(g)));
        }
        continue;
      }
      if (!g) {
        const slot = inputs.slots.get(name)!;
        const n = new Input(
          name,
          slot,
          ++this.#gen,
          table,
          this.#pool.workersFor(name),
          this.#rxFor(name, shared),
          this.#inputHost,
        );
        this.#retired.fill(0, inBase(slot), inBase(slot) + IN_WORDS);
        this.#inputs.set(name, n);
        let set = this.#bySlot.get(slot);
        if (!set) this.#bySlot.set(slot, set = new Set());
        set.add(n);
        n.sendRules(table.rules, [], table.links ?? {});
        waits.push(n.reconcileSoon());
      } else {
        const { upsert, remove, links } = plan.delta(g.table, table);
        g.table = table;
        if (upsert.length || remove.length) g.sendRules(upsert, remove, links);
      }
    }
    waits.push(this.#waitApplied(version));
    // The tables are in force; a worker that fails to start is restarted with them.
    for (const r of await Promise.allSettled(waits)) {
      if (r.status === "rejected") {
        this.#log.error("applying rule table v{version}: {error}", {
          version,
          error: r.reason instanceof Error ? r.reason.message : String(r.reason),
        });
      }
    }
    this.#publishSoon();
  }

  /** An input interface lost its last rule and its rings are closed: free what it held. */
  async #removed(g: Input): Promise<void> {
    const set = this.#bySlot.get(g.slot);
    set?.delete(g);
    if (set?.size === 0) this.#bySlot.delete(g.slot);
    const r = this.#retired;
    if (r[inBase(g.slot) + In.owner] === g.gen) {
      r.fill(0, inBase(g.slot), inBase(g.slot) + IN_WORDS);
    }
    if (!this.#inputs.has(g.name)) await this.#pool.release(g.name);
  }

  /** Stop every worker (their final counters are kept) and leave all groups. */
  async stop(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const m of this.#monitors) m.close();
    this.#unlisten();
    this.#unlistenAddresses();
    clearTimeout(this.#publishTimer);
    this.#publishTimer = undefined;
    for (const g of this.#inputs.values()) {
      clearTimeout(g.lockTimer);
      g.stopping = true;
    }
    await this.#pool.stop();
    for (const g of this.#inputs.values()) {
      for (const m of g.members) clearTimeout(m.timer);
      g.lock?.close();
      g.lock = null;
    }
    this.#publish(); // the final states, once
    this.#igmp.close();
    this.#mld.close();
    this.#claims.close();
    await this.#links.stop();
  }
}

/**
 * The supervisor: owns the rule set and decides, per input interface,
 * whether its workers run. It turns a rule set into versioned tables (stable
 * counter slots, all or nothing: tables.ts), hands them to the workers of
 * each interface (workers.ts), keeps the IGMP memberships (igmp.ts), and
 * reports stats (stats.ts) and state changes (events.ts).
 *
 * It watches every interface through the link table (links.ts): an input
 * interface that does not exist costs no worker — its rules are `pending`
 * until it appears, and its workers stop when it goes; an input link that is
 * down or without carrier puts its rules in `error` (the workers keep their
 * rings: the kernel resumes delivery when the link comes back). Each input
 * interface is locked (ffi `InputLock`) so that a second relay in the same
 * network namespace cannot capture it too.
 *
 * @module
 */
import { Errno, InputLock, McrError } from "../../ffi/mod.ts";
import { formatIPv4 } from "../common/net.ts";
import { logger, onLogLevelChange } from "../common/log.ts";
import { IFF_UP, linkProblem } from "../datapath/link_table.ts";
import type { WorkerEvent } from "../datapath/messages.ts";
import { type RelayEvent, StateEvents } from "./events.ts";
import { Memberships } from "./igmp.ts";
import { type LinkChange, Links } from "./links.ts";
import { collectStats, type RelayStats, type State } from "./stats.ts";
import { planTables, type RuleSpec, Slots } from "./tables.ts";
import { type DataPathOptions, InputWorkers, type WorkerHost } from "./workers.ts";

/** How often to retry an input lock held by another relay (ms). */
const LOCK_RETRY_MS = 2000;
/** Events of a burst of worker reports are published together after this (ms). */
const PUBLISH_DELAY_MS = 10;

/** The relay's control half (see module doc). */
export class Supervisor {
  readonly #log = logger("supervisor");
  readonly #slots = new Slots();
  readonly #groups = new Map<string, InputWorkers>();
  readonly #outState = new Map<number, { state: State; reason?: string }>();
  readonly #links = new Links();
  readonly #igmp = new Memberships(this.#links);
  readonly #events = new StateEvents();
  readonly #host: WorkerHost;
  readonly #unlisten: () => void;
  #linksStarted?: Promise<void>;
  #version = 0;
  #closed = false;
  #publishTimer?: ReturnType<typeof setTimeout>;

  /** @param opts ring/worker tuning */
  constructor(opts: DataPathOptions = {}) {
    this.#host = {
      opts,
      links: this.#links,
      closed: () => this.#closed,
      outputReport: (g, ev) => this.#outputReport(g, ev),
      groupReady: (g) => this.#igmp.rejoin(g.name),
      changed: () => this.#publishSoon(),
    };
    // Workers drop messages below their category's level at the source.
    this.#unlisten = onLogLevelChange(() => {
      for (const g of this.#groups.values()) g.pushLogLevels();
    });
    this.#links.on((c) => this.#onLink(c));
  }

  /** The link table (what the kernel says about each interface). */
  get links(): Links {
    return this.#links;
  }

  /** Subscribe to state changes; returns an unsubscribe function. */
  on(listener: (ev: RelayEvent) => void): () => void {
    return this.#events.on(listener);
  }

  /** Tell subscribers about an event that is not a state change (a reload). */
  emit(ev: RelayEvent): void {
    this.#events.emit(ev);
  }

  /** Snapshot of all counters and states. */
  stats(): RelayStats {
    const s = collectStats(this.#groups.values(), this.#links, this.#outState);
    // issue 12 (IGMP packing): the memberships' counts, limits and refusals
    return { ...s, igmp: this.#igmp.stats() };
  }

  /** True when some worker failed for lack of privileges (CAP_NET_RAW). */
  get permissionDenied(): boolean {
    for (const g of this.#groups.values()) if (g.permissionDenied) return true;
    return false;
  }

  #publish(): void {
    if (this.#events.listened) this.#events.publish(this.stats());
  }

  /**
   * Publish state changes once per burst of worker events (a table with many
   * outputs reports each of them): one stats() walk instead of one per event.
   */
  #publishSoon(): void {
    if (!this.#events.listened || this.#publishTimer !== undefined || this.#closed) return;
    this.#publishTimer = setTimeout(() => {
      this.#publishTimer = undefined;
      this.#publish();
    }, PUBLISH_DELAY_MS);
  }

  /** A worker reported an output's state: keep it, log the change. */
  #outputReport(g: InputWorkers, ev: Extract<WorkerEvent, { type: "output" }>): void {
    const prev = this.#outState.get(ev.slot);
    this.#outState.set(ev.slot, {
      state: ev.state === "ok" ? "active" : "error",
      reason: ev.reason,
    });
    if (ev.state === "error" && prev?.reason !== ev.reason) {
      this.#log.warn("{interface}: output {output}: {reason}", {
        interface: g.name,
        output: this.#outputName(ev.slot),
        reason: ev.reason,
      });
    } else if (ev.state === "ok" && prev?.state === "error") {
      this.#log.info("{interface}: output {output} recovered", {
        interface: g.name,
        output: this.#outputName(ev.slot),
      });
    }
  }

  #outputName(slot: number): string {
    for (const g of this.#groups.values()) {
      for (const r of g.table.rules) {
        for (const o of r.outputs) {
          if (o.slot === slot) {
            return `${o.interface} ${formatIPv4(o.dst)}:${o.port} of rule ${r.name}`;
          }
        }
      }
    }
    return `#${slot}`;
  }

  /** A link changed: wake every worker (they read the table), and act on input interfaces. */
  #onLink(c: LinkChange): void {
    if (this.#closed) return;
    for (const g of this.#groups.values()) g.wake();
    const g = this.#groups.get(c.name);
    if (g) {
      const was = linkProblem(c.name, c.prev), now = linkProblem(c.name, c.next);
      if (!c.prev) this.#log.info("input interface {interface} appeared", { interface: c.name });
      else if (!c.next) {
        this.#log.warn("input interface {interface} is gone; its rules are pending", {
          interface: c.name,
        });
        g.announcedMissing = true;
      } else if (was !== now) {
        if (now) this.#log.warn(`input ${now}`, { interface: c.name });
        else this.#log.info("input interface {interface} is up", { interface: c.name });
      }
      this.#transition(g, () => this.#reconcile(g));
      if (c.next && c.prev?.ifindex !== c.next.ifindex) this.#igmp.rejoin(c.name);
    }
    this.#publishSoon();
  }

  /** Run `f` after the group's earlier start/park transitions. */
  #transition(g: InputWorkers, f: () => Promise<void>): Promise<void> {
    const run = g.transition.then(f, f);
    g.transition = run.catch((e) => {
      this.#log.error("{interface}: {error}", { interface: g.name, error: (e as Error).message });
    });
    return g.transition;
  }

  /**
   * Bring an input interface's workers in line with its link: none while the
   * interface is missing or locked by another relay; running (on the current
   * interface index) otherwise.
   */
  async #reconcile(g: InputWorkers): Promise<void> {
    if (g.stopping || this.#closed) return;
    const link = this.#links.get(g.name);
    const running = g.members.some((m) => m.worker);
    if (!link || (g.lock && link.ifindex !== g.ifindex)) {
      if (running || g.lock) await g.park();
      if (!link) {
        const reason = `input interface ${g.name} does not exist`;
        // one line when it goes pending (the link monitor logs when it is gone or back)
        if (!g.announcedMissing && !g.members.some((m) => m.reason === reason)) {
          this.#log.warn(
            "input interface {interface} does not exist; its rules are pending until it appears",
            { interface: g.name },
          );
        }
        g.announcedMissing = true;
        for (const m of g.members) {
          m.state = "pending";
          m.reason = reason;
        }
        this.#publishSoon();
        return;
      }
      g.announcedMissing = false;
    }
    if (!g.lock && !this.#takeLock(g, link.ifindex)) return;
    // A packet socket cannot join a fanout group on an interface that is
    // administratively down: start once it is up (its rules are in error
    // meanwhile, and the link monitor calls us again).
    if (!(link.flags & IFF_UP)) return;
    if (!g.active) await g.start();
  }

  /** Take the input lock of `ifindex`; on failure say why and retry later. */
  #takeLock(g: InputWorkers, ifindex: number): boolean {
    clearTimeout(g.lockTimer);
    g.lockTimer = undefined;
    try {
      g.lock = new InputLock(ifindex);
      g.ifindex = ifindex;
      if (g.lockError) this.#log.info("{interface}: input lock taken", { interface: g.name });
      g.lockError = undefined;
      return true;
    } catch (e) {
      const msg = e instanceof McrError && e.errno === Errno.EADDRINUSE
        ? `input interface ${g.name} is already captured by another mcr relay in this ` +
          `network namespace (lock @mcr/rx/${ifindex}); retrying every ${LOCK_RETRY_MS / 1000} s`
        : (e as Error).message;
      if (g.lockError !== msg) {
        this.#log.error("{interface}: {reason}", { interface: g.name, reason: msg });
      }
      g.lockError = msg;
      for (const m of g.members) {
        m.state = "error";
        m.reason = msg;
      }
      g.lockTimer = setTimeout(() => {
        g.lockTimer = undefined;
        this.#transition(g, () => this.#reconcile(g));
      }, LOCK_RETRY_MS);
      this.#publishSoon();
      return false;
    }
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
    const plan = planTables(rules, this.#slots, version, this.#groups.keys());
    const inUse = new Set<string>();
    for (const r of rules) {
      inUse.add(r.input.interface);
      for (const o of r.outputs) inUse.add(o.interface);
    }
    const created = new Map<string, InputWorkers>();
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
        if (table.rules.length > 0 && !this.#groups.has(name)) {
          created.set(name, new InputWorkers(name, table, this.#host));
        }
      }
    } catch (e) {
      for (const g of created.values()) g.closeWakers();
      throw e;
    }
    // Nothing below fails: the change is applied from here on.
    plan.commit();
    this.#version = version;
    // Freed slots start their next life at zero (retired counts included).
    for (const g of this.#groups.values()) g.forget(plan.freed);
    for (const slot of plan.freed.outputs) this.#outState.delete(slot);
    this.#igmp.sync(rules);
    const waits: Promise<unknown>[] = [];
    for (const [name, table] of plan.tables) {
      const g = this.#groups.get(name);
      if (table.rules.length === 0) {
        if (g) {
          this.#groups.delete(name);
          waits.push(g.stop());
        }
        continue;
      }
      if (!g) {
        const n = created.get(name)!;
        this.#groups.set(name, n);
        waits.push(this.#transition(n, () => this.#reconcile(n)));
      } else {
        waits.push(...g.postTable(table));
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

  /** Stop every worker (their final counters are kept) and leave all groups. */
  async stop(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unlisten();
    clearTimeout(this.#publishTimer);
    this.#publishTimer = undefined;
    await Promise.all([...this.#groups.values()].map((g) => g.stop()));
    this.#publish(); // the final states, once
    this.#igmp.close();
    await this.#links.stop();
  }
}

/**
 * Switches of the active path of `failover` rules (redundant inputs,
 * src/datapath/arbiter.ts): the data path switches on its own, with the
 * first datagram after the active path's silence, and counts it in the
 * rule's arbitration block; this monitor looks at those blocks every
 * {@link TICK_MS} while there are failover rules and turns each change into
 * an event (`type: "path"`) and a log line.
 *
 * @module
 */
import { logger } from "../common/log.ts";
import { arbiterView } from "../datapath/arbiter.ts";
import type { TableRedundancy } from "../datapath/messages.ts";
import type { StatsSource } from "./stats.ts";

/** How often the blocks are looked at (ms). */
export const TICK_MS = 50;

/** The active path of a failover rule changed, as the relay reports it (events.ts `RelayEvent`). */
export interface PathEvent {
  /** Event type. */
  type: "path";
  /** The configured rule's name. */
  rule: string;
  /** Index of the input that is active now. */
  active: number;
  /** Index of the input that was active before. */
  previous: number;
  /** Switches of the rule so far. */
  switches: number;
}

/** What the monitor follows of one failover rule. */
interface Followed {
  red: TableRedundancy;
  active: number;
  switches: number;
}

/** Follows the failover rules' active paths (see module doc). */
export class PathMonitor {
  readonly #log = logger("supervisor");
  /** By arbitration block: one per rule, shared by its paths. */
  #followed = new Map<SharedArrayBuffer, Followed>();
  #timer?: ReturnType<typeof setInterval>;
  #closed = false;

  /**
   * @param source what the relay's stats read (the tables)
   * @param emit tells the relay's subscribers about a switch
   */
  constructor(readonly source: () => StatsSource, readonly emit: (ev: PathEvent) => void) {}

  /** The rule tables may have changed: follow their failover rules, tick while there are any. */
  refresh(): void {
    if (this.#closed) return;
    const next = new Map<SharedArrayBuffer, Followed>();
    for (const input of this.source().inputs) {
      for (const r of input.table.rules) {
        const red = r.redundancy;
        if (!red || red.mode !== "failover" || next.has(red.state)) continue;
        const v = arbiterView(red.state);
        next.set(red.state, this.#followed.get(red.state) ?? { red, ...v });
      }
    }
    this.#followed = next;
    if (next.size > 0 && this.#timer === undefined) {
      this.#timer = setInterval(() => this.tick(), TICK_MS);
    } else if (next.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Look at every followed rule once. */
  tick(): void {
    for (const f of this.#followed.values()) {
      const v = arbiterView(f.red.state);
      if (v.switches === f.switches) continue;
      const previous = f.active;
      f.active = v.active;
      f.switches = v.switches;
      this.#log.warn(
        "rule {rule}: input {active} active (was input {previous}; {switches} switches so far)",
        { rule: f.red.rule, active: v.active, previous, switches: v.switches },
      );
      this.emit({
        type: "path",
        rule: f.red.rule,
        active: v.active,
        previous,
        switches: v.switches,
      });
    }
  }

  /** Stop looking. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

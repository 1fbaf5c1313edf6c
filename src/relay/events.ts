/**
 * Relay events: what subscribers (`Relay.on`) hear. Each publish diffs the
 * states of a stats snapshot against the last ones reported and emits only
 * the changes (and "removed" for an input interface that went away).
 *
 * @module
 */
import { logger } from "../common/log.ts";
import type { InterfaceStats, RelayStats, State, WorkerStats } from "./stats.ts";

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
  }
  | {
    /** A reload (`Relay.reload`: SIGHUP, `ctl reload`) starts, applied, or was refused. */
    type: "reload";
    phase: "start" | "done" | "failed";
    path: string;
    reason?: string;
  };

/** Subscribers and the last state reported for each thing (see module doc). */
export class StateEvents {
  readonly #log = logger("supervisor");
  readonly #listeners = new Set<(ev: RelayEvent) => void>();
  readonly #lastState = new Map<string, string>();

  /** Whether anyone listens (a publish without listeners is skipped). */
  get listened(): boolean {
    return this.#listeners.size > 0;
  }

  /** Subscribe; returns an unsubscribe function. */
  on(listener: (ev: RelayEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Tell every subscriber (a listener's failure is logged, not thrown). */
  emit(ev: RelayEvent): void {
    for (const l of this.#listeners) {
      try {
        l(ev);
      } catch (e) {
        this.#log.error("event listener failed: {error}", { error: (e as Error).message });
      }
    }
  }

  /** Diff current states against the last reported ones and emit the changes. */
  publish(st: RelayStats): void {
    if (this.#listeners.size === 0) return;
    const seen = new Set<string>();
    const diff = (key: string, state: string, reason: string | undefined, ev: () => RelayEvent) => {
      seen.add(key);
      const v = `${state}|${reason ?? ""}`;
      if (this.#lastState.get(key) === v) return;
      this.#lastState.set(key, v);
      this.emit(ev());
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
        this.emit({ type: "interface", interface: k.slice(2), state: "removed" });
      }
    }
  }
}

/**
 * Relay events: what subscribers (`Relay.on`) hear. Each publish compares
 * the states now (decided as stats decide them: `inputStates`,
 * `outputState`, `ruleStateOf`) with the last ones reported and emits only
 * the changes (and "removed" for an input interface that went away).
 *
 * @module
 */
import { hostPort, sameIp6 } from "../common/net6.ts";
import { outputDestText, outputPortOf } from "../config/ranges.ts";
import { logger } from "../common/log.ts";
import type { TableOutput, TableRule } from "../datapath/messages.ts";
import type { Role } from "../config/mod.ts";
import type { InterfaceStats, State, WorkerStats } from "./stats.ts";
import { type InputState, outputState, type RuleErrorLookup, ruleStateOf } from "./states.ts";
import type { StreamEvent } from "./stream_monitor.ts";
import type { PathEvent } from "./path_monitor.ts";

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
  }
  | {
    /** The relay's role changed (`Relay.role.set`: `ctl role`, a reload that edited `role`). */
    type: "role";
    role: Role;
    previous: Role;
    /** Who set it: `config`, `ctl`, or the `source` a client gave (a keepalived script). */
    set_by: string;
  }
  /** A rule with `health`: its stream's alarm changed (ok, silent, low_rate). */
  | StreamEvent
  /** A `failover` rule's active input changed (path_monitor.ts). */
  | PathEvent;

/** What an output's events identify it by: its rule's id, interface, destination and port. */
function sameOutput(a: TableRule, x: TableOutput, b: TableRule, y: TableOutput): boolean {
  return a.id === b.id && x.interface === y.interface && x.dst === y.dst &&
    x.hostBits === y.hostBits && x.port === y.port && sameIp6(x.dst6, y.dst6);
}

/** "eth1 239.1.1.1:5000", "eth1 239.20.0.0/16:keep": how an output event names the output. */
function outputName(o: TableOutput): string {
  return `${o.interface} ${hostPort(outputDestText(o), outputPortOf(o.port))}`;
}

/** What was last reported about the rules of one input interface. */
interface InputRecord {
  /** Version of the table last walked. */
  version: number;
  /** The state (and reason) last reported for every rule of that table. */
  rules: string;
  /** Those rules by id. */
  byId: Map<string, TableRule>;
}

/** Rules with an error of their own (see `StatsSource.ruleErrors`), for {@link StateEvents.publish}. */
export interface RuleErrors {
  /** Rule id → reason, now. */
  readonly errors: RuleErrorLookup;
  /** Rules whose own error changed since the last publish: [rule id, input interface]. */
  readonly changed: Iterable<readonly [string, string]>;
}

/** Last reported state of an output, by output slot. */
interface OutputRecord {
  rule: TableRule;
  output: TableOutput;
  /** Its input interface (its rule's state is that interface's). */
  input: string;
  state: string;
}

/**
 * Subscribers and the last state reported for each thing (see module doc).
 *
 * A publish costs a few operations per input interface and worker, plus one
 * per rule of a table that changed since the last publish and one per
 * output whose errors changed: a rule added to 65,536 others walks its
 * table once (identity checks, no strings), never every output's state.
 */
export class StateEvents {
  readonly #log = logger("supervisor");
  readonly #listeners = new Set<(ev: RelayEvent) => void>();
  /** Interfaces and fanout members: key → "state|reason". */
  readonly #lastState = new Map<string, string>();
  /** Rules, by input interface. */
  readonly #inputs = new Map<string, InputRecord>();
  /** Outputs, by slot. */
  readonly #outputs: (OutputRecord | undefined)[] = [];
  /** Rules whose last event carried their own error (over an active interface): id → reason. */
  readonly #ownError = new Map<string, string>();

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

  /**
   * Emit what changed since the last publish: `inputs` are the states now
   * (`inputStates`), `errors` the outputs in error (slot → worker → reason),
   * `dirty` the output slots whose errors changed since the last publish and
   * `rules` the rules with an error of their own.
   */
  publish(
    inputs: readonly InputState[],
    errors: ReadonlyMap<number, ReadonlyMap<number, string>>,
    dirty: Iterable<number>,
    rules?: RuleErrors,
  ): void {
    if (this.#listeners.size === 0) return;
    const seen = new Set<string>();
    const diff = (key: string, state: string, reason: string | undefined, ev: () => RelayEvent) => {
      seen.add(key);
      const v = `${state}|${reason ?? ""}`;
      if (this.#lastState.get(key) === v) return;
      this.#lastState.set(key, v);
      this.emit(ev());
    };
    const ruleStates = new Map<string, InputState>();
    for (const i of inputs) {
      const name = i.input.name;
      ruleStates.set(name, i);
      diff(`i:${name}`, i.state, i.reason, () => ({
        type: "interface",
        interface: name,
        state: i.state,
        ...(i.reason ? { reason: i.reason } : {}),
      }));
      for (const [k, m] of i.input.members.entries()) {
        const { state, reason } = i.members[k];
        diff(`w:${name}:${m.index}`, state, state !== "running" ? reason : undefined, () => ({
          type: "worker",
          interface: name,
          index: m.index,
          state,
          ...(reason && state !== "running" ? { reason } : {}),
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
    const own = rules?.errors;
    this.#moveOutputs(ruleStates);
    for (const i of inputs) this.#rules(i, errors, own);
    for (const name of this.#inputs.keys()) {
      if (!ruleStates.has(name)) this.#inputs.delete(name); // its rules: #moveOutputs
    }
    for (const slot of dirty) {
      const rec = this.#outputs[slot];
      const input = rec && ruleStates.get(rec.input);
      if (rec && input) this.#output(rec.rule, rec.output, rec.input, input.ruleState, errors);
    }
    for (const [id, name] of rules?.changed ?? []) {
      const r = this.#inputs.get(name)?.byId.get(id);
      const i = ruleStates.get(name);
      if (r && i) this.#rule(r, i, own);
    }
  }

  /** Report rule `r` of input `i`, with its own error from `own`, unless already reported so. */
  #rule(r: TableRule, i: InputState, own: RuleErrorLookup | undefined): void {
    const err = i.ruleState === "active" ? own?.get(r.id) : undefined;
    if (this.#ownError.get(r.id) !== err) this.#emitRule(r, i, own);
  }

  /** Emit rule `r`'s state (its input's, or its own error) and remember the own error shown. */
  #emitRule(r: TableRule, i: InputState, own: RuleErrorLookup | undefined): void {
    const { state, reason } = ruleStateOf(i.ruleState, i.ruleReason, own?.get(r.id));
    if (state === "error" && i.ruleState === "active") this.#ownError.set(r.id, reason!);
    else this.#ownError.delete(r.id);
    this.emit({ type: "rule", rule: r.name, id: r.id, state, ...(reason ? { reason } : {}) });
  }

  /** Report the rules (and their outputs) of input `i` that changed. */
  #rules(
    i: InputState,
    errors: ReadonlyMap<number, ReadonlyMap<number, string>>,
    own: RuleErrorLookup | undefined,
  ): void {
    const name = i.input.name;
    const table = i.input.table;
    const v = `${i.ruleState}|${i.ruleReason ?? ""}`;
    let rec = this.#inputs.get(name);
    if (rec && rec.version === table.version && rec.rules === v) return;
    if (!rec) this.#inputs.set(name, rec = { version: -1, rules: "", byId: new Map() });
    const all = rec.rules !== v; // every rule's state changed
    for (const r of table.rules) {
      const prev = rec.byId.get(r.id);
      if (prev === r && !all) continue;
      if (!prev || all) this.#emitRule(r, i, own);
      rec.byId.set(r.id, r);
      for (const o of r.outputs) this.#output(r, o, name, i.ruleState, errors);
    }
    rec.version = table.version;
    rec.rules = v;
  }

  /** Report output `o` of rule `r` if its state changed (or it was not reported before). */
  #output(
    r: TableRule,
    o: TableOutput,
    input: string,
    ruleState: State,
    errors: ReadonlyMap<number, ReadonlyMap<number, string>>,
  ): void {
    const { state, reason } = outputState(ruleState, errors.get(o.slot));
    const v = `${state}|${reason ?? ""}`;
    const rec = this.#outputs[o.slot];
    if (rec && sameOutput(rec.rule, rec.output, r, o)) {
      rec.rule = r;
      rec.output = o;
      if (rec.state === v) return;
      rec.state = v;
    } else {
      this.#outputs[o.slot] = { rule: r, output: o, input, state: v };
    }
    this.emit({
      type: "output",
      rule: r.name,
      output: outputName(o),
      state,
      ...(reason ? { reason } : {}),
    });
  }

  /**
   * First step of a publish: the rules removed since the last publish are forgotten, and the
   * output records of the rules replaced or removed follow them or go. A kept output may have another slot now (its rule left and
   * came back between two publishes), and a slot one rule freed may be another's now: every
   * record is read before any is written.
   */
  #moveOutputs(inputs: ReadonlyMap<string, InputState>): void {
    const moves: [number, OutputRecord][] = [];
    const take = (r: TableRule, next?: TableRule) => {
      for (const o of r.outputs) {
        const rec = this.#outputs[o.slot];
        if (!rec || rec.output !== o) continue;
        this.#outputs[o.slot] = undefined;
        const n = next?.outputs.find((x) => sameOutput(r, o, next, x));
        if (n) moves.push([n.slot, rec]);
      }
    };
    for (const [name, rec] of this.#inputs) {
      const table = inputs.get(name)?.input.table;
      if (table?.version === rec.version) continue;
      let found = 0;
      for (const r of table?.rules ?? []) {
        const prev = rec.byId.get(r.id);
        if (!prev) continue;
        found++;
        if (prev !== r) take(prev, r);
      }
      if (found < rec.byId.size) {
        const ids = new Set(table?.rules.map((r) => r.id));
        for (const [id, r] of rec.byId) {
          if (ids.has(id)) continue;
          take(r);
          rec.byId.delete(id);
          this.#ownError.delete(id);
        }
      }
    }
    for (const [slot, rec] of moves) this.#outputs[slot] = rec;
  }
}

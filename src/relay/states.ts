/**
 * The states the relay reports, decided from what is true now: an input
 * interface's from the link table (present, up, of a link type mcr can
 * capture), its lock and its fanout members; its
 * members' from their workers' reports and heartbeats (a worker whose loop
 * stopped passing is stalled); its rules' from the interface's; an output's
 * from its rule's and the workers' output errors; a rule with an error of
 * its own (its UDP port claim refused, an output on a link type mcr cannot
 * send on) is in error while its interface's rules are active. Stats (stats.ts) and state events (events.ts) both
 * decide them here.
 *
 * @module
 */
import { linkProblem, linkUsable } from "../datapath/link_table.ts";
import { linkTypeProblem } from "../datapath/link_types.ts";
import type { Links } from "./links.ts";
import type {
  InputView,
  InterfaceStats,
  State,
  StatsSource,
  WorkerStats,
  WorkerView,
} from "./stats.ts";
import { W } from "../datapath/counters.ts";

/**
 * A running worker whose loop has not passed for this long (ms) is reported
 * in error: its interfaces stop forwarding through it. Its loop passes at
 * least every 250 ms; only the apply of a very large rule change (about 7 s
 * for 262,144 outputs on this project's VM) holds it longer.
 */
export const STALL_MS = 15_000;

/** Decides states at one moment (`now`): heartbeat ages and stalled workers. */
export class Clock {
  readonly now = Date.now();

  /** Milliseconds since worker `w`'s last loop pass; null when it does not run. */
  heartbeatAge(w: WorkerView): number | null {
    const hb = w.counters[W.heartbeat];
    return w.worker && w.state === "running" && hb ? Math.max(0, this.now - hb) : null;
  }

  /** Why a running worker is not working: its loop has not passed for {@link STALL_MS}. */
  stalled(w: WorkerView): string | undefined {
    const age = this.heartbeatAge(w);
    return age !== null && age > STALL_MS
      ? `worker ${w.index}: its loop has not run for ${Math.round(age / 1000)} s (stalled)`
      : undefined;
  }
}

/** The states of one input interface, its fanout members and its rules (see {@link inputStates}). */
export interface InputState {
  /** The input interface. */
  readonly input: InputView;
  /** Its state. */
  readonly state: InterfaceStats["state"];
  /** Why it is not running. */
  readonly reason?: string;
  /** The state of every rule on it. */
  readonly ruleState: State;
  /** Why its rules are not active (set when `ruleState` is not active). */
  readonly ruleReason?: string;
  /** Its fanout members' states, in `input.members` order (a stalled worker's in error). */
  readonly members: readonly { state: WorkerStats["state"]; reason?: string }[];
}

/** The states of input interface `rt` (as {@link collectStats} reports them). */
export function inputState(rt: InputView, links: Links, clock: Clock): InputState {
  const members = rt.members.map((m) => {
    const why = m.state === "running" ? clock.stalled(m.worker) : undefined;
    return why ? { state: "error" as const, reason: why } : { state: m.state, reason: m.reason };
  });
  const states = members.map((m) => m.state);
  const link = links.get(rt.name);
  const inputProblem = link && !linkUsable(link)
    ? `input ${linkProblem(rt.name, link)}`
    : undefined;
  // a link type mcr cannot capture (loopback, GRE, ...): no ring is opened on it
  const typeProblem = link ? linkTypeProblem("input", rt.name, link.type) : undefined;
  let state: InterfaceStats["state"] = !link
    ? "pending"
    : typeProblem || rt.lockError
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
    : typeProblem ?? rt.lockError ?? inputProblem ?? members.find((m) => m.reason)?.reason;
  if (state === "pending" && link) state = "starting"; // rings on their way
  // A rule forwards while at least one fanout member runs and its input link is up.
  const ruleState: State = typeProblem
    ? "error"
    : state === "pending" || state === "starting"
    ? "pending"
    : state === "running" || (state === "error" && states.includes("running"))
    ? "active"
    : "error";
  return {
    input: rt,
    state,
    ...(reason && state !== "running" ? { reason } : {}),
    ruleState,
    ...(reason && ruleState !== "active" ? { ruleReason: reason } : {}),
    members,
  };
}

/**
 * The states of every input interface, its members and its rules, without
 * reading a counter: what state events need ({@link collectStats} decides
 * the same states the same way). Costs a few operations per input
 * interface, whatever the number of rules.
 */
export function inputStates(src: StatsSource): InputState[] {
  const clock = new Clock();
  return [...src.inputs].map((rt) => inputState(rt, src.links, clock));
}

/**
 * The state of an output of a rule in state `ruleState` whose workers
 * report `errors` (worker index → reason) for its slot: pending with its
 * rule, in error while a worker reports it so and the rule forwards, else
 * active.
 */
export function outputState(
  ruleState: State,
  errors: ReadonlyMap<number, string> | undefined,
): { state: State; reason?: string } {
  if (ruleState === "pending") return { state: "pending" };
  const err = ruleState === "active" && errors?.size ? errors.values().next().value : undefined;
  return err ? { state: "error", reason: err } : { state: "active" };
}

/**
 * Rules with an error of their own, by rule id: a refused UDP port claim
 * (port_claims.ts), an output on a link type mcr cannot send on
 * (output_link_types.ts). `size` counts them.
 */
export interface RuleErrorLookup {
  /** How many rules have an error of their own. */
  readonly size: number;
  /** The own error of rule `id`, if it has one. */
  get(id: string): string | undefined;
}

/** One lookup over several sources of rules' own errors (the first that has one wins). */
export function ruleErrorsOf(...sources: RuleErrorLookup[]): RuleErrorLookup {
  return {
    get size() {
      return sources.reduce((a, s) => a + s.size, 0);
    },
    get(id: string) {
      for (const s of sources) {
        const e = s.get(id);
        if (e !== undefined) return e;
      }
      return undefined;
    },
  };
}

/**
 * The state of a rule whose input interface decides `ruleState` (and
 * `ruleReason`) and whose own error is `own` (its unicast input's UDP port
 * claim refused, an output on a link type mcr cannot send on): in error with that reason while its interface's rules are
 * active (it still relays: its outputs keep their states), else as its
 * interface decides.
 */
export function ruleStateOf(
  ruleState: State,
  ruleReason: string | undefined,
  own: string | undefined,
): { state: State; reason?: string } {
  if (own !== undefined && ruleState === "active") return { state: "error", reason: own };
  return ruleReason ? { state: ruleState, reason: ruleReason } : { state: ruleState };
}

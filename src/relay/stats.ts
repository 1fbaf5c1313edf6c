/**
 * What the relay reports: the stats types (per rule, output, input interface,
 * fanout member, worker) and {@link collectStats}, which sums the workers'
 * counter blocks (and the retired sums of earlier worker lives) and decides
 * every state from what is true now: the link table for inputs, the workers'
 * reports for rings and outputs, claims of unicast inputs (`ruleStateOf`).
 *
 * @module
 */
import { formatIPv4 } from "../common/net.ts";
import { destText, groupText, inputPortOf, outputPortOf } from "../config/ranges.ts";
import type { InputPort, OutputPort } from "../config/schema.ts";
import {
  In,
  IN_DROP,
  inBase,
  Out,
  OUT_BASE,
  OUT_WORDS,
  RULE_BASE,
  RULE_WORDS,
  W,
} from "../datapath/counters.ts";
import { Clock, inputState, outputState, type RuleErrorLookup, ruleStateOf } from "./states.ts";
import { Drop, DROP_NAMES } from "../datapath/packet.ts";
import type { Links } from "./links.ts";
import type { WorkerTable } from "../datapath/messages.ts";
import type { IgmpStats } from "./igmp.ts";
import type { ClaimStats } from "./port_claims.ts";
import type { FdStats } from "./fd_budget.ts";
import type { RoleStats } from "./role.ts";
import type { PoolWorkerStats, WorkerStats } from "./worker_stats.ts";

export type { PoolWorkerStats, WorkerStats };

/** State of a rule or output. */
export type State = "active" | "pending" | "error";

/** Counters of one output. */
export interface OutputStats {
  /** Output interface. */
  interface: string;
  /** Destination group or address, or the range a range input maps into (also for "keep"). */
  group: string;
  /** Destination port, or "keep" (the input datagram's). */
  port: OutputPort;
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
  /** Not sent: the relay was a standby (`role`); what it would have sent. */
  standby: number;
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
  /** Input match: `group` one address or a range ("239.1.0.0/16"), `port` a number or "any". */
  input: { interface: string; group: string; port: InputPort; source?: string; vlan?: number };
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
  /** Waits of the workers serving it (shared with the other interfaces they serve). */
  polls: number;
  /** Adaptive gather sleeps of the workers serving it (shared, as polls). */
  gathers: number;
  /** Restarts of its members (their workers' and their rings'). */
  restarts: number;
  /** Workers (fanout members) on this interface. */
  workers: number;
  /** Drops by reason seen on this interface (its outputs' drops included). */
  drops: Record<string, number>;
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
  /** Per fanout member (interface, index). */
  workers: WorkerStats[];
  /** Per data-path worker. */
  pool: PoolWorkerStats[];
  /** IGMP memberships: counts, sockets, the namespace's per-socket limits, refused joins. */
  igmp?: IgmpStats;
  /** UDP port claims of unicast inputs: held, not local, pending, refused (with reasons). */
  claims?: ClaimStats;
  /** File descriptors: open, RLIMIT_NOFILE, what the configuration needs (set once started). */
  fds?: FdStats;
  /** The relay's role: active or standby, changes, since when, set by whom (relay/role.ts). */
  role?: RoleStats;
}

/** What {@link collectStats} reads of a data-path worker (relay/pool.ts `DataWorker`). */
export interface WorkerView {
  /** Worker index. */
  readonly index: number;
  /** State. */
  readonly state: PoolWorkerStats["state"];
  /** Why it is not running. */
  readonly reason?: string;
  /** Restarts. */
  readonly restarts: number;
  /** The current life's counter block. */
  readonly counters: Float64Array;
  /** Worker-section counts of earlier lives. */
  readonly retired: Float64Array;
  /** A Deno Worker runs. */
  readonly worker: unknown;
  /** CPU it is pinned to. */
  readonly cpu?: number;
  /** Interface it serves alone. */
  readonly dedicated?: string;
}

/** What {@link collectStats} reads of an input interface (relay/inputs.ts `Input`). */
export interface InputView {
  /** Interface name. */
  readonly name: string;
  /** Input slot. */
  readonly slot: number;
  /** Generation of the slot assignment. */
  readonly gen: number;
  /** Its rules. */
  readonly table: WorkerTable;
  /** Fanout group id. */
  readonly fanoutId: number;
  /** Why the input lock could not be taken. */
  readonly lockError?: string;
  /** Its fanout members. */
  readonly members: readonly {
    readonly index: number;
    readonly state: WorkerStats["state"];
    readonly reason?: string;
    readonly restarts: number;
    readonly retiredFrames: number;
    readonly worker: WorkerView;
  }[];
}

/** Everything {@link collectStats} reads. */
export interface StatsSource {
  /** Input interfaces with rules. */
  readonly inputs: Iterable<InputView>;
  /** Every data-path worker. */
  readonly workers: Iterable<WorkerView>;
  /** Counts of earlier worker lives, in the counter-block layout. */
  readonly retired: Float64Array;
  /** The link table. */
  readonly links: Links;
  /** Outputs in error: slot → worker index → reason. */
  readonly outputErrors: ReadonlyMap<number, ReadonlyMap<number, string>>;
  /**
   * Rules with an error of their own (UDP port claim refused, an output on a link type mcr
   * cannot send on): id → reason (`ruleStateOf`).
   */
  readonly ruleErrors?: RuleErrorLookup;
}

/** Output drop words and the interface drop reason each one adds to (word, `Drop`). */
export const TX_DROPS: [number, number][] = [
  [Out.ringFull, Drop.tx_ring_full],
  [Out.errors, Drop.tx_error],
  [Out.unavailable, Drop.tx_error],
  [Out.linkDown, Drop.tx_link_down],
  [Out.tooBig, Drop.tx_too_big],
  [Out.standby, Drop.standby],
];

/** Snapshot of every counter and state. */
export function collectStats(src: StatsSource): RelayStats {
  return collect(src);
}

/**
 * The stats of the rules with these ids only (as {@link collectStats} reports
 * them), without the cost of the others: what a reply about one rule of
 * 65,536 needs.
 */
export function collectRuleStats(src: StatsSource, ids: ReadonlySet<string>): RuleStats[] {
  return collect(src, ids).rules;
}

/**
 * How many rules are in each state — what {@link collectStats} would report,
 * without building a stats object per rule and output (a few hundred bytes
 * each: garbage worth tens of MB at 65,536 rules).
 */
export function countRuleStates(src: StatsSource): Record<State, number> {
  const counts: Record<State, number> = { active: 0, pending: 0, error: 0 };
  const clock = new Clock();
  const ruleErrors = src.ruleErrors?.size ? src.ruleErrors : undefined;
  for (const rt of src.inputs) {
    const { ruleState, ruleReason } = inputState(rt, src.links, clock);
    for (const r of rt.table.rules) {
      counts[ruleStateOf(ruleState, ruleReason, ruleErrors?.get(r.id)).state]++;
    }
  }
  return counts;
}

/**
 * Sums of input interface `rt`'s counters over the counter blocks that hold
 * them: `sumIn(k)` of its interface word k, `sum(k)` of a rule or output word.
 */
export function inputSums(
  rt: InputView,
  retired: Float64Array,
): { sumIn(k: number): number; sum(k: number): number } {
  const base = inBase(rt.slot);
  // a worker's counts belong to this interface once it has taken up this assignment of the slot
  const blocks: Float64Array[] = [];
  for (const m of rt.members) {
    const c = m.worker.counters;
    if (c[base + In.owner] === rt.gen && !blocks.includes(c)) blocks.push(c);
  }
  const own = retired[base + In.owner] === rt.gen;
  return {
    sumIn(k: number): number {
      let v = own ? retired[base + k] : 0;
      for (const c of blocks) v += c[base + k];
      return v;
    },
    sum(k: number): number {
      let v = retired[k];
      for (const c of blocks) v += c[k];
      return v;
    },
  };
}

/** {@link collectStats}; with `only`, just the rules with those ids (the rest is partial). */
function collect(src: StatsSource, only?: ReadonlySet<string>): RelayStats {
  const drops: Record<string, number> = {};
  for (const n of DROP_NAMES) drops[n] = 0;
  const interfaces: InterfaceStats[] = [];
  const workers: WorkerStats[] = [];
  const rules: RuleStats[] = [];
  const clock = new Clock();
  const retired = src.retired;
  const inputs = [...src.inputs]; // read twice below
  const ruleErrors = src.ruleErrors?.size ? src.ruleErrors : undefined;
  for (const rt of inputs) {
    const base = inBase(rt.slot);
    const { sumIn, sum } = inputSums(rt, retired);
    const ifDrops: Record<string, number> = {};
    for (let d = 0; d < DROP_NAMES.length; d++) ifDrops[DROP_NAMES[d]] = sumIn(IN_DROP + d);
    const { state, reason, ruleState, ruleReason, members } = inputState(rt, src.links, clock);
    let sent = 0;
    for (const r of rt.table.rules) {
      if (only && !only.has(r.id)) continue;
      const rb = RULE_BASE + r.slot * RULE_WORDS;
      rules.push({
        id: r.id,
        name: r.name,
        ...ruleStateOf(ruleState, ruleReason, ruleErrors?.get(r.id)),
        input: {
          interface: rt.name,
          group: groupText(r.group, r.prefixLen),
          port: inputPortOf(r.port),
          ...(r.source ? { source: formatIPv4(r.source) } : {}),
          ...(r.vlan >= 0 ? { vlan: r.vlan } : {}),
        },
        packets: sum(rb),
        bytes: sum(rb + 1),
        outputs: r.outputs.map((o) => {
          const ob = OUT_BASE + o.slot * OUT_WORDS;
          for (const [w, d] of TX_DROPS) ifDrops[DROP_NAMES[d]] += sum(ob + w);
          const packets = sum(ob + Out.packets);
          sent += packets;
          const os = outputState(ruleState, src.outputErrors.get(o.slot));
          return {
            interface: o.interface,
            group: destText(o.dst, o.hostBits),
            port: outputPortOf(o.port),
            state: os.state,
            ...(os.reason ? { reason: os.reason } : {}),
            packets,
            bytes: sum(ob + Out.bytes),
            ring_full: sum(ob + Out.ringFull),
            errors: sum(ob + Out.errors) + sum(ob + Out.unavailable),
            ttl_expired: sum(ob + Out.ttlExpired),
            link_down: sum(ob + Out.linkDown),
            too_big: sum(ob + Out.tooBig),
            fragmented: sum(ob + Out.fragmented),
            standby: sum(ob + Out.standby),
            queued: sum(ob + Out.queued),
          };
        }),
      });
    }
    for (const n of DROP_NAMES) drops[n] += ifDrops[n];
    const shared = [...new Set(rt.members.map((m) => m.worker))];
    const wsum = (k: number) => shared.reduce((a, w) => a + w.retired[k] + w.counters[k], 0);
    interfaces.push({
      name: rt.name,
      state,
      ...(reason ? { reason } : {}),
      frames: sumIn(In.frames),
      bytes: sumIn(In.bytes),
      matched: sumIn(In.matched),
      sent,
      kernel_packets: sumIn(In.kernelPackets),
      kernel_drops: sumIn(In.kernelDrops),
      kernel_freezes: sumIn(In.kernelFreezes),
      polls: wsum(W.polls),
      gathers: wsum(W.gathers),
      restarts: rt.members.reduce((a, m) => a + m.restarts + m.worker.restarts, 0),
      workers: rt.members.length,
      fanout_id: rt.fanoutId,
      drops: ifDrops,
    });
    for (const [k, m] of rt.members.entries()) {
      const c = m.worker.counters;
      const { state, reason } = members[k];
      workers.push({
        interface: rt.name,
        index: m.index,
        worker: m.worker.index,
        state,
        ...(reason && state !== "running" ? { reason } : {}),
        restarts: m.restarts + m.worker.restarts,
        frames: m.retiredFrames + (c[base + In.owner] === rt.gen ? c[base + In.frames] : 0),
        heartbeat_age_ms: clock.heartbeatAge(m.worker),
        ...(m.worker.cpu !== undefined ? { cpu: m.worker.cpu } : {}),
      });
    }
  }
  const pool: PoolWorkerStats[] = [];
  const served = new Map<WorkerView, number>();
  for (const rt of inputs) {
    for (const m of rt.members) served.set(m.worker, (served.get(m.worker) ?? 0) + 1);
  }
  for (const w of src.workers) {
    drops[DROP_NAMES[Drop.tx_invalid]] += w.retired[W.invalid] + w.counters[W.invalid];
    const why = clock.stalled(w);
    pool.push({
      index: w.index,
      state: why ? "error" : w.state,
      ...(why ? { reason: why } : w.reason && w.state !== "running" ? { reason: w.reason } : {}),
      restarts: w.restarts,
      ...(w.dedicated !== undefined ? { dedicated: w.dedicated } : {}),
      ...(w.cpu !== undefined ? { cpu: w.cpu } : {}),
      interfaces: served.get(w) ?? 0,
      rings: w.worker ? w.counters[W.rings] : 0,
      polls: w.retired[W.polls] + w.counters[W.polls],
      gathers: w.retired[W.gathers] + w.counters[W.gathers],
      heartbeat_age_ms: clock.heartbeatAge(w),
    });
  }
  return { rules, interfaces, drops, workers, pool };
}

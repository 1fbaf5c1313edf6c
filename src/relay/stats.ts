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
import { formatIPv6 } from "../common/net6.ts";
import { groupText, inputPortOf, outputDestText, outputPortOf } from "../config/ranges.ts";
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
import { Ext, extBase } from "../datapath/counters.ts";
import { Clock, inputState, outputState, type RuleErrorLookup, ruleStateOf } from "./states.ts";
import { Drop, DROP_NAMES } from "../datapath/packet.ts";
import type { Links } from "./links.ts";
import type { TableRedundancy, WorkerTable } from "../datapath/messages.ts";
import { arbiterView } from "../datapath/arbiter.ts";
import type { StreamView } from "./stream_monitor.ts";

import type {
  InterfaceStats,
  PathStats,
  PoolWorkerStats,
  RelayStats,
  RuleStats,
  State,
  StreamStats,
  WorkerStats,
} from "./stats_types.ts";

export type * from "./stats_types.ts";

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
  /** Rates and alarms of the rules with `health` (stream_monitor.ts). */
  readonly streams?: { view(id: string): StreamView | undefined };
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
 * them: `sumIn(k)` of its interface word k, `sum(k)` of a rule or output word;
 * `blocks`: the current counter blocks of the workers serving it.
 */
export function inputSums(rt: InputView, retired: Float64Array): {
  sumIn(k: number): number;
  sum(k: number): number;
  blocks: readonly Float64Array[];
} {
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
    blocks,
  };
}

/** The {@link StreamStats} of rule `r` (it has `health`), with its counter sums `sum`. */
function streamStats(
  r: WorkerTable["rules"][number],
  src: StatsSource,
  sum: (k: number) => number,
  blocks: readonly Float64Array[],
): StreamStats {
  const v = src.streams?.view(r.id);
  const eb = extBase(r.slot);
  const s: StreamStats = {
    alarm: v?.alarm ?? "ok",
    ...(v?.reason ? { reason: v.reason } : {}),
    pps: v?.pps ?? 0,
    bps: v?.bps ?? 0,
    last_packet_age_ms: v?.lastPacketAgeMs ?? null,
  };
  const payload = r.health?.payload;
  if (payload === "rtp" || payload === "rtp+ts") {
    // a gauge per worker: the largest (with fanout hash a stream is on one worker)
    let jitterUs = src.retired[eb + Ext.rtpJitterUs];
    for (const c of blocks) jitterUs = Math.max(jitterUs, c[eb + Ext.rtpJitterUs]);
    s.rtp = {
      packets: sum(eb + Ext.rtpPackets),
      invalid: sum(eb + Ext.rtpInvalid),
      lost: sum(eb + Ext.rtpLost),
      duplicates: sum(eb + Ext.rtpDuplicates),
      reordered: sum(eb + Ext.rtpReordered),
      resyncs: sum(eb + Ext.rtpResyncs),
      jitter_ms: Math.round(jitterUs) / 1000,
    };
  }
  if (payload === "ts" || payload === "rtp+ts") {
    s.ts = {
      packets: sum(eb + Ext.tsPackets),
      sync_errors: sum(eb + Ext.tsSyncErrors),
      cc_errors: sum(eb + Ext.tsCcErrors),
    };
  }
  return s;
}

/** The {@link PathStats} of a path from its extension words at `eb`. */
function pathStats(red: TableRedundancy, eb: number, sum: (k: number) => number): PathStats {
  const dup = sum(eb + Ext.mergedDuplicates), late = sum(eb + Ext.mergeLate);
  const inactive = sum(eb + Ext.inactive);
  const a = arbiterView(red.state);
  return {
    rule: red.rule,
    input: red.input,
    mode: red.mode,
    received: sum(eb + Ext.received),
    merged_duplicate: dup,
    late,
    inactive,
    active: red.mode === "merge" || a.active === red.input,
    switches: a.switches,
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
    const { sumIn, sum, blocks } = inputSums(rt, retired);
    const ifDrops: Record<string, number> = {};
    for (let d = 0; d < DROP_NAMES.length; d++) ifDrops[DROP_NAMES[d]] = sumIn(IN_DROP + d);
    const { state, reason, ruleState, ruleReason, members } = inputState(rt, src.links, clock);
    let sent = 0;
    for (const r of rt.table.rules) {
      if (only && !only.has(r.id)) continue;
      const rb = RULE_BASE + r.slot * RULE_WORDS;
      const eb = extBase(r.slot);
      const policing = r.rateLimit !== undefined;
      rules.push({
        id: r.id,
        name: r.name,
        ...ruleStateOf(ruleState, ruleReason, ruleErrors?.get(r.id)),
        input: {
          interface: rt.name,
          group: r.group6 ? formatIPv6(r.group6) : groupText(r.group, r.prefixLen),
          port: inputPortOf(r.port),
          ...(r.source6
            ? { source: formatIPv6(r.source6) }
            : r.source
            ? { source: formatIPv4(r.source) }
            : {}),
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
            group: outputDestText(o),
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
            // shown while a limit applies, and after one was lifted while its count stays
            ...(policing || o.rateLimit || sum(ob + Out.policed) > 0
              ? { policed: sum(ob + Out.policed) }
              : {}),
          };
        }),
        ...(policing || sum(eb + Ext.policed) > 0 ? { policed: sum(eb + Ext.policed) } : {}),
        ...(r.health ? { stream: streamStats(r, src, sum, blocks) } : {}),
        ...(r.redundancy ? { redundancy: pathStats(r.redundancy, eb, sum) } : {}),
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
      nice: w.worker && w.counters[W.running] ? w.counters[W.nice] : null,
      priority_raises: w.retired[W.priorityRaises] + w.counters[W.priorityRaises],
      heartbeat_age_ms: clock.heartbeatAge(w),
    });
  }
  return { rules, interfaces, drops, workers, pool };
}

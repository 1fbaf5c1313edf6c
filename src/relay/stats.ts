/**
 * What the relay reports: the public stats types (per rule, output, input
 * interface and worker) and {@link collectStats}, which sums the workers'
 * shared counter blocks (and the retired sums of earlier worker lives) and
 * decides every state from what is true now: the link table for input
 * interfaces, the workers' own reports for outputs.
 *
 * @module
 */
import { formatIPv4 } from "../common/net.ts";
import {
  DROP_BASE,
  If,
  Out,
  OUT_BASE,
  OUT_WORDS,
  RULE_BASE,
  RULE_WORDS,
} from "../datapath/counters.ts";
import { linkProblem, linkUsable } from "../datapath/link_table.ts";
import { DROP_NAMES } from "../datapath/packet.ts";
import type { Links } from "./links.ts";
import type { WorkerTable } from "../datapath/messages.ts";
import type { IgmpStats } from "./igmp.ts";
import type { FdStats } from "./fd_budget.ts";

/** One data-path worker. */
export interface WorkerStats {
  /** Input interface. */
  interface: string;
  /** Index among the interface's workers. */
  index: number;
  /** running, starting, pending (interface missing) or error. */
  state: "running" | "starting" | "pending" | "error";
  /** Why it is not running. */
  reason?: string;
  /** Restarts so far. */
  restarts: number;
  /** Frames this worker took from its ring (all its lives). */
  frames: number;
  /** Milliseconds since its last loop pass (heartbeat); null when not running. */
  heartbeat_age_ms: number | null;
  /** CPU it is pinned to, if any. */
  cpu?: number;
}

/** State of a rule or output. */
export type State = "active" | "pending" | "error";

/** Counters of one output. */
export interface OutputStats {
  /** Output interface. */
  interface: string;
  /** Destination group or address. */
  group: string;
  /** Destination port. */
  port: number;
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
  /** Input match. */
  input: { interface: string; group: string; port: number; source?: string; vlan?: number };
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
  /** poll() syscalls. */
  polls: number;
  /** Adaptive gather sleeps. */
  gathers: number;
  /** Worker restarts. */
  restarts: number;
  /** Workers (fanout members) on this interface. */
  workers: number;
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
  /** Per worker. */
  workers: WorkerStats[];
  /** IGMP memberships: counts, sockets, the namespace's per-socket limits, refused joins. */
  igmp?: IgmpStats;
  /** File descriptors: open, RLIMIT_NOFILE, what the configuration needs (set once started). */
  fds?: FdStats;
}

/** What {@link collectStats} reads of one input interface's workers (relay/workers.ts). */
export interface InterfaceWorkersView {
  /** Interface name. */
  readonly name: string;
  /** The rule table its workers run. */
  readonly table: WorkerTable;
  /** Counter sums of earlier worker lives. */
  readonly retired: Float64Array;
  /** Fanout group id. */
  readonly fanoutId: number;
  /** Why the input lock could not be taken. */
  readonly lockError?: string;
  /** The workers. */
  readonly members: readonly {
    readonly index: number;
    readonly state: WorkerStats["state"];
    readonly reason?: string;
    readonly worker: unknown;
    readonly counters: Float64Array;
    readonly restarts: number;
    readonly retiredFrames: number;
    readonly cpu?: number;
  }[];
}

/**
 * Snapshot of every counter and state.
 * @param groups the input interfaces' worker groups
 * @param links the link table
 * @param outputStates what the workers last reported for each output slot
 */
export function collectStats(
  groups: Iterable<InterfaceWorkersView>,
  links: Links,
  outputStates: ReadonlyMap<number, { state: State; reason?: string }>,
): RelayStats {
  const drops: Record<string, number> = {};
  for (const n of DROP_NAMES) drops[n] = 0;
  const interfaces: InterfaceStats[] = [];
  const workers: WorkerStats[] = [];
  const rules: RuleStats[] = [];
  const now = Date.now();
  for (const rt of groups) {
    const sum = (k: number) => {
      let v = rt.retired[k];
      for (const sl of rt.members) v += sl.counters[k];
      return v;
    };
    for (let d = 0; d < DROP_NAMES.length; d++) drops[DROP_NAMES[d]] += sum(DROP_BASE + d);
    const states = rt.members.map((sl) => sl.state);
    const link = links.get(rt.name);
    const inputProblem = link && !linkUsable(link)
      ? `input ${linkProblem(rt.name, link)}`
      : undefined;
    let state: InterfaceStats["state"] = !link
      ? "pending"
      : rt.lockError
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
      : rt.lockError ?? inputProblem ?? rt.members.find((sl) => sl.reason)?.reason;
    if (state === "pending" && link) state = "starting"; // workers on their way
    interfaces.push({
      name: rt.name,
      state,
      ...(reason && state !== "running" ? { reason } : {}),
      frames: sum(If.frames),
      bytes: sum(If.bytes),
      matched: sum(If.matched),
      sent: sum(If.sent),
      kernel_packets: sum(If.kernelPackets),
      kernel_drops: sum(If.kernelDrops),
      kernel_freezes: sum(If.kernelFreezes),
      polls: sum(If.polls),
      gathers: sum(If.gathers),
      restarts: rt.members.reduce((a, sl) => a + sl.restarts, 0),
      workers: rt.members.length,
      fanout_id: rt.fanoutId,
    });
    for (const sl of rt.members) {
      const hb = sl.counters[If.heartbeat];
      workers.push({
        interface: rt.name,
        index: sl.index,
        state: sl.state,
        ...(sl.reason && sl.state !== "running" ? { reason: sl.reason } : {}),
        restarts: sl.restarts,
        frames: sl.retiredFrames + sl.counters[If.frames],
        heartbeat_age_ms: sl.worker && hb ? Math.max(0, now - hb) : null,
        ...(sl.cpu !== undefined ? { cpu: sl.cpu } : {}),
      });
    }
    // A rule forwards while at least one fanout member runs and its input link is up.
    const ruleState: State = state === "pending" || state === "starting"
      ? "pending"
      : state === "running" || (state === "error" && states.includes("running"))
      ? "active"
      : "error";
    for (const r of rt.table.rules) {
      const rb = RULE_BASE + r.slot * RULE_WORDS;
      rules.push({
        id: r.id,
        name: r.name,
        state: ruleState,
        ...(reason && ruleState !== "active" ? { reason } : {}),
        input: {
          interface: rt.name,
          group: formatIPv4(r.group),
          port: r.port,
          ...(r.source ? { source: formatIPv4(r.source) } : {}),
          ...(r.vlan >= 0 ? { vlan: r.vlan } : {}),
        },
        packets: sum(rb),
        bytes: sum(rb + 1),
        outputs: r.outputs.map((o) => {
          const ob = OUT_BASE + o.slot * OUT_WORDS;
          const st = outputStates.get(o.slot);
          return {
            interface: o.interface,
            group: formatIPv4(o.dst),
            port: o.port,
            state: st?.state ?? "pending",
            ...(st?.reason && st.state !== "active" ? { reason: st.reason } : {}),
            packets: sum(ob + Out.packets),
            bytes: sum(ob + Out.bytes),
            ring_full: sum(ob + Out.ringFull),
            errors: sum(ob + Out.errors) + sum(ob + Out.unavailable),
            ttl_expired: sum(ob + Out.ttlExpired),
            link_down: sum(ob + Out.linkDown),
            too_big: sum(ob + Out.tooBig),
            fragmented: sum(ob + Out.fragmented),
            queued: sum(ob + Out.queued),
          };
        }),
      });
    }
  }
  return { rules, interfaces, drops, workers };
}

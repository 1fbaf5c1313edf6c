/**
 * What the control commands answer (`list`, `stats`, `workers`): the result
 * shapes of the wire format, shared by the daemon (commands.ts) and the
 * clients (src/client/). Requests and the envelope are protocol.ts.
 *
 * @module
 */
import type {
  InterfaceStats,
  OutputStats,
  PoolWorkerStats,
  RuleStats,
  State,
  WorkerStats,
} from "../relay/stats.ts";
import type { IgmpStats } from "../relay/igmp.ts";
import type { FdStats } from "../relay/fd_budget.ts";

/** One fanout member of an input interface (as `stats().workers` reports it). */
export type WorkerInfo = WorkerStats;

/** One data-path worker (as `stats().pool` reports it). */
export type PoolWorkerInfo = PoolWorkerStats;

/** An output with its rate. */
export type OutputWithRate = OutputStats & { pps: number; bps: number };
/** A rule with its rates. */
export type RuleWithRate = Omit<RuleStats, "outputs"> & {
  pps: number;
  bps: number;
  outputs: OutputWithRate[];
};
/** An interface with its rates. */
export type InterfaceWithRate = InterfaceStats & {
  pps: number;
  bps: number;
  kernel_drops_ps: number;
};

/** Result of `stats`. */
export interface StatsResult {
  /** When the snapshot was taken (ISO 8601). */
  time: string;
  /** Seconds since the daemon started. */
  uptime_s: number;
  /** Window the rates were computed over, in seconds (0 until two samples exist). */
  rate_window_s: number;
  /** Per rule, with per-output counters and rates. */
  rules: RuleWithRate[];
  /** Per input interface, with kernel ring drops and freezes and rates. */
  interfaces: InterfaceWithRate[];
  /** Per fanout member (input interface, index). */
  workers: WorkerInfo[];
  /** Per data-path worker. */
  pool: PoolWorkerInfo[];
  /** Drops by reason (totals). */
  drops: Record<string, number>;
  /** Drops by reason per second. */
  drops_ps: Record<string, number>;
  /** IGMP memberships: joined, pending, refused (with reasons), sockets, the namespace's limits. */
  igmp?: IgmpStats;
  /** File descriptors: open, RLIMIT_NOFILE soft and hard, what the rules need. */
  fds?: FdStats;
}

/** State of a listed rule: a disabled rule is listed as "disabled". */
export type ListState = State | "disabled";

/** A rule as `list` shows it. */
export interface ListedRule {
  /** Stable id (hash of the input tuple). */
  id: string;
  /** Name. */
  name: string;
  /** Whether the rule is enabled. */
  enabled: boolean;
  /** active, pending, error, or disabled. */
  state: ListState;
  /** Why it is not active. */
  reason?: string;
  /** Input match. */
  input: { interface: string; group: string; port: number; source?: string; vlan?: number };
  /** Outputs with their state and counters. */
  outputs: {
    interface: string;
    group: string;
    port: number;
    ttl: number | "decrement";
    dscp: number;
    state: ListState;
    reason?: string;
    packets: number;
    bytes: number;
    pps: number;
    bps: number;
  }[];
  /** Datagrams matched. */
  packets: number;
  /** Payload bytes matched. */
  bytes: number;
  /** Matched datagrams per second. */
  pps: number;
  /** Matched payload bits per second. */
  bps: number;
}

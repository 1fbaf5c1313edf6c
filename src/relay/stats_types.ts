/**
 * The stats types the relay reports (per rule, output, input interface,
 * fanout member, worker, and a rule's stream health); stats.ts collects them.
 *
 * @module
 */
import type { InputPort, OutputPort } from "../config/schema.ts";
import type { IgmpStats } from "./igmp.ts";
import type { MldStats } from "./mld.ts";
import type { ClaimStats } from "./port_claims.ts";
import type { FdStats } from "./fd_budget.ts";
import type { StreamAlarm } from "./stream_monitor.ts";
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
  /**
   * Dropped: over the output's or its rule's `rate_limit` (present when either has one; a
   * drop like the others: matched = packets + drops + policed + queued).
   */
  policed?: number;
}

/** Stream health of a rule with `health` (src/relay/stream_monitor.ts, src/datapath/stream_health.ts). */
export interface StreamStats {
  /** ok, silent (no datagram for silence_ms) or low_rate (under min_pps). */
  alarm: StreamAlarm;
  /** Why it is not ok. */
  reason?: string;
  /** Datagrams per second over the last second. */
  pps: number;
  /** Bits per second of UDP payload over the last second. */
  bps: number;
  /** Milliseconds since the last datagram; null when none came yet. */
  last_packet_age_ms: number | null;
  /** RTP analysis (`health.payload` "rtp" or "rtp+ts"). */
  rtp?: {
    /** Datagrams analysed as RTP. */
    packets: number;
    /** Datagrams that were not RTP version 2. */
    invalid: number;
    /** Sequence numbers missing (a late arrival takes one back). */
    lost: number;
    /** Sequence numbers seen twice. */
    duplicates: number;
    /** Datagrams that came after a higher sequence number. */
    reordered: number;
    /** Restarts of the sequence analysis (new SSRC, or a jump). */
    resyncs: number;
    /** RFC 3550 interarrival jitter (ms; the largest over the workers). */
    jitter_ms: number;
  };
  /** MPEG-TS analysis (`health.payload` "ts" or "rtp+ts"). */
  ts?: {
    /** 188-byte packets analysed. */
    packets: number;
    /** Sync byte errors (not 0x47), and payloads not a multiple of 188 bytes. */
    sync_errors: number;
    /** Continuity counter errors over all PIDs. */
    cc_errors: number;
  };
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
  /** Datagrams the rule's own `rate_limit` dropped (present when it has one). */
  policed?: number;
  /** Stream health (present when the rule has `health`). */
  stream?: StreamStats;
  /**
   * A path of a rule with redundant inputs (named `rule[input]`): what it
   * received and what it did not forward. Its `packets` are what it
   * contributed (forwarded first); received = packets + merged_duplicate +
   * late + inactive.
   */
  redundancy?: PathStats;
}

/** What one path (input) of a rule with redundant inputs did (src/datapath/arbiter.ts). */
export interface PathStats {
  /** The configured rule's name. */
  rule: string;
  /** This path's index in the rule's `inputs`. */
  input: number;
  /** `merge` or `failover`. */
  mode: "merge" | "failover";
  /** Datagrams this path received (matched the rule's input). */
  received: number;
  /** Copies dropped because another path had forwarded them first. */
  merged_duplicate: number;
  /** Datagrams too far behind the stream to judge (beyond the window), dropped. */
  late: number;
  /** `failover`: datagrams dropped while another path was active. */
  inactive: number;
  /** `failover`: whether this path is the active one (merge: always true). */
  active: boolean;
  /** `failover`: switches of the rule's active path so far (the rule's, shown on each path). */
  switches: number;
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
  /** MLD memberships of the IPv6 rules (issue 14). */
  mld?: MldStats;
  /** UDP port claims of unicast inputs: held, not local, pending, refused (with reasons). */
  claims?: ClaimStats;
  /** File descriptors: open, RLIMIT_NOFILE, what the configuration needs (set once started). */
  fds?: FdStats;
  /** The relay's role: active or standby, changes, since when, set by whom (relay/role.ts). */
  role?: RoleStats;
}

/**
 * What the control commands answer (`list`, `stats`, `workers`): the result
 * shapes of the wire format, shared by the daemon (commands.ts, views.ts) and
 * the clients (src/client/). Requests and the envelope are protocol.ts.
 *
 * `list` and `stats` take the same arguments ({@link ViewArgs}): a filter
 * ({@link RuleFilter}), an order ({@link SortKey}), a limit, a view (every
 * matching rule, or a {@link Summary} and the top rules) and whether to
 * stream the answer as records ({@link StatsRecord}, {@link ListRecord}).
 *
 * @module
 */
import type {
  InterfaceStats,
  OutputStats,
  PoolWorkerStats,
  RuleStats,
  State,
  StreamStats,
  WorkerStats,
} from "../relay/stats.ts";
import type { InputPort, OutputPort } from "../config/schema.ts";
import type { RedundancyConfig } from "../config/types.ts";
import type { IgmpStats } from "../relay/igmp.ts";
import type { MldStats } from "../relay/mld.ts";
import type { ClaimStats } from "../relay/port_claims.ts";
import type { FdStats } from "../relay/fd_budget.ts";
import type { RoleStats } from "../relay/role.ts";

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

/**
 * Output-level drops of one output: every datagram its rule matched that it
 * did not send (matched = packets + these + queued), those a standby held
 * back included.
 */
export function outputDrops(
  o: Pick<
    OutputStats,
    "ring_full" | "errors" | "ttl_expired" | "link_down" | "too_big" | "standby" | "policed"
  >,
): number {
  return o.ring_full + o.errors + o.ttl_expired + o.link_down + o.too_big + o.standby +
    (o.policed ?? 0);
}

/** Orders of `list`/`stats` rules (`args.sort`); absent = the natural order. */
export const SORT_KEYS = ["name", "pps", "bps", "packets", "drops"] as const;
/**
 * An order: `name` ascending; the others descending (busiest or worst
 * first), ties by name. `drops` is a rule's output-level drops
 * ({@link outputDrops} summed over its outputs).
 */
export type SortKey = (typeof SORT_KEYS)[number];

/** What `list`/`stats` answer (`args.view`). */
export const VIEWS = ["full", "summary", "auto"] as const;
/**
 * `full`: every matching rule (up to `limit`); `summary`: a {@link Summary}
 * of the matching rules and the top `limit` of them; `auto`: `summary` when
 * more than {@link AUTO_SUMMARY_RULES} rules match, else `full`.
 */
export type View = (typeof VIEWS)[number];

/** `auto` answers a summary when more rules than this match. */
export const AUTO_SUMMARY_RULES = 50;
/** Rules a summary lists (the top ones) when `args.limit` is absent. */
export const SUMMARY_TOP_RULES = 10;
/** Order of the top rules of a summary when `args.sort` is absent. */
export const SUMMARY_SORT: SortKey = "pps";

/**
 * Which rules `list`/`stats` answer about; every given field must hold
 * (AND). Absent fields match everything.
 */
export interface RuleFilter {
  /** A rule name, else a rule id (every rule with that id): as `remove` finds rules. */
  rule?: string;
  /** Rules whose input is on this interface or that have an output on it. */
  interface?: string;
  /**
   * Rules whose input group is this address (or a range that holds it) or that have an output
   * to it (or to a range that holds it) (dotted quad).
   */
  group?: string;
}

/** The arguments of `list` and `stats` (all optional). */
export interface ViewArgs extends RuleFilter {
  /** What to answer (default `full`). */
  view?: View;
  /** Order of the rules (default: the natural order; `pps` for a summary's top rules). */
  sort?: SortKey;
  /** At most this many rules (after ordering); a summary's default is {@link SUMMARY_TOP_RULES}. */
  limit?: number;
  /** Answer in parts of records (see protocol.ts), not one reply. */
  stream?: boolean;
}

/** Rules (or outputs) by state. */
export type StateCounts = Record<ListState, number>;

/** Totals of the matching rules on one input interface (in a {@link Summary}). */
export interface InterfaceSummary {
  /** Input interface. */
  interface: string;
  /** Matching rules with their input on it. */
  rules: number;
  /** Those by state. */
  by_state: StateCounts;
  /** Their outputs. */
  outputs: number;
  /** Datagrams per second they matched. */
  pps: number;
  /** Payload bits per second they matched. */
  bps: number;
  /** Datagrams per second their outputs sent. */
  out_pps: number;
  /** Their output-level drops (totals). */
  drops: number;
}

/** Totals over every matching rule (`view: summary`). */
export interface Summary {
  /** Rules by state. */
  by_state: StateCounts;
  /** Outputs of the matching rules. */
  outputs: number;
  /** Those by state. */
  outputs_by_state: StateCounts;
  /** Datagrams per second matched. */
  pps: number;
  /** Payload bits per second matched. */
  bps: number;
  /** Datagrams per second sent by the outputs. */
  out_pps: number;
  /** Output-level drops (totals). */
  drops: number;
  /** Per input interface, by name. */
  interfaces: InterfaceSummary[];
}

/** What every `list`/`stats` answer says about the rule selection. */
export interface Selection {
  /** Rules in the relay (`list`: in the configuration, disabled ones too). */
  total: number;
  /** Rules the filter matched. */
  matched: number;
  /** Order of the rules answered (null: the natural order). */
  sort: SortKey | null;
  /** The filter in force. */
  filter: RuleFilter;
  /** Totals over the matching rules (`view: summary`, or `auto` above the threshold). */
  summary?: Summary;
}

/** Result of `stats`. */
export interface StatsResult extends Partial<Selection> {
  /** When the snapshot was taken (ISO 8601). */
  time: string;
  /** Seconds since the daemon started. */
  uptime_s: number;
  /** Window the rates were computed over, in seconds (0 until two samples exist). */
  rate_window_s: number;
  /** Per rule, with per-output counters and rates (the selected rules). */
  rules: RuleWithRate[];
  /**
   * Per input interface, with kernel ring drops and freezes and rates: every
   * one, or with a filter the inputs of the matching rules.
   */
  interfaces: InterfaceWithRate[];
  /** Per fanout member (input interface, index) of those interfaces. */
  workers: WorkerInfo[];
  /** Per data-path worker. */
  pool: PoolWorkerInfo[];
  /** Drops by reason (the relay's totals, whatever the filter). */
  drops: Record<string, number>;
  /** Drops by reason per second. */
  drops_ps: Record<string, number>;
  /** IGMP memberships: joined, pending, refused (with reasons), sockets, the namespace's limits. */
  igmp?: IgmpStats;
  /** MLD memberships of the IPv6 rules (present when they need any): joined, pending, refused. */
  mld?: MldStats;
  /** UDP port claims of unicast inputs: held, not local, pending, refused (with reasons). */
  claims?: ClaimStats;
  /** File descriptors: open, RLIMIT_NOFILE soft and hard, what the rules need. */
  fds?: FdStats;
  /** The relay's role (active, standby), its changes, since when, set by whom. */
  role?: RoleStats;
}

/** State of a listed rule: a disabled rule is listed as "disabled". */
export type ListState = State | "disabled";

/** The states a listed rule may be in, in the order tables show them. */
export const LIST_STATES: readonly ListState[] = ["active", "pending", "error", "disabled"];

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
  /** Input match, as written (a range "239.1.0.0/16", port "any"). */
  input: { interface: string; group: string; port: InputPort; source?: string; vlan?: number };
  /** Outputs with their state and counters (group and port as written: "keep", a range). */
  outputs: {
    interface: string;
    group: string;
    port: OutputPort;
    ttl: number | "decrement";
    dscp: number;
    state: ListState;
    reason?: string;
    packets: number;
    bytes: number;
    pps: number;
    bps: number;
    /** Dropped by a `rate_limit` (the output's or its rule's), when either has one. */
    policed?: number;
  }[];
  /** Datagrams matched. */
  packets: number;
  /** Payload bytes matched. */
  bytes: number;
  /** Matched datagrams per second. */
  pps: number;
  /** Matched payload bits per second. */
  bps: number;
  /** Output-level drops of its outputs ({@link outputDrops}). */
  drops: number;
  /** Datagrams its own `rate_limit` dropped (when it has one). */
  policed?: number;
  /** Stream health (when it has `health`). */
  stream?: StreamStats;
  /** Redundant inputs: how they combine (the normalized `redundancy`). */
  redundancy?: RedundancyConfig;
  /** Redundant inputs: each path (input), in input order (paths_view.ts). */
  paths?: ListedPath[];
}

/** One path (input) of a rule with redundant inputs, as `list` shows it. */
export interface ListedPath {
  /** Index in the rule's `inputs`. */
  input: number;
  /** Its interface, group and port (as written), source and VLAN. */
  interface: string;
  /** Group (one address). */
  group: string;
  /** Port. */
  port: InputPort;
  /** Source filter. */
  source?: string;
  /** VLAN. */
  vlan?: number;
  /** active, pending or error (its interface's, as a rule's). */
  state: State;
  /** Why it is not active. */
  reason?: string;
  /** `failover`: the path forwarding now (merge: every path). */
  active: boolean;
  /** Datagrams it received. */
  received: number;
  /** Of those, forwarded (first copies). */
  contributed: number;
  /** Dropped: copies another path had forwarded first. */
  merged_duplicate: number;
  /** Dropped: too far behind the stream to judge, or behind a gap given up (reorder_ms). */
  late: number;
  /** Dropped (`failover`): another path was active. */
  inactive: number;
  /**
   * `merge`: datagrams the rule forwarded that this path never delivered
   * (the rule's total − contributed − merged_duplicate): what the path lost.
   */
  missed?: number;
  /** Stream health of this path (when the rule has `health`). */
  stream?: StreamStats;
}

/** Result of `list`. */
export interface ListResult extends Partial<Selection> {
  /** The selected rules. */
  rules: ListedRule[];
}

/** How many records of each kind follow a stream's header. */
export interface RecordCounts {
  /** `rule` records. */
  rules: number;
  /** `interface` records (`stats`). */
  interfaces?: number;
  /** `worker` records (`stats`). */
  workers?: number;
  /** `pool` records (`stats`): the data-path workers. */
  pool?: number;
}

/** First record of a streamed `stats`. */
export type StatsHeader =
  & Selection
  & {
    /** Record kind. */
    kind: "stats";
    /** How many records of each kind follow, in this order: rules, interfaces, workers. */
    records: Required<RecordCounts>;
  }
  & Pick<
    StatsResult,
    | "time"
    | "uptime_s"
    | "rate_window_s"
    | "drops"
    | "drops_ps"
    | "igmp"
    | "mld"
    | "claims"
    | "fds"
    | "role"
  >;

/** First record of a streamed `list`. */
export type ListHeader = Selection & {
  /** Record kind. */
  kind: "list";
  /** How many `rule` records follow. */
  records: { rules: number };
};

/** A record of a streamed `stats`: the header, then rules, interfaces, workers and the pool. */
export type StatsRecord =
  | StatsHeader
  | ({ kind: "rule" } & RuleWithRate)
  | ({ kind: "interface" } & InterfaceWithRate)
  | ({ kind: "worker" } & WorkerInfo)
  | ({ kind: "pool" } & PoolWorkerInfo);

/** A record of a streamed `list`: the header, then rules. */
export type ListRecord = ListHeader | ({ kind: "rule" } & ListedRule);

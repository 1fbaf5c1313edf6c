/**
 * The validated, normalized configuration: defaults applied, TTL and DSCP
 * resolved per output (output, then rule, then global), addresses also as
 * unsigned 32-bit numbers, each rule with a stable id.
 *
 * Naming: fields that come from rules.json keep their JSON spelling
 * (`source_ip`, `allow_link_local`); fields derived by normalization are
 * camelCase (`groupAddr`, `sourceAddr`, `vlanId`, `tos`).
 *
 * @module
 */
import type {
  FanoutMode,
  InputPort,
  OutputPort,
  PriorityMode,
  RedundancyMode,
  Role,
  TtlPolicy,
} from "./schema.ts";
import type { HealthConfig, RateLimitConfig } from "./stream_options.ts";
import type { Ip6 } from "../common/net6.ts";
import type { Family } from "./ranges.ts";

export type { HealthConfig, RateLimitConfig };

/** A rule's input: where the relayed stream is received. */
export interface InputConfig {
  /** Receiving interface name. */
  interface: string;
  /**
   * Destination address (dotted quad): a multicast group, a range of groups
   * ("239.1.0.0/16"), or a unicast address (the relay's own on `interface`,
   * or another host's seen there on a mirror port).
   */
  group: string;
  /** UDP destination port, or "any" (written "any" or 0). */
  port: InputPort;
  /** Only datagrams from this source address (optional, dotted quad). */
  source?: string;
  /** VLAN ID as written (optional; absent or 0 = untagged frames only). */
  vlan?: number;
  /** Groups of a range to join (IGMP), as written (optional; ranges only). */
  joins?: string[];
  /** Address family of `group`: 4, or 6 for an IPv6 group (issue 14). */
  family: Family;
  /**
   * `group` as an unsigned 32-bit number (a range: its network address); an
   * IPv6 group's low 32 bits.
   */
  groupAddr: number;
  /** `group` as an IPv6 address (family 6 only). */
  group6?: Ip6;
  /** `source` as an IPv6 address (family 6 with a source only). */
  source6?: Ip6;
  /** Prefix length of `group`: 32 for one IPv4 address, 4..31 for a range, 128 for IPv6. */
  prefixLen: number;
  /** `port` as a number: 0 for "any". */
  portNumber: number;
  /**
   * The IPv4 groups the relay joins for this input (IGMP): its group, a
   * range's `joins`, none for unicast or IPv6 (an IPv6 group is joined with
   * MLD: `group6`).
   */
  joinAddrs: number[];
  /** `source` as an unsigned 32-bit number; 0 when absent (any source) or IPv6. */
  sourceAddr: number;
  /**
   * VLAN to match, in the convention of `ParsedPacket.vlan`: 1..4094, or -1
   * for untagged (absent, or 0 which a priority tag normalizes to).
   */
  vlanId: number;
}

/** One destination of a rule, with every default resolved. */
export interface OutputConfig {
  /** Sending interface name. */
  interface: string;
  /**
   * Destination as written: a multicast group or unicast address (dotted
   * quad), a range of the input range's length ("239.20.0.0/16": the input
   * datagram's group mapped into it, host bits kept), or "keep" (the input
   * datagram's group).
   */
  group: string;
  /** UDP destination port, or "keep" (the input datagram's). */
  port: OutputPort;
  /** Address family sent: the group's ("keep": the input's); another than the input's translates. */
  family: Family;
  /** The destination as an IPv6 address (family 6 only; `groupAddr` holds its low 32 bits). */
  group6?: Ip6;
  /** `source_ip` as an IPv6 address (family 6 with a source_ip only). */
  source6?: Ip6;
  /** Resolved TTL policy (IPv6: the hop limit; `hops` is its alias): output's, else rule's, else config's, else 1. */
  ttl: TtlPolicy;
  /** Resolved DSCP: output's, else rule's, else config's, else 0. */
  dscp: number;
  /** IPv4 TOS byte or IPv6 traffic class to send: `dscp << 2` (ECN bits 0). */
  tos: number;
  /** Source address to send from (optional; default: the interface's address). */
  source_ip?: string;
  /** UDP source port to send from (optional; default: the input datagram's). */
  source_port?: number;
  /**
   * The destination address as an unsigned 32-bit number: `group`, or with
   * `hostBits` the network address the input datagram's host bits go onto
   * (a mapped range's; "keep" of a range: the input range's; "keep" of one
   * input group: that group, with no host bits).
   */
  groupAddr: number;
  /**
   * Low bits of each datagram's destination taken from the input datagram's
   * destination: 0 = `groupAddr` as is; 32 − the input's prefix length for a
   * range kept or mapped.
   */
  hostBits: number;
  /** The destination port as a number: 0 = the input datagram's (a "keep" of an "any" input). */
  portNumber: number;
  /** `source_ip` as an unsigned 32-bit number; 0 when absent. */
  sourceAddr: number;
  /** Policing of this output (its datagrams over the limit are dropped as `policed`). */
  rate_limit?: RateLimitConfig;
}

/** A rule's `redundancy` with its defaults applied (src/datapath/arbiter.ts). */
export interface RedundancyConfig {
  /** `merge` (each datagram once, from the first input to deliver it) or `failover`. */
  mode: RedundancyMode;
  /** Path differential delay tolerated: a copy later than this is no longer recognised (ms). */
  max_delay_ms: number;
  /** Datagrams remembered to recognise copies (a power of two). */
  window: number;
  /** `merge`: hold datagrams up to this long to restore RTP sequence order (ms; absent: never). */
  reorder_ms?: number;
  /** `failover`: silence of the active input before the next one takes over (ms). */
  failover_ms: number;
  /** `failover`: go back to an earlier input once it delivers again (default true). */
  revertive: boolean;
}

/** One relay rule, normalized. */
export interface RuleConfig {
  /** Stable id: `ruleId` of the input (16 hex digits). Not unique across disabled rules. */
  id: string;
  /** Unique name; defaults to `id`. */
  name: string;
  /** Whether the rule relays (default true). */
  enabled: boolean;
  /** Where the stream comes from: the only input, or the first of redundant `inputs`. */
  input: InputConfig;
  /**
   * Redundant inputs (2..4; `inputs[0]` is `input`), with `redundancy`; absent
   * for a rule with one input. Code that needs every input uses `ruleInputs`
   * (redundancy.ts).
   */
  inputs?: InputConfig[];
  /** How redundant `inputs` combine (present exactly when `inputs` is). */
  redundancy?: RedundancyConfig;
  /** Where it goes (1..64 outputs, pairwise distinct). */
  outputs: OutputConfig[];
  /** Rule default TTL policy, resolved (rule's, else config's, else 1). */
  ttl: TtlPolicy;
  /** Rule default DSCP, resolved (rule's, else config's, else 0). */
  dscp: number;
  /** Whether link-local (224.0.0.0/24) groups are allowed (default false). */
  allow_link_local: boolean;
  /** Policing of the rule (over the limit: dropped for every output as `policed`). */
  rate_limit?: RateLimitConfig;
  /** Stream health: alarms, and RTP / MPEG-TS payload analysis. */
  health?: HealthConfig;
}

/**
 * RX ring tuning. Unset numeric fields mean "the library's default" (they map
 * to 0 in `struct mcr_rx_config`).
 */
export interface RxTuning {
  /** TPACKET version 2 or 3. */
  tpacket_version?: 2 | 3;
  /** Ring slots (V2). */
  frame_count?: number;
  /** Most frames returned per poll. */
  batch_max?: number;
  /** Longest adaptive gather in microseconds (0 = never gather). */
  coalesce_us?: number;
  /** Packet rate above which gathering starts; the gather grows with the rate beyond it. */
  coalesce_pps?: number;
  /** Install the kernel BPF filter for the configured groups (default true). */
  filter: boolean;
  /** PACKET_FANOUT mode across workers (default "hash"). */
  fanout: FanoutMode;
}

/** Per interface tuning (`interfaces` in rules.json). */
export interface InterfaceTuning {
  /** Dedicated workers (RX rings in one fanout group) for this input interface. */
  workers: number;
  /** Fanout mode for this interface. */
  fanout: FanoutMode;
  /** CPUs to pin its dedicated workers to, round robin. */
  cpus: number[];
  /** RX ring slots of each ring on this interface. */
  rx_frame_count: number;
  /** TX ring slots of each TX ring on this interface. */
  tx_frame_count: number;
  /** Expected peak rate (packets/s): its rings are sized to hold 50 ms of it. */
  rate_pps: number;
  /**
   * Capture promiscuously on this input interface (a mirror/SPAN port: frames
   * addressed to other hosts' MACs), held by the relay's RX sockets only.
   */
  promisc: boolean;
}

/** TX ring tuning; unset fields mean "the library's default". */
export interface TxTuning {
  /** Ring slots. */
  frame_count?: number;
  /** PACKET_QDISC_BYPASS. */
  qdisc_bypass?: boolean;
}

/** The validated, normalized configuration. */
export interface Config {
  /** Relay rules, in file order. */
  rules: RuleConfig[];
  /** Global default TTL policy (default 1). */
  ttl: TtlPolicy;
  /** Global default DSCP (default 0). */
  dscp: number;
  /** Size of the worker pool that serves every input interface (default 1). */
  workers: number;
  /** CPUs to pin the pool's workers to, round robin (none: not pinned). */
  cpus?: number[];
  /**
   * Nice value of the data-path worker threads while they fall behind (or
   * always: `worker_priority`), when the process may set it (default -10).
   */
  worker_nice: number;
  /** How the workers use `worker_nice` (default `adaptive`: only while they fall behind). */
  worker_priority: PriorityMode;
  /**
   * The role the relay starts in (default `active`); `mcr ctl role` changes it
   * at run time, and a reload applies the file's only when it changed there.
   */
  role: Role;
  /** Per interface settings: dedicated workers, fanout, CPU pinning, ring sizes. */
  interfaces: Record<string, Partial<InterfaceTuning>>;
  /** RX tuning (defaults applied to `filter` and `fanout`). */
  rx: RxTuning;
  /** TX tuning. */
  tx: TxTuning;
  /** Control socket settings, if configured. */
  control?: { socket?: string; readonly_socket?: string };
  /** Metrics endpoint settings, if configured. */
  metrics?: { listen: string; health_grace_s?: number };
  /**
   * The runtime rules file, if configured (`runtime_rules`): where `ctl`
   * changes are kept. Read after `include` (a file not yet written holds no
   * rules); `rules` are its rules as written, in order (their normalized
   * forms are the last `rules.length` of {@link Config.rules}).
   */
  runtime_rules?: RuntimeRulesFile;
}

/** The runtime rules file of a configuration (`Config.runtime_rules`). */
export interface RuntimeRulesFile {
  /** Absolute path (relative ones resolve from the main file's directory). */
  path: string;
  /** As the configuration names it. */
  name: string;
  /** Its rules as written (JSON values), in order. */
  rules: unknown[];
}

/**
 * The contract between the supervisor (main thread, src/relay/) and a
 * data-path worker: the init message, the messages that tell a running
 * worker which input interfaces to serve and which rules they have, the
 * events it posts back, and the control block both sides read and write.
 * The counter block's layout is counters.ts; the shared link table's is
 * link_table.ts. Everything here crosses `postMessage` (structured clone) or
 * lives in a SharedArrayBuffer.
 *
 * One worker serves any number of input interfaces (an RX ring on each, in
 * that interface's fanout group) and sends on every output interface their
 * rules name (a TX ring or socket per output interface). Rule changes reach
 * it as deltas per input interface ({@link RulesMessage}), so a change of
 * one rule costs the same whatever the size of the rule set.
 *
 * @module
 */
import type { Ip6 } from "../common/net6.ts";
import type { RxOptions, TxOptions } from "../../ffi/mod.ts";
import type { RateLimit } from "./policer.ts";
import type { PayloadKind, PriorityMode, RedundancyMode } from "../config/schema.ts";

/** TX ring options of a worker's TX rings. */
export type TxRingOptions = Omit<TxOptions, "ifindex">;

/** RX ring options the supervisor chooses for one input interface. */
export type InputRxOptions = Omit<RxOptions, "ifindex" | "wakeFd">;

/**
 * Identity of an output in a rule: the rule's id and where it sends. A slot
 * whose identity changes holds another output (its counters restart).
 */
export function outputKey(
  ruleId: string,
  o: { interface: string; dst: number; hostBits: number; port: number; dst6?: Ip6 },
): string {
  const bits = o.hostBits === 0 ? "" : `/${o.hostBits}`;
  const dst = o.dst6 ? o.dst6.join(":") : String(o.dst);
  return `${ruleId}>${o.interface}|${dst}${bits}|${o.port}`;
}

/** One output as the worker needs it. Addresses are host-order u32. */
export interface TableOutput {
  /** Stable counter/template slot. */
  slot: number;
  /** Output interface name. */
  interface: string;
  /**
   * Destination group or unicast address; with `hostBits`, the network
   * address each datagram's host bits go onto.
   */
  dst: number;
  /**
   * Low bits of the destination taken from each input datagram's (a range
   * kept or mapped, config/ranges.ts); 0 = `dst` as is.
   */
  hostBits: number;
  /** Destination port; 0 = the input datagram's. */
  port: number;
  /** Source address; 0 = the output interface's address. */
  srcIp: number;
  /**
   * An IPv6 output (issue 14): its destination (`dst` holds the low 32 bits).
   * Absent: an IPv4 output.
   */
  dst6?: Ip6;
  /** An IPv6 output's source address (absent: the output interface's). */
  srcIp6?: Ip6;
  /** Source port; 0 = keep the input datagram's. */
  srcPort: number;
  /** Fixed TTL 1..255, or 0 for "decrement". */
  ttl: number;
  /** TOS byte (DSCP << 2). */
  tos: number;
  /** The output's `rate_limit` (policer.ts), if it has one. */
  rateLimit?: RateLimit;
}

/** A rule's `health` option as the data path and the stream monitor need it. */
export interface TableHealth {
  /** Alarm `silent` after this long without a datagram (ms). */
  silenceMs: number;
  /** Alarm `low_rate` under this rate (packets/s; 0: never). */
  minPps: number;
  /** Payload analysis in the data path (stream_health.ts), if any. */
  payload?: PayloadKind;
  /** RTP timestamp clock rate (Hz). */
  clockRate: number;
}

/**
 * A path of a rule with redundant inputs (arbiter.ts): the supervisor makes
 * one table rule per input, each on its own input interface, all sharing
 * `state`.
 */
export interface TableRedundancy {
  /** The configured rule's name (the table rule is named `rule[input]`). */
  rule: string;
  /** `merge` or `failover`. */
  mode: RedundancyMode;
  /** This path's index among the rule's inputs. */
  input: number;
  /** Number of inputs of the rule. */
  inputs: number;
  /** The rule's arbitration block (arbiter.ts layout): one buffer for all its paths and workers. */
  state: SharedArrayBuffer;
  /** Entries of its window (a power of two). */
  window: number;
  /** Copies further apart than this (µs of kernel receive time) are different datagrams. */
  maxDelayUs: number;
  /** `merge`: how long a datagram waits for a gap before it to be filled (µs; 0: no reordering). */
  reorderUs: number;
  /** `failover`: silence of the active path before another takes over (µs). */
  failoverUs: number;
  /** `failover`: an earlier path takes over again once it delivers steadily. */
  revertive: boolean;
}

/** One rule as the worker needs it. */
export interface TableRule {
  /** Stable counter slot. */
  slot: number;
  /** Stable rule id (hash of the input tuple). */
  id: string;
  /** Rule name. */
  name: string;
  /** Input group (a range: its network address). */
  group: number;
  /** Prefix length of the input: 32 = one group, less = a range. */
  prefixLen: number;
  /** Input UDP port, 0 = any. */
  port: number;
  /** Required source address, 0 = any. */
  source: number;
  /** Required VLAN id, -1 = untagged only. */
  vlan: number;
  /** An IPv6 rule (issue 14): its group (`group` holds the low 32 bits). Absent: IPv4. */
  group6?: Ip6;
  /** An IPv6 rule's required source (absent: any). */
  source6?: Ip6;
  /** Outputs. */
  outputs: TableOutput[];
  /** The rule's `rate_limit` (policer.ts), if it has one. */
  rateLimit?: RateLimit;
  /** The rule's `health` option, if it has one. */
  health?: TableHealth;
  /** A path of a rule with redundant inputs: its arbitration. */
  redundancy?: TableRedundancy;
}

/** The complete rule table of one input interface, versioned (the supervisor's view). */
export interface WorkerTable {
  /** Monotonic table version; a worker never runs a mix of two versions. */
  version: number;
  /** Input interface these rules read from. */
  interface: string;
  /** Rules on that interface. */
  rules: TableRule[];
  /**
   * Slot in the shared link table (src/relay/links.ts) of every interface the
   * table names (input and outputs); filled in by the supervisor.
   */
  links?: Record<string, number>;
}

/** Message that starts a worker. */
export interface WorkerInit {
  /** Message type. */
  type: "init";
  /** Worker index (for logs). */
  index: number;
  /** TX ring options. */
  tx: TxRingOptions;
  /** Per output interface TX ring slot counts (default: `tx.frameCount`, or libmcr's choice). */
  txFrames: Record<string, number>;
  /** Longest adaptive gather in µs over all the worker's rings (-1 = off). */
  coalesceUs?: number;
  /** Arrival rate above which gathering starts. */
  coalescePps?: number;
  /** The shared link table (link_table.ts). */
  links: Int32Array;
  /** Waker eventfd. */
  wakeFd: number;
  /** Counter block (counters.ts). */
  counters: Float64Array;
  /** Control block. */
  ctl: Int32Array;
  /** CPU to pin this worker to. */
  cpu?: number;
  /** Nice value to ask for (undefined: leave the thread's priority as it is). */
  nice?: number;
  /** When to ask for `nice`: while the worker falls behind, or always (priority.ts). */
  priority: PriorityMode;
}

/** Serve an input interface: open an RX ring on it in its fanout group. */
export interface OpenMessage {
  /** Message type. */
  type: "open";
  /** Sequence number (see {@link Ctl.seq}). */
  seq: number;
  /** Input slot (counter section, and the ring's tag in the worker's set). */
  slot: number;
  /** Generation of this slot assignment (written to `In.owner`). */
  gen: number;
  /** Interface name. */
  interface: string;
  /** This worker's index among the interface's fanout members. */
  member: number;
  /** Slot of the interface in the shared link table. */
  link: number;
  /** RX ring options (fanout group included). */
  rx: InputRxOptions;
}

/** Stop serving an input interface: close its ring (its rules stay unless `forget`). */
export interface CloseMessage {
  /** Message type. */
  type: "close";
  /** Sequence number. */
  seq: number;
  /** Input slot. */
  slot: number;
  /** Also drop the interface's rules and zero its counters (it has no rules any more). */
  forget: boolean;
}

/** A rule change on one input interface. */
export interface RulesMessage {
  /** Message type. */
  type: "rules";
  /** Sequence number. */
  seq: number;
  /** Input slot. */
  slot: number;
  /** Generation of the slot assignment (as in {@link OpenMessage}). */
  gen: number;
  /** Input interface name. */
  interface: string;
  /** Rules added or changed (a rule is identified by its slot). */
  upsert: TableRule[];
  /** Slots of rules removed. */
  remove: number[];
  /** Link-table slots of the interfaces the upserted rules name. */
  links: Record<string, number>;
}

/** Every rule change of a version has been sent: run it. */
export interface VersionMessage {
  /** Message type. */
  type: "version";
  /** Sequence number. */
  seq: number;
  /** The table version now complete. */
  version: number;
}

/**
 * Start copying the frames rule `rule` of input `slot` matches into `ring`
 * (datapath/capture.ts; `mcr ctl capture`). Sent again to a restarted
 * worker: the ring keeps its place.
 */
export interface CaptureMessage {
  /** Message type. */
  type: "capture";
  /** Sequence number. */
  seq: number;
  /** Capture id (the supervisor's). */
  id: number;
  /** Input slot of the rule's input interface. */
  slot: number;
  /** Rule slot. */
  rule: number;
  /** Rule id (a rule of another id in the slot is not captured). */
  ruleId: string;
  /** Which of the rule's inputs (every rule has one today: 0). */
  input: number;
  /** Most frames this worker writes. */
  count: number;
  /** The capture ring (capture.ts `newCaptureRing`); the supervisor reads it. */
  ring: SharedArrayBuffer;
}

/** Stop capture `id` (its rule goes back to what it was). */
export interface CaptureStopMessage {
  /** Message type. */
  type: "capture-stop";
  /** Sequence number. */
  seq: number;
  /** Capture id. */
  id: number;
}

/** Messages the supervisor posts after the init message. */
export type SupervisorMessage =
  | OpenMessage
  | CloseMessage
  | RulesMessage
  | VersionMessage
  | CaptureMessage
  | CaptureStopMessage;

/** A supervisor message before the worker handle numbers it (`seq` is added on sending). */
export type UnsentMessage = SupervisorMessage extends infer T
  ? T extends unknown ? Omit<T, "seq"> : never
  : never;

/** What a worker's ring on an input interface is doing. */
export type RingState = "open" | "error" | "closed";

/** Messages a worker posts to the supervisor. */
export type WorkerEvent =
  | { type: "ready"; index: number }
  | { type: "fatal"; index: number; message: string; code?: string }
  | {
    type: "ring";
    index: number;
    slot: number;
    gen: number;
    state: RingState;
    geometry?: { fanoutId: number; [k: string]: unknown };
    message?: string;
    code?: string;
  }
  | { type: "outputs"; index: number; changes: [slot: number, reason: string][] }
  | { type: "applied"; index: number; version: number }
  | { type: "stopped"; index: number }
  | { type: "log"; index: number; level: "debug" | "info" | "warning" | "error"; message: string };

/**
 * Bytes an RX ring slot needs on top of the link MTU: the tpacket2 header and
 * sockaddr_ll (68), then the Ethernet header and one VLAN tag (18). The
 * supervisor sizes slots with it; a worker reopens a ring whose slots the
 * link's MTU outgrew.
 */
export const RX_SLOT_OVERHEAD = 68 + 18;

/** Control block words (Int32Array over a SharedArrayBuffer, shared with a worker). */
export const Ctl = {
  /**
   * Sequence number of the latest message the supervisor posted. The worker
   * yields to its event loop only when it differs from the last message it
   * handled, then handles every message up to it in order.
   */
  seq: 0,
  /** Set to 1 to ask the worker to stop. */
  stop: 1,
  /** Log level index (0 trace … 5 fatal) the worker should use. */
  logLevel: 2,
  /**
   * The relay's role ({@link ROLE_ACTIVE} or {@link ROLE_STANDBY}), read once
   * per batch: a standby counts what it would send instead of sending it.
   */
  role: 3,
} as const;

/** `Ctl.role`: forward (the default). */
export const ROLE_ACTIVE = 0;
/** `Ctl.role`: count every datagram that would be sent as `standby`, send nothing. */
export const ROLE_STANDBY = 1;

/** Allocate a control block. */
export function newControlBlock(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(16 * 4));
}

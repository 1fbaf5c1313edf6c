/**
 * The contract between the supervisor (main thread, src/relay/) and a
 * data-path worker: the init message, the versioned rule table it runs, the
 * events it posts back, and the control block both sides read and write.
 * The counter block's layout is counters.ts; the shared link table's is
 * link_table.ts. Everything here crosses `postMessage` (structured clone) or
 * lives in a SharedArrayBuffer.
 *
 * @module
 */
import type { RxOptions, TxOptions } from "../../ffi/mod.ts";

/** TX ring options for the TX rings of a worker (every ring of the relay). */
export type TxRingOptions = Omit<TxOptions, "ifindex">;

/**
 * Identity of an output in a rule: the rule's id and where it sends. A slot
 * whose identity changes holds another output (its counters restart).
 */
export function outputKey(
  ruleId: string,
  o: { interface: string; dst: number; port: number },
): string {
  return `${ruleId}>${o.interface}|${o.dst}|${o.port}`;
}

/** One output as the worker needs it. Addresses are host-order u32. */
export interface TableOutput {
  /** Stable counter/template slot. */
  slot: number;
  /** Output interface name. */
  interface: string;
  /** Destination group or unicast address. */
  dst: number;
  /** Destination port. */
  port: number;
  /** Source address; 0 = the output interface's address. */
  srcIp: number;
  /** Source port; 0 = keep the input datagram's. */
  srcPort: number;
  /** Fixed TTL 1..255, or 0 for "decrement". */
  ttl: number;
  /** TOS byte (DSCP << 2). */
  tos: number;
}

/** One rule as the worker needs it. */
export interface TableRule {
  /** Stable counter slot. */
  slot: number;
  /** Stable rule id (hash of the input tuple). */
  id: string;
  /** Rule name. */
  name: string;
  /** Input group. */
  group: number;
  /** Input UDP port. */
  port: number;
  /** Required source address, 0 = any. */
  source: number;
  /** Required VLAN id, -1 = untagged only. */
  vlan: number;
  /** Outputs. */
  outputs: TableOutput[];
}

/** The complete rule table for one input interface, versioned. */
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
  /** Input interface name. */
  interface: string;
  /** RX ring options except ifindex and wakeFd. */
  rx: Omit<RxOptions, "ifindex" | "wakeFd">;
  /** TX ring options. */
  tx: TxRingOptions;
  /** The shared link table (link_table.ts). */
  links: Int32Array;
  /** Slot of the input interface in the link table. */
  inputLink: number;
  /** Waker eventfd. */
  wakeFd: number;
  /** Counter block. */
  counters: Float64Array;
  /** Control block. */
  ctl: Int32Array;
  /** CPU to pin this worker to. */
  cpu?: number;
}

/** Messages a worker posts to the supervisor. */
export type WorkerEvent =
  | { type: "ready"; index: number; geometry: unknown; ifindex: number }
  | { type: "fatal"; index: number; message: string; code?: string }
  | { type: "output"; index: number; slot: number; state: "ok" | "error"; reason?: string }
  | { type: "applied"; index: number; version: number }
  | { type: "stopped"; index: number }
  | { type: "log"; index: number; level: "debug" | "info" | "warning" | "error"; message: string };

/** What the supervisor posts after the init message: the next rule table. */
export interface TableMessage {
  /** Message type. */
  type: "table";
  /** The complete table (replaces the previous one). */
  table: WorkerTable;
}

/** Control block words (Int32Array over a SharedArrayBuffer, shared with a worker). */
export const Ctl = {
  /** Latest table version the supervisor has posted. */
  wantVersion: 0,
  /** Set to 1 to ask the worker to stop. */
  stop: 1,
  /** Log level index (0 trace … 5 fatal) the worker should use. */
  logLevel: 2,
} as const;

/** Allocate a control block. */
export function newControlBlock(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(16 * 4));
}

/**
 * Rule ids: a stable hash of a rule's input tuple (FNV-1a 64), whatever its
 * name or outputs, and the input's canonical text.
 *
 * @module
 */
import { ANY_PORT, type InputPort } from "./schema.ts";
import { hostPort } from "../common/net6.ts";

const FNV64_OFFSET = 0xcbf29ce484222325n;
const FNV64_PRIME = 0x100000001b3n;
const U64 = 0xffffffffffffffffn;

/** The fields of an input that identify a stream. */
export interface InputTuple {
  /** Receiving interface. */
  interface: string;
  /** Destination address (multicast group, range or unicast address), as written. */
  group: string;
  /** UDP port, or any ("any" or 0: one input). */
  port: InputPort;
  /** Source filter, dotted quad (optional). */
  source?: string;
  /** VLAN ID (optional; 0 is the same as absent). */
  vlan?: number;
}

/**
 * The canonical text of an input tuple: `interface|group|port|source|vlan`
 * (empty when absent; any port is "any", however written).
 */
export function inputKey(input: InputTuple): string {
  const vlan = input.vlan === undefined || input.vlan === 0 ? "" : String(input.vlan);
  const port = input.port === 0 ? ANY_PORT : input.port;
  return `${input.interface}|${input.group}|${port}|${input.source ?? ""}|${vlan}`;
}

/**
 * Stable id of a rule's input: FNV-1a 64-bit over the UTF-8 bytes of
 * `"interface|group|port|source|vlan"` (absent source/vlan as empty strings;
 * vlan 0 counts as absent), as 16 lowercase hex digits. Equal inputs give
 * equal ids, whatever the rule's name or outputs.
 */
export function ruleId(input: InputTuple): string {
  return fnv64(inputKey(input));
}

/**
 * Stable id of a rule with redundant inputs: FNV-1a 64 over their
 * canonical texts joined by `+`, in order (one input: {@link ruleId}).
 */
export function inputsId(inputs: readonly InputTuple[]): string {
  return inputs.length === 1 ? ruleId(inputs[0]) : fnv64(inputs.map(inputKey).join("+"));
}

/** FNV-1a 64 of a text's UTF-8 bytes, as 16 lowercase hex digits. */
function fnv64(text: string): string {
  let h = FNV64_OFFSET;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= BigInt(byte);
    h = (h * FNV64_PRIME) & U64;
  }
  return h.toString(16).padStart(16, "0");
}

/**
 * An input as people read it: `eth0 239.1.1.1:5001 from 10.0.0.5 vlan 7`,
 * `eth0 239.1.0.0/16:any`.
 */
export function describeInput(input: InputTuple): string {
  let s = `${input.interface} ${hostPort(input.group, input.port === 0 ? ANY_PORT : input.port)}`;
  if (input.source) s += ` from ${input.source}`;
  if (input.vlan) s += ` vlan ${input.vlan}`;
  return s;
}

/**
 * Ranges and wildcards: what an input's `group` ("239.1.0.0/16") and `port`
 * ("any") match, what an output's `group` and `port` ("keep", a mapped
 * range) resolve to against that input, and when an output sends into its
 * own input. Pure functions over structurally valid values (schema.ts); the
 * checks that report problems are semantics.ts's, the data path's matching
 * order is datapath/match.ts's.
 *
 * An output's destination is `addr` with the low `hostBits` bits of each
 * input datagram's destination (0: `addr` as is), and `port` (0: the input
 * datagram's port). What can be resolved once is: "keep" of one input group
 * is that group, "keep" of an exact input port is that port.
 *
 * @module
 */
import {
  formatIPv4,
  inPrefix,
  isMulticast,
  parseIPv4,
  parsePrefix,
  prefixMask,
} from "../common/net.ts";
import { MIN_RANGE_PREFIX } from "./limits.ts";
import { ANY_PORT, type InputPort, KEEP, type OutputPort } from "./schema.ts";

/** What an input matches, as numbers. */
export interface InputMatch {
  /** Group, unicast address, or a range's network address (as written). */
  addr: number;
  /** Prefix length: 32 for one address. */
  len: number;
  /** UDP port; 0 = any. */
  port: number;
}

/** Where an output sends, as numbers (see the module doc). */
export interface OutputDest {
  /** Destination, or the network address the input's host bits go onto. */
  addr: number;
  /** Low bits of the destination taken from the input datagram's (0: none). */
  hostBits: number;
  /** UDP port; 0 = the input datagram's. */
  port: number;
}

/** The number an input port stands for: 0 for "any" (written "any" or 0). */
export function portNumber(port: InputPort): number {
  return port === ANY_PORT ? 0 : port;
}

/** An input port in its one spelling: "any" for 0. */
export function canonicalPort(port: InputPort): InputPort {
  return port === 0 ? ANY_PORT : port;
}

/** What a structurally valid input matches. */
export function inputMatch(input: { group: string; port: InputPort }): InputMatch {
  const p = parsePrefix(input.group);
  return p
    ? { addr: p.addr, len: p.len, port: portNumber(input.port) }
    : { addr: parseIPv4(input.group)!, len: 32, port: portNumber(input.port) };
}

/** Whether an input is a range of groups (a prefix shorter than 32). */
export function isRange(m: InputMatch): boolean {
  return m.len < 32;
}

/** Whether a prefix is a usable range: multicast, at least /{@link MIN_RANGE_PREFIX}. */
export function isMulticastRange(addr: number, len: number): boolean {
  return len >= MIN_RANGE_PREFIX && isMulticast(addr);
}

/**
 * An output's destination against its input, or why it cannot have one (a
 * range output needs a range input of the same length).
 */
export function outputDest(
  input: InputMatch,
  output: { group: string; port: OutputPort },
): OutputDest | { problem: string } {
  const port = output.port === KEEP ? input.port : output.port;
  if (output.group === KEEP) {
    return { addr: input.addr, hostBits: 32 - input.len, port };
  }
  const p = parsePrefix(output.group);
  if (!p) return { addr: parseIPv4(output.group)!, hostBits: 0, port };
  if (!isRange(input)) {
    return {
      problem: `is a range, but the input is one address: a range output maps a range input ` +
        `of the same length onto itself; write one group, or "${KEEP}"`,
    };
  }
  if (p.len !== input.len) {
    return {
      problem: `is a /${p.len}, but the input range is a /${input.len}: a mapped range has the ` +
        "input range's length (each datagram keeps its host bits)",
    };
  }
  return { addr: p.addr, hostBits: 32 - p.len, port };
}

/** The destination addresses an output can send to, as a prefix (a fixed one: /32). */
function destPrefix(d: OutputDest): { addr: number; len: number } {
  return { addr: d.addr, len: 32 - d.hostBits };
}

/**
 * Whether an output on the input's interface sends datagrams of the input
 * back into that same input: some datagram the input matches goes to a
 * group and port the input matches. A fixed destination loops when it is
 * inside the input's range; a mapped or kept range (its host bits kept) when
 * it is the input range itself. A kept port always matches, a fixed port
 * when the input takes any port or that one.
 */
export function loopsInto(input: InputMatch, d: OutputDest): boolean {
  const dp = destPrefix(d);
  const groups = dp.len === 32
    ? inPrefix(dp.addr, input.addr, input.len)
    : dp.len === input.len && inPrefix(dp.addr, input.addr, input.len);
  const ports = d.port === 0 || input.port === 0 || d.port === input.port;
  return groups && ports;
}

/** The identity of a destination (two outputs with the same one on one interface are duplicates). */
export function destKey(d: OutputDest): string {
  return `${d.addr}/${d.hostBits}:${d.port}`;
}

/** The network address of a prefix (host bits cleared). */
export function networkOf(addr: number, len: number): number {
  return (addr & prefixMask(len)) >>> 0;
}

/** An input's group from its numbers: "239.1.1.1", or a range "239.1.0.0/16". */
export function groupText(addr: number, len: number): string {
  return len === 32 ? formatIPv4(addr) : `${formatIPv4(addr)}/${len}`;
}

/**
 * An output's destination from its numbers: its address, or the range each
 * datagram's host bits go into ("keep" of a range shows as that range).
 */
export function destText(addr: number, hostBits: number): string {
  return groupText(addr, 32 - hostBits);
}

/** An input port from its number: "any" for 0. */
export function inputPortOf(port: number): InputPort {
  return port === 0 ? ANY_PORT : port;
}

/** An output port from its number: "keep" for 0 (the input datagram's). */
export function outputPortOf(port: number): OutputPort {
  return port === 0 ? KEEP : port;
}

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
 * IPv6 (issue 14): an IPv6 input or output is one address (no ranges), held
 * as `addr6` with `addr` its low 32 bits (the bits a template maps; csrc
 * `mcr_fwd_set_template6`). An output of the other family than its input
 * translates: new headers, the payload as it is.
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
import { formatIPv6, type Ip6, ip6Equal, looksIPv6, parseIPv6Any } from "../common/net6.ts";
import { MIN_RANGE_PREFIX } from "./limits.ts";
import { ANY_PORT, type InputPort, KEEP, type OutputPort } from "./schema.ts";

/** An address family: 4 or 6. */
export type Family = 4 | 6;

/** What an input matches, as numbers. */
export interface InputMatch {
  /** The input's address family. */
  family: Family;
  /** Group, unicast address, or a range's network address (as written); IPv6: its low 32 bits. */
  addr: number;
  /** Prefix length: 32 for one IPv4 address, 128 for an IPv6 one. */
  len: number;
  /** UDP port; 0 = any. */
  port: number;
  /** The IPv6 address (family 6). */
  addr6?: Ip6;
}

/** Where an output sends, as numbers (see the module doc). */
export interface OutputDest {
  /** The destination's address family. */
  family: Family;
  /** Destination, or the network address the input's host bits go onto; IPv6: its low 32 bits. */
  addr: number;
  /** The IPv6 destination (family 6). */
  addr6?: Ip6;
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

/** The family of an address as written (structurally valid): 6 for IPv6 text. */
export function familyOf(text: string): Family {
  return looksIPv6(text) ? 6 : 4;
}

/** What a structurally valid input matches. */
export function inputMatch(input: { group: string; port: InputPort }): InputMatch {
  const port = portNumber(input.port);
  if (looksIPv6(input.group)) {
    const a = parseIPv6Any(input.group)!;
    return { family: 6, addr: a[3], len: 128, port, addr6: a };
  }
  const p = parsePrefix(input.group);
  return p
    ? { family: 4, addr: p.addr, len: p.len, port }
    : { family: 4, addr: parseIPv4(input.group)!, len: 32, port };
}

/** Whether an input is a range of groups (an IPv4 prefix shorter than 32). */
export function isRange(m: InputMatch): boolean {
  return m.family === 4 && m.len < 32;
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
    return input.family === 6
      ? { family: 6, addr: input.addr, addr6: input.addr6, hostBits: 0, port }
      : { family: 4, addr: input.addr, hostBits: 32 - input.len, port };
  }
  if (looksIPv6(output.group)) {
    const a = parseIPv6Any(output.group)!;
    return { family: 6, addr: a[3], addr6: a, hostBits: 0, port };
  }
  const p = parsePrefix(output.group);
  if (!p) return { family: 4, addr: parseIPv4(output.group)!, hostBits: 0, port };
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
  return { family: 4, addr: p.addr, hostBits: 32 - p.len, port };
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
  if (input.family !== d.family) return false; // another family is another datagram
  const ports = d.port === 0 || input.port === 0 || d.port === input.port;
  if (d.family === 6) return ip6Equal(input.addr6!, d.addr6!) && ports;
  const dp = destPrefix(d);
  const groups = dp.len === 32
    ? inPrefix(dp.addr, input.addr, input.len)
    : dp.len === input.len && inPrefix(dp.addr, input.addr, input.len);
  return groups && ports;
}

/** The identity of a destination (two outputs with the same one on one interface are duplicates). */
export function destKey(d: OutputDest): string {
  if (d.family === 6) return `${formatIPv6(d.addr6!)}:${d.port}`;
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

/**
 * A table output's destination as text, of either family: an IPv6
 * address, or as {@link destText}.
 */
export function outputDestText(o: { dst: number; hostBits: number; dst6?: Ip6 }): string {
  return o.dst6 ? formatIPv6(o.dst6) : destText(o.dst, o.hostBits);
}

/** An input port from its number: "any" for 0. */
export function inputPortOf(port: number): InputPort {
  return port === 0 ? ANY_PORT : port;
}

/** An output port from its number: "keep" for 0 (the input datagram's). */
export function outputPortOf(port: number): OutputPort {
  return port === 0 ? KEEP : port;
}

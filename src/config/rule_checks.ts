/**
 * The checks of one rule on its own that zod's structure cannot express:
 * address classes (inputs and outputs multicast or usable unicast,
 * link-local groups only with `allow_link_local`), ranges (network address
 * without host bits, multicast, a mapped range of the input range's length,
 * `joins` inside the range, "any" port only on a multicast input), an output
 * sending back into its own input, duplicate outputs. They run on the
 * individually valid parts of a rule (semantics.ts `LooseRule`), so one run
 * lists every problem.
 *
 * @module
 */
import {
  formatIPv4,
  hostBitsSet,
  inPrefix,
  isLinkLocalMulticast,
  isMulticast,
  parseIPv4,
  parsePrefix,
  prefixesOverlap,
  unicastProblem,
} from "../common/net.ts";
import { describeInput } from "./ids.ts";
import { MIN_RANGE_PREFIX } from "./limits.ts";
import {
  destKey,
  familyOf,
  inputMatch,
  isMulticastRange,
  loopsInto,
  networkOf,
  outputDest,
} from "./ranges.ts";
import { ANY_PORT, KEEP, type RawInput } from "./schema.ts";
import type { LooseRule } from "./semantics.ts";
import { healthIssues, rateLimitIssues } from "./stream_options.ts";
import { redundancyIssues } from "./redundancy.ts";
import { address6Problems, checkInput6, source6Problems } from "./rule_checks6.ts";
import { formatIPv6, hostPort } from "../common/net6.ts";

/** What an input or output address must be. */
const ADDRESS_CLASSES = "must be a multicast group or a usable unicast address";

const LINK_LOCAL_WHY = "is link-local multicast (224.0.0.0/24), reserved for control traffic " +
  "such as IGMP, OSPF, RIP, VRRP, PIM and mDNS; relaying it breaks those protocols. " +
  'Set "allow_link_local": true on the rule to relay it anyway';

/** Network and length of the link-local multicast block. */
const LINK_LOCAL = { addr: 0xe0000000, len: 24 };

/** A problem of a rule, at a path relative to the rule. */
export type Issue = { path: (string | number)[]; message: string };

/**
 * Problems of a range as written (`"239.1.0.0/16"` in an input or output
 * `group`): one address written as /32, host bits set, not multicast, or
 * (without `allow_link_local`) overlapping 224.0.0.0/24. `what` names the
 * range in the message ("a range", "a mapped range").
 */
function rangeProblems(text: string, allowLL: boolean, what: string): string[] {
  const p = parsePrefix(text)!;
  const out: string[] = [];
  if (p.len === 32) {
    return [`"${text}" is one address: write "${formatIPv4(p.addr)}" (one spelling per address)`];
  }
  if (hostBitsSet(p.addr, p.len)) {
    const net = `${formatIPv4(networkOf(p.addr, p.len))}/${p.len}`;
    out.push(
      `"${text}" has host bits set: the network address of that /${p.len} is "${net}"`,
    );
  }
  if (!isMulticastRange(p.addr, p.len)) {
    out.push(
      `${what} must be multicast, inside 224.0.0.0/4 and no wider than /${MIN_RANGE_PREFIX} ` +
        `(got "${text}"); a unicast input or output names one address`,
    );
  } else if (!allowLL && prefixesOverlap(p.addr, p.len, LINK_LOCAL.addr, LINK_LOCAL.len)) {
    out.push(`"${text}" includes 224.0.0.0/24, which ${LINK_LOCAL_WHY}`);
  }
  return out;
}

/** Problems of one address as an input or output `group`. */
function addressProblems(text: string, allowLL: boolean): string[] {
  const g = parseIPv4(text)!;
  if (isMulticast(g)) {
    return isLinkLocalMulticast(g) && !allowLL ? [`${text} ${LINK_LOCAL_WHY}`] : [];
  }
  const why = unicastProblem(g);
  return why ? [`${ADDRESS_CLASSES} (got "${text}": ${why})`] : [];
}

/** Checks of a rule's input: its group or range, `port` "any", `joins`, `source`. */
function checkInput(input: RawInput, allowLL: boolean, issues: Issue[]): void {
  if (familyOf(input.group) === 6) return checkInput6(input, allowLL, issues);
  // A unicast input is the relay's own address on the input interface, or
  // another host's seen there (mirror/SPAN port): any usable unicast address.
  const ranged = parsePrefix(input.group) !== null;
  const at = (message: string) => issues.push({ path: ["input", "group"], message });
  (ranged ? rangeProblems(input.group, allowLL, "a range") : addressProblems(input.group, allowLL))
    .forEach(at);
  const m = inputMatch(input);
  if (!ranged && !isMulticast(m.addr) && m.port === 0) {
    issues.push({
      path: ["input", "port"],
      message: `"${ANY_PORT}" needs a multicast input: a unicast input's port is claimed from ` +
        "the kernel (so that it answers no ICMP port unreachable), one port at a time; give " +
        "the port",
    });
  }
  if (input.joins !== undefined) {
    if (!ranged) {
      issues.push({
        path: ["input", "joins"],
        message: "lists the groups of a range to join, but the input is one address (a " +
          "multicast group is joined by itself, a unicast address joins nothing)",
      });
    } else {
      const seen = new Map<number, number>();
      input.joins.forEach((j, k) => {
        const g = parseIPv4(j)!;
        const first = seen.get(g);
        if (first !== undefined) {
          issues.push({
            path: ["input", "joins", k],
            message: `duplicate of joins[${first}] (${j})`,
          });
        } else if (!inPrefix(g, m.addr, m.len)) {
          issues.push({
            path: ["input", "joins", k],
            message: `${j} is outside the input range ${input.group}: only groups the rule ` +
              "relays can be joined for it",
          });
        }
        if (first === undefined) seen.set(g, k);
      });
    }
  }
  if (input.source !== undefined && familyOf(input.source) === 6) {
    for (const message of source6Problems(input.source, 4, "group")) {
      issues.push({ path: ["input", "source"], message });
    }
  } else if (input.source !== undefined) {
    const why = unicastProblem(parseIPv4(input.source)!);
    if (why) {
      issues.push({
        path: ["input", "source"],
        message: `must be a unicast source address (got "${input.source}": ${why})`,
      });
    }
  }
}

/** One address as text, of either family. */
function destAddrText(family: 4 | 6, addr: number, addr6?: readonly number[]): string {
  return family === 6 ? formatIPv6(addr6 as [number, number, number, number]) : formatIPv4(addr);
}

/**
 * `ttl` and `hops` (IPv6's name for it) of a rule or an output at `path`:
 * one of them at most.
 */
function hopsIssues(o: Record<string, unknown>, path: (string | number)[]): Issue[] {
  if (o.ttl === undefined || o.hops === undefined) return [];
  return [{
    path: [...path, "hops"],
    message: 'is IPv6\'s name for "ttl", which is given too: give one of them',
  }];
}

/**
 * Checks of one rule on its own, over its individually valid parts. Paths are
 * relative to the rule. (Link-local checks are skipped while
 * `allow_link_local` itself is invalid.)
 */
export function checkRule(rule: LooseRule): Issue[] {
  const issues: Issue[] = [];
  const allowLL = rule.allowLinkLocal ?? true;
  const input = rule.input;
  for (const { input: one, path } of rule.inputs) {
    if (!one) continue;
    const own: Issue[] = [];
    checkInput(one, allowLL, own);
    // checkInput speaks of ["input", ...]; a redundant input is ["inputs", k, ...]
    for (const i of own) issues.push({ path: [...path, ...i.path.slice(1)], message: i.message });
  }
  issues.push(...redundancyIssues(rule.record));
  issues.push(...hopsIssues(rule.record, []));
  issues.push(...rateLimitIssues(rule.rateLimit, ["rate_limit"]));
  if (rule.health) issues.push(...healthIssues(rule.health, input));
  const match = input ? inputMatch(input) : undefined;
  const seen = new Map<string, number>();
  rule.outputs.forEach((o, j) => {
    if (!o) return;
    const at = (message: string) => issues.push({ path: ["outputs", j, "group"], message });
    if (parsePrefix(o.group)) rangeProblems(o.group, allowLL, "a mapped range").forEach(at);
    else if (o.group !== KEEP && familyOf(o.group) === 6) {
      address6Problems(o.group, allowLL, false).forEach(at);
    } else if (o.group !== KEEP) addressProblems(o.group, allowLL).forEach(at);
    const dest = match ? outputDest(match, o) : undefined;
    if (dest && "problem" in dest) at(dest.problem);
    issues.push(...hopsIssues(o, ["outputs", j]));
    // the family the output sends: its group's ("keep": the input's)
    const family = o.group !== KEEP ? familyOf(o.group) : match?.family;
    if (
      o.source_ip !== undefined && family !== undefined &&
      (family === 6 || familyOf(o.source_ip) === 6)
    ) {
      for (const message of source6Problems(o.source_ip, family, "output group")) {
        issues.push({ path: ["outputs", j, "source_ip"], message });
      }
    } else if (o.source_ip !== undefined) {
      const why = unicastProblem(parseIPv4(o.source_ip)!);
      if (why) {
        issues.push({
          path: ["outputs", j, "source_ip"],
          message: `must be a unicast address of this host (got "${o.source_ip}": ${why})`,
        });
      }
    }
    issues.push(...rateLimitIssues(o.rate_limit, ["outputs", j, "rate_limit"]));
    const written = `${o.interface} ${hostPort(o.group, o.port)}`;
    const resolved = dest && !("problem" in dest) ? dest : undefined;
    for (const { input: one } of rule.inputs) {
      if (!one || !resolved || o.interface !== one.interface) continue;
      const m = inputMatch(one);
      if (!loopsInto(m, resolved)) continue;
      const exact = (m.len === 32 || m.family === 6) && resolved.hostBits === 0 && m.port !== 0;
      issues.push({
        path: ["outputs", j],
        message: exact
          ? `same interface, group and port as the rule's input (${o.interface} ` +
            `${
              hostPort(destAddrText(resolved.family, resolved.addr, resolved.addr6), resolved.port)
            }); ` +
            "it would forward the stream into itself"
          : `sends on the input's interface to ${
            hostPort(o.group, o.port)
          }, back into the rule's own ` +
            `input (${describeInput(one)}); it would forward the stream into itself`,
      });
    }
    // Duplicates: the same interface and destination, however written ("keep" of a range is
    // that range; "keep" of one group that group).
    const k = `${o.interface}|${resolved ? destKey(resolved) : `${o.group}:${o.port}`}`;
    const first = seen.get(k);
    if (first !== undefined) {
      issues.push({
        path: ["outputs", j],
        message: `duplicate of outputs[${first}] (same interface, group and port: ${written})`,
      });
    } else {
      seen.set(k, j);
    }
  });
  return issues;
}

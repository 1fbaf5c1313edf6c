/**
 * The checks of IPv6 addresses in a rule (issue 14), beside rule_checks.ts's
 * IPv4 ones: one spelling per address (RFC 5952), multicast scopes (below
 * admin-local only with `allow_link_local`, interface-local and reserved
 * never), source-specific groups (ff3x::/32) only with a source, and an
 * address's family where the other one is expected (a source of the
 * other family than its group). IPv6 inputs and outputs name one address:
 * ranges are IPv4 only.
 *
 * @module
 */
import {
  canonicalIPv6,
  formatIPv6,
  type Ip6,
  isMulticast6,
  isSsm6,
  multicastScope,
  parseIPv6,
  Scope,
  unicast6Problem,
} from "../common/net6.ts";
import { familyOf } from "./ranges.ts";
import type { RawInput } from "./schema.ts";

/** A problem of a rule, at a path relative to the rule (as rule_checks.ts `Issue`). */
type Issue = { path: (string | number)[]; message: string };

const SCOPE_WHY = "multicast below admin-local scope (ff01::/16 interface-local, ff02::/16 " +
  "link-local, ff03::/16 realm-local) carries control traffic such as MLD, neighbour " +
  "discovery, DHCPv6, OSPFv3 and mDNS; relaying it breaks those protocols. Set " +
  '"allow_link_local": true on the rule to relay link- and realm-local groups anyway';

/**
 * The address of an IPv6 text, or the problem: not in its canonical form
 * (the message gives that form).
 */
export function canonical6(text: string): Ip6 | string {
  const a = parseIPv6(text);
  if (a !== null) return a;
  const c = canonicalIPv6(text);
  return c === null
    ? `"${text}" is not an IPv6 address`
    : `write "${c}": IPv6 addresses are written in their canonical form (RFC 5952: ` +
      "lowercase, no leading zeros, the longest run of zero words as ::), one spelling per " +
      "address";
}

/**
 * Problems of an IPv6 group or unicast address (an input's `group` or an
 * output's): its spelling, and its scope (multicast) or usability (unicast;
 * `unicastInput`: an input may not be unicast).
 */
export function address6Problems(text: string, allowLL: boolean, input: boolean): string[] {
  const a = canonical6(text);
  if (typeof a === "string") return [a];
  if (isMulticast6(a)) {
    const scope = multicastScope(a);
    if (scope === 0 || scope === 0xf) return [`${text} has a reserved multicast scope (${scope})`];
    if (scope === Scope.interfaceLocal) {
      return [`${text} is interface-local multicast (ff01::/16): it never leaves a host`];
    }
    if (scope < Scope.adminLocal && !allowLL) return [`${text}: ${SCOPE_WHY}`];
    return [];
  }
  if (input) {
    return [
      `${text} is an IPv6 unicast address: an IPv6 input must be a multicast group (IPv6 ` +
      "unicast inputs are not supported; IPv4 ones are)",
    ];
  }
  const why = unicast6Problem(a);
  return why
    ? [`must be a multicast group or a usable unicast address (got "${text}": ${why})`]
    : [];
}

/**
 * Problems of a source address (`input.source`, `outputs[].source_ip`) of a
 * datagram of family `family`: its family, its spelling, a usable unicast address.
 * (IPv4 sources are rule_checks.ts's.)
 */
export function source6Problems(text: string, family: 4 | 6, what: string): string[] {
  const f = familyOf(text);
  if (f !== family) {
    return [
      `${text} is an IPv${f} address, but the ${what} is IPv${family}: a source has the ` +
      "family of its datagrams",
    ];
  }
  const a = canonical6(text);
  if (typeof a === "string") return [a];
  const why = unicast6Problem(a);
  return why ? [`must be a unicast address (got "${text}": ${why})`] : [];
}

/** Checks of an IPv6 input: its group, `joins` (none), `source` (SSM groups need one). */
export function checkInput6(input: RawInput, allowLL: boolean, issues: Issue[]): void {
  for (const message of address6Problems(input.group, allowLL, true)) {
    issues.push({ path: ["input", "group"], message });
  }
  if (input.joins !== undefined) {
    issues.push({
      path: ["input", "joins"],
      message: "lists the groups of an IPv4 range to join, but the input is one IPv6 group " +
        "(joined by itself, with MLD)",
    });
  }
  if (input.source !== undefined) {
    for (const message of source6Problems(input.source, 6, "group")) {
      issues.push({ path: ["input", "source"], message });
    }
  }
  const g = parseIPv6(input.group);
  if (g !== null && isSsm6(g) && input.source === undefined) {
    issues.push({
      path: ["input", "source"],
      message: `is required: ${formatIPv6(g)} is a source-specific group (ff3x::/32, RFC ` +
        "4607), joined only with the source that sends to it",
    });
  }
}

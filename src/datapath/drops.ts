/**
 * Drop reasons: why a frame or a datagram was not forwarded, as stable small
 * integers that index the counter blocks (counters.ts) and name the
 * `reason` label of the drop metrics. The parsers (packet.ts, packet6.ts),
 * the matcher, the options and the forwarder all count under these.
 *
 * @module
 */

/**
 * Drop reasons, stable small integers used as counter indices (do not
 * renumber: metrics and the C side may index arrays with them).
 *
 * - `not_ipv4`: ethertype is neither IPv4 nor IPv6 (ARP, LLDP, 802.3 length
 *   field, ...), or, on a link without a link-layer header, the IP version is
 *   neither 4 nor 6. (The name is older than IPv6 support; it stays, as a
 *   metric label.)
 * - `not_udp`: the IPv4 protocol or IPv6 next header is not UDP (ICMP,
 *   ICMPv6, IGMP, TCP, ESP, ...).
 * - `fragment`: an IPv4 fragment (MF set or non-zero offset) or an IPv6
 *   packet with a fragment header; never reassembled.
 * - `malformed`: inconsistent headers or lengths, or a frame too short for them.
 * - `truncated`: the ring slot cut the frame (snaplen < length on the wire).
 * - `no_match`: a valid datagram no rule wants (counted by the matcher).
 * - `ttl_expired`: "decrement" TTL policy and the input TTL was 1 (or 0).
 * - `tx_ring_full`: no free TX slot (counted by the forwarder).
 * - `tx_error`: the forwarder refused or failed to send.
 * - `vlan`: more than one VLAN tag level (QinQ, or an in-band tag under a
 *   kernel-stripped one); the relay handles at most one tag.
 * - `tx_link_down`: the output link was down, without carrier or gone.
 * - `tx_too_big`: longer than the output MTU with DF set (or refused by the
 *   kernel as too long); without DF the relay sends IPv4 fragments instead.
 * - `tx_invalid`: a forward descriptor named no installed output (a bug
 *   guard: the hot loop never writes one).
 * - `unprocessed`: frames still in the RX ring when its worker failed.
 * - `bad_checksum`: the IPv4 header checksum does not verify (the header was
 *   corrupted on the way; the kernel would drop it too).
 * - `policed`: over a `rate_limit` (the rule's or the output's; policer.ts),
 *   counted per output datagram like the other output-level reasons.
 * - `standby`: the relay is a standby (`role`): the datagram would have been
 *   sent to the output and was not (counted per output, as a drop reason).
 * - `merged_duplicate`: a copy, on another path of a rule with redundant
 *   `inputs`, of a datagram already forwarded (arbiter.ts).
 * - `merge_late`: on a path of a redundant rule, too far behind the stream to
 *   tell whether it was already forwarded (beyond the `redundancy.window`).
 * - `inactive_input`: on a path of a `failover` rule that is not the active one.
 * - `ipv6_extension`: an IPv6 extension-header chain the relay does not
 *   follow: longer than packet6.ts `MAX_EXTENSION_HEADERS`, or a routing
 *   header with segments left (the datagram's final destination is another).
 */
export const Drop = {
  not_ipv4: 0,
  not_udp: 1,
  fragment: 2,
  malformed: 3,
  truncated: 4,
  no_match: 5,
  ttl_expired: 6,
  tx_ring_full: 7,
  tx_error: 8,
  vlan: 9,
  tx_link_down: 10,
  tx_too_big: 11,
  tx_invalid: 12,
  unprocessed: 13,
  bad_checksum: 14,
  policed: 15,
  standby: 16,
  merged_duplicate: 17,
  merge_late: 18,
  inactive_input: 19,
  ipv6_extension: 20,
} as const;

/** A drop reason code (a value of {@link Drop}). */
export type DropCode = (typeof Drop)[keyof typeof Drop];

/** Number of drop reasons; counter arrays indexed by {@link Drop} have this length. */
export const DROP_COUNT: number = Object.keys(Drop).length;

/** Drop reason names indexed by code: `DROP_NAMES[Drop.fragment] === "fragment"`. */
export const DROP_NAMES: readonly string[] = Object.freeze(
  (() => {
    const names = new Array<string>(DROP_COUNT);
    for (const [name, code] of Object.entries(Drop)) names[code] = name;
    return names;
  })(),
);

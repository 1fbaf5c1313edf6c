/**
 * Link types: which interfaces the relay can capture from and send on, and
 * how. The kernel names an interface's link type with an ARPHRD_* number
 * (rtnetlink, `SIOCGIFHWADDR`); it decides what a frame in an AF_PACKET
 * SOCK_RAW ring starts with, and whether an output can be built as a frame:
 *
 * - **Ethernet** (`ARPHRD_ETHER`: Ethernet, veth, bridge, bond, macvlan,
 *   VXLAN, gretap, tap): a 14-byte Ethernet II header (ethertype, maybe a
 *   VLAN tag). Outputs are built as frames into a TX ring.
 * - **IP** — links without a link-layer header (`ARPHRD_NONE`: tun,
 *   WireGuard; `ARPHRD_TUNNEL`: ipip, vti; `ARPHRD_TUNNEL6`: ip6tnl, vti6;
 *   `ARPHRD_SIT`; `ARPHRD_PPP`; `ARPHRD_RAWIP`: cellular modems): the frame is
 *   the IPv4 packet, its version nibble says what it is. None of these
 *   devices has header operations, so a packet socket gets the packet from
 *   its network header on. Outputs have no MAC to build a frame for: they
 *   are sent through a UDP socket bound to the device (forwarder template
 *   kind `socket`), and the kernel builds the IPv4 header.
 *
 * Everything else is refused with the reason (rules on it are in error,
 * never active), in particular:
 * - **loopback**: traffic the host sends to itself; a program on the host can
 *   send to the output group itself, and mcr relays between network links;
 * - **GRE** (`ARPHRD_IPGRE`, `ARPHRD_IP6GRE`): a GRE device without a fixed
 *   remote (NBMA) or with a multicast one hands packet sockets the outer
 *   IPv4 and GRE headers, of a length the link type does not tell; gretap is
 *   an Ethernet link and works;
 * - any other type (InfiniBand, CAN, 802.11 monitor, ...): an unknown link
 *   header.
 *
 * @module
 */
import type { LinkLayout } from "../../ffi/mod.ts";

/** ARPHRD_* numbers (linux/if_arp.h) the relay knows by name. */
export const ARPHRD = {
  ETHER: 1,
  INFINIBAND: 32,
  CAN: 280,
  PPP: 512,
  RAWIP: 519,
  TUNNEL: 768,
  TUNNEL6: 769,
  LOOPBACK: 772,
  SIT: 776,
  IPGRE: 778,
  IEEE80211_RADIOTAP: 803,
  IP6GRE: 823,
  NETLINK: 824,
  NONE: 0xfffe,
} as const;

/** Length of the Ethernet II header: where the IPv4 header starts on an untagged Ethernet frame. */
export const ETH_HLEN = 14;

/** Bytes before the IPv4 header of an (untagged) frame, by layout: what the parser skips. */
export const LINK_HEADER: Readonly<Record<LinkLayout, number>> = { ethernet: ETH_HLEN, ip: 0 };

/** Link types the relay serves, with their layout. */
const LAYOUTS: ReadonlyMap<number, LinkLayout> = new Map<number, LinkLayout>([
  [ARPHRD.ETHER, "ethernet"],
  [ARPHRD.NONE, "ip"],
  [ARPHRD.TUNNEL, "ip"],
  [ARPHRD.TUNNEL6, "ip"],
  [ARPHRD.SIT, "ip"],
  [ARPHRD.PPP, "ip"],
  [ARPHRD.RAWIP, "ip"],
]);

/** Names of link types, for messages. */
const NAMES: ReadonlyMap<number, string> = new Map([
  [ARPHRD.ETHER, "Ethernet"],
  [ARPHRD.INFINIBAND, "InfiniBand"],
  [ARPHRD.CAN, "CAN"],
  [ARPHRD.PPP, "PPP"],
  [ARPHRD.RAWIP, "raw IP"],
  [ARPHRD.TUNNEL, "IPIP tunnel"],
  [ARPHRD.TUNNEL6, "IPv6 tunnel"],
  [ARPHRD.LOOPBACK, "loopback"],
  [ARPHRD.SIT, "SIT tunnel"],
  [ARPHRD.IPGRE, "GRE"],
  [ARPHRD.IEEE80211_RADIOTAP, "802.11 radiotap"],
  [ARPHRD.IP6GRE, "IPv6 GRE"],
  [ARPHRD.NETLINK, "netlink monitor"],
  [ARPHRD.NONE, "none (tun, WireGuard)"],
]);

/** The link types the relay serves, as a sentence for messages and docs. */
export const SUPPORTED_LINKS =
  "Ethernet, and links without a link-layer header (tun, WireGuard, ipip, sit, ip6tnl, PPP, " +
  "raw IP)";

/** How frames of link type `type` start, or undefined when the relay cannot serve it. */
export function linkLayout(type: number): LinkLayout | undefined {
  return LAYOUTS.get(type);
}

/** A link type for messages: its name and number (`GRE (ARPHRD 778)`). */
export function linkTypeName(type: number): string {
  const name = NAMES.get(type);
  return name ? `${name} (ARPHRD ${type})` : `ARPHRD ${type}`;
}

/**
 * Why an `input` or `output` interface `name` of link type `type` cannot be
 * served, or undefined when it can.
 */
export function linkTypeProblem(
  role: "input" | "output",
  name: string,
  type: number,
): string | undefined {
  if (LAYOUTS.has(type)) return undefined;
  const what = `${role} interface ${name} is ${linkTypeName(type)}`;
  switch (type) {
    case ARPHRD.LOOPBACK:
      return `${what}: mcr relays between network links, not traffic the host sends to itself ` +
        `(a program on this host can send to the group directly)`;
    case ARPHRD.IPGRE:
    case ARPHRD.IP6GRE:
      return `${what}, which mcr cannot relay: a GRE device without a fixed remote, or with a ` +
        `multicast one, hands packet sockets the outer IP and GRE headers (use a gretap or ` +
        `ipip device)`;
    default:
      return `${what}, a link type mcr cannot relay (unknown link header); supported are ` +
        SUPPORTED_LINKS;
  }
}

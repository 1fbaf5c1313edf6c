/**
 * IPv4/UDP and IPv6/UDP frame parser over RX ring memory: the relay's hot
 * path (IPv6 and its extension headers: packet6.ts).
 *
 * {@link parseFrame} reads one frame in place from the ring mapping and fills
 * a reused {@link ParsedPacket}. A frame is Ethernet II, or the IPv4 packet
 * itself on a link without a link-layer header (tun, WireGuard, ...): the
 * ring's link header length says which (link_types.ts). It allocates nothing (no DataView, no
 * objects, no closures, no strings): multi-byte fields are assembled from
 * bytes by hand, big-endian.
 *
 * Checksums: the IPv4 header checksum IS verified (a ones' complement sum
 * over IHL * 4 = 20..60 bytes, options included; what the kernel's `ip_rcv`
 * does), because the relay writes a fresh header: forwarding a corrupted one
 * would launder the corruption (a flipped address bit could even send the
 * datagram to the wrong group). The UDP checksum is deliberately NOT verified
 * (it would cost a pass over every payload byte). The relay never recomputes
 * an output UDP checksum from scratch: it derives it incrementally (RFC 1624)
 * from the input datagram's checksum, so a datagram whose payload was
 * corrupted before it reached us still carries a checksum that does not
 * match, and the receiver detects the corruption end to end.
 *
 * @module
 */
import { ETH_HLEN } from "./link_types.ts";
import { Drop } from "./drops.ts";
import { IP_V6, parseIPv6 } from "./packet6.ts";

export { Drop, DROP_COUNT, DROP_NAMES, type DropCode } from "./drops.ts";

/** `tpacket_hdr.tp_status` bit: the kernel stripped a VLAN tag into `tp_vlan_tci`. */
export const TP_STATUS_VLAN_VALID = 0x10;

/** Ethertype of IPv4. */
export const ETH_P_IP = 0x0800;
/** Ethertype of IPv6. */
export const ETH_P_IPV6 = 0x86dd;
/** Ethertype (TPID) of an 802.1Q customer VLAN tag. */
export const ETH_P_8021Q = 0x8100;
/** Ethertype (TPID) of an 802.1ad service VLAN tag. */
export const ETH_P_8021AD = 0x88a8;
/** IPv4 protocol number of UDP. */
export const IPPROTO_UDP = 17;

// Header layout (RFC 894 Ethernet, RFC 791 IPv4, RFC 768 UDP): byte offsets.
/** Ethertype in the Ethernet header. */
const ETH_TYPE = 12;
/** An 802.1Q/802.1ad tag: TPID-less TCI (2) + the next Ethertype (2). */
const VLAN_TAG_LEN = 4;
/** VLAN ID bits of a TCI. */
const VID_MASK = 0xfff;
/** Shortest IPv4 header. */
const IP_MIN_HLEN = 20;
const IP_TOTLEN = 2;
const IP_ID = 4;
const IP_FRAG = 6;
const IP_TTL = 8;
const IP_CSUM = 10;
const IP_SRC = 12;
const IP_DST = 16;
/** A ones' complement sum over a header that verifies (RFC 1071: all ones). */
const CSUM_OK = 0xffff;
/** MF flag and fragment offset bits of the flags/offset word. */
const IP_MF_OFFSET = 0x3fff;
const UDP_HLEN = 8;
const UDP_DPORT = 2;
const UDP_LEN = 4;
const UDP_CSUM = 6;
/** The IP version of an IPv4 header, in the high nibble of its first byte. */
const IP_V4 = 4;
// Drop codes as plain constants for the hot path.
const DROP_NOT_IPV4 = Drop.not_ipv4;
const DROP_NOT_UDP = Drop.not_udp;
const DROP_FRAGMENT = Drop.fragment;
const DROP_MALFORMED = Drop.malformed;
const DROP_TRUNCATED = Drop.truncated;
const DROP_VLAN = Drop.vlan;
const DROP_BAD_CHECKSUM = Drop.bad_checksum;

/**
 * The result of {@link parseFrame}. One instance per worker is reused for
 * every frame; it is never reallocated. Fields are only meaningful when
 * `parseFrame` returned -1 (on a drop some of them hold partial values).
 * Offsets are absolute indices into the buffer given to `parseFrame`.
 */
export class ParsedPacket {
  /** IP version of the datagram: 4, or 6 (then `d0..d3`, `s0..s3` hold its addresses). */
  family = 4;
  /** Offset of the IPv4 header (IPv6: its fixed header). */
  l3Offset = 0;
  /** Offset of the UDP header (`l3Offset + IHL * 4`; IPv6: after the extension headers). */
  l4Offset = 0;
  /** IPv4 source address, unsigned 32-bit host order (IPv6: its low 32 bits). */
  src = 0;
  /** IPv4 destination address, unsigned 32-bit host order (IPv6: its low 32 bits). */
  dst = 0;
  /** IPv6 destination, most significant word first, as signed 32-bit integers. */
  d0 = 0;
  /** (see {@link d0}) */
  d1 = 0;
  /** (see {@link d0}) */
  d2 = 0;
  /** (see {@link d0}) */
  d3 = 0;
  /** IPv6 source, most significant word first, as signed 32-bit integers. */
  s0 = 0;
  /** (see {@link s0}) */
  s1 = 0;
  /** (see {@link s0}) */
  s2 = 0;
  /** (see {@link s0}) */
  s3 = 0;
  /** UDP source port. */
  sport = 0;
  /** UDP destination port. */
  dport = 0;
  /** Offset of the UDP payload. */
  payloadOffset = 0;
  /** UDP payload length in bytes (UDP length - 8; may be 0). */
  payloadLength = 0;
  /** IPv4 time to live (IPv6: hop limit). */
  ttl = 0;
  /** IPv4 TOS byte (DSCP << 2 | ECN); IPv6: the traffic class. */
  tos = 0;
  /**
   * VLAN ID 1..4095 of the frame's (single) tag, or -1 when untagged. A
   * priority tag (VID 0, 802.1p) counts as untagged.
   */
  vlan: number = -1;
  /** UDP checksum as received (0 = none), for incremental output checksums. */
  udpChecksum = 0;
}

/**
 * Parses one frame holding an IPv4/UDP datagram: an Ethernet II frame when
 * `linkHeader` is {@link ETH_HLEN}, else the IPv4 packet after `linkHeader`
 * bytes (0 on a link without a link-layer header: tun, WireGuard, ipip, PPP).
 * Without an ethertype the IP version nibble tells IPv4 from the rest (IPv6:
 * {@link Drop.not_ipv4}); such a frame has no VLAN tag.
 *
 * VLAN handling: a tag the kernel stripped (`status & TP_STATUS_VLAN_VALID`)
 * gives `vlan = vlanTci & 0xfff`; otherwise one in-band 802.1Q (0x8100) or
 * 802.1ad (0x88a8) tag is read from the frame. VID 0 (priority tag) means
 * untagged (`vlan = -1`). A second tag level (QinQ in band, or any in-band tag
 * after a stripped one, even a stripped priority tag) is dropped as
 * {@link Drop.vlan}: we relay at most one tag level.
 *
 * Lengths: the IPv4 total length decides the datagram's extent; trailing
 * bytes (Ethernet minimum-size padding) are ignored. The UDP length must equal
 * total length - IHL * 4 exactly. IP options are skipped.
 *
 * Order of the IPv4 checks, as in the kernel's `ip_rcv`: version and IHL
 * (malformed), then the header checksum over IHL * 4 bytes (bad_checksum:
 * whatever a corrupted header now says — another group, another protocol, a
 * fragment — is not trusted), then the total length (malformed), protocol
 * (not_udp) and fragment bits. The UDP checksum is not verified (see the
 * module comment).
 *
 * @param buf The whole ring mapping (or any buffer holding the frame).
 * @param offset Offset of the frame's MAC header in `buf`.
 * @param snaplen Bytes of the frame present in `buf`.
 * @param wireLen Length of the frame on the wire.
 * @param status `tp_status` of the ring slot (only TP_STATUS_VLAN_VALID is used).
 * @param vlanTci `tp_vlan_tci` (used only with TP_STATUS_VLAN_VALID).
 * @param linkHeader The ring's link header length (link_types.ts `LINK_HEADER`):
 *   {@link ETH_HLEN} for Ethernet, 0 for a link without a link-layer header.
 * @param out Receives the parsed fields.
 * @returns -1 when `out` holds a valid IPv4/UDP datagram, otherwise a
 *   {@link Drop} code.
 */
export function parseFrame(
  buf: Uint8Array,
  offset: number,
  snaplen: number,
  wireLen: number,
  status: number,
  vlanTci: number,
  linkHeader: number,
  out: ParsedPacket,
): number {
  if (snaplen < wireLen) return DROP_TRUNCATED; // cut by the ring slot
  // Never read outside buf, even with bogus descriptors.
  if (offset < 0 || snaplen < linkHeader || offset + snaplen > buf.length) return DROP_MALFORMED;
  const end = offset + snaplen;
  let l3 = offset + linkHeader;
  if (linkHeader === ETH_HLEN) {
    let p = offset + ETH_TYPE;
    let type = (buf[p] << 8) | buf[p + 1];
    p += 2;
    let vlan = -1;
    let tagged = false;
    if ((status & TP_STATUS_VLAN_VALID) !== 0) {
      vlan = vlanTci & VID_MASK;
      tagged = true;
    }
    if (type === ETH_P_8021Q || type === ETH_P_8021AD) {
      if (tagged) return DROP_VLAN; // second tag level
      if (p + VLAN_TAG_LEN > end) return DROP_MALFORMED;
      vlan = ((buf[p] << 8) | buf[p + 1]) & VID_MASK;
      type = (buf[p + 2] << 8) | buf[p + 3];
      p += VLAN_TAG_LEN;
      if (type === ETH_P_8021Q || type === ETH_P_8021AD) return DROP_VLAN; // QinQ
    }
    if (vlan === 0) vlan = -1; // priority tag: untagged
    out.vlan = vlan;
    if (type === ETH_P_IPV6) return parseIPv6(buf, p, end, out);
    if (type !== ETH_P_IP) return DROP_NOT_IPV4; // (includes 802.3 lengths < 0x0600)
    l3 = p;
  } else {
    // No ethertype: the version nibble says what the packet is (tun, WireGuard, ...).
    out.vlan = -1;
    if (l3 < end && (buf[l3] >> 4) === IP_V6) return parseIPv6(buf, l3, end, out);
    if (l3 < end && (buf[l3] >> 4) !== IP_V4) return DROP_NOT_IPV4;
  }
  const avail = end - l3;
  if (avail < IP_MIN_HLEN) return DROP_MALFORMED;
  const vihl = buf[l3];
  if ((vihl >> 4) !== IP_V4) return DROP_MALFORMED;
  const hlen = (vihl & 0x0f) << 2;
  if (hlen < IP_MIN_HLEN || hlen > avail) return DROP_MALFORMED;
  // The fixed header as its ten 16-bit words, each read once: for the checksum and the fields.
  const w0 = (vihl << 8) | buf[l3 + 1]; // version, IHL, TOS
  const total = (buf[l3 + IP_TOTLEN] << 8) | buf[l3 + IP_TOTLEN + 1];
  const frag = (buf[l3 + IP_FRAG] << 8) | buf[l3 + IP_FRAG + 1];
  const ttlProto = (buf[l3 + IP_TTL] << 8) | buf[l3 + IP_TTL + 1];
  const srcHi = (buf[l3 + IP_SRC] << 8) | buf[l3 + IP_SRC + 1];
  const srcLo = (buf[l3 + IP_SRC + 2] << 8) | buf[l3 + IP_SRC + 3];
  const dstHi = (buf[l3 + IP_DST] << 8) | buf[l3 + IP_DST + 1];
  const dstLo = (buf[l3 + IP_DST + 2] << 8) | buf[l3 + IP_DST + 3];
  // At most 30 words of at most 0xffff: the sum stays below 2^21, two folds bring it to 16 bits.
  let sum = w0 + total + ((buf[l3 + IP_ID] << 8) | buf[l3 + IP_ID + 1]) + frag + ttlProto +
    ((buf[l3 + IP_CSUM] << 8) | buf[l3 + IP_CSUM + 1]) + srcHi + srcLo + dstHi + dstLo;
  for (let i = l3 + IP_MIN_HLEN, e = l3 + hlen; i < e; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  if (sum !== CSUM_OK) return DROP_BAD_CHECKSUM;
  if (total < hlen + UDP_HLEN || total > avail) return DROP_MALFORMED;
  if ((ttlProto & 0xff) !== IPPROTO_UDP) return DROP_NOT_UDP;
  // Flags (reserved, DF, MF) and the 13-bit offset: MF or offset => fragment.
  if ((frag & IP_MF_OFFSET) !== 0) return DROP_FRAGMENT;
  const l4 = l3 + hlen;
  const ulen = (buf[l4 + UDP_LEN] << 8) | buf[l4 + UDP_LEN + 1];
  if (ulen !== total - hlen) return DROP_MALFORMED;
  out.family = 4;
  out.l3Offset = l3;
  out.l4Offset = l4;
  out.tos = w0 & 0xff;
  out.ttl = ttlProto >>> 8;
  out.src = ((srcHi << 16) | srcLo) >>> 0;
  out.dst = ((dstHi << 16) | dstLo) >>> 0;
  out.sport = (buf[l4] << 8) | buf[l4 + 1];
  out.dport = (buf[l4 + UDP_DPORT] << 8) | buf[l4 + UDP_DPORT + 1];
  out.udpChecksum = (buf[l4 + UDP_CSUM] << 8) | buf[l4 + UDP_CSUM + 1];
  out.payloadOffset = l4 + UDP_HLEN;
  out.payloadLength = ulen - UDP_HLEN;
  return -1;
}

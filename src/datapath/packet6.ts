/**
 * The IPv6/UDP part of the frame parser (issue 14): {@link parseIPv6} reads
 * the IPv6 packet that packet.ts `parseFrame` found after the link header,
 * in place and without allocating, into the same reused `ParsedPacket`.
 *
 * Extension headers (RFC 8200 4): hop-by-hop options (first only),
 * destination options and routing headers are walked, at most
 * {@link MAX_EXTENSION_HEADERS} of them, each inside the packet's payload
 * length. A routing header with segments left names a later destination:
 * the datagram is not for the group it is addressed to yet, and is dropped
 * (`ipv6_extension`, as a chain longer than the walk). A fragment header is
 * a `fragment` (never reassembled, as for IPv4); any other next header (ICMPv6,
 * TCP, ESP, AH, "no next header", unknown) is `not_udp`. A payload length
 * of 0 (a jumbogram, RFC 2675) or one longer than the frame is `malformed`;
 * trailing bytes (Ethernet padding) are ignored. The UDP length must equal
 * what the payload length leaves for it. The UDP checksum is not verified
 * here (see packet.ts); the forwarder rebases it, or computes it when the
 * input carried none.
 *
 * @module
 */
import { Drop } from "./drops.ts";
import type { ParsedPacket } from "./packet.ts";

/** Length of the IPv6 fixed header. */
export const IP6_HLEN = 40;
/** Most extension headers walked before the UDP header (a longer chain is `ipv6_extension`). */
export const MAX_EXTENSION_HEADERS = 8;
/** The IP version of an IPv6 header, in the high nibble of its first byte. */
export const IP_V6 = 6;

// RFC 8200 header layout: byte offsets in the fixed header.
const IP6_PLEN = 4;
const IP6_NEXT = 6;
const IP6_HOPS = 7;
const IP6_SRC = 8;
const IP6_DST = 24;
// Next header values (IANA protocol numbers).
const NH_HOP_BY_HOP = 0;
const NH_ROUTING = 43;
const NH_FRAGMENT = 44;
const NH_DEST_OPTS = 60;
/** An extension header's length byte counts 8-byte units beyond the first 8. */
const EXT_UNIT = 8;
/** Offset of a routing header's "segments left" byte. */
const RH_SEGMENTS_LEFT = 3;
/** IPv6 next header (IANA protocol number) of UDP. */
const NH_UDP = 17;
const UDP_HLEN = 8;
const UDP_DPORT = 2;
const UDP_LEN = 4;
const UDP_CSUM = 6;
const DROP_MALFORMED = Drop.malformed;
const DROP_NOT_UDP = Drop.not_udp;
const DROP_FRAGMENT = Drop.fragment;
const DROP_EXTENSION = Drop.ipv6_extension;

/** A big-endian 32-bit word of `buf` at `p`, as a signed 32-bit integer (small, never boxed). */
function word(buf: Uint8Array, p: number): number {
  return (buf[p] << 24) | (buf[p + 1] << 16) | (buf[p + 2] << 8) | buf[p + 3];
}

/**
 * Parses the IPv6 packet at `l3` (its bytes end at `end`) into `out`.
 * Returns -1 when `out` holds a valid IPv6/UDP datagram, else a Drop code.
 * `out.vlan` is the caller's.
 */
export function parseIPv6(buf: Uint8Array, l3: number, end: number, out: ParsedPacket): number {
  if (end - l3 < IP6_HLEN) return DROP_MALFORMED;
  const b0 = buf[l3];
  if ((b0 >> 4) !== IP_V6) return DROP_MALFORMED;
  const plen = (buf[l3 + IP6_PLEN] << 8) | buf[l3 + IP6_PLEN + 1];
  // 0: a jumbogram (RFC 2675), whose length is in a hop-by-hop option; never relayed
  if (plen === 0) return DROP_MALFORMED;
  const stop = l3 + IP6_HLEN + plen;
  if (stop > end) return DROP_MALFORMED; // the payload length claims more than the frame holds
  let nh = buf[l3 + IP6_NEXT];
  let p = l3 + IP6_HLEN;
  for (let n = 0; nh !== NH_UDP; n++) {
    if (nh === NH_FRAGMENT) return DROP_FRAGMENT;
    if (nh !== NH_HOP_BY_HOP && nh !== NH_ROUTING && nh !== NH_DEST_OPTS) return DROP_NOT_UDP;
    if (nh === NH_HOP_BY_HOP && n > 0) return DROP_MALFORMED; // only right after the fixed header
    if (n === MAX_EXTENSION_HEADERS) return DROP_EXTENSION;
    if (p + EXT_UNIT > stop) return DROP_MALFORMED;
    if (nh === NH_ROUTING && buf[p + RH_SEGMENTS_LEFT] !== 0) return DROP_EXTENSION;
    nh = buf[p];
    p += (buf[p + 1] + 1) * EXT_UNIT;
    if (p > stop) return DROP_MALFORMED;
  }
  if (p + UDP_HLEN > stop) return DROP_MALFORMED;
  const ulen = (buf[p + UDP_LEN] << 8) | buf[p + UDP_LEN + 1];
  if (ulen !== stop - p) return DROP_MALFORMED;
  out.family = 6;
  out.l3Offset = l3;
  out.l4Offset = p;
  out.tos = ((b0 & 0x0f) << 4) | (buf[l3 + 1] >> 4);
  out.ttl = buf[l3 + IP6_HOPS];
  out.s0 = word(buf, l3 + IP6_SRC);
  out.s1 = word(buf, l3 + IP6_SRC + 4);
  out.s2 = word(buf, l3 + IP6_SRC + 8);
  out.s3 = word(buf, l3 + IP6_SRC + 12);
  out.d0 = word(buf, l3 + IP6_DST);
  out.d1 = word(buf, l3 + IP6_DST + 4);
  out.d2 = word(buf, l3 + IP6_DST + 8);
  out.d3 = word(buf, l3 + IP6_DST + 12);
  out.src = out.s3 >>> 0;
  out.dst = out.d3 >>> 0;
  out.sport = (buf[p] << 8) | buf[p + 1];
  out.dport = (buf[p + UDP_DPORT] << 8) | buf[p + UDP_DPORT + 1];
  out.udpChecksum = (buf[p + UDP_CSUM] << 8) | buf[p + UDP_CSUM + 1];
  out.payloadOffset = p + UDP_HLEN;
  out.payloadLength = ulen - UDP_HLEN;
  return -1;
}

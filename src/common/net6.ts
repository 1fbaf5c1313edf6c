/**
 * IPv6 address helpers.
 *
 * An address is held as four unsigned 32-bit words, most significant first
 * ({@link Ip6}): `ff3e::1:2` is `[0xff3e0000, 0, 0, 0x00010002]`. Four small
 * numbers compare with `===`, cross `postMessage` as they are and read in the
 * hot loop without allocation; the FFI layer turns them into the 16 bytes of
 * the wire. Text is parsed by ipaddr.js (a maintained parser: RFC 4291 text
 * forms, embedded IPv4, zone ids) and written in the RFC 5952 canonical form,
 * the one spelling a configuration accepts.
 *
 * @module
 */
import ipaddr from "ipaddr.js";
import { isMulticast } from "./net.ts";

/** An IPv6 address: four unsigned 32-bit words, most significant first. */
export type Ip6 = readonly [number, number, number, number];

/** The unspecified address `::`. */
export const IP6_ANY: Ip6 = [0, 0, 0, 0];

/**
 * Multicast scopes (RFC 4291 2.7, RFC 7346): the low nibble of the second
 * byte of a multicast address.
 */
export const Scope = {
  interfaceLocal: 1,
  linkLocal: 2,
  realmLocal: 3,
  adminLocal: 4,
  siteLocal: 5,
  organizationLocal: 8,
  global: 0xe,
} as const;

/** Whether a text has the shape of an IPv6 address (it holds a colon): to pick the parser. */
export function looksIPv6(s: string): boolean {
  return typeof s === "string" && s.includes(":");
}

/**
 * Parses an IPv6 address in any RFC 4291 text form, without a zone id
 * (`%eth0`: the interface is named by the rule) and without a prefix.
 *
 * @returns The address, or `null` when `s` is not one.
 */
export function parseIPv6Any(s: string): Ip6 | null {
  if (typeof s !== "string" || s.length > 45 || s.includes("%") || s.includes("/")) return null;
  if (!ipaddr.IPv6.isValid(s)) return null;
  const b = ipaddr.IPv6.parse(s).toByteArray();
  const w = (i: number) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  return [w(0), w(4), w(8), w(12)];
}

/**
 * Parses an IPv6 address written in its canonical form (RFC 5952: lowercase,
 * no leading zeros, the longest run of zero words as `::`), so that one
 * address has one spelling: `formatIPv6(parseIPv6(s)!) === s`.
 *
 * @returns The address, or `null` when `s` is not one or not canonical
 *   ({@link canonicalIPv6} says how to write it).
 */
export function parseIPv6(s: string): Ip6 | null {
  const a = parseIPv6Any(s);
  return a !== null && formatIPv6(a) === s ? a : null;
}

/** The canonical text of an address written in another IPv6 form, or null when it is none. */
export function canonicalIPv6(s: string): string | null {
  const a = parseIPv6Any(s);
  return a === null ? null : formatIPv6(a);
}

/** The RFC 5952 text of an address: `ff3e::1:2`. */
export function formatIPv6(a: Ip6): string {
  return ipaddr.fromByteArray([...ip6Bytes(a)]).toString();
}

/** The 16 bytes of an address as on the wire. */
export function ip6Bytes(a: Ip6): Uint8Array {
  const b = new Uint8Array(16);
  for (let i = 0; i < 4; i++) {
    const w = a[i] >>> 0;
    b[i * 4] = w >>> 24;
    b[i * 4 + 1] = (w >>> 16) & 0xff;
    b[i * 4 + 2] = (w >>> 8) & 0xff;
    b[i * 4 + 3] = w & 0xff;
  }
  return b;
}

/** An address from its 16 bytes as on the wire (the inverse of {@link ip6Bytes}). */
export function ip6FromBytes(b: Uint8Array): Ip6 {
  const w = (i: number) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  return [w(0), w(4), w(8), w(12)];
}

/** Whether an output's destination (`dst6` when it has one, else the IPv4 `dst`) is a group. */
export function isGroupDest(o: { dst: number; dst6?: Ip6 }): boolean {
  return o.dst6 ? isMulticast6(o.dst6) : isMulticast(o.dst);
}

/** Whether two addresses are equal. */
export function ip6Equal(a: Ip6, b: Ip6): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];
}

/** Whether two optional addresses are the same (both absent, or equal). */
export function sameIp6(a: Ip6 | undefined, b: Ip6 | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && ip6Equal(a, b));
}

/** Whether an address is multicast (ff00::/8). */
export function isMulticast6(a: Ip6): boolean {
  return a[0] >>> 24 === 0xff;
}

/** The scope of a multicast address ({@link Scope}). */
export function multicastScope(a: Ip6): number {
  return (a[0] >>> 16) & 0xf;
}

/**
 * Whether a multicast address is source-specific (ff3x::/32, RFC 4607): its
 * listeners must name the source.
 */
export function isSsm6(a: Ip6): boolean {
  return (a[0] >>> 20) === 0xff3 && (a[0] & 0xffff) === 0;
}

/**
 * Why an address is not a usable IPv6 unicast address to send to or from,
 * for error messages; `null` when it is one.
 */
export function unicast6Problem(a: Ip6): string | null {
  if (isMulticast6(a)) return "it is a multicast address";
  if (ip6Equal(a, IP6_ANY)) return ":: is the unspecified address";
  if (ip6Equal(a, [0, 0, 0, 1])) return "::1 is loopback and never leaves the host";
  if (a[0] === 0 && a[1] === 0 && a[2] === 0xffff) {
    return "::ffff:0:0/96 is an IPv4-mapped address: write the IPv4 address";
  }
  return null;
}

/** Whether a unicast address is link-local (fe80::/10). */
export function isLinkLocal6(a: Ip6): boolean {
  return (a[0] >>> 22) === 0x3fa;
}

/**
 * An address and port as people and tools write them: `[ff3e::1]:5001` for
 * IPv6 (brackets, RFC 3986), `239.1.1.1:5001` for IPv4.
 */
export function hostPort(addr: string, port: string | number): string {
  return addr.includes(":") ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** The Ethernet multicast MAC of an IPv6 group (RFC 2464: 33:33 and its low 32 bits). */
export function multicastMac6(group: Ip6): Uint8Array {
  const w = group[3] >>> 0;
  return new Uint8Array([0x33, 0x33, w >>> 24, (w >>> 16) & 0xff, (w >>> 8) & 0xff, w & 0xff]);
}

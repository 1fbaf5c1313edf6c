/**
 * IPv4 address helpers.
 *
 * Addresses are plain numbers holding the unsigned 32-bit value in host order
 * (`a.b.c.d` is `(a << 24 | b << 16 | c << 8 | d) >>> 0`), so they compare with
 * `===` and never allocate. Conversion to network byte order for the C library
 * is the FFI layer's business.
 *
 * @module
 */

/**
 * Parses a strict, canonical dotted-quad IPv4 address.
 *
 * Exactly four decimal octets 0..255 separated by dots; no leading zeros
 * ("01.2.3.4" is refused because some tools read it as octal), no signs,
 * whitespace, shorthand forms ("10.1") or trailing characters. The canonical
 * string therefore round-trips: `formatIPv4(parseIPv4(s)!) === s`.
 *
 * @param s Text to parse.
 * @returns The address as an unsigned 32-bit number, or `null` when `s` is not
 *   a canonical dotted quad.
 */
export function parseIPv4(s: string): number | null {
  if (typeof s !== "string") return null;
  const n = s.length;
  if (n < 7 || n > 15) return null;
  let addr = 0;
  let octets = 0;
  let i = 0;
  while (true) {
    const start = i;
    let value = 0;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      value = value * 10 + (c - 48);
      i++;
    }
    const digits = i - start;
    if (digits === 0 || digits > 3 || value > 255) return null;
    if (digits > 1 && s.charCodeAt(start) === 48) return null; // leading zero
    addr = addr * 256 + value;
    octets++;
    if (octets === 4) break;
    if (i >= n || s.charCodeAt(i) !== 46) return null; // '.'
    i++;
  }
  if (i !== n) return null;
  return addr >>> 0;
}

/**
 * Formats an address as a dotted quad.
 *
 * @param addr Unsigned 32-bit address (any number is reduced modulo 2^32).
 * @returns The canonical dotted-quad text, e.g. `"239.1.1.1"`.
 */
export function formatIPv4(addr: number): string {
  const a = addr >>> 0;
  return `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;
}

/**
 * Whether `addr` is an IPv4 multicast address (224.0.0.0/4).
 *
 * @param addr Unsigned 32-bit address.
 */
export function isMulticast(addr: number): boolean {
  return ((addr >>> 28) & 0xf) === 0xe;
}

/**
 * Whether `addr` is in the link-local multicast block 224.0.0.0/24
 * (IGMP, OSPF, RIP, mDNS, VRRP, PIM, ... control traffic that routers never
 * forward).
 *
 * @param addr Unsigned 32-bit address.
 */
export function isLinkLocalMulticast(addr: number): boolean {
  return (addr >>> 8) === 0xe00000;
}

/**
 * Whether `addr` is a unicast address a datagram can usefully be sent to or
 * come from: not in 0.0.0.0/8 ("this network"), not loopback 127.0.0.0/8,
 * not multicast 224.0.0.0/4, not reserved 240.0.0.0/4 and not the limited
 * broadcast 255.255.255.255 (which is inside 240.0.0.0/4).
 *
 * @param addr Unsigned 32-bit address.
 */
export function isUnicastUsable(addr: number): boolean {
  const a = addr >>> 0;
  const first = a >>> 24;
  return first !== 0 && first !== 127 && first < 224;
}

/**
 * Explains why an address is not a usable unicast address, for error messages.
 *
 * @param addr Unsigned 32-bit address.
 * @returns A short reason, or `null` when {@link isUnicastUsable} holds.
 */
export function unicastProblem(addr: number): string | null {
  const a = addr >>> 0;
  const first = a >>> 24;
  if (a === 0) return "0.0.0.0 is the unspecified address";
  if (first === 0) return '0.0.0.0/8 is reserved for "this network"';
  if (first === 127) return "127.0.0.0/8 is loopback and never leaves the host";
  if (a === 0xffffffff) return "255.255.255.255 is the limited broadcast address";
  if (first >= 240) return "240.0.0.0/4 is reserved";
  if (first >= 224) return "it is a multicast address";
  return null;
}

/** An IPv4 prefix: a network address and its length in bits. */
export interface IPv4Prefix {
  /** Network address (unsigned 32-bit), as written (host bits not cleared). */
  addr: number;
  /** Prefix length, 0..32. */
  len: number;
}

/**
 * Parses `a.b.c.d/len`: a canonical dotted quad (as {@link parseIPv4}), a
 * slash and a length 0..32 without leading zeros. Host bits are returned as
 * written (see {@link hostBitsSet}), so that a caller can say what is wrong.
 *
 * @param s Text to parse.
 * @returns The prefix, or `null` when `s` is not of that form.
 */
export function parsePrefix(s: string): IPv4Prefix | null {
  if (typeof s !== "string") return null;
  const slash = s.indexOf("/");
  if (slash < 0) return null;
  const addr = parseIPv4(s.slice(0, slash));
  const lenText = s.slice(slash + 1);
  if (addr === null || !/^(3[0-2]|[12][0-9]|[0-9])$/.test(lenText)) return null;
  return { addr, len: Number(lenText) };
}

/**
 * The network mask of a prefix length, as an unsigned 32-bit number
 * (`prefixMask(16)` is 255.255.0.0).
 *
 * @param len Prefix length, 0..32.
 */
export function prefixMask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/**
 * Whether an address has bits set beyond a prefix length (`239.1.1.0/16`:
 * true; the network address of that /16 is 239.1.0.0).
 *
 * @param addr Unsigned 32-bit address.
 * @param len Prefix length, 0..32.
 */
export function hostBitsSet(addr: number, len: number): boolean {
  return ((addr & ~prefixMask(len)) >>> 0) !== 0;
}

/**
 * Whether `addr` lies in the prefix `net`/`len`.
 *
 * @param addr Unsigned 32-bit address.
 * @param net Network address of the prefix.
 * @param len Prefix length, 0..32.
 */
export function inPrefix(addr: number, net: number, len: number): boolean {
  const m = prefixMask(len);
  return ((addr & m) >>> 0) === ((net & m) >>> 0);
}

/**
 * Whether two prefixes share an address (one contains the other).
 *
 * @param a Network address of the first prefix.
 * @param alen Its length.
 * @param b Network address of the second prefix.
 * @param blen Its length.
 */
export function prefixesOverlap(a: number, alen: number, b: number, blen: number): boolean {
  return inPrefix(a, b, Math.min(alen, blen));
}

/** The Ethernet multicast MAC of an IPv4 group (RFC 1112: 01:00:5e and its low 23 bits). */
export function multicastMac(group: number): Uint8Array {
  return new Uint8Array([
    0x01,
    0x00,
    0x5e,
    (group >>> 16) & 0x7f,
    (group >>> 8) & 0xff,
    group & 0xff,
  ]);
}

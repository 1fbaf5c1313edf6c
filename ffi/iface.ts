/**
 * Interface facts through ioctl (index, MTU, flags, link type, MAC, first
 * IPv4 address), in the calling thread's network namespace.
 *
 * @module
 */
import { IFACE_INFO } from "./abi.ts";
import { check, cstr, errBuf, lib } from "./util.ts";

/** Interface facts read with ioctl in the calling thread's network namespace. */
export interface IfaceInfo {
  /** Interface name. */
  name: string;
  /** Kernel interface index. */
  ifindex: number;
  /** MTU in bytes. */
  mtu: number;
  /** IFF_* flags (16 bits, as SIOCGIFFLAGS). */
  flags: number;
  /** True when IFF_UP is set. */
  up: boolean;
  /** First IPv4 address (host order), 0 when none. */
  ipv4: number;
  /** Hardware address (6 bytes), or null for devices without one. */
  mac: Uint8Array | null;
  /** Link type (ARPHRD_*: 1 Ethernet, 0xfffe none — tun, WireGuard —, 772 loopback, ...). */
  linkType: number;
}

/** Look an interface up by name; throws McrError (code `ENODEV`) when it does not exist. */
export function ifaceByName(name: string): IfaceInfo {
  const b = new Uint8Array(IFACE_INFO.size);
  const [err, errlen] = errBuf();
  check("mcr_iface_by_name", lib().sym.mcr_iface_by_name(cstr(name), b, err, errlen), err);
  const dv = new DataView(b.buffer);
  const f = IFACE_INFO.field;
  const flags = dv.getUint32(f.flags, true);
  return {
    name,
    ifindex: dv.getUint32(f.ifindex, true),
    mtu: dv.getUint32(f.mtu, true),
    flags,
    up: (flags & 1) !== 0,
    ipv4: dv.getUint32(f.ipv4, false),
    mac: dv.getUint32(f.hasMac, true) ? b.slice(f.mac, f.mac + 6) : null,
    linkType: dv.getUint32(f.linkType, true),
  };
}

/**
 * The IPv6 address an output on `ifindex` sends from by default (16 bytes
 * as on the wire): its first global address, else its link-local one,
 * never a tentative, deprecated or duplicate one; null when it has none.
 * Throws McrError when the kernel's list cannot be read.
 */
export function ifaceAddr6(ifindex: number): Uint8Array | null {
  const out = new Uint8Array(16);
  const r = check("mcr_iface_addr6", lib().sym.mcr_iface_addr6(ifindex, out));
  return r === 1 ? out : null;
}

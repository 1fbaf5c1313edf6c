/**
 * The kernel's neighbour state of an output's next hop (csrc/neigh.c): how
 * the relay learns that a unicast destination does not answer ARP (IPv4) or
 * neighbour discovery (IPv6), which the kernel would otherwise drop silently
 * after the relay counted it sent.
 *
 * @module
 */
import { check, errBuf, hton32, lib } from "./util.ts";

/** Neighbour states (`NUD_*`, linux/neighbour.h). */
export const Nud = {
  INCOMPLETE: 0x01,
  REACHABLE: 0x02,
  STALE: 0x04,
  DELAY: 0x08,
  PROBE: 0x10,
  FAILED: 0x20,
  NOARP: 0x40,
  PERMANENT: 0x80,
} as const;

/** A next hop and its state. */
export interface NextHop {
  /** The route's gateway, or the destination itself (host order). */
  address: number;
  /** `NUD_*` bits; 0 when the kernel has no entry (nothing sent there lately). */
  state: number;
}

/**
 * The next hop toward `dst` (host order) out of `ifindex`, and its neighbour
 * state. Throws McrError: EHOSTUNREACH/ENETUNREACH when there is no route.
 */
export function nextHop(ifindex: number, dst: number): NextHop {
  const state = new Uint32Array(1), hop = new Uint32Array(1);
  const [err, errlen] = errBuf();
  check(
    "mcr_neigh_state",
    lib().sym.mcr_neigh_state(ifindex, hton32(dst), state, hop, err, errlen),
    err,
  );
  const b = new Uint8Array(hop.buffer);
  return { address: ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0, state: state[0] };
}

/** An IPv6 next hop and its state. */
export interface NextHop6 {
  /** The route's gateway, or the destination itself (16 bytes as on the wire). */
  address: Uint8Array;
  /** `NUD_*` bits; 0 when the kernel has no entry (nothing sent there lately). */
  state: number;
}

/**
 * The next hop toward `dst` (16 bytes as on the wire) out of `ifindex`, and
 * its neighbour-discovery state. Throws McrError: EHOSTUNREACH/ENETUNREACH
 * when there is no route.
 */
export function nextHop6(ifindex: number, dst: Uint8Array): NextHop6 {
  if (dst.length !== 16) throw new RangeError(`nextHop6: ${dst.length} address bytes, not 16`);
  const state = new Uint32Array(1), hop = new Uint8Array(16);
  const [err, errlen] = errBuf();
  check(
    "mcr_neigh_state6",
    lib().sym.mcr_neigh_state6(ifindex, dst, state, hop, err, errlen),
    err,
  );
  return { address: hop, state: state[0] };
}

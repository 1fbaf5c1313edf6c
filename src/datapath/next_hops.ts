/**
 * Whether the next hops of a worker's unicast outputs answer. A unicast
 * output goes through a UDP socket: the kernel takes each datagram (the
 * relay counts it sent) and only then resolves the next hop with ARP (IPv4)
 * or neighbour discovery (IPv6); when nothing answers, it drops the
 * datagrams itself (`unresolved_discards` in /proc/net/stat/arp_cache and
 * ndisc_cache). Once per health window the worker asks the kernel for the
 * neighbour state of those next hops (ffi `nextHop`, `nextHop6`), at most
 * {@link MAX_CHECKS_PER_WINDOW} of them per window, round robin. An output
 * whose next hop is FAILED, or still INCOMPLETE at two checks in a row (a
 * host that answers does so within milliseconds; with traffic flowing to one
 * that does not, the kernel goes from FAILED back to INCOMPLETE at the next
 * datagram, so INCOMPLETE is what is usually seen), is in error with the
 * reason until the next hop answers (REACHABLE, STALE, ...). A first
 * INCOMPLETE keeps the last verdict. No entry means nothing was sent there
 * lately: no verdict.
 *
 * @module
 */
import { McrError, nextHop, nextHop6, Nud } from "../../ffi/mod.ts";
import { formatIPv4 } from "../common/net.ts";
import { formatIPv6, type Ip6, ip6Bytes, ip6FromBytes, isGroupDest } from "../common/net6.ts";

/** Next hops asked about per health window at most (a netlink round trip each). */
export const MAX_CHECKS_PER_WINDOW = 32;

/** One unicast output's destination as the worker sends it. */
export interface UnicastDest {
  /** Interface index the output sends on. */
  ifindex: number;
  /** Its name, for messages. */
  ifname: string;
  /** Destination address (host order; 0 for an IPv6 destination). */
  dst: number;
  /** IPv6 destination address. */
  dst6?: Ip6;
}

/** A next hop as the kernel names it: its address (text) and its `NUD_*` state (0: no entry). */
export interface HopAnswer {
  /** The route's gateway, or the destination itself. */
  address: string;
  /** `NUD_*` bits; 0 when the kernel has no entry (nothing sent there lately). */
  state: number;
}

/** Asks the kernel for a destination's next hop; throws McrError when there is no route. */
export type HopLookup = (d: UnicastDest) => HopAnswer;

/** The kernel's answer (ffi `nextHop` for IPv4, `nextHop6` for IPv6). */
export const kernelHop: HopLookup = (d) => {
  if (d.dst6) {
    const h = nextHop6(d.ifindex, ip6Bytes(d.dst6));
    return { address: formatIPv6(ip6FromBytes(h.address)), state: h.state };
  }
  const h = nextHop(d.ifindex, d.dst);
  return { address: formatIPv4(h.address), state: h.state };
};

/** One key per destination (interface and address). */
function keyOf(d: UnicastDest): string {
  return `${d.ifindex}|${d.dst6 ? d.dst6.join(":") : d.dst}`;
}

/**
 * Output `o`, sent on interface `ifindex`, as a unicast destination; null for
 * a group or an output not installed (no next hop to ask about).
 */
export function unicastDest(
  ifindex: number,
  o: { interface: string; dst: number; dst6?: Ip6 },
): UnicastDest | null {
  if (!ifindex || isGroupDest(o)) return null;
  return { ifindex, ifname: o.interface, dst: o.dst, ...(o.dst6 ? { dst6: o.dst6 } : {}) };
}

function dstText(d: UnicastDest): string {
  return d.dst6 ? formatIPv6(d.dst6) : formatIPv4(d.dst);
}

/** The verdicts on a worker's unicast next hops (see module doc). */
export class NextHops {
  /** Problem per destination ("" = fine). */
  readonly #verdict = new Map<string, string>();
  /** Destinations found INCOMPLETE at their last check. */
  readonly #incomplete = new Set<string>();
  /** Where the round robin goes on next window. */
  #cursor = 0;

  /** @param lookup the kernel's answer ({@link kernelHop}; a model in tests) */
  constructor(readonly lookup: HopLookup = kernelHop) {}

  /** Why destination `d` cannot be reached now ("" = no known problem). */
  problem(d: UnicastDest): string {
    return this.#verdict.get(keyOf(d)) ?? "";
  }

  /**
   * End of a health window: ask about up to {@link MAX_CHECKS_PER_WINDOW} of
   * the distinct destinations of `inUse` (the unicast outputs' destinations,
   * repeats allowed), round robin; forget destinations no longer in use.
   */
  check(inUse: readonly UnicastDest[]): void {
    const live = new Map(inUse.map((d) => [keyOf(d), d]));
    const dests = [...live.values()];
    for (const k of [...this.#verdict.keys()]) {
      if (live.has(k)) continue;
      this.#verdict.delete(k);
      this.#incomplete.delete(k);
    }
    const n = Math.min(dests.length, MAX_CHECKS_PER_WINDOW);
    for (let i = 0; i < n; i++) {
      const d = dests[(this.#cursor + i) % dests.length];
      this.#verdict.set(keyOf(d), this.#judge(d));
    }
    this.#cursor = dests.length ? (this.#cursor + n) % dests.length : 0;
  }

  #judge(d: UnicastDest): string {
    const key = keyOf(d);
    const wasIncomplete = this.#incomplete.delete(key);
    const dst = dstText(d);
    let hop: HopAnswer;
    try {
      hop = this.lookup(d);
    } catch (e) {
      if (!(e instanceof McrError)) throw e;
      return `no route to ${dst} on ${d.ifname} (${e.code}): the kernel drops what is sent there`;
    }
    const incomplete = (hop.state & Nud.INCOMPLETE) !== 0;
    if (incomplete) this.#incomplete.add(key);
    if (hop.state & Nud.FAILED || (incomplete && wasIncomplete)) {
      const via = hop.address === dst ? "" : ` (the gateway to ${dst})`;
      const asked = d.dst6 ? "neighbour discovery" : "ARP";
      return `next hop ${hop.address}${via} on ${d.ifname} does not answer ${asked} ` +
        `(neighbour ${incomplete ? "INCOMPLETE" : "FAILED"}): the kernel drops what is sent there`;
    }
    return incomplete ? this.problem(d) : "";
  }
}

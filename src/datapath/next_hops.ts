/**
 * Whether the next hops of a worker's unicast outputs answer. A unicast
 * output goes through a UDP socket: the kernel takes each datagram (the
 * relay counts it sent) and only then resolves the next hop with ARP; when
 * nothing answers, it drops the datagrams itself (`unresolved_discards` in
 * /proc/net/stat/arp_cache). Once per health window the worker asks the
 * kernel for the neighbour state of those next hops (ffi `nextHop`), at most
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
import { McrError, type NextHop, nextHop, Nud } from "../../ffi/mod.ts";
import { formatIPv4 } from "../common/net.ts";

/** Next hops asked about per health window at most (a netlink round trip each). */
export const MAX_CHECKS_PER_WINDOW = 32;

/** One unicast output's destination as the worker sends it. */
export interface UnicastDest {
  /** Interface index the output sends on. */
  ifindex: number;
  /** Its name, for messages. */
  ifname: string;
  /** Destination address (host order). */
  dst: number;
}

function keyOf(d: UnicastDest): string {
  return `${d.ifindex}|${d.dst}`;
}

/** The verdicts on a worker's unicast next hops (see module doc). */
export class NextHops {
  /** Problem per destination ("" = fine). */
  readonly #verdict = new Map<string, string>();
  /** Destinations found INCOMPLETE at their last check. */
  readonly #incomplete = new Set<string>();
  /** Where the round robin goes on next window. */
  #cursor = 0;

  /** @param lookup the kernel's answer (ffi `nextHop`; a model in tests) */
  constructor(readonly lookup: (ifindex: number, dst: number) => NextHop = nextHop) {}

  /** Why destination `d` cannot be reached now ("" = no known problem). */
  problem(d: UnicastDest): string {
    return this.#verdict.get(keyOf(d)) ?? "";
  }

  /**
   * End of a health window: ask about up to {@link MAX_CHECKS_PER_WINDOW} of
   * `dests` (the distinct unicast destinations in use), round robin; forget
   * destinations no longer in use.
   */
  check(dests: readonly UnicastDest[]): void {
    const live = new Set(dests.map(keyOf));
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
    let hop: NextHop;
    try {
      hop = this.lookup(d.ifindex, d.dst);
    } catch (e) {
      if (!(e instanceof McrError)) throw e;
      return `no route to ${formatIPv4(d.dst)} on ${d.ifname} (${e.code}): the kernel drops ` +
        "what is sent there";
    }
    const incomplete = (hop.state & Nud.INCOMPLETE) !== 0;
    if (incomplete) this.#incomplete.add(key);
    if (hop.state & Nud.FAILED || (incomplete && wasIncomplete)) {
      const via = hop.address === d.dst ? "" : ` (the gateway to ${formatIPv4(d.dst)})`;
      return `next hop ${formatIPv4(hop.address)}${via} on ${d.ifname} does not answer ARP ` +
        `(neighbour ${incomplete ? "INCOMPLETE" : "FAILED"}): the kernel drops what is sent there`;
    }
    return incomplete ? this.problem(d) : "";
  }
}

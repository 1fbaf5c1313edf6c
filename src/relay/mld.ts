/**
 * MLD memberships (issue 14): the IPv6 counterpart of igmp.ts. The relay
 * joins each IPv6 rule's input group on its input interface (MLDv2
 * source-specific for an (S,G) rule), so MLD-snooping switches deliver the
 * stream, and leaves when the last rule for it goes. An interface that does
 * not exist yet is joined when it appears (`rejoin`). A socket holds
 * memberships until the kernel refuses one (ENOMEM: its option memory,
 * net.core.optmem_max, is full; ENOBUFS: its source list, net.ipv6.mld_max_msf);
 * the next membership then goes to a new socket. A refused join is logged
 * and reported with its reason, never fatal.
 *
 * @module
 */
import { MldSocket } from "../../ffi/mod.ts";
import { logger } from "../common/log.ts";
import { formatIPv6, type Ip6, ip6Bytes } from "../common/net6.ts";
import type { Links } from "./links.ts";
import type { RuleSpec } from "./tables.ts";
import { countMemberships, type MembershipFailure } from "./igmp.ts";

/** The socket side of a membership (ffi `MldSocket`; a model in tests). */
export interface MldHolder {
  /** Join `group` on `ifindex` (source null: any). */
  add(ifindex: number, group: Uint8Array, source: Uint8Array | null): void;
  /** Leave. */
  drop(ifindex: number, group: Uint8Array, source: Uint8Array | null): void;
  /** Close (the kernel leaves everything it holds). */
  close(): void;
}

/** The relay's MLD memberships (in `stats().mld`). */
export interface MldStats {
  /** Memberships the rules need: distinct (input interface, group, source). */
  memberships: number;
  /** Of those, joined. */
  joined: number;
  /** Of those, waiting for their input interface to appear. */
  pending: number;
  /** Of those, refused by the kernel (see `failures`). */
  failed: number;
  /** Sockets holding the joined memberships. */
  sockets: number;
  /** The first refused memberships, with the reason. */
  failures: MembershipFailure[];
}

/** One membership the rules need. */
interface Wanted {
  ifname: string;
  group: Ip6;
  source: Ip6 | null;
  /** Rules that want it. */
  refs: number;
  /** Where it is held: the socket and the interface index joined on. */
  held: { socket: MldHolder; ifindex: number } | null;
  /** Why it is not held (a missing interface: `pending`). */
  error?: string;
  pending?: boolean;
}

/** The relay's MLD memberships, keyed by interface, group and source. */
export class MldMemberships {
  readonly #log = logger("supervisor");
  readonly #m = new Map<string, Wanted>();
  /** Memberships wanted but not held (pending or refused): tried again at every change. */
  readonly #unheld = new Set<Wanted>();
  /** Sockets, the last one taking new memberships. */
  readonly #sockets: MldHolder[] = [];

  /**
   * @param links where interfaces are looked up
   * @param openSocket opens one kernel socket (default: ffi `MldSocket`)
   */
  constructor(
    readonly links: Links,
    readonly openSocket: () => MldHolder = () => new MldSocket(),
  ) {}

  /** The membership key of rule `r`, or null for an IPv4 rule. */
  #keyOf(r: RuleSpec): string | null {
    const g = r.input.group6;
    if (!g) return null;
    return `${r.input.interface}|${g}|${r.input.source6 ?? ""}`;
  }

  /** Join what `rules` need, leave what they no longer need. */
  sync(rules: readonly RuleSpec[]): void {
    const want = new Map<string, RuleSpec[]>();
    for (const r of rules) {
      const k = this.#keyOf(r);
      if (k === null) continue;
      const list = want.get(k);
      if (list) list.push(r);
      else want.set(k, [r]);
    }
    for (const [k, m] of [...this.#m]) if (!want.has(k)) this.#forget(k, m);
    for (const [k, list] of want) {
      const m = this.#want(k, list[0]);
      m.refs = list.length;
      if (!m.held) this.#join(m);
    }
  }

  /** The same result as {@link sync} with the changed rule set, in time proportional to it. */
  change(add: readonly RuleSpec[], remove: readonly RuleSpec[]): void {
    for (const r of remove) {
      const k = this.#keyOf(r);
      const m = k === null ? undefined : this.#m.get(k);
      if (m && --m.refs <= 0) this.#forget(k!, m);
    }
    const again = new Set(this.#unheld);
    for (const r of add) {
      const k = this.#keyOf(r);
      if (k === null) continue;
      const m = this.#want(k, r);
      m.refs++;
      if (!m.held) again.add(m);
    }
    for (const m of again) this.#join(m);
  }

  #want(k: string, r: RuleSpec): Wanted {
    let m = this.#m.get(k);
    if (!m) {
      m = {
        ifname: r.input.interface,
        group: r.input.group6!,
        source: r.input.source6 ?? null,
        refs: 0,
        held: null,
      };
      this.#m.set(k, m);
    }
    return m;
  }

  #forget(k: string, m: Wanted): void {
    this.#leave(m);
    this.#unheld.delete(m);
    this.#m.delete(k);
  }

  #leave(m: Wanted): void {
    if (!m.held) return;
    const { socket, ifindex } = m.held;
    m.held = null;
    try {
      socket.drop(ifindex, ip6Bytes(m.group), m.source && ip6Bytes(m.source));
    } catch { /* the interface is gone: the kernel left with it */ }
  }

  #join(m: Wanted): void {
    m.error = undefined;
    m.pending = false;
    this.#unheld.add(m);
    const link = this.links.get(m.ifname);
    if (!link) {
      m.pending = true;
      m.error = `interface ${m.ifname} does not exist`;
      return;
    }
    const g = ip6Bytes(m.group), s = m.source && ip6Bytes(m.source);
    try {
      let socket = this.#sockets.at(-1);
      if (!socket) this.#sockets.push(socket = this.openSocket());
      try {
        socket.add(link.ifindex, g, s);
      } catch (e) {
        // this socket's option memory (ENOMEM) or source list (ENOBUFS) is full
        const code = (e as { code?: string }).code;
        if (code !== "ENOBUFS" && code !== "ENOMEM") throw e;
        this.#sockets.push(socket = this.openSocket()); // this one is full
        socket.add(link.ifindex, g, s);
      }
      m.held = { socket, ifindex: link.ifindex };
      this.#unheld.delete(m);
    } catch (e) {
      m.error = (e as Error).message;
      this.#log.warn("{interface}: MLD join of {group} failed: {error}", {
        interface: m.ifname,
        group: describe(m),
        error: m.error,
      });
    }
  }

  /** Join again the memberships of an interface not held on its current index. */
  rejoin(ifname: string): void {
    const ifindex = this.links.get(ifname)?.ifindex;
    for (const m of this.#m.values()) {
      if (m.ifname !== ifname || (m.held && m.held.ifindex === ifindex)) continue;
      this.#leave(m);
      this.#join(m);
    }
  }

  /** Leave every group. */
  close(): void {
    for (const s of this.#sockets) s.close();
    this.#sockets.length = 0;
    this.#m.clear();
    this.#unheld.clear();
  }

  /** Counts and the reasons of refused joins. */
  stats(): MldStats {
    const { joined, pending, failed, failures } = countMemberships(
      this.#m.values(),
      (m) => !!m.held,
      formatIPv6,
    );
    return {
      memberships: this.#m.size,
      joined,
      pending,
      failed,
      sockets: this.#sockets.length,
      failures,
    };
  }
}

function describe(m: Wanted): string {
  const g = formatIPv6(m.group);
  return m.source ? `(${formatIPv6(m.source)}, ${g})` : g;
}

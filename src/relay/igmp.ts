/**
 * IGMP memberships: the relay joins each rule's input group (source-specific
 * for an (S,G) rule) on its input interface, so IGMP-snooping switches
 * deliver the stream, and leaves when the last rule for it goes. A range
 * input joins the groups its `joins` lists (a range itself cannot be joined;
 * without `joins` it relays what the network floods to it). A unicast
 * input (the relay's own address, or one seen on a mirror port) joins
 * nothing: its datagrams are addressed to a host, not to a group. Which
 * groups a rule joins is `RuleSpec.input.joins`. An
 * interface that does not exist yet is joined when it appears (`rejoin`).
 * The memberships share as few sockets as the network namespace's limits
 * allow (igmp_sockets.ts); those limits are read at every change, logged
 * when first read and when they change, and reported in {@link IgmpStats}.
 * A refused join is logged and reported with its reason, never fatal.
 *
 * @module
 */
import { type IgmpLimits, igmpLimits, IgmpSocket } from "../../ffi/mod.ts";
import { formatIPv4 } from "../common/net.ts";
import { logger } from "../common/log.ts";
import type { Links } from "./links.ts";
import { IFF_UP } from "../datapath/link_table.ts";
import type { RuleSpec } from "./tables.ts";
import { type MembershipSocket, type Placement, SocketPacker } from "./igmp_sockets.ts";

/** Refused memberships listed in {@link IgmpStats.failures} at most (all are counted). */
export const MAX_LISTED_FAILURES = 64;

/** A refused join as `stats()` lists it (IGMP and MLD alike). */
export interface MembershipFailure {
  /** Interface name. */
  interface: string;
  /** Group, as text. */
  group: string;
  /** Source of a source-specific join, as text. */
  source?: string;
  /** The kernel's reason. */
  reason: string;
}

/** Joined, pending and refused memberships, the first refusals listed with their reason. */
export interface MembershipCounts {
  /** Held by the kernel. */
  joined: number;
  /** Waiting for their interface. */
  pending: number;
  /** Refused by the kernel. */
  failed: number;
  /** The first {@link MAX_LISTED_FAILURES} refusals. */
  failures: MembershipFailure[];
}

/**
 * Count memberships of either family: `held` says whether the kernel holds
 * one, `text` writes its addresses.
 */
export function countMemberships<
  A,
  M extends {
    ifname: string;
    group: A;
    source?: A | null;
    pending?: boolean;
    error?: string | null;
  },
>(all: Iterable<M>, held: (m: M) => boolean, text: (a: A) => string): MembershipCounts {
  let joined = 0, pending = 0, failed = 0;
  const failures: MembershipFailure[] = [];
  for (const m of all) {
    if (held(m)) joined++;
    else if (m.pending) pending++;
    else {
      failed++;
      if (failures.length < MAX_LISTED_FAILURES) {
        failures.push({
          interface: m.ifname,
          group: text(m.group),
          ...(m.source ? { source: text(m.source) } : {}),
          reason: m.error ?? "not joined",
        });
      }
    }
  }
  return { joined, pending, failed, failures };
}

/** The relay's IGMP memberships (in `stats().igmp`). */
export interface IgmpStats {
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
  /** Per-socket limits of the relay's network namespace, as last read (null: unreadable). */
  limits: {
    /** net.ipv4.igmp_max_memberships: groups per socket. */
    max_memberships: number | null;
    /** net.ipv4.igmp_max_msf: sources per source-specific group per socket. */
    max_msf: number | null;
    /** net.core.optmem_max: option memory per socket, bytes. */
    optmem_max: number | null;
  };
  /** The first refused memberships, with the reason. */
  failures: MembershipFailure[];
}

/** One membership the rules need. */
interface Wanted {
  ifname: string;
  group: number;
  source: number;
  /** The last {@link Memberships.sync} that wanted it. */
  seen: number;
  /** Rules that want it (a membership is left when the last goes). */
  refs: number;
  /** Where it is held, when joined. */
  placed: Placement | null;
  /** The interface was up (IFF_UP) when it was joined. */
  joinedUp?: boolean;
  /** Why it is not joined: the interface is missing (pending) or the kernel refused. */
  error?: string;
  pending?: boolean;
}

/** Options of {@link Memberships} (tests put a model of the kernel here). */
export interface MembershipsOptions {
  /** Opens one kernel socket (default: ffi `IgmpSocket`). */
  openSocket?: () => MembershipSocket;
  /** Reads the namespace's limits (default: ffi `igmpLimits`). */
  readLimits?: () => IgmpLimits;
}

function limitsText(l: IgmpLimits): string {
  return `net.ipv4.igmp_max_memberships=${l.maxMemberships ?? "unreadable"}, ` +
    `net.ipv4.igmp_max_msf=${l.maxMsf ?? "unreadable"}, ` +
    `net.core.optmem_max=${l.optmemMax ?? "unreadable"}`;
}

/** The relay's memberships, keyed by interface, group and source. */
export class Memberships {
  readonly #log = logger("supervisor");
  /** interface name → group → source (0: any) → membership; numbers keep sync cheap at 65,536. */
  readonly #m = new Map<string, Map<number, Map<number, Wanted>>>();
  #count = 0;
  #sync = 0;
  /** Memberships wanted but not joined (pending or refused): tried again at every change. */
  readonly #unplaced = new Set<Wanted>();
  readonly #openSocket: () => MembershipSocket;
  readonly #readLimits: () => IgmpLimits;
  #packer?: SocketPacker;

  /**
   * @param links where interfaces are looked up
   * @param opts socket and limit sources (default: libmcr)
   */
  constructor(readonly links: Links, opts: MembershipsOptions = {}) {
    this.#openSocket = opts.openSocket ?? (() => new IgmpSocket());
    this.#readLimits = opts.readLimits ?? igmpLimits;
  }

  /** The packer, created (and the limits logged) on first use: no libmcr before. */
  #pack(): SocketPacker {
    if (!this.#packer) {
      this.#packer = new SocketPacker(this.#openSocket, this.#readLimits);
      this.#log.info("IGMP: per-socket limits in this network namespace: {limits}", {
        limits: limitsText(this.#packer.limits),
      });
    } else if (this.#packer.refreshLimits()) {
      this.#log.info("IGMP: per-socket limits changed: {limits}", {
        limits: limitsText(this.#packer.limits),
      });
    }
    return this.#packer;
  }

  /** Every membership. */
  *#all(): Generator<Wanted> {
    for (const groups of this.#m.values()) {
      for (const sources of groups.values()) yield* sources.values();
    }
  }

  /** Join what `rules` need, leave what they no longer need. */
  sync(rules: readonly RuleSpec[]): void {
    if (rules.length === 0 && !this.#packer) return;
    const packer = this.#pack();
    const seen = ++this.#sync;
    const fresh: Wanted[] = [];
    for (const r of rules) {
      for (const group of r.input.joins) {
        const m = this.#want(r, group);
        if (m.seen !== seen) {
          if (!m.placed) fresh.push(m); // new, or not joined yet: try again
          m.seen = seen;
          m.refs = 0;
        }
        m.refs++;
      }
    }
    // Leave first: what goes frees places for what comes.
    for (const groups of this.#m.values()) {
      for (const sources of groups.values()) {
        for (const m of sources.values()) if (m.seen !== seen) this.#forget(packer, m);
      }
    }
    this.#joinAll(packer, fresh);
  }

  /**
   * Join what rules being added need and leave what rules being removed no
   * longer need (another rule may want the same membership): the same result
   * as {@link sync} with the changed rule set, in time proportional to the change.
   */
  change(add: readonly RuleSpec[], remove: readonly RuleSpec[]): void {
    if (add.length === 0 && !this.#packer) return;
    const packer = this.#pack();
    for (const r of remove) {
      const { interface: ifname, source } = r.input;
      for (const group of r.input.joins) {
        const m = this.#m.get(ifname)?.get(group)?.get(source);
        if (m && --m.refs === 0) this.#forget(packer, m);
      }
    }
    const fresh = new Set(this.#unplaced); // not joined yet: try again
    for (const r of add) {
      for (const group of r.input.joins) {
        const m = this.#want(r, group);
        if (m.refs++ === 0) fresh.add(m);
      }
    }
    this.#joinAll(packer, [...fresh]);
  }

  /** The membership of `group` rule `r` needs, created (not joined, no rule counted) when missing. */
  #want(r: RuleSpec, group: number): Wanted {
    const { interface: ifname, source } = r.input;
    let groups = this.#m.get(ifname);
    if (!groups) this.#m.set(ifname, groups = new Map());
    let sources = groups.get(group);
    if (!sources) groups.set(group, sources = new Map());
    let m = sources.get(source);
    if (!m) {
      m = { ifname, group, source, seen: 0, refs: 0, placed: null };
      sources.set(source, m);
      this.#count++;
    }
    return m;
  }

  /** Leave a membership no rule needs any more and forget it. */
  #forget(packer: SocketPacker, m: Wanted): void {
    if (m.placed) packer.leave(m.placed);
    this.#unplaced.delete(m);
    const groups = this.#m.get(m.ifname)!;
    const sources = groups.get(m.group)!;
    sources.delete(m.source);
    this.#count--;
    if (sources.size === 0) groups.delete(m.group);
    if (groups.size === 0) this.#m.delete(m.ifname);
  }

  /** Join `fresh` memberships, then pack the sockets. */
  #joinAll(packer: SocketPacker, fresh: readonly Wanted[]): void {
    // Source-specific first, a group's sources together: a group with more
    // sources than igmp_max_msf needs sockets of its own, which any-source
    // groups then fill up.
    const ssm = fresh.filter((m) => m.source !== 0).sort((a, b) =>
      a.ifname < b.ifname ? -1 : a.ifname > b.ifname ? 1 : a.group - b.group
    );
    for (const m of ssm) this.#join(packer, m);
    for (const m of fresh) if (m.source === 0) this.#join(packer, m);
    packer.compact();
  }

  #join(packer: SocketPacker, m: Wanted): void {
    m.placed = null;
    m.error = undefined;
    m.pending = false;
    const link = this.links.get(m.ifname);
    if (!link) {
      this.#unplaced.add(m);
      m.pending = true;
      m.error = `interface ${m.ifname} does not exist`;
      return;
    }
    try {
      m.placed = packer.join(link.ifindex, m.group, m.source);
      m.joinedUp = (link.flags & IFF_UP) !== 0;
      this.#unplaced.delete(m);
    } catch (e) {
      this.#unplaced.add(m);
      m.error = (e as Error).message;
      this.#log.warn("{interface}: IGMP join of {group} failed: {error}", {
        group: m.source ? `(${formatIPv4(m.source)}, ${formatIPv4(m.group)})` : formatIPv4(m.group),
        interface: m.ifname,
        error: m.error,
      });
    }
  }

  /**
   * (Re)join the memberships of an interface that are not joined on its
   * current index (it may have been re-created, or just appeared). Those
   * already joined there stay as they are: leaving and joining 65,536
   * groups again costs the kernel a minute (each join walks the device's
   * group list).
   */
  rejoin(ifname: string): void {
    if (!this.#packer) return;
    const packer = this.#pack();
    const ifindex = this.links.get(ifname)?.ifindex;
    const again: Wanted[] = [];
    for (const sources of this.#m.get(ifname)?.values() ?? []) {
      for (const m of sources.values()) {
        // joined there already, on the interface up (a source list set on an interface that
        // was not up yet may not hold: join again)
        if (m.placed && m.joinedUp && m.placed.entry.ifindex === ifindex) continue;
        if (m.placed) packer.leave(m.placed);
        m.placed = null;
        again.push(m);
      }
    }
    for (const m of again) this.#join(packer, m);
    packer.compact();
  }

  /** Leave every group. */
  close(): void {
    this.#packer?.close();
    for (const m of this.#all()) m.placed = null;
    this.#m.clear();
    this.#unplaced.clear();
    this.#count = 0;
  }

  /** Counts, limits and the reasons of refused joins. */
  stats(): IgmpStats {
    const { joined, pending, failed, failures } = countMemberships(
      this.#all(),
      (m) => !!m.placed,
      formatIPv4,
    );
    const l = this.#packer?.limits;
    return {
      memberships: this.#count,
      joined,
      pending,
      failed,
      sockets: this.#packer?.sockets ?? 0,
      limits: {
        max_memberships: l?.maxMemberships ?? null,
        max_msf: l?.maxMsf ?? null,
        optmem_max: l?.optmemMax ?? null,
      },
      failures,
    };
  }
}

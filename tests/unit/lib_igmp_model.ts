/**
 * A model of what the kernel does with IGMP memberships per socket
 * (net/ipv4/igmp.c, as csrc/tests/test_igmp.c checks on a real kernel): one
 * entry per (group, interface) per socket, any-source (exclude mode) or
 * source-specific (include mode with a source list); ENOBUFS at
 * `igmp_max_memberships` entries, at `igmp_max_msf` sources of an entry
 * (checked before the duplicate test; the first source is always taken), and
 * when the socket's option memory (`optmem_max`) is used up: an entry takes
 * {@link ENTRY_BYTES}, a source list 24 bytes + 4 per place, grown 10 places
 * at a time, and a source-specific join that gets its entry but not its list
 * leaves an include-mode entry without sources behind (as the kernel does);
 * a source-specific join on an any-source entry switches it to
 * include mode (recorded in `switched`: the packer must never cause it);
 * leaving one source of an interface that is gone is ENODEV.
 */
import { type IgmpLimits, McrError } from "../../ffi/mod.ts";
import type { MembershipSocket } from "../../src/relay/igmp_sockets.ts";

/** Option memory of one entry (struct ip_mc_socklist, about 48 bytes on x86-64). */
export const ENTRY_BYTES = 48;
/** Source-list places added at a time (IP_SFBLOCK). */
const SF_BLOCK = 10;
const listBytes = (places: number) => 24 + 4 * places;

const ENOBUFS = 105, EADDRINUSE = 98, EADDRNOTAVAIL = 99, ENODEV = 19, EMFILE = 24, EINVAL = 22;

/** One entry of a model socket. */
export interface ModelEntry {
  /** Exclude mode (any-source). */
  any: boolean;
  /** Include-mode sources. */
  sources: Set<number>;
  /** Places of the source list (0: none allocated). */
  places: number;
}

/** The kernel: its sysctls, its sockets, and what it was asked. */
export class ModelKernel {
  /** net.ipv4.igmp_max_memberships. */
  maxMemberships = 20;
  /** net.ipv4.igmp_max_msf. */
  maxMsf = 10;
  /** net.core.optmem_max: option memory per socket, bytes. */
  optmemMax = 131072;
  /** Sockets that may still be opened (file descriptors left). */
  fdsLeft = Infinity;
  /** Interface indexes that are gone. */
  readonly gone = new Set<number>();
  /** Open sockets. */
  readonly sockets = new Set<ModelSocket>();
  /** A source-specific join met an any-source entry on the same socket. */
  switched = false;
  /** Sockets opened so far. */
  opened = 0;

  /** What the packer reads (the sysctls; optmem_max as a byte figure). */
  limits = (): IgmpLimits => ({
    maxMemberships: this.maxMemberships,
    maxMsf: this.maxMsf,
    optmemMax: this.optmemMax,
  });

  /** Open a socket (EMFILE when no descriptor is left). */
  open = (): ModelSocket => {
    if (this.fdsLeft <= 0) {
      throw new McrError("mcr_igmp_open", -EMFILE, "socket: Too many open files");
    }
    this.fdsLeft--;
    this.opened++;
    const s = new ModelSocket(this);
    this.sockets.add(s);
    return s;
  };

  /** Whether the interface receives `group` from any source, and from which sources otherwise. */
  view(ifindex: number, group: number): { any: boolean; sources: Set<number> } {
    const out = { any: false, sources: new Set<number>() };
    for (const s of this.sockets) {
      const e = s.entries.get(`${ifindex}/${group}`);
      if (!e) continue;
      if (e.any) out.any = true;
      for (const x of e.sources) out.sources.add(x);
    }
    return out;
  }

  /** Include-mode entries without a source (a wasted membership, left by a failed join). */
  leftovers(): number {
    let n = 0;
    for (const s of this.sockets) {
      for (const e of s.entries.values()) if (!e.any && e.sources.size === 0) n++;
    }
    return n;
  }

  /** Every (ifindex/group) any socket holds. */
  keys(): Set<string> {
    const out = new Set<string>();
    for (const s of this.sockets) for (const k of s.entries.keys()) out.add(k);
    return out;
  }
}

function fail(call: string, errno: number): never {
  throw new McrError(call, -errno, `${call} (model)`);
}

/** One model socket. */
export class ModelSocket implements MembershipSocket {
  /** Entries by "ifindex/group". */
  readonly entries = new Map<string, ModelEntry>();
  constructor(readonly kernel: ModelKernel) {}

  /** Option memory in use (sock_kmalloc's sk_omem_alloc). */
  omem = 0;

  /** sock_kmalloc: the allocation fits while the total stays below optmem_max. */
  #alloc(bytes: number): boolean {
    if (bytes > this.kernel.optmemMax || this.omem + bytes >= this.kernel.optmemMax) return false;
    this.omem += bytes;
    return true;
  }

  /** Add a source to an include-mode entry (ip_mc_source). */
  #addSource(e: ModelEntry, source: number): void {
    if (e.sources.size >= this.kernel.maxMsf && e.places > 0) fail("mcr_igmp_add", ENOBUFS);
    if (e.sources.size === e.places) {
      if (!this.#alloc(listBytes(e.places + SF_BLOCK))) fail("mcr_igmp_add", ENOBUFS);
      this.omem -= e.places ? listBytes(e.places) : 0;
      e.places += SF_BLOCK;
    }
    if (e.sources.has(source)) fail("mcr_igmp_add", EADDRNOTAVAIL);
    e.sources.add(source);
  }

  add(ifindex: number, group: number, source: number): void {
    const k = this.kernel, key = `${ifindex}/${group}`;
    if ((group >>> 28) !== 0xe) fail("mcr_igmp_add", EINVAL); // libmcr: not a multicast group
    let e = this.entries.get(key);
    if (source === 0 && e) fail("mcr_igmp_add", EADDRINUSE);
    if (!e) {
      if (this.entries.size >= k.maxMemberships) fail("mcr_igmp_add", ENOBUFS);
      if (!this.#alloc(ENTRY_BYTES)) fail("mcr_igmp_add", ENOBUFS);
      e = { any: source === 0, sources: new Set(), places: 0 };
      this.entries.set(key, e);
      if (source === 0) return;
    } else if (e.any) {
      k.switched = true;
      e.any = false;
    }
    this.#addSource(e, source); // a failure leaves a new entry behind, as the kernel does
  }

  #free(e: ModelEntry): void {
    this.omem -= ENTRY_BYTES + (e.places ? listBytes(e.places) : 0);
  }

  drop(ifindex: number, group: number, source: number): void {
    const key = `${ifindex}/${group}`;
    const e = this.entries.get(key);
    if (source === 0) {
      if (!e) fail("mcr_igmp_drop", EADDRNOTAVAIL);
      this.#free(e);
      this.entries.delete(key);
      return;
    }
    if (this.kernel.gone.has(ifindex)) fail("mcr_igmp_drop", ENODEV);
    if (!e) fail("mcr_igmp_drop", EINVAL);
    if (!e.sources.delete(source)) fail("mcr_igmp_drop", EADDRNOTAVAIL);
    if (e.sources.size === 0) {
      this.#free(e);
      this.entries.delete(key);
    }
  }

  close(): void {
    this.entries.clear();
    this.omem = 0;
    if (this.kernel.sockets.delete(this)) this.kernel.fdsLeft++;
  }
}

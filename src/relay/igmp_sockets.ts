/**
 * IGMP memberships packed into as few sockets as the kernel allows, instead
 * of one socket (one file descriptor) each: at 65,536 rules that is 3,277
 * sockets at the default limit of 20 groups per socket, not 65,536.
 *
 * What one socket may hold is set per network namespace, and the kernel
 * refuses more with ENOBUFS (net/ipv4/igmp.c; csrc/igmp.c has the details):
 * `net.ipv4.igmp_max_memberships` groups — one *entry* per (group,
 * interface), any-source or source-specific —, `net.ipv4.igmp_max_msf`
 * sources per source-specific entry, and `net.core.optmem_max` bytes of
 * option memory. The packer places each membership by first fit: a
 * source-specific one joins an entry of its group that has room for another
 * source, anything else takes a new entry on the first socket with room that
 * does not hold that group on that interface yet (the kernel would turn an
 * any-source entry into a source-specific one); a new socket is opened only
 * when none has room. The limits are read from the namespace (`readLimits`)
 * and read again whenever the kernel refuses: a refusal below the limits read
 * means the option memory is used up, and that socket is taken as full at its
 * current size. A membership fails only when a socket holding nothing refuses
 * it, or no socket can be opened; the error names the sysctl (or the open-file
 * limit) and how to raise it.
 *
 * Pure bookkeeping over {@link MembershipSocket}: the relay passes ffi's
 * `IgmpSocket`, the unit tests a model of the kernel's rules.
 *
 * @module
 */
import { Errno, type IgmpLimits, McrError } from "../../ffi/mod.ts";
import { formatIPv4 } from "../common/net.ts";

/** What the packer needs of one kernel socket (ffi `IgmpSocket`; a model in tests). */
export interface MembershipSocket {
  /** Join a group (source 0) or add a source; throws McrError (ENOBUFS at a limit). */
  add(ifindex: number, group: number, source: number): void;
  /** Leave a group with every source (source 0) or one source; throws McrError. */
  drop(ifindex: number, group: number, source: number): void;
  /** Close: the kernel drops everything the socket holds. */
  close(): void;
}

/** The kernel's default `igmp_max_memberships` (IP_MAX_MEMBERSHIPS), assumed when unreadable. */
export const DEFAULT_MAX_MEMBERSHIPS = 20;
/** The kernel's default `igmp_max_msf` (IP_MAX_MSF), assumed when unreadable. */
export const DEFAULT_MAX_MSF = 10;
/** The kernel's default `optmem_max` (since Linux 6.9), suggested when it is lower. */
export const DEFAULT_OPTMEM_MAX = 131072;
/** Socket ids listed in one error message at most. */
const MAX_IDS_LISTED = 5;

/** A membership the kernel refused for good, or an error that is not a per-socket limit. */
export class JoinError extends Error {
  /**
   * @param message what was refused and how to fix it
   * @param errno the kernel's errno, when it answered
   */
  constructor(message: string, readonly errno?: number) {
    super(message);
    this.name = "JoinError";
  }
}

/** One socket and the entries it holds. */
class Sock {
  /** Entries by {@link entryKey}. */
  readonly entries = new Map<string, Entry>();
  /** Entries at which the kernel ran out of option memory (optmem_max), or Infinity. */
  cap = Infinity;
  /**
   * @param id 1-based number for messages (stable while the socket lives)
   * @param s the kernel socket
   */
  constructor(readonly id: number, readonly s: MembershipSocket) {}
}

/** One (group, interface) on one socket: any-source, or source-specific with its sources. */
class Entry {
  /** Sources in the kernel's filter (source-specific), with any a failed leave left behind. */
  readonly sources = new Set<number>();
  /** Sources held by a {@link Placement}. */
  readonly held = new Set<number>();
  /** Any-source entry held by a placement. */
  heldAny = false;
  /** The kernel refused another source here. */
  full = false;
  /** Leaving failed: the kernel may still hold it; never reused, gone with its socket. */
  stale = false;
  /**
   * @param sock its socket
   * @param key {@link entryKey}
   * @param ifindex interface index
   * @param group group (host order)
   * @param any any-source (else source-specific)
   */
  constructor(
    readonly sock: Sock,
    readonly key: string,
    readonly ifindex: number,
    readonly group: number,
    readonly any: boolean,
  ) {}
}

/** A membership a caller holds: where it was placed. Give it back to {@link SocketPacker.leave}. */
export class Placement {
  #left = false;
  /**
   * @param entry its entry
   * @param source its source (0: any)
   */
  constructor(readonly entry: Entry, readonly source: number) {}
  /** Number of the socket holding it (1-based, for messages and tests). */
  get socket(): number {
    return this.entry.sock.id;
  }
  /** True once left (a second leave does nothing). */
  get left(): boolean {
    return this.#left;
  }
  /** Mark as left; false when it already was. */
  markLeft(): boolean {
    if (this.#left) return false;
    this.#left = true;
    return true;
  }
}

function entryKey(ifindex: number, group: number): string {
  return `${ifindex}/${group}`;
}

function isErrno(e: unknown, errno: number): boolean {
  return e instanceof McrError && e.errno === errno;
}

function ids(socks: readonly number[]): string {
  const shown = socks.slice(0, MAX_IDS_LISTED).join(", ");
  const more = socks.length > MAX_IDS_LISTED ? ` and ${socks.length - MAX_IDS_LISTED} more` : "";
  return `${socks.length === 1 ? "socket" : "sockets"} ${shown}${more}`;
}

/** How to raise a sysctl: `sysctl -w NAME=VALUE` with a value worth trying. */
function raiseHint(name: string, value: number | null, floor: number): string {
  const next = Math.max(floor, 2 * (value ?? 0));
  return `raise it: sysctl -w ${name}=${next} (per network namespace)`;
}

/** Packs memberships into sockets (see module doc). */
export class SocketPacker {
  readonly #open: () => MembershipSocket;
  readonly #readLimits: () => IgmpLimits;
  #limits: IgmpLimits;
  readonly #socks = new Set<Sock>();
  /** Sockets below their capacity (first fit walks these in insertion order). */
  readonly #roomy = new Set<Sock>();
  /** Every entry of a (group, interface), on any socket. */
  readonly #byKey = new Map<string, Entry[]>();
  #nextId = 1;
  /** Ids of closed sockets, reused lowest first so that numbers stay small. */
  readonly #freeIds: number[] = [];

  /**
   * @param open opens one kernel socket (throws McrError, e.g. EMFILE)
   * @param readLimits reads the namespace's per-socket limits
   */
  constructor(open: () => MembershipSocket, readLimits: () => IgmpLimits) {
    this.#open = open;
    this.#readLimits = readLimits;
    this.#limits = readLimits();
  }

  /** The per-socket limits as last read. */
  get limits(): IgmpLimits {
    return this.#limits;
  }

  /** Sockets open. */
  get sockets(): number {
    return this.#socks.size;
  }

  /** Groups per socket in force (the sysctl, or the kernel default when unreadable). */
  get #maxMemberships(): number {
    return this.#limits.maxMemberships ?? DEFAULT_MAX_MEMBERSHIPS;
  }

  /** Sources per entry in force; the kernel always takes an entry's first source. */
  get #maxMsf(): number {
    return Math.max(1, this.#limits.maxMsf ?? DEFAULT_MAX_MSF);
  }

  /** Read the limits again; true when they changed. */
  refreshLimits(): boolean {
    const l = this.#readLimits();
    const was = this.#limits;
    this.#limits = l;
    const changed = l.maxMemberships !== was.maxMemberships || l.maxMsf !== was.maxMsf ||
      l.optmemMax !== was.optmemMax;
    if (changed) {
      for (const s of this.#socks) {
        s.cap = Infinity; // more option memory may fit now; the kernel says when not
        for (const e of s.entries.values()) e.full = false;
        this.#updateRoom(s);
      }
    }
    return changed;
  }

  #capacity(s: Sock): number {
    return Math.min(s.cap, this.#maxMemberships);
  }

  #updateRoom(s: Sock): void {
    if (this.#socks.has(s) && s.entries.size < this.#capacity(s)) this.#roomy.add(s);
    else this.#roomy.delete(s);
  }

  /**
   * Join `group` on `ifindex` from any source (0) or from `source`.
   * @throws {JoinError} when no socket can take it (the message names the limit)
   * @throws {McrError} for any other refusal (ENODEV, ...)
   */
  join(ifindex: number, group: number, source: number): Placement {
    const key = entryKey(ifindex, group);
    const msfFull: number[] = [];
    if (source !== 0) {
      for (const e of this.#byKey.get(key) ?? []) {
        if (e.any || e.stale || e.held.has(source)) continue;
        if (e.sources.has(source)) { // left behind by a failed leave: still in the kernel's list
          e.held.add(source);
          return new Placement(e, source);
        }
        if (e.full || e.sources.size >= this.#maxMsf) {
          msfFull.push(e.sock.id);
          continue;
        }
        try {
          e.sock.s.add(ifindex, group, source);
        } catch (err) {
          if (!isErrno(err, Errno.ENOBUFS)) throw err;
          e.full = true;
          this.refreshLimits();
          if (e.sources.size >= this.#maxMsf) msfFull.push(e.sock.id);
          else this.#outOfOptmem(e.sock);
          continue;
        }
        e.sources.add(source);
        e.held.add(source);
        return new Placement(e, source);
      }
    }
    return this.#newEntry(ifindex, group, source, msfFull);
  }

  /** The kernel refused an entry below the limits read: option memory; full at this size. */
  #outOfOptmem(s: Sock): void {
    s.cap = s.entries.size;
    this.#updateRoom(s);
  }

  #newEntry(ifindex: number, group: number, source: number, msfFull: number[]): Placement {
    const key = entryKey(ifindex, group);
    for (;;) {
      let sock: Sock | undefined;
      for (const s of this.#roomy) {
        if (!s.entries.has(key)) {
          sock = s;
          break;
        }
      }
      sock ??= this.#openSocket();
      try {
        sock.s.add(ifindex, group, source);
      } catch (err) {
        if (!isErrno(err, Errno.ENOBUFS)) {
          if (sock.entries.size === 0) this.#closeSocket(sock);
          throw err;
        }
        // A source-specific join that could not take its source may leave an
        // include-mode entry without sources behind: drop it.
        if (source !== 0) this.#tryDrop(sock, ifindex, group);
        const n = sock.entries.size;
        this.refreshLimits();
        const atLimit = n >= this.#maxMemberships;
        if (!atLimit) this.#outOfOptmem(sock);
        // A socket holding something is full: try the next. One holding
        // nothing cannot take a group at all: no socket can.
        if (n > 0) continue;
        this.#closeSocket(sock);
        throw new JoinError(this.#refusal(group, msfFull, sock.id, atLimit), Errno.ENOBUFS);
      }
      const e = new Entry(sock, key, ifindex, group, source === 0);
      if (source === 0) e.heldAny = true;
      else {
        e.sources.add(source);
        e.held.add(source);
      }
      sock.entries.set(key, e);
      const list = this.#byKey.get(key);
      if (list) list.push(e);
      else this.#byKey.set(key, [e]);
      this.#updateRoom(sock);
      return new Placement(e, source);
    }
  }

  /** Why an empty socket refused `group`: the sysctls that stand in the way, and how to raise them. */
  #refusal(group: number, msfFull: number[], sockId: number, atLimit: boolean): string {
    const parts: string[] = [];
    if (msfFull.length > 0) {
      parts.push(
        `net.ipv4.igmp_max_msf=${this.#limits.maxMsf ?? DEFAULT_MAX_MSF} sources of ` +
          `${formatIPv4(group)} reached on IGMP ${ids(msfFull)}`,
      );
    }
    if (atLimit) {
      parts.push(
        `net.ipv4.igmp_max_memberships=${this.#maxMemberships} reached on IGMP socket ${sockId} ` +
          "(it holds 0 groups); " +
          raiseHint(
            "net.ipv4.igmp_max_memberships",
            this.#limits.maxMemberships,
            DEFAULT_MAX_MEMBERSHIPS,
          ),
      );
    } else {
      parts.push(
        `net.core.optmem_max=${this.#limits.optmemMax ?? "?"} bytes of option memory used up ` +
          `on IGMP socket ${sockId} (it holds 0 groups); ` +
          raiseHint("net.core.optmem_max", this.#limits.optmemMax, DEFAULT_OPTMEM_MAX),
      );
    }
    return parts.join("; ");
  }

  #openSocket(): Sock {
    let s: MembershipSocket;
    try {
      s = this.#open();
    } catch (err) {
      if (isErrno(err, Errno.EMFILE) || isErrno(err, Errno.ENFILE)) {
        const held = [...this.#socks].reduce((a, x) => a + x.entries.size, 0);
        throw new JoinError(
          `cannot open another IGMP socket: ${(err as Error).message}; ` +
            `${this.#socks.size} IGMP sockets hold ${held} groups ` +
            `(net.ipv4.igmp_max_memberships=${this.#maxMemberships} per socket): raise the ` +
            "open-file limit (ulimit -n; LimitNOFILE= in a systemd unit) or " +
            "net.ipv4.igmp_max_memberships",
          (err as McrError).errno,
        );
      }
      throw err;
    }
    const sock = new Sock(this.#freeIds.length ? this.#takeFreeId() : this.#nextId++, s);
    this.#socks.add(sock);
    this.#updateRoom(sock);
    return sock;
  }

  #takeFreeId(): number {
    this.#freeIds.sort((a, b) => a - b);
    return this.#freeIds.shift()!;
  }

  #closeSocket(s: Sock): void {
    for (const e of s.entries.values()) this.#unindex(e);
    s.entries.clear();
    s.s.close();
    this.#socks.delete(s);
    this.#roomy.delete(s);
    this.#freeIds.push(s.id);
  }

  #unindex(e: Entry): void {
    const list = this.#byKey.get(e.key);
    if (!list) return;
    const i = list.indexOf(e);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.#byKey.delete(e.key);
  }

  /** Drop a whole (group, interface) from a socket, ignoring errors; true when gone. */
  #tryDrop(s: Sock, ifindex: number, group: number): boolean {
    try {
      s.s.drop(ifindex, group, 0);
      return true;
    } catch (err) {
      return isErrno(err, Errno.EADDRNOTAVAIL); // it was not there
    }
  }

  /** Remove an entry nobody holds any more from its socket (and from the kernel). */
  #removeEntry(e: Entry): void {
    if (!this.#tryDrop(e.sock, e.ifindex, e.group)) {
      e.stale = true; // the socket's close drops it
      return;
    }
    e.sock.entries.delete(e.key);
    this.#unindex(e);
    e.sock.cap = Infinity; // option memory was freed
    this.#updateRoom(e.sock);
  }

  /** Leave a membership (idempotent). Never throws: what the kernel keeps goes with its socket. */
  leave(p: Placement): void {
    if (!p.markLeft()) return;
    const e = p.entry;
    if (!this.#socks.has(e.sock)) return; // its socket was closed
    if (e.any) {
      e.heldAny = false;
      this.#removeEntry(e);
      return;
    }
    e.held.delete(p.source);
    if (e.held.size === 0) {
      this.#removeEntry(e);
      return;
    }
    try {
      e.sock.s.drop(e.ifindex, e.group, p.source);
      e.sources.delete(p.source);
      e.full = false;
    } catch {
      // The interface is gone (ENODEV): the source stays in the kernel's list
      // until the entry is dropped, and may be taken over by a new join.
    }
  }

  /** Close the sockets that hold nothing anybody holds; returns how many. */
  compact(): number {
    let n = 0;
    for (const s of [...this.#socks]) {
      let used = false;
      for (const e of s.entries.values()) {
        if (!e.stale && (e.heldAny || e.held.size > 0)) {
          used = true;
          break;
        }
      }
      if (!used) {
        this.#closeSocket(s);
        n++;
      }
    }
    return n;
  }

  /** Close every socket (every membership is left). */
  close(): void {
    for (const s of [...this.#socks]) this.#closeSocket(s);
    this.#freeIds.length = 0;
    this.#nextId = 1;
  }
}

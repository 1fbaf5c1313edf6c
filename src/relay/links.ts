/**
 * The link table: what the kernel says about every interface the relay
 * uses, kept current by one rtnetlink monitor for the whole process, and
 * shared with the data-path workers through a `SharedArrayBuffer`.
 *
 * The supervisor (main thread) owns it: it learns the initial state from a
 * dump, then every change as it happens (an interface appears, goes, goes
 * down, loses its carrier, changes its MTU or name). Listeners hear each
 * change once. Workers never block on it: each entry is a few int32 words
 * they read with `Atomics.load`, and word 0 is a generation number bumped
 * after every change, so a worker notices a change with one load per loop
 * pass (the supervisor also wakes them).
 *
 * Names, not indexes, identify interfaces in rules; an entry belongs to a
 * name and shows the interface that has that name now (absent, or present
 * with its index, flags, MTU and link type).
 *
 * The same monitor reports IPv4 addresses added or removed
 * ({@link Links.onAddress}): which addresses are the host's decides whether
 * a unicast input needs a UDP port claim (port_claims.ts).
 *
 * @module
 */
import { type LinkEvent, LinkMonitor, Waker } from "../../ffi/mod.ts";
import {
  LINK_BASE,
  LINK_GEN,
  LINK_WORDS,
  type LinkState,
  LinkWord,
  MAX_LINK_SLOTS,
  newLinkTable,
} from "../datapath/link_table.ts";

/**
 * How long one wait for link events may last (ms). Events and `stop()` (its
 * waker) end a wait at once; the timeout only bounds an idle relay's
 * wake-ups (once a second was a fifth of the idle control thread's CPU).
 */
const LINK_WAIT_MS = 60_000;

/** A change of one named interface (`prev`/`next` undefined = absent). */
export type LinkChange = { name: string; prev?: LinkState; next?: LinkState };

/** The process's link table and its monitor (see module doc). */
export class Links {
  /** The shared table workers read. */
  readonly table: Int32Array = newLinkTable();
  readonly #byName = new Map<string, LinkState>();
  readonly #nameOf = new Map<number, string>();
  readonly #slots = new Map<string, number>();
  readonly #listeners = new Set<(c: LinkChange) => void>();
  readonly #addressListeners = new Set<(ifindex: number) => void>();
  #mon?: LinkMonitor;
  #waker?: Waker;
  #loop?: Promise<void>;
  #closed = false;
  #dumpDone?: () => void;

  /** Current state of an interface by name (undefined: it does not exist). */
  get(name: string): LinkState | undefined {
    return this.#byName.get(name);
  }

  /** Names of the interfaces that exist now (as the link monitor reported them), sorted. */
  names(): string[] {
    return [...this.#byName.keys()].sort();
  }

  /** Subscribe to changes; returns an unsubscribe function. */
  on(listener: (c: LinkChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Subscribe to IPv4 address changes (an address of interface `ifindex` was
   * added or removed); returns an unsubscribe function.
   */
  onAddress(listener: (ifindex: number) => void): () => void {
    this.#addressListeners.add(listener);
    return () => this.#addressListeners.delete(listener);
  }

  /**
   * The table slot of an interface name (allocated on first use). Slots of
   * names no rule uses any more are reused once the table is full.
   * @param inUse names still referenced (consulted only when the table is full: a
   *   function is called only then)
   */
  slot(name: string, inUse?: ReadonlySet<string> | (() => ReadonlySet<string>)): number {
    let s = this.#slots.get(name);
    if (s !== undefined) return s;
    if (this.#slots.size >= MAX_LINK_SLOTS) {
      const used = typeof inUse === "function" ? inUse() : inUse;
      const victim = [...this.#slots].find(([n]) => !used?.has(n));
      if (!victim) {
        throw new Error(
          `more than ${MAX_LINK_SLOTS} distinct interface names in use (MAX_LINK_SLOTS)`,
        );
      }
      this.#slots.delete(victim[0]);
      s = victim[1];
    } else {
      s = this.#slots.size;
    }
    this.#slots.set(name, s);
    this.#write(name);
    return s;
  }

  /** Start monitoring; resolves once the initial dump is in the table. */
  async start(): Promise<void> {
    if (this.#mon) return;
    this.#waker = new Waker();
    this.#mon = new LinkMonitor(this.#waker.fd, 256);
    const dumped = new Promise<void>((r) => this.#dumpDone = r);
    this.#mon.dump();
    this.#loop = this.#run();
    await dumped;
  }

  async #run(): Promise<void> {
    const mon = this.#mon!;
    while (!this.#closed) {
      let events: LinkEvent[];
      try {
        events = await mon.wait(LINK_WAIT_MS);
      } catch {
        if (this.#closed) return;
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      for (const ev of events) this.#apply(ev);
    }
  }

  #apply(ev: LinkEvent): void {
    switch (ev.kind) {
      case "resync":
        try {
          this.#mon?.dump();
        } catch { /* a dump is already running: its answer resyncs */ }
        return;
      case "done":
        this.#dumpDone?.();
        this.#dumpDone = undefined;
        return;
      case "addr":
        for (const l of this.#addressListeners) {
          try {
            l(ev.ifindex);
          } catch { /* a listener's failure is its own */ }
        }
        return;
      case "del": {
        const name = this.#nameOf.get(ev.ifindex) ?? ev.name;
        this.#nameOf.delete(ev.ifindex);
        if (this.#byName.get(name)?.ifindex === ev.ifindex) this.#set(name, undefined);
        return;
      }
      case "new": {
        if (!ev.name) return;
        const old = this.#nameOf.get(ev.ifindex);
        if (old !== undefined && old !== ev.name) {
          // renamed: the old name no longer exists
          if (this.#byName.get(old)?.ifindex === ev.ifindex) this.#set(old, undefined);
        }
        this.#nameOf.set(ev.ifindex, ev.name);
        this.#set(ev.name, { ifindex: ev.ifindex, flags: ev.flags, mtu: ev.mtu, type: ev.type });
        return;
      }
    }
  }

  #set(name: string, next: LinkState | undefined): void {
    const prev = this.#byName.get(name);
    if (
      prev && next && prev.ifindex === next.ifindex && prev.flags === next.flags &&
      prev.mtu === next.mtu && prev.type === next.type
    ) return;
    if (!prev && !next) return;
    if (next) this.#byName.set(name, next);
    else this.#byName.delete(name);
    this.#write(name);
    for (const l of this.#listeners) {
      try {
        l({ name, prev, next });
      } catch { /* a listener's failure is its own */ }
    }
  }

  /** Copy the state of `name` into its slot (if it has one) and bump the generation. */
  #write(name: string): void {
    const slot = this.#slots.get(name);
    if (slot === undefined) return;
    const b = LINK_BASE + slot * LINK_WORDS;
    const s = this.#byName.get(name);
    Atomics.add(this.table, b + LinkWord.seq, 1); // odd: writing
    Atomics.store(this.table, b + LinkWord.present, s ? 1 : 0);
    Atomics.store(this.table, b + LinkWord.ifindex, s?.ifindex ?? 0);
    Atomics.store(this.table, b + LinkWord.flags, s?.flags ?? 0);
    Atomics.store(this.table, b + LinkWord.mtu, s?.mtu ?? 0);
    Atomics.store(this.table, b + LinkWord.type, s?.type ?? 0);
    Atomics.add(this.table, b + LinkWord.seq, 1); // even: done
    Atomics.add(this.table, LINK_GEN, 1);
  }

  /** Stop monitoring (idempotent). */
  async stop(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#dumpDone?.();
    this.#waker?.wake();
    await this.#loop;
    await this.#mon?.close();
    this.#waker?.close();
  }
}

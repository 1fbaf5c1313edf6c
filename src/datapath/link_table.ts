/**
 * The shared link table: what the kernel says about every interface the
 * relay names, written by the main thread's link monitor (src/relay/links.ts)
 * and read by the workers, in a SharedArrayBuffer of int32 words.
 *
 * Word 0 is a generation number bumped after every change: a worker notices
 * a change with one `Atomics.load` per loop pass. Each entry is guarded by a
 * sequence word (odd while being written), so a reader never sees half of an
 * update. Names, not indexes, identify interfaces in rules: an entry belongs
 * to a name and shows the interface that has that name now.
 *
 * @module
 */
import { MAX_INTERFACES } from "../config/limits.ts";

/** IFF_UP: administratively up. */
export const IFF_UP = 0x1;
/**
 * IFF_LOWER_UP: the device has carrier (rtnetlink flags only). IFF_RUNNING,
 * the operational state, follows it up to a second late (linkwatch), so
 * carrier is what decides whether a link can carry traffic.
 */
export const IFF_LOWER_UP = 0x10000;

/** What the kernel says about one interface. */
export interface LinkState {
  /** Interface index. */
  ifindex: number;
  /** IFF_* flags. */
  flags: number;
  /** MTU. */
  mtu: number;
  /** ARPHRD_* link type. */
  type: number;
}

/** True when the link can carry traffic (up, with carrier). */
export function linkUsable(s: LinkState | undefined): boolean {
  return s !== undefined && (s.flags & IFF_UP) !== 0 && (s.flags & IFF_LOWER_UP) !== 0;
}

/** Why a link cannot carry traffic, or undefined when it can. */
export function linkProblem(name: string, s: LinkState | undefined): string | undefined {
  if (!s) return `interface ${name} does not exist`;
  if (!(s.flags & IFF_UP)) return `interface ${name} is down`;
  if (!(s.flags & IFF_LOWER_UP)) return `interface ${name} has no carrier`;
  return undefined;
}

/** Maximum distinct interface names the shared table tracks (the config limit). */
export const MAX_LINK_SLOTS = MAX_INTERFACES;
/** Int32 words per entry in the shared table. */
export const LINK_WORDS = 8;
/** Word offsets of an entry. */
export const LinkWord = {
  /** Sequence lock: odd while the entry is being written. */
  seq: 0,
  /** 1 while an interface with this name exists. */
  present: 1,
  /** Interface index. */
  ifindex: 2,
  /** IFF_* flags. */
  flags: 3,
  /** MTU. */
  mtu: 4,
  /** ARPHRD_* link type. */
  type: 5,
} as const;
/** Word 0 of the table: generation, bumped after every change. */
export const LINK_GEN = 0;
/** First entry word (entries follow the header). */
export const LINK_BASE = LINK_WORDS;

/** Allocate the shared table (header + {@link MAX_LINK_SLOTS} entries). */
export function newLinkTable(): Int32Array {
  return new Int32Array(new SharedArrayBuffer((MAX_LINK_SLOTS + 1) * LINK_WORDS * 4));
}

/** Read entry `slot` of a shared table (worker side); undefined when absent. */
export function readLink(table: Int32Array, slot: number): LinkState | undefined {
  if (slot < 0 || slot >= MAX_LINK_SLOTS) return undefined;
  const b = LINK_BASE + slot * LINK_WORDS;
  for (;;) {
    const seq = Atomics.load(table, b + LinkWord.seq);
    if (seq & 1) continue; // a write is in progress (a few stores): retry
    const present = Atomics.load(table, b + LinkWord.present);
    const s = {
      ifindex: Atomics.load(table, b + LinkWord.ifindex),
      flags: Atomics.load(table, b + LinkWord.flags),
      mtu: Atomics.load(table, b + LinkWord.mtu),
      type: Atomics.load(table, b + LinkWord.type),
    };
    if (Atomics.load(table, b + LinkWord.seq) !== seq) continue;
    return present ? s : undefined;
  }
}

/**
 * `LinkMonitor`: link changes from rtnetlink for the whole network
 * namespace — interfaces appearing, changing (flags, MTU, name) and going,
 * and IPv4 addresses added or removed.
 * `wait()` blocks on a helper thread (a nonblocking FFI call).
 *
 * @module
 */
import { LINK_EVENT, LinkEventKind } from "./abi.ts";
import { McrError } from "./errors.ts";
import { lib, open, view } from "./util.ts";

/** What `LinkMonitor.wait` reports about one interface. */
export interface LinkEvent {
  /**
   * new: appeared or changed; del: gone; resync: events were lost, dump again; done: a dump
   * ended; addr: an IPv4 address of `ifindex` was added or removed (only `ifindex` is set).
   */
  kind: keyof typeof LinkEventKind;
  /** Interface index. */
  ifindex: number;
  /** IFF_* flags (32 bits: IFF_LOWER_UP = carrier). */
  flags: number;
  /** MTU. */
  mtu: number;
  /** ARPHRD_* link type. */
  type: number;
  /** Interface name. */
  name: string;
}

const KIND_NAMES = Object.fromEntries(
  Object.entries(LinkEventKind).map(([k, v]) => [v, k]),
) as Record<number, keyof typeof LinkEventKind>;
const dec = new TextDecoder();

/** The link monitor (see module doc). */
export class LinkMonitor {
  #ptr: Deno.PointerObject | null;
  readonly #events: Uint8Array;
  #waiting: Promise<number> | null = null;

  /** @param wakeFd a `Waker` fd that cuts a `wait()` short (-1: none) @param maxEvents per wait */
  constructor(wakeFd = -1, readonly maxEvents = 256) {
    const l = lib();
    this.#ptr = open(
      "mcr_linkmon_open",
      (out, err, n) => l.sym.mcr_linkmon_open(wakeFd, maxEvents, out, err, n),
    );
    this.#events = new Uint8Array(
      view(l.sym.mcr_linkmon_events(this.#ptr), maxEvents * LINK_EVENT.size),
    );
  }

  /** Ask for every link; they arrive as "new" events, then one "done". */
  dump(): void {
    if (!this.#ptr) return;
    const r = lib().sym.mcr_linkmon_dump(this.#ptr);
    if (r < 0) throw new McrError("mcr_linkmon_dump", r, "");
  }

  /** Wait up to `timeoutMs` for events (one wait at a time); [] on timeout or wake-up. */
  async wait(timeoutMs: number): Promise<LinkEvent[]> {
    if (!this.#ptr) return [];
    if (this.#waiting) throw new Error("LinkMonitor.wait: already waiting");
    this.#waiting = lib().sym.mcr_linkmon_wait(this.#ptr, timeoutMs);
    let n: number;
    try {
      n = await this.#waiting;
    } finally {
      this.#waiting = null;
    }
    if (n < 0) throw new McrError("mcr_linkmon_wait", n, "");
    const out: LinkEvent[] = [];
    const dv = new DataView(this.#events.buffer, this.#events.byteOffset);
    const f = LINK_EVENT.field;
    for (let i = 0; i < n; i++) {
      const o = i * LINK_EVENT.size;
      const nameBytes = this.#events.subarray(o + f.name, o + LINK_EVENT.size);
      const end = nameBytes.indexOf(0);
      out.push({
        kind: KIND_NAMES[dv.getUint32(o + f.kind, true)] ?? "resync",
        ifindex: dv.getUint32(o + f.ifindex, true),
        flags: dv.getUint32(o + f.flags, true),
        mtu: dv.getUint32(o + f.mtu, true),
        type: dv.getUint32(o + f.type, true),
        name: dec.decode(nameBytes.subarray(0, end < 0 ? nameBytes.length : end)),
      });
    }
    return out;
  }

  /** Close (idempotent); a pending `wait()` is waited for first (wake it to end it). */
  async close(): Promise<void> {
    if (this.#waiting) await this.#waiting.catch(() => {});
    if (!this.#ptr) return;
    lib().sym.mcr_linkmon_close(this.#ptr);
    this.#ptr = null;
  }
}

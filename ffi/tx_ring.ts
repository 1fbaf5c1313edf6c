/**
 * `TxRing`: an AF_PACKET TX ring (PACKET_TX_RING, PACKET_LOSS) on one
 * interface. Frames are built into it by a `Forwarder`; the ring reports
 * every frame's outcome to it (csrc/ring_tx.h).
 *
 * @module
 */
import { TX_CONFIG, TX_STATS, TxFlag, u64At } from "./abi.ts";
import { check, lib, open } from "./util.ts";

/** TX ring options. */
export interface TxOptions {
  /** Output interface. */
  ifindex: number;
  /** Slot size (default from MTU). */
  frameSize?: number;
  /** Slot count (default 1024). */
  frameCount?: number;
  /** PACKET_QDISC_BYPASS (frames become invisible to other packet sockets). */
  qdiscBypass?: boolean;
}

/** TX ring counters and state (`struct mcr_tx_stats`). */
export interface TxStats {
  /** Frames committed to the ring. */
  frames: number;
  /** Frames the kernel took. */
  sent: number;
  /** sendto() kicks. */
  kicks: number;
  /** Frames not committed for lack of a free slot. */
  ringFull: number;
  /** Frames the kernel refused as longer than the MTU. */
  tooBig: number;
  /** Frames taken back after a failed kick or a link loss. */
  discarded: number;
  /** Failed kicks (other than EAGAIN/ENOBUFS). */
  kickErrors: number;
  /** Transitions between usable and down. */
  linkChanges: number;
  /** MTU changes noticed. */
  mtuChanges: number;
  /** Frames committed and not yet taken. */
  queued: number;
  /** MTU in force. */
  mtu: number;
  /** 0 when usable, else the errno that says why not (ENETDOWN, ENOLINK, ENXIO, ENODEV). */
  down: number;
  /** errno of the last failed kick, 0 = none. */
  lastErr: number;
  /** IFF_* flags last known. */
  linkFlags: number;
  /** Frames queued and none taken for this long (ms); 0 while moving. */
  stalledMs: number;
  /** Longest frame a slot holds (an MTU above it needs a new ring). */
  frameRoom: number;
}

/** An AF_PACKET TX ring (PACKET_TX_RING, PACKET_LOSS) on one interface. */
export class TxRing implements Disposable {
  #ptr: Deno.PointerObject | null;
  /** `struct mcr_tx_stats`, filled by every {@link stats} call (no allocation per read). */
  readonly #statsWords = new Uint32Array(TX_STATS.size / 4);
  /** Interface index. */
  readonly ifindex: number;

  /** Open the ring; throws McrError. */
  constructor(opts: TxOptions) {
    const b = new Uint8Array(TX_CONFIG.size);
    const dv = new DataView(b.buffer);
    const f = TX_CONFIG.field;
    dv.setUint32(f.ifindex, opts.ifindex, true);
    dv.setUint32(f.frameSize, opts.frameSize ?? 0, true);
    dv.setUint32(f.frameCount, opts.frameCount ?? 0, true);
    dv.setUint32(f.flags, opts.qdiscBypass ? TxFlag.QDISC_BYPASS : 0, true);
    this.#ptr = open("mcr_tx_open", (out, err, n) => lib().sym.mcr_tx_open(b, out, err, n));
    this.ifindex = opts.ifindex;
  }

  /** The C handle. Throws after close. */
  get pointer(): Deno.PointerObject {
    if (!this.#ptr) throw new Error("TxRing is closed");
    return this.#ptr;
  }

  /** Handle as an integer (for templates). */
  get handle(): bigint {
    return BigInt(Deno.UnsafePointer.value(this.pointer));
  }

  /**
   * Tell the ring what the link monitor saw (IFF_* flags, MTU; 0 keeps it).
   * Not up with carrier: the queue is discarded (counted as link down) and
   * frames are refused until it is.
   */
  setLink(flags: number, mtu = 0): void {
    if (this.#ptr) lib().sym.mcr_tx_set_link(this.#ptr, flags >>> 0, mtu >>> 0);
  }

  /** Kick and wait up to `timeoutMs` for queued frames to leave; returns how many are left. */
  drain(timeoutMs: number): number {
    if (!this.#ptr) return 0;
    return check("mcr_tx_drain", lib().sym.mcr_tx_drain(this.#ptr, timeoutMs));
  }

  /** Give up on what is still queued (counted as errors, or link down); returns how many. */
  discard(): number {
    return this.#ptr ? check("mcr_tx_discard", lib().sym.mcr_tx_discard(this.#ptr)) : 0;
  }

  /** Counters and state. */
  stats(): TxStats {
    const w = this.#statsWords;
    check("mcr_tx_stats", lib().sym.mcr_tx_stats(this.pointer, w));
    const f = TX_STATS.field;
    const u64 = (o: number) => u64At(w, o);
    const u32 = (o: number) => w[o >> 2];
    const i32 = (o: number) => w[o >> 2] | 0;
    return {
      frames: u64(f.frames),
      sent: u64(f.sent),
      kicks: u64(f.kicks),
      ringFull: u64(f.ringFull),
      tooBig: u64(f.tooBig),
      discarded: u64(f.discarded),
      kickErrors: u64(f.kickErrors),
      linkChanges: u64(f.linkChanges),
      mtuChanges: u64(f.mtuChanges),
      queued: u32(f.queued),
      mtu: u32(f.mtu),
      down: i32(f.down),
      lastErr: i32(f.lastErr),
      linkFlags: u32(f.linkFlags),
      stalledMs: u32(f.stalledMs),
      frameRoom: u32(f.frameRoom),
    };
  }

  /** Close (idempotent). What is still queued is counted; templates using it are cleared. */
  close(): void {
    if (!this.#ptr) return;
    lib().sym.mcr_tx_close(this.#ptr);
    this.#ptr = null;
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }
}

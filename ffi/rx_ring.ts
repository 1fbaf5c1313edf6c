/**
 * `RxRing`: an AF_PACKET RX ring on one interface (TPACKET_V2 with adaptive
 * coalescing, or V3), with zero-copy views of the ring mapping and of the
 * descriptor array created once.
 *
 * @module
 */
import {
  FanoutMode,
  OwnTxMode,
  readU64Fields,
  RX_CONFIG,
  RX_DESC,
  RX_STATS,
  RxFlag,
  words,
} from "./abi.ts";
import { Errno, McrError } from "./errors.ts";
import { check, errBuf, lib, open, view } from "./util.ts";

/** Name of a fanout mode. */
export type FanoutModeName = keyof typeof FanoutMode;

/**
 * How a frame in the ring starts: `ethernet` — an Ethernet II header (an
 * ethertype, maybe a VLAN tag); `ip` — the IPv4 packet itself, on a link
 * without a link-layer header (tun, WireGuard, ipip, PPP, ...).
 */
export type LinkLayout = "ethernet" | "ip";

/** RX ring options; every field but `ifindex` defaults to libmcr's choice. */
export interface RxOptions {
  /** Interface to capture on. */
  ifindex: number;
  /** TPACKET version: 2 (per-frame wake-up, default) or 3 (block-based). */
  tpacketVersion?: 2 | 3;
  /** V2 slot size in bytes (default from the MTU). */
  frameSize?: number;
  /** V2 slot count (default 4096). */
  frameCount?: number;
  /** V3 block size (default 64 KiB). */
  blockSize?: number;
  /** V3 block count (default 64). */
  blockCount?: number;
  /** V3 block retire timeout in ms (default 1). */
  blockTimeoutMs?: number;
  /** Fanout mode (default hash). */
  fanout?: FanoutModeName;
  /** Fanout group id (16 bits); ignored with `uniqueFanoutId`. */
  fanoutId?: number;
  /** Let the kernel choose a free fanout id. */
  uniqueFanoutId?: boolean;
  /** Disable the kernel IPv4/UDP BPF filter (own transmissions are still never captured). */
  noFilter?: boolean;
  /** Pass IPv6/UDP to the ring too (the interface has IPv6 rules); see {@link RxRing.setIpv6}. */
  ipv6?: boolean;
  /** How frames start (default `ethernet`): decides the BPF filter. */
  layout?: LinkLayout;
  /**
   * Promiscuous capture (PACKET_MR_PROMISC, held by the socket and released
   * with it): frames addressed to other hosts' MACs reach the ring.
   */
  promisc?: boolean;
  /** Max frames per poll (default 256). */
  batchMax?: number;
  /** Longest adaptive gather in µs (default 250; -1 = off). */
  coalesceUs?: number;
  /** Arrival rate above which gathering starts (default 20000 pps). */
  coalescePps?: number;
  /** Waker fd (`Waker.fd`), or -1. */
  wakeFd?: number;
}

/** Accumulated ring statistics (`struct mcr_rx_stats`). */
export interface RxStats {
  /** Frames the kernel handed to the ring, including drops. */
  packets: number;
  /** Frames lost because the ring was full. */
  drops: number;
  /** V3 queue freezes. */
  freezes: number;
  /** poll() syscalls. */
  polls: number;
  /** polls that returned frames. */
  wakeups: number;
  /** Frames returned to the caller. */
  frames: number;
  /** Non-empty batches. */
  batches: number;
  /** Adaptive gather sleeps. */
  gathers: number;
}

/** Effective ring geometry. */
export interface RxGeometry {
  /** TPACKET version in use. */
  version: number;
  /** Slot size. */
  frameSize: number;
  /** Slot count. */
  frameCount: number;
  /** Block size. */
  blockSize: number;
  /** Block count. */
  blockCount: number;
  /** Fanout group id (kernel-chosen with uniqueFanoutId). */
  fanoutId: number;
  /** How own transmissions are ignored. */
  ignoreOutgoing: keyof typeof OwnTxMode | "unknown";
}

/** Words per RX descriptor in `RxRing.desc` (struct mcr_rx_desc is 8 × u32). */
export const RX_DESC_WORDS: number = words(RX_DESC, 4);

/** Word index of each `struct mcr_rx_desc` field in `RxRing.desc`. */
export const RxDescWord = {
  offset: RX_DESC.field.offset / 4,
  snaplen: RX_DESC.field.snaplen / 4,
  len: RX_DESC.field.len / 4,
  status: RX_DESC.field.status / 4,
  vlanTci: RX_DESC.field.vlanTci / 4,
  vlanTpid: RX_DESC.field.vlanTpid / 4,
  pkttype: RX_DESC.field.pkttype / 4,
  /** Kernel receive time in µs modulo 2^32 (differences only: it wraps every 71.6 minutes). */
  tstampUs: RX_DESC.field.tstampUs / 4,
} as const;

/** The `struct mcr_rx_config` for `opts`. */
function encodeConfig(opts: RxOptions): Uint8Array {
  const b = new Uint8Array(RX_CONFIG.size);
  const dv = new DataView(b.buffer);
  const f = RX_CONFIG.field;
  const u32 = (o: number, v: number) => dv.setUint32(o, v >>> 0, true);
  u32(f.ifindex, opts.ifindex);
  u32(f.tpacketVersion, opts.tpacketVersion ?? 0);
  u32(f.frameSize, opts.frameSize ?? 0);
  u32(f.frameCount, opts.frameCount ?? 0);
  u32(f.blockSize, opts.blockSize ?? 0);
  u32(f.blockCount, opts.blockCount ?? 0);
  u32(f.blockTimeoutMs, opts.blockTimeoutMs ?? 0);
  u32(f.fanoutId, opts.fanoutId ?? 0);
  u32(f.fanoutMode, FanoutMode[opts.fanout ?? "hash"]);
  u32(
    f.flags,
    (opts.uniqueFanoutId ? RxFlag.FANOUT_UNIQUEID : 0) | (opts.noFilter ? RxFlag.NO_FILTER : 0) |
      (opts.layout === "ip" ? RxFlag.L3 : 0) |
      (opts.promisc ? RxFlag.PROMISC : 0) | (opts.ipv6 ? RxFlag.IPV6 : 0),
  );
  u32(f.batchMax, opts.batchMax ?? 0);
  // libmcr: 0 = default budget, UINT32_MAX = off
  u32(
    f.coalesceUs,
    opts.coalesceUs === undefined ? 0 : opts.coalesceUs < 0 ? 0xffffffff : opts.coalesceUs,
  );
  u32(f.coalescePps, opts.coalescePps ?? 0);
  dv.setInt32(f.wakeFd, opts.wakeFd ?? -1, true);
  return b;
}

const OWN_TX_NAMES = Object.fromEntries(
  Object.entries(OwnTxMode).map(([k, v]) => [v, k]),
) as Record<number, keyof typeof OwnTxMode>;

/**
 * An AF_PACKET RX ring on one interface. `ring` views the whole mapping and
 * `desc` the descriptor array ({@link RX_DESC_WORDS} words per frame at
 * {@link RxDescWord}); both are created once.
 */
export class RxRing implements Disposable {
  #ptr: Deno.PointerObject | null;
  readonly #poll: (p: Deno.PointerObject, t: number) => number;
  readonly #release: (p: Deno.PointerObject) => number;
  readonly #behind: (p: Deno.PointerObject) => number;
  /** `struct mcr_rx_stats`, filled by every {@link stats} call (no allocation per read). */
  readonly #statsWords = new Uint32Array(RX_STATS.size / 4);
  /** The ring mapping (zero-copy). */
  readonly ring: Uint8Array;
  /** Frame descriptors of the current batch (zero-copy). */
  readonly desc: Uint32Array;
  /** Max frames per poll. */
  readonly batchMax: number;
  /** Interface index. */
  readonly ifindex: number;
  /**
   * Times the kernel reported the interface down or gone (ENETDOWN on the
   * socket). The socket stays open: the kernel hooks it in again when the
   * link comes back up, so the ring keeps working after a flap.
   */
  linkDownEvents = 0;

  /** Open a ring; throws McrError with the C library's message on failure. */
  constructor(opts: RxOptions) {
    const l = lib();
    const cfg = encodeConfig(opts);
    const p = open("mcr_rx_open", (out, err, n) => l.sym.mcr_rx_open(cfg, out, err, n));
    this.#ptr = p;
    this.ifindex = opts.ifindex;
    this.batchMax = l.sym.mcr_rx_batch_max(p);
    this.ring = new Uint8Array(
      view(l.sym.mcr_rx_ring_base(p), Number(l.sym.mcr_rx_ring_size(p))),
    );
    this.desc = new Uint32Array(view(l.sym.mcr_rx_desc(p), this.batchMax * RX_DESC.size));
    this.#poll = l.sym.mcr_rx_poll;
    this.#release = l.sym.mcr_rx_release;
    this.#behind = l.sym.mcr_rx_behind;
  }

  /** The C handle (for `Forwarder.submit`). Throws after close. */
  get pointer(): Deno.PointerObject {
    if (!this.#ptr) throw new Error("RxRing is closed");
    return this.#ptr;
  }

  /**
   * Block up to `timeoutMs` for frames (call only from a Worker); returns the
   * number of frames whose descriptors are in `desc`, 0 on timeout, wake-up
   * or a link-down notice (counted in `linkDownEvents`).
   */
  poll(timeoutMs: number): number {
    const r = this.#poll(this.#ptr!, timeoutMs);
    if (r < 0) {
      if (r === -4) return 0; // EINTR
      if (r === -Errno.ENETDOWN) {
        this.linkDownEvents++;
        return 0;
      }
      throw new McrError("mcr_rx_poll", r, "");
    }
    return r;
  }

  /**
   * True when half the ring or more is waiting beyond the frames of the last
   * poll (V2: slots, V3: blocks). One load in libmcr, no syscall: asked after
   * a full batch, it tells a worker that it is falling behind.
   */
  behind(): boolean {
    return this.#ptr !== null && this.#behind(this.#ptr) !== 0;
  }

  /** Hand the frames of the last poll back to the kernel. */
  release(): void {
    if (this.#ptr) this.#release(this.#ptr);
  }

  /**
   * Pass IPv6/UDP to the ring too, or no longer (the interface gained its
   * first IPv6 rule, or lost its last): the kernel filter is rebuilt.
   */
  setIpv6(on: boolean): void {
    const [err, errlen] = errBuf();
    check("mcr_rx_set_ipv6", lib().sym.mcr_rx_set_ipv6(this.pointer, on ? 1 : 0, err, errlen), err);
  }

  /** Accumulated kernel and ring statistics. */
  stats(): RxStats {
    check("mcr_rx_stats", lib().sym.mcr_rx_stats(this.pointer, this.#statsWords));
    return readU64Fields(RX_STATS, this.#statsWords);
  }

  /** Effective geometry. */
  geometry(): RxGeometry {
    const g = new Uint32Array(7);
    check("mcr_rx_geometry", lib().sym.mcr_rx_geometry(this.pointer, g));
    return {
      version: g[0],
      frameSize: g[1],
      frameCount: g[2],
      blockSize: g[3],
      blockCount: g[4],
      fanoutId: g[5],
      ignoreOutgoing: OWN_TX_NAMES[g[6]] ?? "unknown",
    };
  }

  /** Close the ring (idempotent). Views become invalid. */
  close(): void {
    if (!this.#ptr) return;
    lib().sym.mcr_rx_close(this.#ptr);
    this.#ptr = null;
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }
}

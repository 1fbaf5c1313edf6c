/**
 * Typed wrappers over libmcr handles. Each wrapper owns its C handle, has an
 * idempotent `close()` and `[Symbol.dispose]`, and creates its zero-copy views
 * of C-owned memory (ring mapping, descriptor arrays, counters) exactly once.
 *
 * Addresses are unsigned 32-bit numbers in host order (as `src/net.ts` uses);
 * the wrappers convert to network byte order at the C boundary.
 *
 * @module
 */
import { loadMcr, type McrLibrary } from "./load.ts";
import { Errno, McrError } from "./errors.ts";

const ERRLEN = 256;
const enc = new TextEncoder();
const dec = new TextDecoder();

function cstr(s: string): Uint8Array {
  const b = new Uint8Array(enc.encode(s).length + 1);
  enc.encodeInto(s, b);
  return b;
}

function errText(buf: Uint8Array): string {
  const end = buf.indexOf(0);
  return dec.decode(buf.subarray(0, end < 0 ? buf.length : end));
}

/** Byte-swap a host-order IPv4 address to the value C sees as network order. */
export function hton32(a: number): number {
  return (((a & 0xff) << 24) | ((a >>> 8 & 0xff) << 16) | ((a >>> 16 & 0xff) << 8) |
    (a >>> 24)) >>> 0;
}

function lib(): McrLibrary {
  return loadMcr();
}

function ptrFromOut(out: BigUint64Array): Deno.PointerObject {
  const p = Deno.UnsafePointer.create(out[0]);
  if (p === null) throw new Error("libmcr returned a null handle");
  return p;
}

/** Live libmcr handles in this process (tests assert it returns to 0). */
export function liveObjects(): number {
  return Number(lib().sym.mcr_debug_live_objects());
}

/** Interface facts read with ioctl in the calling thread's network namespace. */
export interface IfaceInfo {
  /** Interface name. */
  name: string;
  /** Kernel interface index. */
  ifindex: number;
  /** MTU in bytes. */
  mtu: number;
  /** IFF_* flags. */
  flags: number;
  /** True when IFF_UP is set. */
  up: boolean;
  /** First IPv4 address (host order), 0 when none. */
  ipv4: number;
  /** Hardware address (6 bytes), or null for devices without one. */
  mac: Uint8Array | null;
}

function decodeIface(name: string, b: Uint8Array): IfaceInfo {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const flags = dv.getUint32(8, true);
  return {
    name,
    ifindex: dv.getUint32(0, true),
    mtu: dv.getUint32(4, true),
    flags,
    up: (flags & 1) !== 0,
    ipv4: dv.getUint32(12, false),
    mac: dv.getUint32(24, true) ? b.slice(16, 22) : null,
  };
}

/** Look an interface up by name; throws McrError (code `ENODEV`) when it does not exist. */
export function ifaceByName(name: string): IfaceInfo {
  const out = new Uint8Array(32);
  const err = new Uint8Array(ERRLEN);
  const r = lib().sym.mcr_iface_by_name(cstr(name), out, err, BigInt(ERRLEN));
  if (r < 0) throw new McrError("mcr_iface_by_name", r, errText(err));
  return decodeIface(name, out);
}

/** Look an interface up by index. */
export function ifaceByIndex(ifindex: number): IfaceInfo {
  const out = new Uint8Array(32);
  const name = new Uint8Array(32);
  const err = new Uint8Array(ERRLEN);
  const r = lib().sym.mcr_iface_by_index(ifindex, out, name, 32n, err, BigInt(ERRLEN));
  if (r < 0) throw new McrError("mcr_iface_by_index", r, errText(err));
  return decodeIface(errText(name), out);
}

/** Pin the calling thread (a worker) to one CPU. */
export function pinThread(cpu: number): void {
  const err = new Uint8Array(ERRLEN);
  const r = lib().sym.mcr_pin_thread(cpu, err, BigInt(ERRLEN));
  if (r < 0) throw new McrError("mcr_pin_thread", r, errText(err));
}

/** An eventfd that cuts a blocking `RxRing.poll` short; safe to wake from any thread. */
export class Waker implements Disposable {
  #ptr: Deno.PointerObject | null;
  /** The eventfd number, passed to rings as `wakeFd`. */
  readonly fd: number;

  constructor() {
    const out = new BigUint64Array(1);
    const err = new Uint8Array(ERRLEN);
    const r = lib().sym.mcr_waker_open(out, err, BigInt(ERRLEN));
    if (r < 0) throw new McrError("mcr_waker_open", r, errText(err));
    this.#ptr = ptrFromOut(out);
    this.fd = lib().sym.mcr_waker_fd(this.#ptr);
  }

  /** Wake pollers waiting on this waker. No-op after close. */
  wake(): void {
    if (this.#ptr) lib().sym.mcr_waker_wake(this.#ptr);
  }

  /** Close the eventfd (idempotent). Close rings using it first. */
  close(): void {
    if (!this.#ptr) return;
    lib().sym.mcr_waker_close(this.#ptr);
    this.#ptr = null;
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** PACKET_FANOUT modes. */
export const FanoutMode = {
  none: 0xffff,
  hash: 0,
  lb: 1,
  cpu: 2,
  rollover: 3,
  random: 4,
  qm: 5,
} as const;

/** Name of a fanout mode. */
export type FanoutModeName = keyof typeof FanoutMode;

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
  /** Test hook: use the BPF outgoing check instead of the fanout flag. */
  forceBpfOutgoing?: boolean;
  /** Max frames per poll (default 256). */
  batchMax?: number;
  /** Adaptive gather budget in µs (default 50; -1 = off). */
  coalesceUs?: number;
  /** Arrival rate above which gathering starts (default 20000 pps). */
  coalescePps?: number;
  /** Waker fd (`Waker.fd`), or -1. */
  wakeFd?: number;
}

/** Accumulated ring statistics. */
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
  ignoreOutgoing: "fanout_flag" | "bpf" | "sockopt" | "unknown";
}

/** Words per RX descriptor (struct mcr_rx_desc is 8 × u32). */
export const RX_DESC_WORDS = 8;

/**
 * An AF_PACKET RX ring on one interface. `ring` views the whole mapping and
 * `desc` the descriptor array (8 words per frame: offset, snaplen, len,
 * status, vlan_tci, vlan_tpid, pkttype, reserved); both are created once.
 */
export class RxRing implements Disposable {
  #ptr: Deno.PointerObject | null;
  readonly #poll: (p: Deno.PointerObject, t: number) => number;
  readonly #release: (p: Deno.PointerObject) => number;
  /** The ring mapping (zero-copy). */
  readonly ring: Uint8Array;
  /** Frame descriptors of the current batch (zero-copy). */
  readonly desc: Uint32Array;
  /** Max frames per poll. */
  readonly batchMax: number;
  /** Interface index. */
  readonly ifindex: number;

  /** Open a ring; throws McrError with the C library's message on failure. */
  constructor(opts: RxOptions) {
    const l = lib();
    const cfg = new Uint32Array(16);
    cfg[0] = opts.ifindex;
    cfg[1] = opts.tpacketVersion ?? 0;
    cfg[2] = opts.frameSize ?? 0;
    cfg[3] = opts.frameCount ?? 0;
    cfg[4] = opts.blockSize ?? 0;
    cfg[5] = opts.blockCount ?? 0;
    cfg[6] = opts.blockTimeoutMs ?? 0;
    cfg[7] = opts.fanoutId ?? 0;
    cfg[8] = FanoutMode[opts.fanout ?? "hash"];
    cfg[9] = (opts.uniqueFanoutId ? 1 : 0) | (opts.noFilter ? 2 : 0) |
      (opts.forceBpfOutgoing ? 4 : 0);
    cfg[10] = opts.batchMax ?? 0;
    cfg[11] = opts.coalesceUs === undefined
      ? 0
      : opts.coalesceUs < 0
      ? 0xffffffff
      : opts.coalesceUs;
    cfg[12] = opts.coalescePps ?? 0;
    new Int32Array(cfg.buffer)[13] = opts.wakeFd ?? -1;
    const out = new BigUint64Array(1);
    const err = new Uint8Array(ERRLEN);
    const r = l.sym.mcr_rx_open(cfg, out, err, BigInt(ERRLEN));
    if (r < 0) throw new McrError("mcr_rx_open", r, errText(err));
    const p = ptrFromOut(out);
    this.#ptr = p;
    this.ifindex = opts.ifindex;
    this.batchMax = l.sym.mcr_rx_batch_max(p);
    const base = l.sym.mcr_rx_ring_base(p)!;
    const size = Number(l.sym.mcr_rx_ring_size(p));
    this.ring = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(base, size));
    const d = l.sym.mcr_rx_desc(p)!;
    this.desc = new Uint32Array(
      Deno.UnsafePointerView.getArrayBuffer(d, this.batchMax * RX_DESC_WORDS * 4),
    );
    this.#poll = l.sym.mcr_rx_poll;
    this.#release = l.sym.mcr_rx_release;
  }

  /** The C handle (for `Forwarder.submit`). Throws after close. */
  get pointer(): Deno.PointerObject {
    if (!this.#ptr) throw new Error("RxRing is closed");
    return this.#ptr;
  }

  /**
   * Times the kernel reported the interface down or gone (ENETDOWN on the
   * socket). The socket stays open: the kernel hooks it in again when the
   * link comes back up, so the ring keeps working after a flap.
   */
  linkDownEvents = 0;

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

  /** Hand the frames of the last poll back to the kernel. */
  release(): void {
    if (this.#ptr) this.#release(this.#ptr);
  }

  /** Accumulated kernel and ring statistics. */
  stats(): RxStats {
    const b = new BigUint64Array(8);
    const r = lib().sym.mcr_rx_stats(this.pointer, b);
    if (r < 0) throw new McrError("mcr_rx_stats", r, "");
    return {
      packets: Number(b[0]),
      drops: Number(b[1]),
      freezes: Number(b[2]),
      polls: Number(b[3]),
      wakeups: Number(b[4]),
      frames: Number(b[5]),
      batches: Number(b[6]),
      gathers: Number(b[7]),
    };
  }

  /** Effective geometry. */
  geometry(): RxGeometry {
    const g = new Uint32Array(7);
    lib().sym.mcr_rx_geometry(this.pointer, g);
    return {
      version: g[0],
      frameSize: g[1],
      frameCount: g[2],
      blockSize: g[3],
      blockCount: g[4],
      fanoutId: g[5],
      ignoreOutgoing: (["unknown", "fanout_flag", "bpf", "sockopt"] as const)[g[6]] ?? "unknown",
    };
  }

  /** Limit the kernel filter to UDP to these destinations (host order); [] = all IPv4/UDP. */
  setFilter(dsts: readonly number[]): void {
    const a = new Uint32Array(Math.max(1, dsts.length));
    dsts.forEach((d, i) => a[i] = hton32(d));
    const err = new Uint8Array(ERRLEN);
    const r = lib().sym.mcr_rx_set_filter(this.pointer, a, dsts.length, err, BigInt(ERRLEN));
    if (r < 0) throw new McrError("mcr_rx_set_filter", r, errText(err));
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

/** Byte offsets of `struct mcr_tx_stats` (csrc/include/mcr.h). */
const TX_STATS = {
  frames: 0,
  sent: 8,
  kicks: 16,
  ringFull: 24,
  tooBig: 32,
  discarded: 40,
  kickErrors: 48,
  linkChanges: 56,
  mtuChanges: 64,
  queued: 72,
  mtu: 76,
  down: 80,
  lastErr: 84,
  linkFlags: 88,
  stalledMs: 92,
  frameRoom: 96,
  size: 104,
} as const;

/** Decode a `struct mcr_tx_stats`. */
function decodeTxStats(b: Uint8Array): TxStats {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u64 = (o: number) => Number(dv.getBigUint64(o, true));
  return {
    frames: u64(TX_STATS.frames),
    sent: u64(TX_STATS.sent),
    kicks: u64(TX_STATS.kicks),
    ringFull: u64(TX_STATS.ringFull),
    tooBig: u64(TX_STATS.tooBig),
    discarded: u64(TX_STATS.discarded),
    kickErrors: u64(TX_STATS.kickErrors),
    linkChanges: u64(TX_STATS.linkChanges),
    mtuChanges: u64(TX_STATS.mtuChanges),
    queued: dv.getUint32(TX_STATS.queued, true),
    mtu: dv.getUint32(TX_STATS.mtu, true),
    down: dv.getInt32(TX_STATS.down, true),
    lastErr: dv.getInt32(TX_STATS.lastErr, true),
    linkFlags: dv.getUint32(TX_STATS.linkFlags, true),
    stalledMs: dv.getUint32(TX_STATS.stalledMs, true),
    frameRoom: dv.getUint32(TX_STATS.frameRoom, true),
  };
}

/** An AF_PACKET TX ring (PACKET_TX_RING, PACKET_LOSS) on one interface. */
export class TxRing implements Disposable {
  #ptr: Deno.PointerObject | null;
  /** Interface index. */
  readonly ifindex: number;

  /** Open the ring; throws McrError. */
  constructor(opts: TxOptions) {
    const cfg = new Uint32Array(6);
    cfg[0] = opts.ifindex;
    cfg[1] = opts.frameSize ?? 0;
    cfg[2] = opts.frameCount ?? 0;
    cfg[3] = opts.qdiscBypass ? 1 : 0;
    const out = new BigUint64Array(1);
    const err = new Uint8Array(ERRLEN);
    const r = lib().sym.mcr_tx_open(cfg, out, err, BigInt(ERRLEN));
    if (r < 0) throw new McrError("mcr_tx_open", r, errText(err));
    this.#ptr = ptrFromOut(out);
    this.ifindex = opts.ifindex;
  }

  /** Handle as an integer (for templates). */
  get handle(): bigint {
    if (!this.#ptr) throw new Error("TxRing is closed");
    return BigInt(Deno.UnsafePointer.value(this.#ptr));
  }

  /** MTU the ring checks frames against (kept current by `setLink` and by the ring itself). */
  get mtu(): number {
    return lib().sym.mcr_tx_mtu(this.#ptr!);
  }

  /**
   * Tell the ring what the link monitor saw (IFF_* flags, MTU; 0 keeps it).
   * Not up and running: the queue is discarded (counted as link down) and
   * frames are refused until it is.
   */
  setLink(flags: number, mtu = 0): void {
    if (this.#ptr) lib().sym.mcr_tx_set_link(this.#ptr, flags >>> 0, mtu >>> 0);
  }

  /** Kick and wait up to `timeoutMs` for queued frames to leave; returns how many are left. */
  drain(timeoutMs: number): number {
    if (!this.#ptr) return 0;
    const r = lib().sym.mcr_tx_drain(this.#ptr, timeoutMs);
    if (r < 0) throw new McrError("mcr_tx_drain", r, "");
    return r;
  }

  /** Give up on what is still queued (counted as errors, or link down); returns how many. */
  discard(): number {
    return this.#ptr ? lib().sym.mcr_tx_discard(this.#ptr) : 0;
  }

  /** Counters and state. */
  stats(): TxStats {
    const b = new Uint8Array(TX_STATS.size);
    const r = lib().sym.mcr_tx_stats(this.pointer, b);
    if (r < 0) throw new McrError("mcr_tx_stats", r, "");
    return decodeTxStats(b);
  }

  /** The C handle. Throws after close. */
  get pointer(): Deno.PointerObject {
    if (!this.#ptr) throw new Error("TxRing is closed");
    return this.#ptr;
  }

  /** Close (idempotent). Clear templates that use it first. */
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

/** An output template: how one output's frames are built. */
export interface Template {
  /** "ring": built into a TX ring; "socket": sent through a UDP socket bound to the device. */
  kind: "ring" | "socket";
  /** Output interface index. */
  ifindex: number;
  /** Source address (host order). */
  srcIp: number;
  /** Destination group or unicast address (host order). */
  dstIp: number;
  /** Source port; 0 keeps the input datagram's (ring) or is ephemeral (socket). */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** TTL used when the descriptor carries none. */
  ttl: number;
  /** TOS byte (DSCP << 2). */
  tos: number;
  /** Destination MAC (ring kind). */
  dstMac?: Uint8Array;
  /** Source MAC (ring kind). */
  srcMac?: Uint8Array;
  /** TX ring (ring kind). */
  tx?: TxRing;
}

/** Words per forward descriptor (struct mcr_fwd_desc is 8 × u32). */
export const FWD_DESC_WORDS = 8;

/** Words per template in `Forwarder.counters` (struct mcr_out_counters is 8 × u64). */
export const OUT_COUNTER_WORDS = 8;

/** Word offsets of `struct mcr_out_counters` (datagrams, not frames). */
export const OutCounter = {
  /** Datagrams the kernel took. */
  packets: 0,
  /** UDP payload bytes of those. */
  bytes: 1,
  /** Dropped: TX ring full / socket would block. */
  ringFull: 2,
  /** Dropped: invalid descriptor, send error. */
  errors: 3,
  /** Dropped: output link down, without carrier, or gone. */
  linkDown: 4,
  /** Dropped: longer than the output MTU with DF set, or refused by the kernel as too long. */
  tooBig: 5,
  /** Of packets: sent as IPv4 fragments. */
  fragmented: 6,
  /** Gauge: in a TX ring, not yet taken by the kernel. */
  queued: 7,
} as const;

/**
 * Builds and sends output datagrams from forward descriptors. TS writes
 * descriptors into `desc` (8 words each: frame, l3_offset, payload_off,
 * payload_len, tmpl, ttl, flags, reserved) and calls `submit`.
 */
export class Forwarder implements Disposable {
  #ptr: Deno.PointerObject | null;
  readonly #submit: (f: Deno.PointerObject, r: Deno.PointerObject, n: number) => number;
  /** Forward descriptors (zero-copy, maxDesc entries). */
  readonly desc: Uint32Array;
  /** Per-template counters, {@link OUT_COUNTER_WORDS} per template at {@link OutCounter} (zero-copy). */
  readonly counters: BigUint64Array;
  /** Template capacity. */
  readonly maxTemplates: number;
  /** Descriptor capacity. */
  readonly maxDesc: number;

  /** @param maxTemplates template slots @param maxDesc descriptors per submit */
  constructor(maxTemplates: number, maxDesc: number) {
    const l = lib();
    const out = new BigUint64Array(1);
    const err = new Uint8Array(ERRLEN);
    const r = l.sym.mcr_fwd_open(maxTemplates, maxDesc, out, err, BigInt(ERRLEN));
    if (r < 0) throw new McrError("mcr_fwd_open", r, errText(err));
    const p = ptrFromOut(out);
    this.#ptr = p;
    this.maxTemplates = maxTemplates;
    this.maxDesc = maxDesc;
    this.desc = new Uint32Array(
      Deno.UnsafePointerView.getArrayBuffer(l.sym.mcr_fwd_desc(p)!, maxDesc * FWD_DESC_WORDS * 4),
    );
    this.counters = new BigUint64Array(
      Deno.UnsafePointerView.getArrayBuffer(
        l.sym.mcr_fwd_counters(p)!,
        maxTemplates * OUT_COUNTER_WORDS * 8,
      ),
    );
    this.#submit = l.sym.mcr_fwd_submit;
    this.#service = l.sym.mcr_fwd_service;
  }

  readonly #service: (f: Deno.PointerObject) => number;

  /** Install or replace template `idx`; `null` clears it. */
  setTemplate(idx: number, t: Template | null): void {
    const b = new Uint8Array(48);
    const dv = new DataView(b.buffer);
    if (t) {
      dv.setUint32(0, t.kind === "ring" ? 1 : 2, true);
      dv.setUint32(4, t.ifindex, true);
      dv.setUint32(8, t.srcIp >>> 0, false);
      dv.setUint32(12, t.dstIp >>> 0, false);
      dv.setUint16(16, t.srcPort, false);
      dv.setUint16(18, t.dstPort, false);
      dv.setUint8(20, t.ttl);
      dv.setUint8(21, t.tos);
      if (t.dstMac) b.set(t.dstMac.subarray(0, 6), 24);
      if (t.srcMac) b.set(t.srcMac.subarray(0, 6), 32);
      if (t.kind === "ring") {
        if (!t.tx) throw new Error("ring template needs a TxRing");
        dv.setBigUint64(40, t.tx.handle, true);
      }
    }
    const err = new Uint8Array(ERRLEN);
    const r = lib().sym.mcr_fwd_set_template(this.pointer, idx, b, err, BigInt(ERRLEN));
    if (r < 0) throw new McrError("mcr_fwd_set_template", r, errText(err));
  }

  /** The C handle. */
  get pointer(): Deno.PointerObject {
    if (!this.#ptr) throw new Error("Forwarder is closed");
    return this.#ptr;
  }

  /** Send `n` descriptors whose frames are in `rx`'s current batch; returns datagrams sent. */
  submit(rx: RxRing, n: number): number {
    const r = this.#submit(this.#ptr!, rx.pointer, n);
    if (r < 0) throw new McrError("mcr_fwd_submit", r, "");
    return r;
  }

  /** Descriptors refused because their template index was out of range or unused. */
  invalid(): number {
    return this.#ptr ? Number(lib().sym.mcr_fwd_invalid(this.#ptr)) : 0;
  }

  /**
   * Housekeeping between batches: retry kicks cut short, probe rings whose
   * link is down. Returns the frames still queued (poll sooner while > 0).
   */
  service(): number {
    const r = this.#service(this.pointer);
    if (r < 0) throw new McrError("mcr_fwd_service", r, "");
    return r;
  }

  /** Apply what the link monitor saw for an output interface to its rings and sockets. */
  setLink(ifindex: number, flags: number, mtu: number): void {
    lib().sym.mcr_fwd_set_link(this.pointer, ifindex >>> 0, flags >>> 0, mtu >>> 0);
  }

  /** Outcomes of frames whose template had been cleared meanwhile (charged to no output). */
  orphans(): number {
    return this.#ptr ? Number(lib().sym.mcr_fwd_orphans(this.#ptr)) : 0;
  }

  /** Close (idempotent). */
  close(): void {
    if (!this.#ptr) return;
    lib().sym.mcr_fwd_close(this.#ptr);
    this.#ptr = null;
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** What `LinkMonitor.wait` reports about one interface. */
export interface LinkEvent {
  /** new: appeared or changed; del: gone; resync: events were lost, dump again; done: a dump ended. */
  kind: "new" | "del" | "resync" | "done";
  /** Interface index. */
  ifindex: number;
  /** IFF_* flags (IFF_RUNNING: operationally up). */
  flags: number;
  /** MTU. */
  mtu: number;
  /** ARPHRD_* link type. */
  type: number;
  /** Interface name. */
  name: string;
}

/** Byte layout of `struct mcr_link_event`. */
const LINK_EVENT = { kind: 0, ifindex: 4, flags: 8, mtu: 12, type: 16, name: 24, size: 40 };
const LINK_KINDS = ["", "new", "del", "resync", "done"] as const;

/**
 * Link changes from rtnetlink, for the whole network namespace: interfaces
 * appearing, changing (flags, MTU, name) and going. `wait()` blocks on a
 * helper thread (a nonblocking FFI call) and resolves with the events.
 */
export class LinkMonitor {
  #ptr: Deno.PointerObject | null;
  readonly #events: Uint8Array;
  #waiting: Promise<number> | null = null;

  /** @param wakeFd a `Waker` fd that cuts a `wait()` short (-1: none) @param maxEvents per wait */
  constructor(wakeFd = -1, readonly maxEvents = 256) {
    const l = lib();
    const out = new BigUint64Array(1);
    const err = new Uint8Array(ERRLEN);
    const r = l.sym.mcr_linkmon_open(wakeFd, maxEvents, out, err, BigInt(ERRLEN));
    if (r < 0) throw new McrError("mcr_linkmon_open", r, errText(err));
    this.#ptr = ptrFromOut(out);
    this.#events = new Uint8Array(
      Deno.UnsafePointerView.getArrayBuffer(
        l.sym.mcr_linkmon_events(this.#ptr)!,
        maxEvents * LINK_EVENT.size,
      ),
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
    for (let i = 0; i < n; i++) {
      const o = i * LINK_EVENT.size;
      const nameBytes = this.#events.subarray(o + LINK_EVENT.name, o + LINK_EVENT.size);
      const end = nameBytes.indexOf(0);
      out.push({
        kind: LINK_KINDS[dv.getUint32(o + LINK_EVENT.kind, true)] || "resync",
        ifindex: dv.getUint32(o + LINK_EVENT.ifindex, true),
        flags: dv.getUint32(o + LINK_EVENT.flags, true),
        mtu: dv.getUint32(o + LINK_EVENT.mtu, true),
        type: dv.getUint32(o + LINK_EVENT.type, true),
        name: dec.decode(nameBytes.subarray(0, end < 0 ? nameBytes.length : end)),
      });
    }
    return out;
  }

  /** Close (idempotent); wake a pending `wait()` first and let it finish. */
  async close(): Promise<void> {
    if (this.#waiting) await this.#waiting.catch(() => {});
    if (!this.#ptr) return;
    lib().sym.mcr_linkmon_close(this.#ptr);
    this.#ptr = null;
  }
}

/**
 * One relay per input interface: held while the relay captures the
 * interface; a second process (in the same network namespace) cannot take
 * it and gets McrError `EADDRINUSE`.
 */
export class InputLock implements Disposable {
  #ptr: Deno.PointerObject | null;

  /** Take the lock of `ifindex`; throws McrError (EADDRINUSE when held elsewhere). */
  constructor(readonly ifindex: number) {
    const out = new BigUint64Array(1);
    const err = new Uint8Array(ERRLEN);
    const r = lib().sym.mcr_input_lock_take(ifindex, out, err, BigInt(ERRLEN));
    if (r < 0) throw new McrError("mcr_input_lock_take", r, errText(err));
    this.#ptr = ptrFromOut(out);
  }

  /** Release (idempotent). */
  close(): void {
    if (!this.#ptr) return;
    lib().sym.mcr_input_lock_release(this.#ptr);
    this.#ptr = null;
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** An IGMP membership (group, optional source) on an interface, held until closed. */
export class IgmpMembership implements Disposable {
  #ptr: Deno.PointerObject | null;
  /** Interface index. */
  readonly ifindex: number;
  /** Group (host order). */
  readonly group: number;
  /** Source (host order), 0 = any. */
  readonly source: number;

  /** Join; throws McrError. */
  constructor(ifindex: number, group: number, source = 0) {
    const out = new BigUint64Array(1);
    const err = new Uint8Array(ERRLEN);
    const r = lib().sym.mcr_igmp_join(
      ifindex,
      hton32(group),
      hton32(source),
      out,
      err,
      BigInt(ERRLEN),
    );
    if (r < 0) throw new McrError("mcr_igmp_join", r, errText(err));
    this.#ptr = ptrFromOut(out);
    this.ifindex = ifindex;
    this.group = group;
    this.source = source;
  }

  /** Leave the group (idempotent). */
  close(): void {
    if (!this.#ptr) return;
    lib().sym.mcr_igmp_close(this.#ptr);
    this.#ptr = null;
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Tell systemd about a state change (sd_notify(3)): "READY=1",
 * "RELOADING=1", "STOPPING=1", "STATUS=text" (several joined with "\n").
 * Returns true when sent, false when `$NOTIFY_SOCKET` is unset (not started
 * by systemd with `Type=notify`; libmcr is then not even loaded). Call it
 * from the main thread: systemd accepts messages from the main PID only.
 * @throws {McrError} when the socket exists but the message cannot be sent
 */
export function sdNotify(state: string): boolean {
  try {
    if (!Deno.env.get("NOTIFY_SOCKET")) return false;
  } catch {
    // no --allow-env: let libmcr read the environment itself
  }
  const err = new Uint8Array(ERRLEN);
  const r = lib().sym.mcr_sd_notify(cstr(state), err, BigInt(ERRLEN));
  if (r < 0) throw new McrError("mcr_sd_notify", r, errText(err));
  return r > 0;
}

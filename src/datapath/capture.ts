/**
 * Capture in the data path (`mcr ctl capture`): the frames a rule matches,
 * copied as received into a bounded ring per worker that the supervisor
 * drains (relay/capture.ts). Forwarding never waits for a capture and never
 * loses a datagram because of one: a frame that does not fit in the ring is
 * counted as a capture drop ({@link CapHdr.drops}), not a forwarding drop.
 *
 * A rule being captured carries a {@link CaptureTap} in its `RuleExt`
 * (rule_ext.ts), so a rule without options still pays only the one
 * `ext !== null` comparison of the hot loop (batch.ts); a rule with options
 * pays one more comparison (`ext.capture !== null`).
 *
 * The ring: one `SharedArrayBuffer`, a header of {@link CAP_HDR_BYTES}
 * (Int32 words, {@link CapHdr}), then a data area of a power-of-two size.
 * One writer (the worker's hot loop) and one reader (the supervisor): the
 * writer advances `CapHdr.write` after it wrote a record, the reader
 * `CapHdr.read` after it took records; both are free-running byte counts
 * modulo 2^32 (Atomics, so each side sees the other's bytes before the
 * count). A record is 4-byte aligned and never wraps: {@link REC_HDR_BYTES}
 * of u32 words ({@link Rec}), 0..3 bytes of padding, then the frame bytes
 * (at the offset modulo 4 they had in the RX ring); a record that would cross
 * the end of the data area leaves a wrap marker (a length of 0) and starts
 * at its beginning.
 *
 * The bytes are the frame from its link-layer header on, as the ring holds
 * it (an Ethernet header, or the IPv4 packet on a link without one), with
 * the VLAN tag the kernel stripped into the ring slot's header put back, as
 * libpcap does; the time is the kernel receive time (µs modulo 2^32, as
 * `RxDescWord.tstampUs`); the original length is the length on the wire.
 * No allocation per frame: the bytes are copied a 32-bit word at a time
 * through views made once (per capture, and per RX ring it copies from).
 *
 * @module
 */
import { RxDescWord } from "../../ffi/mod.ts";
import { ETH_P_8021Q, TP_STATUS_VLAN_VALID } from "./packet.ts";
import { extBase } from "./counters.ts";
import type { CompiledRule } from "./match.ts";
import { RuleExt } from "./rule_ext.ts";

/** Default size of a worker's capture ring's data area (bytes, a power of two). */
export const CAPTURE_RING_BYTES = 4 * 1024 * 1024;
/** Smallest data area a capture ring may have (bytes, a power of two). */
export const MIN_CAPTURE_RING_BYTES = 4096;
/** Largest data area a capture ring may have (bytes, a power of two). */
export const MAX_CAPTURE_RING_BYTES = 64 * 1024 * 1024;

/** Header words of a capture ring (Int32, see module doc). */
export const CapHdr = {
  /** Bytes written so far (free-running, modulo 2^32); advanced by the worker. */
  write: 0,
  /** Bytes taken so far (free-running, modulo 2^32); advanced by the supervisor. */
  read: 1,
  /** Frames written. */
  frames: 2,
  /** Frames matched while the ring had no room for them (capture drops, not forwarding drops). */
  drops: 3,
} as const;
/** Bytes of a capture ring's header (before the data area). */
export const CAP_HDR_BYTES = 64;

/** Words of a record's header (u32, see module doc). */
export const Rec = {
  /** Bytes of the record (header and frame, rounded up to 4); 0: wrap marker. */
  bytes: 0,
  /** Kernel receive time, µs modulo 2^32. */
  tstampUs: 1,
  /** Length of the frame on the wire (the VLAN tag put back included). */
  origLen: 2,
  /** Bytes of the frame in the record (the captured length). */
  capLen: 3,
  /**
   * Bytes (0..3) between the header and the frame: the frame starts at the
   * same offset modulo 4 as in the RX ring, so that most of it is copied a
   * 32-bit word at a time.
   */
  pad: 4,
} as const;
/** Bytes of a record's header. */
export const REC_HDR_BYTES = 20;

/** Length of an 802.1Q tag (TPID and TCI). */
const VLAN_TAG_LEN = 4;
/** Offset of the Ethertype in an Ethernet header: where a VLAN tag goes in. */
const ETH_TYPE = 12;
/** Length of the Ethernet header (a frame with one gets a stripped VLAN tag back). */
const ETH_HLEN = 14;

// Descriptor words as plain constants (batch.ts does the same).
const RX_OFFSET = RxDescWord.offset;
const RX_SNAPLEN = RxDescWord.snaplen;
const RX_LEN = RxDescWord.len;
const RX_STATUS = RxDescWord.status;
const RX_VLAN_TCI = RxDescWord.vlanTci;
const RX_VLAN_TPID = RxDescWord.vlanTpid;
const RX_TSTAMP = RxDescWord.tstampUs;

/** Round `n` up to a multiple of 4. */
function align4(n: number): number {
  return (n + 3) & ~3;
}

/**
 * A new capture ring with a data area of `bytes` (a power of two between
 * {@link MIN_CAPTURE_RING_BYTES} and {@link MAX_CAPTURE_RING_BYTES}).
 * @throws {RangeError} for another size
 */
export function newCaptureRing(bytes: number = CAPTURE_RING_BYTES): SharedArrayBuffer {
  if (
    !Number.isInteger(bytes) || bytes < MIN_CAPTURE_RING_BYTES ||
    bytes > MAX_CAPTURE_RING_BYTES || (bytes & (bytes - 1)) !== 0
  ) {
    throw new RangeError(
      `capture ring size must be a power of two from ${MIN_CAPTURE_RING_BYTES} to ` +
        `${MAX_CAPTURE_RING_BYTES} bytes (got ${bytes})`,
    );
  }
  return new SharedArrayBuffer(CAP_HDR_BYTES + bytes);
}

/** Views of a capture ring, made once per side. */
class RingViews {
  readonly hdr: Int32Array;
  readonly bytes: Uint8Array;
  readonly words: Uint32Array;
  /** Size of the data area. */
  readonly size: number;

  constructor(readonly sab: SharedArrayBuffer) {
    this.hdr = new Int32Array(sab, 0, CAP_HDR_BYTES / 4);
    this.size = sab.byteLength - CAP_HDR_BYTES;
    this.bytes = new Uint8Array(sab, CAP_HDR_BYTES, this.size);
    this.words = new Uint32Array(sab, CAP_HDR_BYTES, this.size / 4);
  }
}

/**
 * The writing side of a capture, in the worker: what the hot loop calls for
 * each frame its rule matched ({@link CaptureTap.take}).
 */
export class CaptureTap {
  readonly #v: RingViews;
  /** The RX ring memory last copied from, and its 32-bit words (made again only when it changes). */
  #rx: Uint8Array | null = null;
  #rxWords: Uint32Array | null = null;
  /** Frames it may still write (the capture's count): past it, frames are neither taken nor counted. */
  left: number;

  /**
   * @param id the capture's id (the supervisor's)
   * @param ring the capture ring ({@link newCaptureRing})
   * @param count most frames to write
   * @param input which of the rule's inputs is captured (every rule has one input today: 0)
   */
  constructor(
    readonly id: number,
    readonly ring: SharedArrayBuffer,
    count: number,
    readonly input: number,
  ) {
    this.#v = new RingViews(ring);
    this.left = count;
  }

  /**
   * Copy `n` bytes from `src` of the RX ring to `dst` of the data area
   * (`dst` ≡ `src` modulo 4): the bytes up to a word boundary, then 32-bit
   * words, then the bytes left. A byte loop costs about 1 ns a byte.
   */
  #copy(rx: Uint8Array, src: number, dst: number, n: number): void {
    const out = this.#v.bytes;
    let k = 0;
    for (; k < n && ((src + k) & 3) !== 0; k++) out[dst + k] = rx[src + k];
    const iw = this.#rxWords;
    if (iw !== null && ((dst + k) & 3) === 0) {
      const ow = this.#v.words;
      let i = (src + k) >> 2, j = (dst + k) >> 2;
      for (; k + 16 <= n; k += 16, i += 4, j += 4) {
        ow[j] = iw[i];
        ow[j + 1] = iw[i + 1];
        ow[j + 2] = iw[i + 2];
        ow[j + 3] = iw[i + 3];
      }
      for (; k + 4 <= n; k += 4) ow[j++] = iw[i++];
    }
    for (; k < n; k++) out[dst + k] = rx[src + k];
  }

  /**
   * Copy frame `b` (its first descriptor word) of `desc` from RX ring memory
   * `rx` into the capture ring, or count it as a capture drop when there is
   * no room. `linkHeader`: the input's link-layer header length (14:
   * Ethernet, where a VLAN tag the kernel stripped is put back).
   */
  take(rx: Uint8Array, desc: Uint32Array, b: number, linkHeader: number): void {
    if (this.left <= 0) return;
    const v = this.#v;
    const hdr = v.hdr;
    const src = desc[b + RX_OFFSET];
    const snap = desc[b + RX_SNAPLEN];
    const tag = linkHeader === ETH_HLEN && (desc[b + RX_STATUS] & TP_STATUS_VLAN_VALID) !== 0 &&
        snap >= ETH_TYPE
      ? VLAN_TAG_LEN
      : 0;
    const capLen = snap + tag;
    const pad = src & 3;
    const need = align4(REC_HDR_BYTES + pad + capLen);
    const size = v.size;
    const w = Atomics.load(hdr, CapHdr.write) >>> 0;
    const used = (w - (Atomics.load(hdr, CapHdr.read) >>> 0)) >>> 0;
    let off = w & (size - 1);
    const tail = size - off;
    const skip = need > tail ? tail : 0;
    if (used + skip + need > size) {
      hdr[CapHdr.drops]++;
      return;
    }
    const words = v.words;
    if (skip > 0) {
      words[off >> 2] = 0; // wrap marker
      off = 0;
    }
    const r = off >> 2;
    words[r + Rec.bytes] = need;
    words[r + Rec.tstampUs] = desc[b + RX_TSTAMP];
    words[r + Rec.origLen] = desc[b + RX_LEN] + tag;
    words[r + Rec.capLen] = capLen;
    words[r + Rec.pad] = pad;
    if (rx !== this.#rx) {
      this.#rx = rx;
      this.#rxWords = (rx.byteOffset & 3) === 0
        ? new Uint32Array(rx.buffer, rx.byteOffset, rx.byteLength >> 2)
        : null;
    }
    const out = v.bytes;
    let o = off + REC_HDR_BYTES + pad;
    if (tag === 0) {
      this.#copy(rx, src, o, snap);
    } else {
      this.#copy(rx, src, o, ETH_TYPE);
      o += ETH_TYPE;
      const tpid = desc[b + RX_VLAN_TPID] || ETH_P_8021Q;
      const tci = desc[b + RX_VLAN_TCI];
      out[o] = tpid >> 8;
      out[o + 1] = tpid & 0xff;
      out[o + 2] = tci >> 8;
      out[o + 3] = tci & 0xff;
      this.#copy(rx, src + ETH_TYPE, o + VLAN_TAG_LEN, snap - ETH_TYPE);
    }
    hdr[CapHdr.frames]++;
    this.left--;
    Atomics.store(hdr, CapHdr.write, (w + skip + need) | 0);
  }
}

/** One frame read from a capture ring. */
export interface CapturedFrame {
  /** Kernel receive time, µs modulo 2^32. */
  tstampUs: number;
  /** Length on the wire. */
  origLen: number;
  /** The captured bytes (a copy). */
  data: Uint8Array;
}

/** The reading side of a capture ring, in the supervisor. */
export class CaptureReader {
  readonly #v: RingViews;

  /** @param ring the capture ring the worker writes */
  constructor(readonly ring: SharedArrayBuffer) {
    this.#v = new RingViews(ring);
  }

  /** Frames written so far. */
  get frames(): number {
    return Atomics.load(this.#v.hdr, CapHdr.frames);
  }

  /** Frames the ring had no room for so far. */
  get drops(): number {
    return Atomics.load(this.#v.hdr, CapHdr.drops);
  }

  /** Take every record written so far (at most `max` frames), oldest first. */
  drain(max: number = Infinity): CapturedFrame[] {
    const v = this.#v;
    const hdr = v.hdr;
    const size = v.size;
    const w = Atomics.load(hdr, CapHdr.write) >>> 0;
    let r = Atomics.load(hdr, CapHdr.read) >>> 0;
    const out: CapturedFrame[] = [];
    while (r !== w && out.length < max) {
      const off = r & (size - 1);
      const rec = off >> 2;
      const bytes = v.words[rec + Rec.bytes];
      if (bytes === 0) {
        r = (r + size - off) >>> 0;
        continue;
      }
      const capLen = v.words[rec + Rec.capLen];
      const at = off + REC_HDR_BYTES + v.words[rec + Rec.pad];
      out.push({
        tstampUs: v.words[rec + Rec.tstampUs],
        origLen: v.words[rec + Rec.origLen],
        data: v.bytes.slice(at, at + capLen),
      });
      r = (r + bytes) >>> 0;
    }
    Atomics.store(hdr, CapHdr.read, r | 0);
    return out;
  }
}

/** 2^32 µs: the period of the kernel receive times the ring holds. */
const US_WRAP = 2 ** 32;

/**
 * The full time (µs since the epoch) of a receive time `t32` (µs modulo
 * 2^32) that lies at most 2^31 µs (about 36 minutes) before or after
 * `nowUs`: how the supervisor dates what it drains, within a second of the
 * frames' arrival.
 */
export function unwrapUs(t32: number, nowUs: number): number {
  const d = ((nowUs % US_WRAP) - t32 + US_WRAP) % US_WRAP;
  return d < US_WRAP / 2 ? nowUs - d : nowUs - d + US_WRAP;
}

/** A capture in a worker: its tap and the rule it is on. */
interface WorkerCapture {
  readonly tap: CaptureTap;
  /** Input slot of the rule's input interface. */
  readonly inputSlot: number;
  /** Rule slot. */
  readonly ruleSlot: number;
  /** Rule id: a rule of another id in the slot is another rule, not captured. */
  readonly ruleId: string;
}

/** What {@link WorkerCaptures} needs of the worker's rules: the compiled rule of a slot. */
export type RuleLookup = (inputSlot: number, ruleSlot: number) => CompiledRule | undefined;

/**
 * The captures a worker runs: taps put on the compiled rules (and put back
 * when a rule is compiled again by a change), taken off when the capture
 * stops. A rule that had no options gets a {@link RuleExt} for the time of
 * the capture only.
 */
export class WorkerCaptures {
  readonly #caps = new Map<number, WorkerCapture>();

  /** @param lookup the worker's compiled rules */
  constructor(readonly lookup: RuleLookup) {}

  /** Number of captures running. */
  get size(): number {
    return this.#caps.size;
  }

  /** Start (or, after a restart, resume) capture `c` on its rule. */
  start(
    c: {
      id: number;
      ring: SharedArrayBuffer;
      count: number;
      input: number;
      slot: number;
      rule: number;
      ruleId: string;
    },
  ): void {
    this.stop(c.id);
    const cap: WorkerCapture = {
      tap: new CaptureTap(c.id, c.ring, c.count, c.input),
      inputSlot: c.slot,
      ruleSlot: c.rule,
      ruleId: c.ruleId,
    };
    this.#caps.set(c.id, cap);
    this.#attach(cap);
  }

  /** Stop capture `id` (nothing when it does not run). */
  stop(id: number): void {
    const cap = this.#caps.get(id);
    if (!cap) return;
    this.#caps.delete(id);
    const rule = this.lookup(cap.inputSlot, cap.ruleSlot);
    const ext = rule?.ext;
    if (!rule || !ext || ext.capture !== cap.tap) return;
    ext.capture = null;
    if (ext.onlyCapture) rule.ext = null;
  }

  /** Rules of input `slot` changed (compiled again): put the taps back on them. */
  rulesChanged(slot: number): void {
    for (const cap of this.#caps.values()) if (cap.inputSlot === slot) this.#attach(cap);
  }

  #attach(cap: WorkerCapture): void {
    const rule = this.lookup(cap.inputSlot, cap.ruleSlot);
    if (!rule || rule.id !== cap.ruleId) return;
    if (rule.ext === null) {
      rule.ext = new RuleExt(extBase(rule.slot), null, null, null, null, null, true);
    }
    rule.ext.capture = cap.tap;
  }
}

/**
 * Redundant inputs in the data path: which copy of a datagram that arrives
 * on several paths is forwarded. A rule with `inputs` becomes one table rule
 * per path (src/relay/relay_config.ts); every path of the rule, in every
 * worker, shares one arbitration block — a `SharedArrayBuffer` the
 * supervisor creates per rule and keeps across reloads — and decides with
 * atomic operations on it, so the paths of a rule need not meet in one
 * worker: whichever worker (fanout member) receives a copy, exactly one
 * copy wins.
 *
 * - `merge` (SMPTE ST 2022-7 style): every path forwards; a copy whose
 *   identity was already forwarded is dropped (`merged_duplicate`).
 * - `failover`: only the active path forwards (the others' datagrams are
 *   dropped as `inactive_input`); when the active path has been silent for
 *   `failover_ms`, the next path to deliver takes over (by its own kernel
 *   receive time, so the switch happens with the first datagram after the
 *   silence); with `revertive`, an earlier path takes over again once it has
 *   delivered for `failover_ms` without a gap. The identity check runs too,
 *   so a switch never sends a datagram twice.
 *
 * Identity of a datagram:
 * - RTP version 2 from the stream's SSRC: the sequence number, extended to
 *   32 bits around the highest so far. One word per sequence number in a
 *   window of `window` (exchange: exact and lock-free). A copy more than
 *   `window` sequence numbers behind is too old to judge and dropped as
 *   `merge_late` (forwarding it could send it twice); when the stream makes
 *   no progress for twice `max_delay_ms` such a datagram restarts the
 *   numbering (the sender restarted).
 * - anything else: two independent 32-bit hashes of the UDP payload (64 bits:
 *   a false match between different payloads is 1 in 2^51 at the default
 *   window) in a set-associative table of `window` entries ({@link WAYS} per
 *   bucket, each bucket behind a spin lock held for a handful of
 *   instructions), remembered for `max_delay_ms` of kernel receive time:
 *   identical payloads further apart than that are different datagrams. The
 *   table must hold `max_delay_ms` of the stream: up to a fifth of `window`
 *   datagrams in that time keeps the chance that a copy's entry was evicted
 *   below 1 in 10^6 per datagram (docs/guide.md).
 *
 * No allocation per packet.
 *
 * @module
 */

/** Header words of an arbitration block. */
export const H = {
  /** RTP: highest extended sequence number forwarded (int32). */
  hi: 0,
  /** RTP: 1 once `hi` holds a sequence number. */
  hiSet: 1,
  /** RTP: kernel receive time (µs mod 2^32) when `hi` last grew. */
  hiUs: 2,
  /** RTP: the SSRC whose datagrams are identified by sequence number. */
  ssrc: 3,
  /** RTP: 1 once `ssrc` is set. */
  ssrcSet: 4,
  /** failover: index of the active input. */
  active: 5,
  /** failover: switches of the active input so far. */
  switches: 6,
  /** failover: kernel receive time of the rule's first datagram on any input (0: none yet). */
  first: 7,
  /** failover: per input (at {@link H.last} + k), its last kernel receive time (0: none yet). */
  last: 8,
  /** failover: per input (at {@link H.since} + k), when it started delivering without a gap. */
  since: 12,
  /** reorder_ms: the next extended RTP sequence number to send (reorder.ts). */
  next: 16,
  /** reorder_ms: 1 once `next` is set. */
  nextSet: 17,
} as const;
/** Header words (the RTP window follows). */
export const HEADER_WORDS = 24;
/** Ways per bucket of the payload-hash table. */
export const WAYS = 8;
/** Words per bucket: a lock, then per way the two hashes and the receive time. */
const BUCKET_WORDS = 32;
/** Words of an arbitration block for a window of `window` entries (a power of two). */
export function arbiterWords(window: number): number {
  return HEADER_WORDS + window + (window / WAYS) * BUCKET_WORDS;
}

/** A new, zeroed arbitration block for a window of `window` entries. */
export function newArbiterState(window: number): SharedArrayBuffer {
  return new SharedArrayBuffer(arbiterWords(window) * 4);
}

/** What the supervisor reads of an arbitration block (atomically, from the main thread). */
export function arbiterView(state: SharedArrayBuffer): { active: number; switches: number } {
  const s = new Int32Array(state, 0, HEADER_WORDS);
  return { active: Atomics.load(s, H.active), switches: Atomics.load(s, H.switches) };
}

/** Outcome of {@link Arbiter.admit}: forward it, or the drop reason. */
export const Verdict = {
  forward: 0,
  duplicate: 1,
  late: 2,
  inactive: 3,
} as const;

/** RTP fixed header length and version bits. */
const RTP_HLEN = 12;
const RTP_V2 = 0x80;
const RTP_VERSION_MASK = 0xc0;
/** Tag bit that makes a stored RTP sequence number never 0 (an unused word). */
const TAG_BIT = 0x80000000 | 0;
/** Sequence numbers are compared in 31 bits (a window is far smaller). */
const SEQ31 = 0x7fffffff;
/** An SSRC not seen for this long (µs) may be replaced by a new one. */
const SSRC_IDLE_US = 1_000_000;

/** The arbitration of one path of a redundant rule in one worker (see module doc). */
export class Arbiter {
  readonly #s: Int32Array;
  readonly #mask: number;
  readonly #buckets: number;
  readonly #bucketBase: number;
  #viewBuf: ArrayBufferLike | null = null;
  #view: DataView = new DataView(new ArrayBuffer(0));
  /** The last admitted datagram was identified by RTP sequence number ({@link lastSeq}). */
  lastRtp = false;
  /** Extended RTP sequence number of the last admitted datagram (when {@link lastRtp}). */
  lastSeq = 0;

  /**
   * @param state the rule's arbitration block (shared by all its paths and workers)
   * @param window entries of its window (a power of two)
   * @param input this path's index among the rule's inputs
   * @param failover true for `failover`, false for `merge`
   * @param maxDelayUs copies further apart than this (kernel receive time) are different datagrams
   * @param failoverUs silence of the active input before another takes over
   * @param revertive an earlier input takes over again once it delivers steadily
   */
  constructor(
    state: SharedArrayBuffer,
    readonly window: number,
    readonly input: number,
    readonly failover: boolean,
    readonly maxDelayUs: number,
    readonly failoverUs: number,
    readonly revertive: boolean,
  ) {
    this.#s = new Int32Array(state);
    this.#mask = window - 1;
    this.#buckets = window / WAYS;
    this.#bucketBase = HEADER_WORDS + window;
  }

  /**
   * Decide for one datagram of this path: payload at `off` (`len` bytes) in
   * `buf`, received at `tUs` (kernel time, µs mod 2^32). Returns a
   * {@link Verdict}.
   */
  admit(buf: Uint8Array, off: number, len: number, tUs: number): number {
    this.lastRtp = false;
    if (this.failover && !this.#isActive(tUs | 0)) return Verdict.inactive;
    const s = this.#s;
    if (len >= RTP_HLEN && (buf[off] & RTP_VERSION_MASK) === RTP_V2) {
      const ssrc = (buf[off + 8] << 24) | (buf[off + 9] << 16) | (buf[off + 10] << 8) |
        buf[off + 11];
      if (Atomics.load(s, H.ssrcSet) === 0 || this.#ssrcIdle(tUs | 0)) {
        Atomics.store(s, H.ssrc, ssrc);
        Atomics.store(s, H.ssrcSet, 1);
      }
      if (Atomics.load(s, H.ssrc) === ssrc) {
        return this.#rtp((buf[off + 2] << 8) | buf[off + 3], tUs | 0);
      }
    }
    return this.#hashed(buf, off, len, tUs | 0);
  }

  /** The shared block (for the reorder buffer, reorder.ts). */
  get state(): Int32Array {
    return this.#s;
  }

  /** Whether the stream's sequence numbers stopped advancing long enough ago to let a new SSRC in. */
  #ssrcIdle(t: number): boolean {
    return Atomics.load(this.#s, H.hiSet) === 1 &&
      Math.abs((t - Atomics.load(this.#s, H.hiUs)) | 0) > SSRC_IDLE_US;
  }

  /** Identity by RTP sequence number (see module doc). */
  #rtp(seq: number, t: number): number {
    const s = this.#s;
    let hi = Atomics.load(s, H.hi);
    if (Atomics.compareExchange(s, H.hiSet, 0, 1) === 0) {
      Atomics.store(s, H.hi, seq);
      Atomics.store(s, H.hiUs, t);
      hi = seq;
    }
    const d = ((seq - hi) << 16) >> 16; // signed 16-bit distance from the highest
    const ext = (hi + d) | 0;
    if (d <= -this.window) {
      // too old to judge, unless the stream stalled: then the sender restarted its numbering
      if (Math.abs((t - Atomics.load(s, H.hiUs)) | 0) <= 2 * this.maxDelayUs) return Verdict.late;
      Atomics.store(s, H.hi, ext);
      Atomics.store(s, H.hiUs, t);
    } else if (d > 0) {
      // raise the highest (another worker may raise it meanwhile: keep the larger)
      for (;;) {
        const cur = Atomics.load(s, H.hi);
        if (((ext - cur) | 0) <= 0) break;
        if (Atomics.compareExchange(s, H.hi, cur, ext) === cur) {
          Atomics.store(s, H.hiUs, t);
          break;
        }
      }
    }
    this.lastRtp = true;
    this.lastSeq = ext;
    const tag = (ext & SEQ31) | TAG_BIT;
    const prev = Atomics.exchange(s, HEADER_WORDS + (ext & this.#mask), tag);
    return prev === tag ? Verdict.duplicate : Verdict.forward;
  }

  /** A DataView of `buf`'s whole buffer (made once per buffer: a ring's lives as long as it). */
  #viewOf(buf: Uint8Array): DataView {
    if (buf.buffer !== this.#viewBuf) {
      this.#viewBuf = buf.buffer;
      this.#view = new DataView(buf.buffer);
    }
    return this.#view;
  }

  /** Identity by payload hash (see module doc). */
  #hashed(buf: Uint8Array, off: number, len: number, t: number): number {
    // two multiply-xorshift hashes over the payload in one pass, four bytes at a time (little
    // endian, wherever the payload starts: copies at other offsets hash alike), then the rest
    let h1 = 0x811c9dc5 | 0, h2 = len ^ 0x9747b28c;
    const dv = this.#viewOf(buf);
    const start = buf.byteOffset + off, words = len >> 2;
    for (let w = 0; w < words; w++) {
      const x = dv.getInt32(start + (w << 2), true);
      h1 = Math.imul(h1 ^ x, 0x01000193);
      h1 ^= h1 >>> 13;
      h2 = Math.imul(h2 ^ x, 0x5bd1e995);
      h2 ^= h2 >>> 15;
    }
    for (let i = off + (words << 2); i < off + len; i++) {
      h1 = Math.imul(h1 ^ buf[i], 0x01000193);
      h2 = Math.imul(h2 ^ buf[i], 0x5bd1e995);
    }
    h1 ^= h1 >>> 16;
    const s = this.#s;
    const b = this.#bucketBase + (Math.imul(h1, 0x9e3779b1) >>> 0) % this.#buckets * BUCKET_WORDS;
    // the lock covers a handful of loads and stores: only the two copies of one datagram,
    // arriving on two workers at the same moment, ever wait for each other
    while (Atomics.compareExchange(s, b, 0, 1) !== 0);
    let oldest = b + 1, oldestAge = -1;
    let verdict: number = Verdict.forward;
    for (let w = b + 1; w < b + 1 + WAYS * 3; w += 3) {
      const et = s[w + 2];
      const age = et === 0 ? 0x7fffffff : Math.abs((t - et) | 0);
      if (age <= this.maxDelayUs && s[w] === h1 && s[w + 1] === h2) {
        verdict = Verdict.duplicate;
        break;
      }
      if (age > oldestAge) {
        oldestAge = age;
        oldest = w;
      }
    }
    if (verdict === Verdict.forward) {
      s[oldest] = h1;
      s[oldest + 1] = h2;
      s[oldest + 2] = t === 0 ? 1 : t;
    }
    Atomics.store(s, b, 0);
    return verdict;
  }

  /** failover: note this path's datagram and say whether it is (or now becomes) the active one. */
  #isActive(t: number): boolean {
    const s = this.#s;
    const k = this.input;
    const prev = Atomics.load(s, H.last + k);
    if (prev === 0 || Math.abs((t - prev) | 0) > this.failoverUs) {
      Atomics.store(s, H.since + k, t === 0 ? 1 : t);
    }
    Atomics.store(s, H.last + k, t === 0 ? 1 : t);
    Atomics.compareExchange(s, H.first, 0, t === 0 ? 1 : t);
    const active = Atomics.load(s, H.active);
    if (active === k) return true;
    // an active input that never delivered is silent from the rule's first datagram on
    const la = Atomics.load(s, H.last + active) || Atomics.load(s, H.first);
    const silent = ((t - la) | 0) > this.failoverUs;
    const back = this.revertive && k < active &&
      ((t - Atomics.load(s, H.since + k)) | 0) >= this.failoverUs;
    if (!silent && !back) return false;
    if (Atomics.compareExchange(s, H.active, active, k) !== active) {
      return Atomics.load(s, H.active) === k; // another path switched first
    }
    Atomics.add(s, H.switches, 1);
    return true;
  }
}

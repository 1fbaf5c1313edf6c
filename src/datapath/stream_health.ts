/**
 * Payload analysis for a rule's `health` option, in the data path: RTP
 * (RFC 3550) sequence gaps, duplicates, reordering and interarrival jitter,
 * and MPEG-TS (188-byte packets, in RTP or straight in UDP) sync-byte errors
 * and continuity-counter errors per PID — the TR 101 290 priority-1 basics
 * (1.2 Sync_byte_error, 1.4 Continuity_count_error). Counts go into the
 * rule's extension words of the worker's counter block (counters.ts
 * {@link Ext}); the supervisor sums them over workers and decides alarms
 * (src/relay/stream_monitor.ts).
 *
 * The analysis follows one stream per rule (config semantics refuse it on a
 * range or an any-port input): a new SSRC restarts the RTP sequence analysis
 * (counted as a resync). It is exact only when every datagram of the stream
 * reaches the same worker: one worker, or the fanout `hash` (the default),
 * which keeps each flow on one member. Other fanout modes spread one stream
 * over workers, each of which sees gaps (docs/guide.md says so).
 *
 * Arrival times are the kernel's receive time of each frame (µs, from the
 * RX ring); the jitter resolution is therefore 1 µs. No allocation per
 * packet: the state is a few numbers, a reorder window and, for MPEG-TS, one
 * byte per PID (8 KiB per analysed rule and worker).
 *
 * @module
 */
import { Ext } from "./counters.ts";
import { DEFAULT_CLOCK_RATE } from "../config/limits.ts";

/** RTP fixed header length. */
const RTP_HLEN = 12;
/** RTP version 2 in the top bits of the first byte. */
const RTP_VERSION = 2;
/**
 * Sequence numbers remembered for duplicate and reorder detection (a power
 * of two). A datagram older than this is taken as a restart of the stream.
 */
export const REORDER_WINDOW = 1024;
/** A forward jump larger than this restarts the analysis (RFC 3550 A.1 MAX_DROPOUT). */
export const MAX_DROPOUT = 3000;
/** 16-bit sequence space. */
const SEQ_MOD = 0x10000;
/** MPEG-TS packet length and sync byte. */
export const TS_PACKET = 188;
/** The MPEG-TS sync byte. */
export const TS_SYNC = 0x47;
/** Number of PIDs (13 bits). */
const PID_COUNT = 8192;
/** The null packet PID (stuffing; its continuity counter is undefined). */
const NULL_PID = 0x1fff;
/** CC state bits: PID seen, one duplicate already allowed; low 4 bits: last CC. */
const CC_SEEN = 0x10;
const CC_DUP = 0x20;
/** Jitter gain (RFC 3550 6.4.1: J += (|D| - J) / 16). */
const JITTER_GAIN = 16;
/** Microseconds per second. */
const US_PER_S = 1_000_000;

/** RTP and MPEG-TS analysis state of one rule in one worker (see module doc). */
export class StreamAnalyser {
  // RTP
  #started = false;
  #ssrc = 0;
  /** Extended sequence number of the first datagram and of the highest so far. */
  #baseSeq = 0;
  #maxSeq = 0;
  /** 1 per sequence number of the window seen (index: extended seq mod window). */
  readonly #seen = new Uint8Array(REORDER_WINDOW);
  #lastArrUs = 0;
  #lastTs = 0;
  #haveTransit = false;
  /** Jitter in timestamp units. */
  #jitter = 0;
  /** RTP timestamp units per µs, and µs per unit. */
  readonly #unitsPerUs: number;
  readonly #usPerUnit: number;
  // MPEG-TS
  readonly #cc: Uint8Array | null;

  /**
   * @param base the rule's extension words in the counter block (counters.ts `extBase`)
   * @param rtp analyse RTP headers
   * @param ts analyse MPEG-TS packets (in the RTP payload when `rtp`)
   * @param clockRate RTP timestamp clock rate (Hz)
   */
  constructor(
    readonly base: number,
    readonly rtp: boolean,
    readonly ts: boolean,
    readonly clockRate: number = DEFAULT_CLOCK_RATE,
  ) {
    this.#cc = ts ? new Uint8Array(PID_COUNT) : null;
    this.#unitsPerUs = clockRate / US_PER_S;
    this.#usPerUnit = US_PER_S / clockRate;
  }

  /**
   * Analyse one datagram's UDP payload (`len` bytes at `off` in `buf`)
   * received at `tUs` (µs modulo 2^32); counts go to `c`.
   */
  analyse(c: Float64Array, buf: Uint8Array, off: number, len: number, tUs: number): void {
    if (this.rtp) {
      const h = this.#rtp(c, buf, off, len, tUs);
      if (h < 0) return;
      off += h;
      len -= h;
      if (len > 0 && (buf[off - h] & 0x20) !== 0) len -= buf[off + len - 1]; // padding
    }
    if (this.ts && len > 0) this.#ts(c, buf, off, len);
  }

  /** RTP header: sequence and jitter. Returns the header length, or -1 when not RTP. */
  #rtp(c: Float64Array, buf: Uint8Array, off: number, len: number, tUs: number): number {
    const b = this.base;
    const b0 = buf[off];
    let h = RTP_HLEN + 4 * (b0 & 0x0f);
    if (len >= h + 4 && (b0 & 0x10) !== 0) {
      h += 4 + 4 * ((buf[off + h + 2] << 8) | buf[off + h + 3]);
    }
    if (len < h || b0 >> 6 !== RTP_VERSION) {
      c[b + Ext.rtpInvalid]++;
      return -1;
    }
    c[b + Ext.rtpPackets]++;
    const seq = (buf[off + 2] << 8) | buf[off + 3];
    const ts =
      ((buf[off + 4] << 24) | (buf[off + 5] << 16) | (buf[off + 6] << 8) | buf[off + 7]) >>>
      0;
    const ssrc = ((buf[off + 8] << 24) | (buf[off + 9] << 16) | (buf[off + 10] << 8) |
      buf[off + 11]) >>> 0;
    if (!this.#started || ssrc !== this.#ssrc) {
      if (this.#started) c[b + Ext.rtpResyncs]++;
      this.#restart(seq, ssrc);
    } else {
      // signed distance from the highest sequence number, in the 16-bit space
      let d = (seq - (this.#maxSeq & 0xffff)) & 0xffff;
      if (d >= SEQ_MOD / 2) d -= SEQ_MOD;
      const mask = REORDER_WINDOW - 1;
      const seen = this.#seen;
      if (d > 0 && d <= MAX_DROPOUT) {
        if (d >= REORDER_WINDOW) seen.fill(0);
        else for (let k = 1; k < d; k++) seen[(this.#maxSeq + k) & mask] = 0;
        c[b + Ext.rtpLost] += d - 1;
        this.#maxSeq += d;
        seen[this.#maxSeq & mask] = 1;
      } else if (d === 0) {
        c[b + Ext.rtpDuplicates]++;
        return h;
      } else if (d < 0 && -d < REORDER_WINDOW) {
        const x = this.#maxSeq + d;
        if (x >= this.#baseSeq && seen[x & mask] !== 0) {
          c[b + Ext.rtpDuplicates]++;
          return h;
        }
        c[b + Ext.rtpReordered]++;
        if (x >= this.#baseSeq) {
          seen[x & mask] = 1;
          c[b + Ext.rtpLost]--;
        }
      } else {
        c[b + Ext.rtpResyncs]++;
        this.#restart(seq, ssrc);
      }
    }
    // RFC 3550 6.4.1 / A.8, with differences so that both clocks may wrap
    if (this.#haveTransit) {
      const dArr = ((tUs - this.#lastArrUs) | 0) * this.#unitsPerUs;
      const dTs = (ts - this.#lastTs) | 0;
      const d = dArr - dTs;
      this.#jitter += ((d < 0 ? -d : d) - this.#jitter) / JITTER_GAIN;
      c[b + Ext.rtpJitterUs] = this.#jitter * this.#usPerUnit;
    }
    this.#haveTransit = true;
    this.#lastArrUs = tUs | 0;
    this.#lastTs = ts;
    return h;
  }

  #restart(seq: number, ssrc: number): void {
    this.#started = true;
    this.#ssrc = ssrc;
    // extended sequence numbers start one cycle up, so that a late datagram is never negative
    this.#baseSeq = this.#maxSeq = SEQ_MOD + seq;
    this.#seen.fill(0);
    this.#seen[this.#maxSeq & (REORDER_WINDOW - 1)] = 1;
    this.#haveTransit = false;
  }

  /** MPEG-TS packets: sync bytes and continuity counters per PID. */
  #ts(c: Float64Array, buf: Uint8Array, off: number, len: number): void {
    const b = this.base;
    const cc = this.#cc!;
    const n = (len / TS_PACKET) | 0;
    if (n * TS_PACKET !== len) c[b + Ext.tsSyncErrors]++;
    c[b + Ext.tsPackets] += n;
    for (let i = 0; i < n; i++) {
      const p = off + i * TS_PACKET;
      if (buf[p] !== TS_SYNC) {
        c[b + Ext.tsSyncErrors]++;
        continue;
      }
      const pid = ((buf[p + 1] & 0x1f) << 8) | buf[p + 2];
      const afc = (buf[p + 3] >> 4) & 3;
      const cnt = buf[p + 3] & 0x0f;
      if (pid === NULL_PID || afc === 0) continue; // no continuity counter / reserved
      const st = cc[pid];
      // discontinuity_indicator in a non-empty adaptation field: the counter may jump
      if (
        (st & CC_SEEN) === 0 || ((afc & 2) !== 0 && buf[p + 4] > 0 && (buf[p + 5] & 0x80) !== 0)
      ) {
        cc[pid] = CC_SEEN | cnt;
        continue;
      }
      const last = st & 0x0f;
      if ((afc & 1) !== 0) {
        if (cnt === last) {
          // one duplicate packet is allowed (ISO/IEC 13818-1 2.4.3.3); a third copy is an error
          if ((st & CC_DUP) !== 0) c[b + Ext.tsCcErrors]++;
          cc[pid] = st | CC_DUP;
          continue;
        }
        if (cnt !== ((last + 1) & 0x0f)) c[b + Ext.tsCcErrors]++;
      } else if (cnt !== last) {
        c[b + Ext.tsCcErrors]++; // no payload: the counter must not move
      }
      cc[pid] = CC_SEEN | cnt;
    }
  }
}

/**
 * Policing (`rate_limit` on a rule or an output): a token bucket per limit,
 * in packets per second and/or bits per second of UDP payload, refilled from
 * the kernel's receive time of each frame (`RxDescWord.tstampUs`, µs modulo
 * 2^32), so a batch of frames that waited in the ring is judged by when the
 * frames arrived, not by when the worker got to them. A datagram that finds
 * too few tokens is dropped and counted as `policed` (batch.ts); it takes no
 * tokens.
 *
 * Each data-path worker has its own buckets: the limit holds per worker
 * serving the rule's input interface. With the default fanout `hash` one
 * stream (one source, group and port) stays on one worker, so its limit is
 * exact; N workers sharing several streams of one rule let through up to N
 * times the limit (documented in docs/guide.md). A shared bucket would cost
 * an atomic operation per packet.
 *
 * No allocation per packet: {@link Policer.admit} is arithmetic on numbers.
 *
 * @module
 */

/** A `rate_limit` as the worker needs it (config: rule and output `rate_limit`). */
export interface RateLimit {
  /** Packets per second (0: no packet limit). */
  pps: number;
  /** Bits per second of UDP payload (0: no bit limit). */
  bps: number;
  /** Bucket size in packets (with `pps`). */
  burstPackets: number;
  /** Bucket size in bytes (with `bps`); a datagram longer than it never passes. */
  burstBytes: number;
}

/** Microseconds per second. */
const US_PER_S = 1_000_000;
/** A timestamp difference at or above this (µs, as u32) is a frame older than the last: no refill. */
const BACKWARDS = 0x80000000;

/** One token bucket (see module doc). */
export class Policer {
  /** Packet tokens per µs (0: no packet limit). */
  readonly #ppus: number;
  /** Byte tokens per µs (0: no byte limit). */
  readonly #bpus: number;
  readonly #burstP: number;
  readonly #burstB: number;
  #tokensP: number;
  #tokensB: number;
  /** Receive time of the last frame judged (µs modulo 2^32, as an int32: a small integer). */
  #last = 0;
  #started = false;

  /** @param limit the limit (pps and bps of 0 mean "no such limit") */
  constructor(readonly limit: RateLimit) {
    this.#ppus = limit.pps / US_PER_S;
    this.#bpus = limit.bps / 8 / US_PER_S;
    this.#burstP = limit.burstPackets;
    this.#burstB = limit.burstBytes;
    this.#tokensP = this.#burstP;
    this.#tokensB = this.#burstB;
  }

  /**
   * Judge a datagram of `bytes` payload bytes received at `tUs` (µs modulo
   * 2^32): true = within the limit (its tokens are taken), false = drop it.
   */
  admit(tUs: number, bytes: number): boolean {
    if (this.#started) {
      const dt = (tUs - this.#last) >>> 0;
      if (dt < BACKWARDS) {
        this.#last = tUs | 0;
        if (this.#ppus > 0) {
          const p = this.#tokensP + dt * this.#ppus;
          this.#tokensP = p > this.#burstP ? this.#burstP : p;
        }
        if (this.#bpus > 0) {
          const b = this.#tokensB + dt * this.#bpus;
          this.#tokensB = b > this.#burstB ? this.#burstB : b;
        }
      }
    } else {
      this.#last = tUs | 0;
      this.#started = true;
    }
    if (this.#ppus > 0 && this.#tokensP < 1) return false;
    if (this.#bpus > 0 && this.#tokensB < bytes) return false;
    this.#tokensP -= 1;
    this.#tokensB -= bytes;
    return true;
  }
}

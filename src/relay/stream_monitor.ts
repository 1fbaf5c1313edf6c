/**
 * Stream health of the rules with a `health` option, decided on the main
 * thread from the workers' counter blocks: packets/s and bits/s over the
 * last second, the age of the last datagram, and an alarm —
 *
 * - `silent`: no datagram for `silence_ms` (since the rule started, when
 *   none came yet);
 * - `low_rate`: under `min_pps` over the last second;
 * - `ok` otherwise.
 *
 * The monitor looks every {@link TICK_MS} while any rule has `health` (no
 * timer otherwise). The last datagram's time is the kernel's receive time
 * the workers write for such a rule (counters.ts `Ext.lastRxUs`), so an
 * alarm is decided at most {@link TICK_MS} after it holds: a stream that
 * stops is `silent` within `silence_ms` + 50 ms. An alarm change is a relay
 * event (`type: "stream"`) and a log line; stats, `ctl list`, `top`, the
 * metrics and `/healthz` show the current one.
 *
 * Cost: per tick a few operations per rule with `health`; a rule table is
 * walked again only when its version changed.
 *
 * @module
 */
import { logger } from "../common/log.ts";
import { Ext, extBase, RULE_BASE, RULE_WORDS } from "../datapath/counters.ts";
import type { TableRule } from "../datapath/messages.ts";
import type { InputView, StatsSource } from "./stats.ts";
import { inputSums } from "./stats.ts";

/** How often the monitor looks (ms). */
export const TICK_MS = 50;
/** The rate window (ms). */
export const RATE_WINDOW_MS = 1000;
/** Samples kept per stream: more than one rate window of ticks. */
const SAMPLES = 32;
/** 2^32 µs: the period of the kernel receive times (counters.ts `Ext.lastRxUs`). */
const US_WRAP = 0x100000000;

/** A stream's alarm. */
export type StreamAlarm = "ok" | "silent" | "low_rate";
/** The alarms, in the order metrics list them. */
export const STREAM_ALARMS: readonly StreamAlarm[] = ["ok", "silent", "low_rate"];

/** What the monitor says about one stream now. */
export interface StreamView {
  /** The alarm. */
  alarm: StreamAlarm;
  /** Why it is not ok. */
  reason?: string;
  /** Datagrams per second over the last second (or since the rule started, if less). */
  pps: number;
  /** Bits per second of UDP payload, same window. */
  bps: number;
  /** Milliseconds since the last datagram; null when none came yet. */
  lastPacketAgeMs: number | null;
}

/** A stream alarm change, as the relay reports it (events.ts `RelayEvent`). */
export interface StreamEvent {
  /** Event type. */
  type: "stream";
  /** Rule name. */
  rule: string;
  /** Rule id. */
  id: string;
  /** The new alarm. */
  alarm: StreamAlarm;
  /** Why it is not ok. */
  reason?: string;
}

/** What the monitor follows of one rule. */
interface Watched {
  rule: TableRule;
  input: InputView;
  /** When the monitor began following it (ms since the epoch). */
  since: number;
  /** Packets at the last tick. */
  packets: number;
  /** Receive time of the last datagram (ms since the epoch); -1: none yet. */
  lastSeen: number;
  /** Samples: time, packets, bytes (ring of SAMPLES). */
  t: Float64Array;
  p: Float64Array;
  b: Float64Array;
  n: number;
  /** The alarm decided at the last look. */
  alarm: StreamAlarm;
  /** When that was (ms since the epoch). */
  at: number;
}

/** Follows the rules with `health` (see module doc). */
export class StreamMonitor {
  readonly #log = logger("supervisor");
  /** Rules followed, by id. */
  readonly #watched = new Map<string, Watched>();
  /** Table version last walked, per input interface. */
  readonly #versions = new Map<string, number>();
  #timer?: ReturnType<typeof setInterval>;
  #closed = false;

  /**
   * @param source what the relay's stats read (counter blocks, tables)
   * @param emit tells the relay's subscribers about an alarm change
   * @param now the clock (ms since the epoch; tests put a model here)
   * @param timer tick every {@link TICK_MS} by itself (tests call {@link tick})
   */
  constructor(
    readonly source: () => StatsSource,
    readonly emit: (ev: StreamEvent) => void,
    readonly now: () => number = Date.now,
    readonly timer = true,
  ) {}

  /** The rule tables may have changed: follow the rules with `health`, tick while there are any. */
  refresh(): void {
    if (this.#closed) return;
    const src = this.source();
    const seen = new Set<string>();
    const ids = new Set<string>();
    const now = this.now();
    for (const input of src.inputs) {
      seen.add(input.name);
      const table = input.table;
      // an input interface keeps its object while it has rules; one that is re-created has a
      // table of another version, walked again below
      if (this.#versions.get(input.name) === table.version) continue;
      this.#versions.set(input.name, table.version);
      for (const [id, w] of this.#watched) if (w.input.name === input.name) ids.add(id);
      for (const r of table.rules) {
        if (!r.health) continue;
        ids.delete(r.id);
        const w = this.#watched.get(r.id);
        if (w && w.rule.slot === r.slot) {
          w.rule = r;
          w.input = input;
        } else {
          this.#watched.set(r.id, this.#fresh(r, input, now));
        }
      }
    }
    for (const id of ids) this.#watched.delete(id);
    for (const [name] of this.#versions) {
      if (seen.has(name)) continue;
      this.#versions.delete(name);
      for (const [id, w] of this.#watched) if (w.input.name === name) this.#watched.delete(id);
    }
    if (!this.timer) return;
    if (this.#watched.size > 0 && this.#timer === undefined) {
      this.#timer = setInterval(() => this.tick(), TICK_MS);
    } else if (this.#watched.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #fresh(rule: TableRule, input: InputView, now: number): Watched {
    return {
      rule,
      input,
      since: now,
      packets: -1,
      lastSeen: -1,
      t: new Float64Array(SAMPLES),
      p: new Float64Array(SAMPLES),
      b: new Float64Array(SAMPLES),
      n: 0,
      alarm: "ok",
      at: now,
    };
  }

  /** Look at every followed stream once (the timer's work; tests call it with a model clock). */
  tick(): void {
    const src = this.source();
    const now = this.now();
    const nowUs = (now * 1000) % US_WRAP;
    const sums = new Map<InputView, ReturnType<typeof inputSums>>();
    for (const w of this.#watched.values()) {
      let s = sums.get(w.input);
      if (!s) sums.set(w.input, s = inputSums(w.input, src.retired));
      const { sum, blocks } = s;
      // a path of a redundant rule: what it received, forwarded first or not
      const eb = extBase(w.rule.slot);
      const rb = RULE_BASE + w.rule.slot * RULE_WORDS;
      const packets = w.rule.redundancy ? sum(eb + Ext.received) : sum(rb);
      const bytes = w.rule.redundancy ? sum(eb + Ext.receivedBytes) : sum(rb + 1);
      if (packets !== w.packets && packets > 0) {
        // the newest receive time any worker wrote (µs modulo 2^32, wall clock)
        let age = Infinity;
        const word = eb + Ext.lastRxUs;
        for (const c of blocks) {
          if (c[word] === 0) continue;
          const a = ((nowUs - c[word]) | 0) / 1000; // signed: a time just ahead of `now` is 0
          age = Math.min(age, a < 0 ? 0 : a);
        }
        w.lastSeen = age === Infinity ? now : now - age;
      }
      w.packets = packets;
      const k = w.n % SAMPLES;
      w.t[k] = now;
      w.p[k] = packets;
      w.b[k] = bytes;
      w.n++;
      this.#decide(w, now);
    }
  }

  /** Results of {@link #rate} (fields, not an object: a tick allocates nothing per rule). */
  #pps = 0;
  #bps = 0;
  #full = false;

  /** Packets/s and bits/s over the last second at `now`, and whether a full second is sampled. */
  #rate(w: Watched, now: number): void {
    // the oldest sample still within the window (or the oldest kept)
    const kept = Math.min(w.n, SAMPLES);
    let j = (w.n - kept) % SAMPLES;
    for (let i = 0; i < kept - 1; i++) {
      const next = (j + 1) % SAMPLES;
      if (now - w.t[next] < RATE_WINDOW_MS) break;
      j = next;
    }
    const newest = (w.n - 1) % SAMPLES;
    const dt = (w.t[newest] - w.t[j]) / 1000;
    this.#pps = dt > 0 ? (w.p[newest] - w.p[j]) / dt : 0;
    this.#bps = dt > 0 ? (8 * (w.b[newest] - w.b[j])) / dt : 0;
    this.#full = now - w.t[j] >= RATE_WINDOW_MS;
  }

  /** The alarm of `w` at `now` (numbers only: a tick allocates nothing per rule). */
  #alarm(w: Watched, now: number): StreamAlarm {
    const h = w.rule.health!;
    const quiet = now - (w.lastSeen >= 0 ? w.lastSeen : w.since);
    if (quiet >= h.silenceMs) return "silent";
    if (h.minPps > 0) {
      this.#rate(w, now);
      if (this.#full && this.#pps < h.minPps) return "low_rate";
    }
    return "ok";
  }

  #decide(w: Watched, now: number): void {
    w.at = now;
    const alarm = this.#alarm(w, now);
    if (alarm === w.alarm) return;
    w.alarm = alarm;
    const r = w.rule;
    const reason = this.#view(w).reason;
    if (alarm === "ok") this.#log.info("stream {rule}: ok again", { rule: r.name });
    else this.#log.warn("stream {rule}: {alarm}: {reason}", { rule: r.name, alarm, reason });
    this.emit({ type: "stream", rule: r.name, id: r.id, alarm, ...(reason ? { reason } : {}) });
  }

  /** The view of `w` as of its last look. */
  #view(w: Watched): StreamView {
    const now = w.at;
    const h = w.rule.health!;
    this.#rate(w, now);
    const pps = this.#pps, bps = this.#bps;
    const age = w.lastSeen >= 0 ? Math.max(0, now - w.lastSeen) : null;
    let reason: string | undefined;
    if (w.alarm === "silent") {
      reason = age === null
        ? `no datagram since the rule started (${fmtS(now - w.since)} s; silence_ms ${h.silenceMs})`
        : `no datagram for ${fmtS(age)} s (silence_ms ${h.silenceMs})`;
    } else if (w.alarm === "low_rate") {
      reason = `${Math.round(pps)} datagrams/s over the last second, under min_pps ${h.minPps}`;
    }
    return {
      alarm: w.alarm,
      ...(reason ? { reason } : {}),
      pps,
      bps,
      lastPacketAgeMs: age === null ? null : Math.round(age),
    };
  }

  /** What the monitor says about rule `id` as of its last look (undefined: no `health`). */
  view(id: string): StreamView | undefined {
    const w = this.#watched.get(id);
    return w && w.n > 0 ? this.#view(w) : undefined;
  }

  /** Stop looking. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** Seconds with one decimal. */
function fmtS(ms: number): string {
  return (ms / 1000).toFixed(1);
}

/**
 * Rates (packets and bits per second) from counter deltas: a sampler keeps
 * the counters of the last two snapshots of `Relay.stats()` (compact: one
 * typed array per rule) taken every `intervalMs` and derives per-rule,
 * per-output and per-interface rates from them. Reading counters never
 * touches the data path. A snapshot of a very large relay costs real time
 * (hundreds of milliseconds at 262,144 outputs): while no client asks for
 * rates, the sampler spaces its snapshots so that they cost at most about
 * 1 % of a core; `window_s` always says what window the rates cover.
 *
 * @module
 */
import type { RelayStats } from "../relay/stats.ts";

/** Packets and bits per second. */
export interface Rate {
  /** Packets (datagrams or frames) per second. */
  pps: number;
  /** Bits per second (payload bits for rules/outputs, wire bits for interfaces). */
  bps: number;
}

/** Rates of one interface, including kernel ring drops per second. */
export interface InterfaceRate extends Rate {
  /** Kernel ring drops per second. */
  kernel_drops_ps: number;
}

/** Rates between the last two samples. */
export interface Rates {
  /** Length of the window in seconds (0 before the second sample). */
  window_s: number;
  /** By rule id. */
  rules: Map<string, Rate>;
  /** By rule id: one rate per output, in the order the stats list them. */
  outputs: Map<string, Rate[]>;
  /** By interface name. */
  interfaces: Map<string, InterfaceRate>;
  /** Drops per second by reason. */
  drops: Record<string, number>;
}

/** One rule's counters in a sample: [packets, bytes, then packets and bytes of each output]. */
interface RuleSample {
  /** Hash of the outputs' identities (a changed output list does not compare). */
  sig: number;
  v: Float64Array;
}

/** Counters at one instant, compact: one typed array per rule (no object per output). */
interface Sample {
  t: number;
  rules: Map<string, RuleSample>;
  ifs: Map<string, Float64Array>;
  drops: Record<string, number>;
}

/** FNV-1a step over a string. */
function hashStr(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h;
}

function compact(s: RelayStats, t: number): Sample {
  const rules = new Map<string, RuleSample>();
  for (const r of s.rules) {
    const v = new Float64Array(2 + 2 * r.outputs.length);
    v[0] = r.packets;
    v[1] = r.bytes;
    let sig = 2166136261;
    for (let k = 0; k < r.outputs.length; k++) {
      const o = r.outputs[k];
      v[2 + 2 * k] = o.packets;
      v[3 + 2 * k] = o.bytes;
      sig = Math.imul(hashStr(hashStr(sig, o.interface), o.group) ^ o.port, 16777619);
    }
    rules.set(r.id, { sig, v });
  }
  const ifs = new Map<string, Float64Array>();
  for (const i of s.interfaces) ifs.set(i.name, Float64Array.of(i.frames, i.bytes, i.kernel_drops));
  return { t, rules, ifs, drops: { ...s.drops } };
}

/** While rates were asked for within this time (ms), sampling keeps its period. */
const DEMAND_MS = 60_000;
/** Otherwise sampling waits this many times the length of the last sample. */
const IDLE_COST_SHARE = 100;

/** Rate of a counter going from `a` to `b` over `dt` seconds (a restart resets to 0). */
const per = (a: number | undefined, b: number, dt: number) =>
  a === undefined || dt <= 0 || b < a ? 0 : (b - a) / dt;

/** Samples `stats()` periodically and computes rates (see module doc). */
export class RateTracker implements Disposable {
  #prev?: Sample;
  #last?: Sample;
  #timer?: ReturnType<typeof setInterval>;
  #rates?: Rates;
  /** How long the last sample took (ms). */
  #cost = 0;
  /** When rates were last asked for (performance.now()). */
  #wantedAt = -Infinity;

  /** Where counters come from. */
  readonly stats: () => RelayStats;
  /** Sampling period in milliseconds. */
  readonly intervalMs: number;

  /**
   * Create a sampler (call `start()`).
   * @param stats where counters come from
   * @param intervalMs sampling period
   */
  constructor(stats: () => RelayStats, intervalMs = 1000) {
    this.stats = stats;
    this.intervalMs = intervalMs;
  }

  /** Take a first sample and start sampling. */
  start(): void {
    this.sample();
    this.#timer ??= setInterval(() => this.#tick(), this.intervalMs);
    Deno.unrefTimer(this.#timer);
  }

  /** Take a sample now. */
  sample(): void {
    const t0 = performance.now();
    const stats = this.stats();
    this.#prev = this.#last;
    this.#last = compact(stats, performance.now());
    this.#rates = undefined;
    this.#cost = performance.now() - t0;
  }

  /**
   * Sampling while nobody asks for rates costs at most 1/{@link IDLE_COST_SHARE}
   * of a core: a relay with hundreds of thousands of outputs samples less
   * often until a client asks again.
   */
  #tick(): void {
    const now = performance.now();
    const wanted = now - this.#wantedAt < DEMAND_MS;
    const due = this.#last === undefined ||
      now - this.#last.t >= Math.max(this.intervalMs, IDLE_COST_SHARE * this.#cost) - 1;
    if (wanted || due) this.sample();
  }

  /** Rates between the last two samples (zeros before the second sample). */
  rates(): Rates {
    this.#wantedAt = performance.now();
    if (this.#rates) return this.#rates;
    const r: Rates = {
      window_s: 0,
      rules: new Map(),
      outputs: new Map(),
      interfaces: new Map(),
      drops: {},
    };
    const a = this.#prev, b = this.#last;
    if (!a || !b) return r;
    const dt = (b.t - a.t) / 1000;
    r.window_s = Math.round(dt * 1000) / 1000;
    for (const [id, cur] of b.rules) {
      const old = a.rules.get(id);
      const v = cur.v, o = old?.v;
      r.rules.set(id, { pps: per(o?.[0], v[0], dt), bps: 8 * per(o?.[1], v[1], dt) });
      const same = old !== undefined && old.sig === cur.sig && o!.length === v.length;
      const outs: Rate[] = [];
      for (let i = 2; i < v.length; i += 2) {
        outs.push({
          pps: same ? per(o![i], v[i], dt) : 0,
          bps: same ? 8 * per(o![i + 1], v[i + 1], dt) : 0,
        });
      }
      r.outputs.set(id, outs);
    }
    for (const [k, v] of b.ifs) {
      const o = a.ifs.get(k);
      r.interfaces.set(k, {
        pps: per(o?.[0], v[0], dt),
        bps: 8 * per(o?.[1], v[1], dt),
        kernel_drops_ps: per(o?.[2], v[2], dt),
      });
    }
    for (const [k, v] of Object.entries(b.drops)) r.drops[k] = per(a.drops[k], v, dt);
    return this.#rates = r;
  }

  /** Stop sampling. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Same as stop(). */
  [Symbol.dispose](): void {
    this.stop();
  }
}

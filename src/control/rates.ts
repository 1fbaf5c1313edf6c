/**
 * Rates (packets and bits per second) from counter deltas: a sampler keeps
 * the last two snapshots of `Relay.stats()` taken every `intervalMs` and
 * derives per-rule, per-output and per-interface rates from them. Reading
 * counters is a handful of loads from shared memory: it never touches the
 * data path.
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
  /** By `${ruleId}|${interface}|${group}|${port}`. */
  outputs: Map<string, Rate>;
  /** By interface name. */
  interfaces: Map<string, InterfaceRate>;
  /** Drops per second by reason. */
  drops: Record<string, number>;
}

/** Key of an output in {@link Rates.outputs} (rule id and the output as the stats show it). */
export function outputRateKey(
  ruleId: string,
  o: { interface: string; group: string; port: number },
): string {
  return `${ruleId}|${o.interface}|${o.group}|${o.port}`;
}

interface Sample {
  t: number;
  s: RelayStats;
}

function flatten(s: RelayStats) {
  const rules = new Map<string, { p: number; b: number }>();
  const outputs = new Map<string, { p: number; b: number }>();
  const ifs = new Map<string, { p: number; b: number; d: number }>();
  for (const r of s.rules) {
    rules.set(r.id, { p: r.packets, b: r.bytes });
    for (const o of r.outputs) outputs.set(outputRateKey(r.id, o), { p: o.packets, b: o.bytes });
  }
  for (const i of s.interfaces) ifs.set(i.name, { p: i.frames, b: i.bytes, d: i.kernel_drops });
  return { rules, outputs, ifs, drops: s.drops };
}

/** Rate of a counter going from `a` to `b` over `dt` seconds (a restart resets to 0). */
const per = (a: number | undefined, b: number, dt: number) =>
  a === undefined || dt <= 0 || b < a ? 0 : (b - a) / dt;

/** Samples `stats()` periodically and computes rates (see module doc). */
export class RateTracker implements Disposable {
  #prev?: Sample;
  #last?: Sample;
  #timer?: ReturnType<typeof setInterval>;
  #rates?: Rates;

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
    this.#timer ??= setInterval(() => this.sample(), this.intervalMs);
    Deno.unrefTimer(this.#timer);
  }

  /** Take a sample now. */
  sample(): void {
    this.#prev = this.#last;
    this.#last = { t: performance.now(), s: this.stats() };
    this.#rates = undefined;
  }

  /** Rates between the last two samples (zeros before the second sample). */
  rates(): Rates {
    if (this.#rates) return this.#rates;
    const r: Rates = {
      window_s: 0,
      rules: new Map(),
      outputs: new Map(),
      interfaces: new Map(),
      drops: {},
    };
    if (!this.#prev || !this.#last) return r;
    const dt = (this.#last.t - this.#prev.t) / 1000;
    const a = flatten(this.#prev.s);
    const b = flatten(this.#last.s);
    r.window_s = Math.round(dt * 1000) / 1000;
    for (const [k, v] of b.rules) {
      const o = a.rules.get(k);
      r.rules.set(k, { pps: per(o?.p, v.p, dt), bps: 8 * per(o?.b, v.b, dt) });
    }
    for (const [k, v] of b.outputs) {
      const o = a.outputs.get(k);
      r.outputs.set(k, { pps: per(o?.p, v.p, dt), bps: 8 * per(o?.b, v.b, dt) });
    }
    for (const [k, v] of b.ifs) {
      const o = a.ifs.get(k);
      r.interfaces.set(k, {
        pps: per(o?.p, v.p, dt),
        bps: 8 * per(o?.b, v.b, dt),
        kernel_drops_ps: per(o?.d, v.d, dt),
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

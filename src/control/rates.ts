/**
 * Rates (packets and bits per second) from counter deltas: a sampler keeps
 * the last two snapshots of `Relay.stats()` taken every `intervalMs` and
 * derives per-rule, per-output and per-interface rates from them. Reading
 * counters never touches the data path, but a snapshot of a very large relay
 * costs real time (hundreds of milliseconds at 262,144 outputs): while no
 * client asks for rates, the sampler spaces its snapshots so that they cost
 * at most about 1 % of a core; `window_s` always says what window the rates
 * cover.
 *
 * @module
 */
import type { RelayStats, RuleStats } from "../relay/stats.ts";

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

/** Rate of one output of a rule, with what identifies the output. */
export interface OutputRate extends Rate {
  /** Output interface. */
  interface: string;
  /** Destination group or address. */
  group: string;
  /** Destination port. */
  port: number;
}

/** Rates between the last two samples. */
export interface Rates {
  /** Length of the window in seconds (0 before the second sample). */
  window_s: number;
  /** By rule id. */
  rules: Map<string, Rate>;
  /**
   * By rule id: the rule's outputs in its order. Kept per rule rather than
   * by a string key per output: at 65,536 rules with 4 outputs, building and
   * hashing a key per output cost seconds per request (bench/ctl_scale.ts).
   */
  outputs: Map<string, OutputRate[]>;
  /** By interface name. */
  interfaces: Map<string, InterfaceRate>;
  /** Drops per second by reason. */
  drops: Record<string, number>;
}

/** Rates over no window (zeros): before the second sample, or for a rule just added. */
export function noRates(): Rates {
  return { window_s: 0, rules: new Map(), outputs: new Map(), interfaces: new Map(), drops: {} };
}

/** What identifies an output of a rule. */
type OutputKey = { interface: string; group: string; port: number };

/**
 * The entry of `list` for output `o`, expected at `index` (the outputs of a
 * rule keep their order), else searched for (a reload may have changed them).
 */
function findOutput<T extends OutputKey>(
  list: readonly T[] | undefined,
  o: OutputKey,
  index: number,
): T | undefined {
  if (!list) return undefined;
  const same = (x: T) => x.port === o.port && x.interface === o.interface && x.group === o.group;
  const at = list[index];
  return at && same(at) ? at : list.find(same);
}

/** Rate of output `o` (the `index`-th) of rule `ruleId`, if the rates know it. */
export function outputRate(
  rates: Rates,
  ruleId: string,
  o: OutputKey,
  index: number,
): Rate | undefined {
  return findOutput(rates.outputs.get(ruleId), o, index);
}

interface Sample {
  t: number;
  s: RelayStats;
}

/** The rules of a snapshot by id. */
const byId = (s: RelayStats) => new Map<string, RuleStats>(s.rules.map((r) => [r.id, r]));

/** While rates were asked for within this time (ms), sampling keeps its period. */
const DEMAND_MS = 60_000;
/** Otherwise sampling waits at least this many times the length of the last sample. */
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
    const s = this.stats();
    this.#prev = this.#last;
    this.#last = { t: performance.now(), s };
    this.#rates = undefined;
    this.#cost = performance.now() - t0;
  }

  /** A timer tick: sample, unless nobody asked lately and sampling this often costs too much. */
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
    const r = noRates();
    if (!this.#prev || !this.#last) return r;
    const dt = (this.#last.t - this.#prev.t) / 1000;
    const a = byId(this.#prev.s);
    r.window_s = Math.round(dt * 1000) / 1000;
    for (const rule of this.#last.s.rules) {
      const was = a.get(rule.id);
      r.rules.set(rule.id, {
        pps: per(was?.packets, rule.packets, dt),
        bps: 8 * per(was?.bytes, rule.bytes, dt),
      });
      r.outputs.set(
        rule.id,
        rule.outputs.map((o, i) => {
          const w = findOutput(was?.outputs, o, i);
          return {
            interface: o.interface,
            group: o.group,
            port: o.port,
            pps: per(w?.packets, o.packets, dt),
            bps: 8 * per(w?.bytes, o.bytes, dt),
          };
        }),
      );
    }
    const ifs = new Map(this.#prev.s.interfaces.map((i) => [i.name, i]));
    for (const i of this.#last.s.interfaces) {
      const o = ifs.get(i.name);
      r.interfaces.set(i.name, {
        pps: per(o?.frames, i.frames, dt),
        bps: 8 * per(o?.bytes, i.bytes, dt),
        kernel_drops_ps: per(o?.kernel_drops, i.kernel_drops, dt),
      });
    }
    const drops = this.#prev.s.drops;
    for (const [k, v] of Object.entries(this.#last.s.drops)) r.drops[k] = per(drops[k], v, dt);
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

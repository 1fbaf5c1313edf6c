/**
 * Rates (packets and bits per second) from counter deltas: a sampler keeps
 * the last two counter snapshots (`Relay.counters()`: typed arrays that
 * follow the rule tables, two words per output) taken every `intervalMs`
 * and derives per-rule, per-output and per-interface rates from them on
 * request. Reading counters never touches the data path, but a snapshot of
 * a very large relay costs real time (tens of milliseconds at 262,144
 * outputs), and an idle relay should cost next to nothing: while no client
 * asks for rates, the sampler takes a snapshot only every
 * {@link IDLE_SAMPLE_MS} (less often still when snapshots would cost more
 * than about 1 % of a core), and the first request after such a pause takes
 * a fresh one, so that rates always end now; `window_s` says what window
 * they cover.
 *
 * @module
 */
import { outputDestText, outputPortOf } from "../config/ranges.ts";
import type { OutputPort } from "../config/schema.ts";
import type { TableOutput, TableRule } from "../datapath/messages.ts";
import type { CounterSnapshot, InputCounters } from "../relay/counter_snapshot.ts";

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
  /** Destination group or address, or the range it maps into (as in `stats`). */
  group: string;
  /** Destination port, or "keep". */
  port: OutputPort;
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
type OutputKey = { interface: string; group: string; port: OutputPort };

/**
 * The entry of `list` for output `o`, expected at `index` (the outputs of a
 * rule keep their order), else searched for (a reload may have changed them).
 */
function findOutput<T>(
  list: readonly T[] | undefined,
  index: number,
  same: (x: T) => boolean,
): T | undefined {
  if (!list) return undefined;
  const at = list[index];
  return at !== undefined && same(at) ? at : list.find(same);
}

/** Rate of output `o` (the `index`-th) of rule `ruleId`, if the rates know it. */
export function outputRate(
  rates: Rates,
  ruleId: string,
  o: OutputKey,
  index: number,
): Rate | undefined {
  return findOutput(
    rates.outputs.get(ruleId),
    index,
    (x) => x.port === o.port && x.interface === o.interface && x.group === o.group,
  );
}

interface Sample {
  t: number;
  s: CounterSnapshot;
}

/** While rates were asked for within this time (ms), sampling keeps its period. */
const DEMAND_MS = 60_000;
/** Otherwise at most one sample per this many ms... */
export const IDLE_SAMPLE_MS = 10_000;
/** ...and at least this many times the length of the last sample apart. */
const IDLE_COST_SHARE = 100;

/** Rate of a counter going from `a` to `b` over `dt` seconds (a restart resets to 0). */
const per = (a: number | undefined, b: number, dt: number) =>
  a === undefined || dt <= 0 || b < a ? 0 : (b - a) / dt;

/** Where the rules of an earlier sample of one input interface are, by rule id. */
interface Earlier {
  /** Index of the rule in the table, and of its first output word pair. */
  at(id: string): { rule: TableRule; k: number; o: number } | undefined;
}

/** Index the rules of `c` (an earlier sample of an interface), built only when asked. */
function earlier(c: InputCounters | undefined): Earlier {
  let byId: Map<string, { rule: TableRule; k: number; o: number }> | undefined;
  return {
    at(id) {
      if (!c) return undefined;
      if (!byId) {
        byId = new Map();
        let o = 0;
        for (const [k, rule] of c.table.rules.entries()) {
          byId.set(rule.id, { rule, k, o });
          o += rule.outputs.length;
        }
      }
      return byId.get(id);
    },
  };
}

/**
 * Index (among its interface's outputs) of the output of `rule` (whose
 * first output is at `first`) that `out`, the `index`-th output of the rule
 * now, was; undefined for a new output.
 */
function outputWord(rule: TableRule, first: number, out: TableOutput, index: number) {
  const same = (x: TableOutput) =>
    x.port === out.port && x.dst === out.dst && x.hostBits === out.hostBits &&
    x.interface === out.interface;
  const x = findOutput(rule.outputs, index, same);
  return x === undefined ? undefined : first + rule.outputs.indexOf(x);
}

/** Samples counters periodically and computes rates (see module doc). */
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
  readonly counters: () => CounterSnapshot;
  /** Sampling period in milliseconds. */
  readonly intervalMs: number;

  /**
   * Create a sampler (call `start()`).
   * @param counters where counters come from
   * @param intervalMs sampling period
   */
  constructor(counters: () => CounterSnapshot, intervalMs = 1000) {
    this.counters = counters;
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
    const s = this.counters();
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
      now - this.#last.t >= Math.max(IDLE_SAMPLE_MS, IDLE_COST_SHARE * this.#cost) - 1;
    if (wanted || due) this.sample();
  }

  /** Rates between the last two samples (zeros before the second sample). */
  rates(): Rates {
    const now = performance.now();
    const paused = now - this.#wantedAt >= DEMAND_MS;
    this.#wantedAt = now;
    // the first request after a pause: its rates end now, not at the last idle sample
    if (paused && this.#last && now - this.#last.t > this.intervalMs) this.sample();
    if (this.#rates) return this.#rates;
    const r = noRates();
    if (!this.#prev || !this.#last) return r;
    const dt = (this.#last.t - this.#prev.t) / 1000;
    r.window_s = Math.round(dt * 1000) / 1000;
    for (const [name, cur] of this.#last.s.inputs) {
      const was = this.#prev.s.inputs.get(name);
      r.interfaces.set(name, {
        pps: per(was?.frames, cur.frames, dt),
        bps: 8 * per(was?.bytes, cur.bytes, dt),
        kernel_drops_ps: per(was?.kernel_drops, cur.kernel_drops, dt),
      });
      // the same table: every rule and output where it was; else found by id and destination
      const aligned = was?.table === cur.table;
      const before = earlier(was);
      let o = 0;
      for (const [k, rule] of cur.table.rules.entries()) {
        const prev = aligned ? { rule, k, o } : before.at(rule.id);
        const a = was && prev ? was.rules : undefined;
        r.rules.set(rule.id, {
          pps: per(a?.[2 * prev!.k], cur.rules[2 * k], dt),
          bps: 8 * per(a?.[2 * prev!.k + 1], cur.rules[2 * k + 1], dt),
        });
        r.outputs.set(
          rule.id,
          rule.outputs.map((out, i) => {
            const j = o + i;
            const pj = prev && (aligned ? j : outputWord(prev.rule, prev.o, out, i));
            const b = was && pj !== undefined ? was.outputs : undefined;
            return {
              interface: out.interface,
              group: outputDestText(out),
              port: outputPortOf(out.port),
              pps: per(b?.[2 * pj!], cur.outputs[2 * j], dt),
              bps: 8 * per(b?.[2 * pj! + 1], cur.outputs[2 * j + 1], dt),
            };
          }),
        );
        o += rule.outputs.length;
      }
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

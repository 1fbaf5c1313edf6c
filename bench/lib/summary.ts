/**
 * Median and range of one figure over repeated passes (`--repeat N`): every
 * figure the benchmarks report is the median of N runs with its min–max.
 *
 * @module
 */

/** One figure over N passes. */
export interface Summary {
  /** Median (mean of the middle two for an even count). */
  median: number;
  /** Smallest value. */
  min: number;
  /** Largest value. */
  max: number;
  /** Passes that produced a value. */
  n: number;
}

/** Summarize the finite values (null/undefined/NaN are skipped); null when there are none. */
export function summarize(values: readonly (number | null | undefined)[]): Summary | null {
  const v = values.filter((x): x is number => typeof x === "number" && Number.isFinite(x))
    .sort((a, b) => a - b);
  if (!v.length) return null;
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { median, min: v[0], max: v[v.length - 1], n: v.length };
}

/**
 * "median [min–max]" (just the value when there is one), each formatted with
 * `fmt`; "—" when there is no value.
 */
export function fmtSummary(s: Summary | null, fmt: (x: number) => string): string {
  if (!s) return "—";
  if (s.n === 1 || s.min === s.max) return fmt(s.median);
  return `${fmt(s.median)} [${fmt(s.min)}–${fmt(s.max)}]`;
}

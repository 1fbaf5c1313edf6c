/**
 * Numbers as the tables for people show them (format.ts re-exports these).
 *
 * @module
 */

/**
 * One formatter for every number: `toLocaleString` builds a new one per call
 * (about 12 µs each, 12 s for the million cells of a 65,536-rule table).
 */
const GROUPED = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/** 1234567 → "1,234,567". */
export function num(n: number): string {
  return GROUPED.format(Math.round(n));
}

/** Packets per second, compact: 950, 12.3k, 1.20M. */
export function rate(n: number): string {
  if (n < 1000) return n < 10 && n > 0 ? n.toFixed(1) : String(Math.round(n));
  if (n < 1e6) return `${(n / 1e3).toFixed(1)}k`;
  return `${(n / 1e6).toFixed(2)}M`;
}

/** Bits per second as Mbit/s with two decimals. */
export function mbit(bps: number): string {
  return (bps / 1e6).toFixed(2);
}

/**
 * CLOCK_MONOTONIC in nanoseconds, read through libc (FFI): the clock of
 * mcr-gen's send timestamps and of mcr-sink's receive times (the same in every
 * network namespace), so the harness can time an action (a `ctl add`) against
 * what the receiver saw. `performance.now()` counts from this process's start
 * and cannot be compared with them.
 *
 * @module
 */

/** clock_gettime's clock id for CLOCK_MONOTONIC (linux/time.h). */
const CLOCK_MONOTONIC = 1;

let libc:
  | Deno.DynamicLibrary<{
    clock_gettime: { parameters: ["i32", "buffer"]; result: "i32" };
  }>
  | null = null;
const ts = new BigInt64Array(2);

/** CLOCK_MONOTONIC now, ns (exact below 2^53 ns: 104 days of uptime). */
export function monotonicNs(): number {
  libc ??= Deno.dlopen("libc.so.6", {
    clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  });
  if (libc.symbols.clock_gettime(CLOCK_MONOTONIC, ts) !== 0) {
    throw new Error("clock_gettime(CLOCK_MONOTONIC) failed");
  }
  return Number(ts[0]) * 1e9 + Number(ts[1]);
}

/**
 * releaseMemory (src/common/memory.ts): after a large load the relay hands
 * the load's garbage back with one full collection. The collector must be
 * reachable in this Deno and must actually shrink the heap.
 *
 * @module
 */
import assert from "node:assert/strict";
import { releaseMemory } from "../../src/common/memory.ts";

Deno.test("releaseMemory: one full collection returns a burst of garbage", () => {
  let junk: { k: number; s: string }[] | null = [];
  for (let k = 0; k < 500_000; k++) junk.push({ k, s: `rule-${k}` });
  const before = Deno.memoryUsage().heapUsed;
  junk = null;
  const ms = releaseMemory();
  assert.equal(typeof ms, "number", "V8's collector is reachable (--expose-gc set at run time)");
  const after = Deno.memoryUsage().heapUsed;
  // 500,000 small objects and strings are about 30 MB; what was alive before stays
  assert.ok(before - after > 15e6, `heap used ${before} -> ${after} bytes`);
  assert.ok(releaseMemory() !== null, "a second call works too");
});

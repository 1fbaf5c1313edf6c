/**
 * A worker's priority (src/datapath/priority.ts): adaptive raises
 * `worker_nice` when the worker falls behind and returns to the process's
 * priority PRIORITY_HOLD_MS after the last time; fixed keeps it; a missing
 * privilege shows at start and is not tried again. (When a ring is behind
 * is libmcr's `mcr_rx_behind`, tested in csrc/tests/test_rings.c.)
 */
import assert from "node:assert/strict";
import {
  PRIORITY_HOLD_MS,
  type PriorityHost,
  WorkerPriority,
} from "../../src/datapath/priority.ts";

/** A thread whose nice value is a number; `permitted` decides whether lowering it works. */
function thread(base: number, nice: number, mode: "adaptive" | "fixed", permitted = true) {
  const t = {
    now: base,
    calls: [] as number[],
    refusals: [] as string[],
  };
  const host: PriorityHost = {
    base,
    nice,
    mode,
    setNice: (n) => {
      t.calls.push(n);
      if (n < t.now && !permitted) throw new Error("EPERM");
      t.now = n;
    },
    refused: (m) => t.refusals.push(m),
  };
  return { t, host };
}

Deno.test("priority: adaptive raises while behind, holds, and returns to the process's", () => {
  const { t, host } = thread(0, -10, "adaptive");
  const p = new WorkerPriority(host);
  assert.deepEqual(t.calls, [-10, 0], "checked at start: raised and put back");
  assert.equal(p.current, 0);
  assert.equal(p.adaptive, true);
  p.update(false, 1000);
  assert.equal(t.now, 0, "not behind: nothing changes");
  p.update(true, 1000);
  assert.equal(t.now, -10);
  assert.equal(p.current, -10);
  assert.equal(p.raised, true);
  assert.equal(p.raises, 1);
  p.update(true, 1500); // still behind: no second raise
  assert.equal(p.raises, 1);
  p.update(false, 1500 + PRIORITY_HOLD_MS - 1);
  assert.equal(t.now, -10, "held for PRIORITY_HOLD_MS after the last time behind");
  p.update(false, 1500 + PRIORITY_HOLD_MS);
  assert.equal(t.now, 0, "back to the process's priority");
  assert.equal(p.current, 0);
  assert.equal(p.raised, false);
  p.update(true, 9000);
  assert.equal(p.raises, 2, "raised again the next time it falls behind");
  assert.deepEqual(t.calls, [-10, 0, -10, 0, -10]);
  assert.deepEqual(t.refusals, []);
});

Deno.test("priority: fixed takes worker_nice at start and keeps it", () => {
  const { t, host } = thread(0, -10, "fixed");
  const p = new WorkerPriority(host);
  assert.deepEqual(t.calls, [-10]);
  assert.equal(p.adaptive, false);
  p.update(true, 0);
  p.update(false, 10 * PRIORITY_HOLD_MS);
  assert.deepEqual(t.calls, [-10], "never changed again");
  assert.equal(p.current, -10);
  assert.equal(p.raises, 0);
});

Deno.test("priority: a worker_nice at or above the process's applies at once, in either mode", () => {
  for (const mode of ["adaptive", "fixed"] as const) {
    const { t, host } = thread(0, 5, mode);
    const p = new WorkerPriority(host);
    assert.deepEqual(t.calls, [5], mode);
    assert.equal(p.adaptive, false);
    p.update(true, 0);
    assert.deepEqual(t.calls, [5], `${mode}: nothing to raise`);
  }
  const same = thread(3, 3, "adaptive");
  new WorkerPriority(same.host).update(true, 0);
  assert.deepEqual(same.t.calls, [], "worker_nice equal to the process's: nothing to do");
});

Deno.test("priority: not permitted to raise: said once at start, never tried again", () => {
  const { t, host } = thread(0, -10, "adaptive", false);
  const p = new WorkerPriority(host);
  assert.equal(t.refusals.length, 1);
  assert.match(t.refusals[0], /EPERM/);
  assert.equal(p.current, 0);
  p.update(true, 0);
  p.update(true, 10);
  assert.deepEqual(t.calls, [-10], "only the check at start");
  assert.equal(p.raises, 0);
  assert.equal(p.current, 0, "the process's priority");
  const fixed = thread(0, -10, "fixed", false);
  assert.equal(new WorkerPriority(fixed.host).current, 0);
  assert.equal(fixed.t.refusals.length, 1);
});

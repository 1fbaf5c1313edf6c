/**
 * Redundant inputs without a network (issue 16): the arbiter (merge by RTP
 * sequence number and by payload hash, the delay bound, late copies,
 * failover and its return), the reorder buffer in the hot loop, two
 * "workers" (two batch processors with their own counters) sharing one
 * arbitration block as the relay's workers do, and ctl's text. The
 * configuration: redundancy_config_test.ts.
 */
import assert from "node:assert/strict";
import { buildFrame, packFrames } from "../fixtures/frames.ts";
import { Arbiter, newArbiterState, Verdict } from "../../src/datapath/arbiter.ts";
import { BatchProcessor } from "../../src/datapath/batch.ts";
import {
  Ext,
  extBase,
  In,
  IN_DROP,
  inBase,
  newCounterBlock,
  RULE_BASE,
  RULE_WORDS,
} from "../../src/datapath/counters.ts";
import { Drop } from "../../src/datapath/packet.ts";
import { compileTable } from "../../src/datapath/match.ts";
import { buildTables, Slots } from "../../src/relay/tables.ts";
import { ArbiterStates, ruleSpecs } from "../../src/relay/relay_config.ts";
import { FWD_DESC_WORDS, FwdDescWord, RX_DESC_WORDS, RxDescWord } from "../../ffi/mod.ts";
import { parseConfig } from "../../src/config/mod.ts";
import { pathLines } from "../../src/client/format.ts";

/** An RTP v2 payload with sequence number `seq` (SSRC fixed) of `len` bytes. */
function rtp(seq: number, len = 200, ssrc = 0x11223344): Uint8Array {
  const p = new Uint8Array(len);
  p[0] = 0x80;
  p[1] = 96;
  p[2] = (seq >> 8) & 0xff;
  p[3] = seq & 0xff;
  p[8] = ssrc >>> 24;
  p[9] = (ssrc >> 16) & 0xff;
  p[10] = (ssrc >> 8) & 0xff;
  p[11] = ssrc & 0xff;
  for (let i = 12; i < len; i++) p[i] = (seq * 7 + i) & 0xff;
  return p;
}

/** A plain (not RTP) payload numbered `n`. */
function plain(n: number, len = 100): Uint8Array {
  const p = new Uint8Array(len);
  p[0] = 0x10; // not RTP version 2
  new DataView(p.buffer).setUint32(4, n);
  return p;
}

const merge = (state: SharedArrayBuffer, input: number, window = 256, maxDelayUs = 50_000) =>
  new Arbiter(state, window, input, false, maxDelayUs, 0, true);

Deno.test("arbiter merge by RTP sequence number: each once, from whichever path first", () => {
  const st = newArbiterState(256);
  const a = merge(st, 0), b = merge(st, 1);
  let fwd = 0, dup = 0;
  for (let s = 0; s < 70_000; s++) { // crosses the 16-bit wrap
    const p = rtp(s & 0xffff);
    const first = s % 3 === 0 ? b : a, second = first === a ? b : a;
    if (first.admit(p, 0, p.length, s * 100) === Verdict.forward) fwd++;
    if (second.admit(p, 0, p.length, s * 100 + 50) === Verdict.duplicate) dup++;
  }
  assert.equal(fwd, 70_000);
  assert.equal(dup, 70_000);
  assert.ok(a.lastRtp);
  // a copy further behind than the window is late, not forwarded again
  const old = rtp((70_000 - 300) & 0xffff);
  assert.equal(b.admit(old, 0, old.length, 70_000 * 100), Verdict.late);
});

Deno.test("arbiter merge by RTP: a sender that restarts its numbering is followed after a stall", () => {
  const st = newArbiterState(256);
  const a = merge(st, 0, 256, 10_000);
  for (let s = 30_000; s < 30_100; s++) {
    assert.equal(a.admit(rtp(s), 0, 200, s * 100), Verdict.forward);
  }
  // numbering restarts far behind: late while the stream is live...
  assert.equal(a.admit(rtp(5), 0, 200, 30_100 * 100), Verdict.late);
  // ...taken as a restart once it made no progress for twice max_delay
  const t = 30_100 * 100 + 25_000;
  assert.equal(a.admit(rtp(6), 0, 200, t), Verdict.forward);
  assert.equal(a.admit(rtp(7), 0, 200, t + 100), Verdict.forward);
  assert.equal(a.admit(rtp(7), 0, 200, t + 200), Verdict.duplicate);
});

Deno.test("arbiter merge by payload hash: copies within max_delay are one datagram, later ones new", () => {
  const st = newArbiterState(1024);
  const a = merge(st, 0, 1024, 50_000), b = merge(st, 1, 1024, 50_000);
  for (let n = 0; n < 5000; n++) {
    const p = plain(n);
    assert.equal(a.admit(p, 0, p.length, n * 100), Verdict.forward, `first copy of ${n}`);
    assert.equal(b.admit(p, 0, p.length, n * 100 + 20_000), Verdict.duplicate, `copy of ${n}`);
    assert.equal(a.lastRtp, false);
  }
  // the same payload again after max_delay is another datagram (a heartbeat, a null packet)
  const p = plain(4999);
  assert.equal(a.admit(p, 0, p.length, 4999 * 100 + 60_000), Verdict.forward);
  // a copy processed before the first one's receive time (another worker) is still a copy
  const q = plain(9999);
  assert.equal(b.admit(q, 0, q.length, 1_000_000), Verdict.forward);
  assert.equal(a.admit(q, 0, q.length, 1_000_000 - 3000), Verdict.duplicate);
});

Deno.test("arbiter failover: the active path forwards; after failover_ms of silence the next; revertive back", () => {
  const st = newArbiterState(256);
  const fo = (k: number, revertive = true) =>
    new Arbiter(st, 256, k, true, 50_000, 200_000, revertive);
  const a = fo(0), b = fo(1);
  let seq = 0;
  const both = (t: number, withA = true) => {
    const p = rtp(seq++);
    const va = withA ? a.admit(p, 0, p.length, t) : undefined;
    const vb = b.admit(p, 0, p.length, t + 10);
    return { va, vb };
  };
  // B's first datagram comes first at start: A (input 0) still takes the stream
  assert.equal(b.admit(rtp(seq), 0, 200, 1000), Verdict.inactive);
  assert.equal(a.admit(rtp(seq++), 0, 200, 1100), Verdict.forward);
  let t = 2000;
  for (; t < 500_000; t += 1000) {
    assert.deepEqual(both(t), { va: Verdict.forward, vb: Verdict.inactive });
  }
  // A goes silent: B takes over with its first datagram after 200 ms
  let switchedAt = -1;
  for (; t < 1_000_000; t += 1000) {
    const { vb } = both(t, false);
    if (vb === Verdict.forward && switchedAt < 0) switchedAt = t;
  }
  // (B's datagrams come 10 µs after the slot time)
  assert.ok(
    switchedAt >= 499_000 + 200_000 - 10 && switchedAt <= 499_000 + 202_000,
    `${switchedAt}`,
  );
  assert.equal(new Int32Array(st)[6], 1); // switches
  // A returns: B keeps the stream until A has delivered for failover_ms, then A again,
  // never a datagram twice
  let back = -1;
  for (; t < 1_500_000; t += 1000) {
    const { va, vb } = both(t);
    assert.ok(!(va === Verdict.forward && vb === Verdict.forward), "one path at a time");
    if (va === Verdict.forward && back < 0) back = t;
  }
  assert.ok(back >= 1_000_000 + 200_000 && back <= 1_000_000 + 202_000, `${back}`);
  assert.equal(new Int32Array(st)[6], 2);
});

Deno.test("arbiter failover, not revertive: the backup keeps the stream when the primary returns", () => {
  const st = newArbiterState(256);
  const a = new Arbiter(st, 256, 0, true, 50_000, 100_000, false);
  const b = new Arbiter(st, 256, 1, true, 50_000, 100_000, false);
  assert.equal(a.admit(rtp(0), 0, 200, 1), Verdict.forward);
  assert.equal(b.admit(rtp(1), 0, 200, 200_000), Verdict.forward); // A silent 200 ms
  for (let s = 2, t = 201_000; s < 1000; s++, t += 1000) {
    assert.equal(a.admit(rtp(s), 0, 200, t), Verdict.inactive);
    assert.equal(b.admit(rtp(s), 0, 200, t + 5), Verdict.forward);
  }
});

/** A merged rule on two interfaces (paths), as the relay builds it. */
function mergedTables(redundancy: unknown) {
  const config = parseConfig({
    rules: [{
      name: "cam",
      inputs: [
        { interface: "a0", group: "239.1.1.1", port: 5001 },
        { interface: "b0", group: "239.2.1.1", port: 5001 },
      ],
      redundancy,
      outputs: [{ interface: "o0", group: "239.9.9.9", port: 6001 }],
    }],
  }, "t.json");
  const specs = ruleSpecs(config.rules, new ArbiterStates());
  const tables = buildTables(specs, new Slots(), 1, ["a0", "b0"]);
  return { specs, a: tables.get("a0")!, b: tables.get("b0")! };
}

type Table = ReturnType<typeof mergedTables>["a"];

/**
 * A processor ("worker") over its own counter block serving `tables` (one
 * per path it receives, with the destination group of each): `feed(k, ...)`
 * runs one batch of payloads of path k; `out` collects the RTP sequence
 * numbers it sends, in order.
 */
function worker(tables: [Table, string][]) {
  const counters = newCounterBlock();
  const fdesc = new Uint32Array(4096 * FWD_DESC_WORDS);
  const out: number[] = [];
  const collect = (frames: Uint8Array, m: number) => {
    for (let d = 0; d < m; d++) {
      const off = fdesc[d * FWD_DESC_WORDS + FwdDescWord.payloadOff];
      out.push((frames[off + 2] << 8) | frames[off + 3]);
    }
  };
  let cur: Uint8Array = new Uint8Array(0);
  const proc = new BatchProcessor(
    counters,
    fdesc,
    4096,
    (m) => collect(cur, m),
    (m) => collect(proc.reorder.frames, m),
  );
  const paths = tables.map(([table, dst], k) => ({
    table,
    dst,
    lookup: compileTable(table),
    base: inBase(k),
  }));
  const feed = (k: number, payloads: Uint8Array[], t0: number) => {
    const p = paths[k];
    const { buf, placed } = packFrames(
      payloads.map((x) => buildFrame({ dst: p.dst, dport: 5001, payload: x })),
    );
    const desc = new Uint32Array(payloads.length * RX_DESC_WORDS);
    placed.forEach((f, i) => {
      const b = i * RX_DESC_WORDS;
      desc[b + RxDescWord.offset] = f.offset;
      desc[b + RxDescWord.snaplen] = f.length;
      desc[b + RxDescWord.len] = f.length;
      desc[b + RxDescWord.tstampUs] = t0 + i * 100;
    });
    cur = buf;
    collect(buf, proc.process(buf, desc, payloads.length, p.lookup, p.base, 14));
  };
  const release = (nowUs: number) => {
    collect(proc.reorder.frames, proc.release(nowUs));
    proc.reorder.sent();
  };
  const sum = (f: (p: (typeof paths)[number]) => number) => paths.reduce((a, p) => a + f(p), 0);
  const ext = (w: keyof typeof Ext) =>
    sum((p) => counters[extBase(p.table.rules[0].slot) + Ext[w]]);
  const drops = (d: number) => sum((p) => counters[p.base + IN_DROP + d]);
  const contributed = () => sum((p) => counters[RULE_BASE + p.table.rules[0].slot * RULE_WORDS]);
  const held = () => sum((p) => counters[p.base + In.held]);
  return { out, feed, release, ext, drops, contributed, held };
}

/**
 * Path A loses every 10th datagram, path B (one batch of 10 behind) every
 * 7th; both go through `feed`, each worker's release runs after each batch.
 * Returns the datagrams lost on both paths.
 */
function lossyPaths(
  feed: (path: number, payloads: Uint8Array[], t0: number) => void,
  release: (nowUs: number) => void,
): number[] {
  const seqs = Array.from({ length: 1000 }, (_, s) => s);
  for (let k = 0; k <= 100; k++) {
    const batch = seqs.slice(k * 10, k * 10 + 10);
    if (batch.length) feed(0, batch.filter((s) => s % 10 !== 3).map((s) => rtp(s)), k * 1000);
    const behind = seqs.slice(Math.max(0, k * 10 - 10), k * 10).filter((s) => s % 7 !== 5);
    if (k > 0) feed(1, behind.map((s) => rtp(s)), k * 1000 + 50);
    release(k * 1000 + 100);
  }
  release(200_000); // every deadline passed: whatever is still held leaves
  return seqs.filter((s) => s % 10 === 3 && s % 7 === 5);
}

Deno.test("merge, one worker serving both paths: each datagram once and, with reorder_ms, in order", () => {
  const { a, b } = mergedTables({ mode: "merge", reorder_ms: 20 });
  assert.equal(a.rules[0].name, "cam[0]");
  assert.equal(b.rules[0].name, "cam[1]");
  assert.equal(a.rules[0].redundancy!.state, b.rules[0].redundancy!.state);
  const w = worker([[a, "239.1.1.1"], [b, "239.2.1.1"]]);
  const lostBoth = lossyPaths(w.feed, w.release);
  assert.equal(new Set(w.out).size, w.out.length, "no datagram twice");
  assert.equal(w.out.length, 1000 - lostBoth.length);
  for (let i = 1; i < w.out.length; i++) {
    assert.ok(w.out[i] > w.out[i - 1], `order at ${i}: ${w.out[i - 1]}, ${w.out[i]}`);
  }
  assert.equal(w.ext("mergeLate"), 0);
  assert.equal(w.ext("received"), w.contributed() + w.ext("mergedDuplicates"));
  assert.equal(w.drops(Drop.merged_duplicate), w.ext("mergedDuplicates"));
  // without reorder_ms the same losses reorder what leaves
  const plain = mergedTables("merge");
  const u = worker([[plain.a, "239.1.1.1"], [plain.b, "239.2.1.1"]]);
  lossyPaths(u.feed, u.release);
  assert.equal(new Set(u.out).size, u.out.length);
  assert.equal(u.out.length, 1000 - lostBoth.length);
  assert.ok(u.out.some((s, i) => i > 0 && s < u.out[i - 1]), "reordered without reorder_ms");
});

Deno.test("merge across two workers sharing the block: each datagram once; every one sent or counted", () => {
  const { a, b } = mergedTables({ mode: "merge", reorder_ms: 20 });
  const wa = worker([[a, "239.1.1.1"]]), wb = worker([[b, "239.2.1.1"]]);
  const lostBoth = lossyPaths(
    (k, p, t) => (k === 0 ? wa : wb).feed(0, p, t),
    (now) => {
      wa.release(now);
      wb.release(now);
    },
  );
  const all = [...wa.out, ...wb.out];
  assert.equal(new Set(all).size, all.length, "no datagram twice");
  // a gap one worker gave up may make the other's copy late: counted, never sent twice
  assert.equal(all.length + wa.ext("mergeLate") + wb.ext("mergeLate"), 1000 - lostBoth.length);
  for (const w of [wa, wb]) {
    assert.equal(
      w.ext("received"),
      w.contributed() + w.ext("mergedDuplicates") + w.ext("mergeLate"),
    );
    assert.equal(w.drops(Drop.merge_late), w.ext("mergeLate"));
  }
});

Deno.test("merge without reorder_ms forwards at once; reorder_ms holds a datagram until the gap fills", () => {
  const { a, b } = mergedTables({ mode: "merge", reorder_ms: 20 });
  const wa = worker([[a, "239.1.1.1"]]), wb = worker([[b, "239.2.1.1"]]);
  wa.feed(0, [rtp(0), rtp(2), rtp(3)], 0); // 1 missing on A: 2 and 3 wait
  assert.deepEqual(wa.out, [0]);
  assert.equal(wa.held(), 2, "held datagrams show in the input's gauge (unprocessed if it dies)");
  wa.release(500); // not yet: the gap is open and 20 ms have not passed
  assert.deepEqual(wa.out, [0]);
  wb.feed(0, [rtp(0), rtp(1)], 1000); // B fills it
  assert.deepEqual(wb.out, [1]);
  wa.release(1100);
  assert.deepEqual(wa.out, [0, 2, 3]);
  assert.equal(wa.held(), 0);
  // a gap nobody fills is given up after reorder_ms; the one that comes later is late
  wa.feed(0, [rtp(5)], 2000);
  wa.release(2000 + 19_000);
  assert.deepEqual(wa.out, [0, 2, 3]);
  wa.release(2000 + 20_000);
  assert.deepEqual(wa.out, [0, 2, 3, 5]);
  wb.feed(0, [rtp(4)], 30_000);
  assert.deepEqual(wb.out, [1]);
  assert.equal(wb.ext("mergeLate"), 1);
  assert.equal(wb.drops(Drop.merge_late), 1);

  const plainMerge = mergedTables("merge");
  const wp = worker([[plainMerge.a, "239.1.1.1"]]);
  wp.feed(0, [rtp(0), rtp(2), rtp(3)], 0);
  assert.deepEqual(wp.out, [0, 2, 3]);
});

Deno.test("redundancy in ctl's text: list shows each path's counts, stats each path's rule", () => {
  const lines = pathLines([{
    name: "cam",
    redundancy: {
      mode: "failover",
      max_delay_ms: 50,
      window: 8192,
      failover_ms: 200,
      revertive: true,
    },
    paths: [
      {
        input: 0,
        interface: "rA",
        group: "239.1.1.1",
        port: 5001,
        state: "active",
        active: false,
        received: 1000,
        contributed: 0,
        merged_duplicate: 0,
        late: 0,
        inactive: 1000,
      },
    ],
  }]);
  assert.deepEqual(lines, [
    "cam input 0 (rA 239.1.1.1:5001, active): standby path, received 1,000, contributed 0, " +
    "duplicates 0, late 0, inactive 1,000",
  ]);
});

Deno.test("arbiter payload hash: the same payload at any offset (another ring's alignment) is one datagram", () => {
  const st = newArbiterState(1024);
  const a = merge(st, 0, 1024), b = merge(st, 1, 1024);
  for (let shift = 0; shift < 8; shift++) {
    for (const len of [1, 3, 4, 7, 100, 1317]) {
      const p = plain(shift * 10_000 + len, len < 8 ? 8 : len).subarray(0, len);
      const bufA = new Uint8Array(len + 16), bufB = new Uint8Array(len + 16);
      bufA.set(p, 1);
      bufB.set(p, shift);
      const t = shift * 1_000_000 + len * 1000;
      assert.equal(a.admit(bufA, 1, len, t), Verdict.forward, `${shift}/${len}`);
      assert.equal(b.admit(bufB, shift, len, t + 10), Verdict.duplicate, `${shift}/${len}`);
    }
  }
});

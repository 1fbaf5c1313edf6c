/**
 * Capture in the data path (datapath/capture.ts): the ring a worker writes
 * and the supervisor drains — frames, times and lengths as written, a VLAN
 * tag the kernel stripped put back, records that wrap around the end of the
 * ring and positions that wrap around 2^32, a full ring counted as capture
 * drops and never more than the count — and the hot loop (batch.ts) with a
 * capture on a rule: the frames it matched are copied, other rules' are not,
 * and the forward descriptors are the same with or without a capture, a full
 * capture ring included.
 */
import assert from "node:assert/strict";
import { buildFrame, packFrames } from "../fixtures/frames.ts";
import {
  CapHdr,
  CaptureReader,
  CaptureTap,
  newCaptureRing,
  unwrapUs,
  WorkerCaptures,
} from "../../src/datapath/capture.ts";
import { BatchProcessor } from "../../src/datapath/batch.ts";
import { inBase, newCounterBlock } from "../../src/datapath/counters.ts";
import { ETH_HLEN } from "../../src/datapath/link_types.ts";
import { TP_STATUS_VLAN_VALID } from "../../src/datapath/packet.ts";
import { compileTable } from "../../src/datapath/match.ts";
import { buildTables, type RuleSpec, Slots } from "../../src/relay/tables.ts";
import { FWD_DESC_WORDS, RX_DESC_WORDS, RxDescWord } from "../../ffi/mod.ts";
import { parseIPv4 } from "../../src/common/net.ts";

const ip = (s: string) => parseIPv4(s)!;

/** Frames in ring memory with their descriptors (times 1000, 1001, ...). */
function ringOf(frames: Uint8Array[], opts: { status?: number; tci?: number } = {}) {
  const { buf, placed } = packFrames(frames);
  const desc = new Uint32Array(frames.length * RX_DESC_WORDS);
  placed.forEach((p, k) => {
    const b = k * RX_DESC_WORDS;
    desc[b + RxDescWord.offset] = p.offset;
    desc[b + RxDescWord.snaplen] = p.length;
    desc[b + RxDescWord.len] = p.length;
    desc[b + RxDescWord.status] = opts.status ?? 0;
    desc[b + RxDescWord.vlanTci] = opts.tci ?? 0;
    desc[b + RxDescWord.tstampUs] = 1000 + k;
  });
  return { buf, desc };
}

const frameOf = (n: number, payload = 32) =>
  buildFrame({ dst: "239.1.1.1", dport: 5001, payload: payload + n });

Deno.test("capture ring: frames, times and lengths come out as they went in", () => {
  const frames = [frameOf(0), frameOf(1, 100), frameOf(2, 7)];
  const { buf, desc } = ringOf(frames);
  const sab = newCaptureRing(4096);
  const tap = new CaptureTap(1, sab, 100, 0);
  for (let k = 0; k < frames.length; k++) tap.take(buf, desc, k * RX_DESC_WORDS, ETH_HLEN);
  const r = new CaptureReader(sab);
  assert.equal(r.frames, 3);
  assert.equal(r.drops, 0);
  const got = r.drain();
  assert.equal(got.length, 3);
  got.forEach((f, k) => {
    assert.deepEqual(f.data, frames[k]);
    assert.equal(f.origLen, frames[k].length);
    assert.equal(f.tstampUs, 1000 + k);
  });
  assert.deepEqual(r.drain(), [], "drained: nothing more");
});

Deno.test("capture ring: a VLAN tag the kernel stripped is put back (as libpcap does)", () => {
  const frame = frameOf(0);
  const tci = (5 << 13) | 42;
  const { buf, desc } = ringOf([frame], { status: TP_STATUS_VLAN_VALID, tci });
  const sab = newCaptureRing(4096);
  new CaptureTap(1, sab, 10, 0).take(buf, desc, 0, ETH_HLEN);
  const [f] = new CaptureReader(sab).drain();
  const want = buildFrame({
    dst: "239.1.1.1",
    dport: 5001,
    payload: 32,
    vlans: [{ tpid: 0x8100, vid: 42, pcp: 5 }],
  });
  assert.deepEqual(f.data, want);
  assert.equal(f.origLen, frame.length + 4);
  // a link without a link-layer header has no tag to put back
  const sab2 = newCaptureRing(4096);
  const { buf: b2, desc: d2 } = ringOf([frame.slice(ETH_HLEN)], {
    status: TP_STATUS_VLAN_VALID,
    tci,
  });
  new CaptureTap(2, sab2, 10, 0).take(b2, d2, 0, 0);
  assert.deepEqual(new CaptureReader(sab2).drain()[0].data, frame.slice(ETH_HLEN));
});

Deno.test("capture ring: records wrap around its end and positions around 2^32", () => {
  const sab = newCaptureRing(4096);
  // both positions just below 2^32: the byte counts wrap during the test
  const hdr = new Int32Array(sab, 0, 16);
  hdr[CapHdr.write] = hdr[CapHdr.read] = (2 ** 32 - 3000) | 0;
  const tap = new CaptureTap(1, sab, 1_000_000, 0);
  const r = new CaptureReader(sab);
  let seen = 0;
  for (let round = 0; round < 200; round++) {
    // three frames of different sizes per round, drained each round: many wraps
    const frames = [frameOf(round % 50, 300), frameOf(round % 7, 20), frameOf(0, 900)];
    const { buf, desc } = ringOf(frames);
    for (let k = 0; k < 3; k++) tap.take(buf, desc, k * RX_DESC_WORDS, ETH_HLEN);
    const got = r.drain();
    assert.equal(got.length, 3, `round ${round}`);
    got.forEach((f, k) => assert.deepEqual(f.data, frames[k], `round ${round} frame ${k}`));
    seen += got.length;
  }
  assert.equal(seen, 600);
  assert.equal(r.drops, 0);
  assert.ok((hdr[CapHdr.write] >>> 0) < 2 ** 31, "the write position wrapped around 2^32");
});

Deno.test("capture ring: a full ring counts capture drops and keeps what it holds; the count bounds it", () => {
  const sab = newCaptureRing(4096);
  const tap = new CaptureTap(1, sab, 100, 0);
  const frames = Array.from({ length: 8 }, (_, k) => frameOf(k, 900));
  const { buf, desc } = ringOf(frames);
  for (let k = 0; k < 8; k++) tap.take(buf, desc, k * RX_DESC_WORDS, ETH_HLEN);
  const r = new CaptureReader(sab);
  assert.ok(r.drops > 0, "some did not fit");
  assert.equal(r.frames + r.drops, 8, "every frame taken or counted");
  const got = r.drain();
  assert.equal(got.length, r.frames);
  got.forEach((f, k) => assert.deepEqual(f.data, frames[k]));
  // room again after the drain
  const before = r.drops;
  tap.take(buf, desc, 0, ETH_HLEN);
  assert.equal(r.drops, before);
  assert.deepEqual(r.drain()[0].data, frames[0]);

  // the count: two frames, then nothing more is taken or counted
  const sab2 = newCaptureRing(4096);
  const tap2 = new CaptureTap(2, sab2, 2, 0);
  for (let k = 0; k < 5; k++) tap2.take(buf, desc, 0, ETH_HLEN);
  const r2 = new CaptureReader(sab2);
  assert.equal(r2.frames, 2);
  assert.equal(r2.drops, 0);
  assert.throws(() => newCaptureRing(5000), /power of two/);
});

Deno.test("capture: receive times modulo 2^32 are dated near now", () => {
  const now = 1_780_000_000_123_456;
  const t32 = (x: number) => x % 2 ** 32;
  assert.equal(unwrapUs(t32(now - 250_000), now), now - 250_000);
  assert.equal(unwrapUs(t32(now), now), now);
  assert.equal(unwrapUs(t32(now + 1000), now), now + 1000, "a clock step back");
  // across a wrap of the low 32 bits
  const wrapNow = 2 ** 32 * 414_000 + 100;
  assert.equal(unwrapUs(t32(wrapNow - 5000), wrapNow), wrapNow - 5000);
});

/** A rule on r0 with one output. */
function rule(name: string, group: string): RuleSpec {
  return {
    id: name,
    name,
    input: {
      interface: "r0",
      group: ip(group),
      prefixLen: 32,
      port: 5001,
      source: 0,
      vlan: -1,
      joins: [ip(group)],
    },
    outputs: [{
      interface: "r1",
      dst: ip("239.10.1.1"),
      hostBits: 0,
      port: 7000,
      srcIp: 0,
      srcPort: 0,
      ttl: 5,
      tos: 0,
    }],
  };
}

Deno.test("capture in the hot loop: the rule's frames are copied, others not; forwarding is the same, a full ring included", () => {
  const rules = [rule("cam", "239.1.1.1"), rule("other", "239.1.1.2")];
  const table = buildTables(rules, new Slots(), 1, ["r0"]).get("r0")!;
  const frames = Array.from(
    { length: 12 },
    (_, k) =>
      buildFrame({ dst: k % 3 === 2 ? "239.1.1.2" : "239.1.1.1", dport: 5001, payload: 600 + k }),
  );
  const { buf, desc } = ringOf(frames);
  const run = (capture: SharedArrayBuffer | null) => {
    const lookup = compileTable(table);
    const cam = table.rules.find((r) => r.name === "cam")!;
    const caps = new WorkerCaptures((_slot, r) => lookup.get(r));
    if (capture) {
      caps.start({
        id: 1,
        ring: capture,
        count: 100,
        input: 0,
        slot: 3,
        rule: cam.slot,
        ruleId: cam.id,
      });
      assert.notEqual(lookup.get(cam.slot)!.ext, null, "the rule got an extension for the capture");
    }
    const fdesc = new Uint32Array(64 * FWD_DESC_WORDS);
    const proc = new BatchProcessor(newCounterBlock(), fdesc, 64, () => {});
    const m = proc.process(buf, desc, frames.length, lookup, inBase(3), ETH_HLEN);
    if (capture) {
      caps.stop(1);
      assert.equal(lookup.get(cam.slot)!.ext, null, "a rule without options is as it was");
    }
    return Array.from(fdesc.subarray(0, m * FWD_DESC_WORDS));
  };
  const plain = run(null);
  const big = newCaptureRing(64 * 1024);
  assert.deepEqual(run(big), plain, "forwarding unchanged by a capture");
  const got = new CaptureReader(big).drain();
  const want = frames.filter((_, k) => k % 3 !== 2);
  assert.equal(got.length, want.length);
  got.forEach((f, k) => assert.deepEqual(f.data, want[k]));
  // a ring too small for them: capture drops, and still the same forwarding
  const small = newCaptureRing(4096);
  assert.deepEqual(run(small), plain, "forwarding unchanged by a full capture ring");
  const r = new CaptureReader(small);
  assert.ok(r.drops > 0);
  assert.equal(r.frames + r.drops, want.length);
});

/**
 * The data path's payload analysis (src/datapath/stream_health.ts) over
 * hand-built RTP and MPEG-TS payloads: injected sequence gaps, duplicates,
 * reordering, SSRC changes and continuity-counter errors are counted
 * exactly, and RFC 3550 jitter follows the arrival times.
 */
import assert from "node:assert/strict";
import {
  Ext,
  EXT_WORDS,
  extBase,
  newCounterBlock,
  retireRule,
  zeroRule,
} from "../../src/datapath/counters.ts";
import {
  MAX_DROPOUT,
  REORDER_WINDOW,
  StreamAnalyser,
  TS_PACKET,
  TS_SYNC,
} from "../../src/datapath/stream_health.ts";

const SLOT = 7;

/** An RTP header (version 2, payload type 33 = MP2T) followed by `body`. */
function rtp(seq: number, ts: number, ssrc = 0x11223344, body: Uint8Array = new Uint8Array(20)) {
  const b = new Uint8Array(12 + body.length);
  b[0] = 0x80;
  b[1] = 33;
  b[2] = (seq >> 8) & 0xff;
  b[3] = seq & 0xff;
  new DataView(b.buffer).setUint32(4, ts >>> 0);
  new DataView(b.buffer).setUint32(8, ssrc >>> 0);
  b.set(body, 12);
  return b;
}

/** One TS packet: `pid`, `cc`, payload unless `afc` says otherwise; `disc` sets the discontinuity indicator. */
interface TsPkt {
  pid: number;
  cc: number;
  afc?: 1 | 2 | 3;
  disc?: boolean;
  sync?: number;
}

function ts(pkts: TsPkt[]): Uint8Array {
  const b = new Uint8Array(pkts.length * TS_PACKET).fill(0xff);
  pkts.forEach((p, i) => {
    const o = i * TS_PACKET;
    const afc = p.afc ?? 1;
    b[o] = p.sync ?? TS_SYNC;
    b[o + 1] = (p.pid >> 8) & 0x1f;
    b[o + 2] = p.pid & 0xff;
    b[o + 3] = (afc << 4) | (p.cc & 0x0f);
    if (afc & 2) {
      b[o + 4] = 1; // adaptation field length
      b[o + 5] = p.disc ? 0x80 : 0;
    }
  });
  return b;
}

function analyser(rtpOn: boolean, tsOn: boolean, clockRate = 90_000) {
  const c = newCounterBlock();
  const a = new StreamAnalyser(extBase(SLOT), rtpOn, tsOn, clockRate);
  const feed = (p: Uint8Array, tUs = 0) => a.analyse(c, p, 0, p.length, tUs);
  const get = (k: keyof typeof Ext) => c[extBase(SLOT) + Ext[k]];
  return { c, feed, get };
}

Deno.test("stream health: RTP gaps, duplicates and reordering are counted exactly", () => {
  const { c, feed, get } = analyser(true, false);
  // 0..199 with: 10 and 11 lost, 20 twice, 31 before 30, 40 three times, 50 late by 5 places
  const order: number[] = [];
  for (let s = 0; s < 200; s++) {
    if (s === 10 || s === 11 || s === 30 || s === 50) continue;
    order.push(s);
    if (s === 20) order.push(20);
    if (s === 31) order.push(30);
    if (s === 40) order.push(40, 40);
    if (s === 55) order.push(50);
  }
  for (const s of order) feed(rtp(s, s * 3000));
  assert.equal(get("rtpPackets"), order.length);
  assert.equal(get("rtpLost"), 2);
  assert.equal(get("rtpDuplicates"), 3);
  assert.equal(get("rtpReordered"), 2);
  assert.equal(get("rtpResyncs"), 0);
  assert.equal(get("rtpInvalid"), 0);
  // nothing outside the rule's extension words was written
  const e = extBase(SLOT);
  for (let k = 0; k < c.length; k++) if (k < e || k >= e + EXT_WORDS) assert.equal(c[k], 0);
});

Deno.test("stream health: RTP sequence numbers wrap; an SSRC change or a big jump resyncs", () => {
  const { feed, get } = analyser(true, false);
  for (let s = 65530; s < 65536 + 10; s++) if (s !== 65535 && s !== 65536) feed(rtp(s & 0xffff, s));
  assert.equal(get("rtpLost"), 2); // 65535 and 0
  feed(rtp(100, 0, 0x55)); // another SSRC
  feed(rtp(101, 0, 0x55));
  assert.equal(get("rtpResyncs"), 1);
  feed(rtp((101 + MAX_DROPOUT + 1) & 0xffff, 0, 0x55)); // beyond the dropout limit
  assert.equal(get("rtpResyncs"), 2);
  assert.equal(get("rtpLost"), 2);
  // a datagram older than the window is a restart too, not a duplicate
  const { feed: f2, get: g2 } = analyser(true, false);
  for (let s = 0; s <= REORDER_WINDOW + 10; s++) f2(rtp(s, 0));
  f2(rtp(5, 0));
  assert.equal(g2("rtpResyncs"), 1);
  assert.equal(g2("rtpDuplicates"), 0);
});

Deno.test("stream health: not RTP version 2 is counted invalid and not analysed", () => {
  const { feed, get } = analyser(true, true);
  const p = rtp(1, 0);
  p[0] = 0x40; // version 1
  feed(p);
  feed(new Uint8Array(8)); // shorter than the header
  assert.equal(get("rtpInvalid"), 2);
  assert.equal(get("rtpPackets"), 0);
  assert.equal(get("tsPackets"), 0);
});

Deno.test("stream health: RFC 3550 jitter from arrival times (µs) and RTP timestamps", () => {
  // 90 kHz, one packet every 10 ms (900 ticks); arrivals alternate 2 ms early/late
  const { feed, get } = analyser(true, false);
  const n = 400;
  let model = 0;
  for (let s = 0; s < n; s++) {
    const arrival = s * 10_000 + (s % 2 === 0 ? 0 : 2_000);
    feed(rtp(s, s * 900), arrival >>> 0);
    if (s > 0) model += (180 - model) / 16; // |D| = 2 ms = 180 ticks every packet
  }
  const us = get("rtpJitterUs");
  assert.ok(Math.abs(us - model / 90 * 1000) < 1e-6, `jitter ${us} µs, model ${model / 90 * 1000}`);
  assert.ok(us > 1900 && us <= 2000, `jitter converges to 2 ms: ${us}`);
  // perfectly paced: no jitter, also across the 2^32 µs wrap of the arrival clock
  const { feed: f2, get: g2 } = analyser(true, false);
  for (let s = 0; s < 50; s++) f2(rtp(s, s * 900), (0xffff0000 + s * 10_000) >>> 0);
  assert.equal(g2("rtpJitterUs"), 0);
});

Deno.test("stream health: MPEG-TS continuity counter errors per PID are counted exactly", () => {
  const { feed, get } = analyser(false, true);
  const pkts: TsPkt[] = [];
  for (let k = 0; k < 40; k++) {
    pkts.push({ pid: 256, cc: k }); // one error: 17 skipped below
    pkts.push({ pid: 257, cc: k });
  }
  // PID 256: skip cc 17 (1 error)
  const skipped = pkts.filter((p) => !(p.pid === 256 && p.cc === 17));
  // PID 257: cc 5 twice (allowed), cc 9 three times (1 error)
  const withDups: TsPkt[] = [];
  for (const p of skipped) {
    withDups.push(p);
    if (p.pid === 257 && p.cc === 5) withDups.push({ ...p });
    if (p.pid === 257 && p.cc === 9) withDups.push({ ...p }, { ...p });
  }
  // adaptation-only packet keeps the counter (no error); one that moves it is an error
  withDups.push({ pid: 256, cc: 39, afc: 2 }, { pid: 256, cc: 3, afc: 2 });
  // a discontinuity indicator lets the counter jump (no error); the null PID is never checked
  withDups.push({ pid: 257, cc: 12, afc: 3, disc: true }, { pid: 257, cc: 13 });
  withDups.push({ pid: 0x1fff, cc: 0 }, { pid: 0x1fff, cc: 9 });
  // 7 TS packets per datagram (1316 bytes), the usual
  for (let i = 0; i < withDups.length; i += 7) feed(ts(withDups.slice(i, i + 7)));
  assert.equal(get("tsPackets"), withDups.length);
  assert.equal(get("tsCcErrors"), 3);
  assert.equal(get("tsSyncErrors"), 0);
});

Deno.test("stream health: MPEG-TS sync byte errors, short payloads, TS inside RTP", () => {
  const { feed, get } = analyser(true, true);
  let seq = 0;
  const send = (p: TsPkt[], extra = 0) => {
    const body = ts(p);
    feed(rtp(seq++, 0, 1, extra ? new Uint8Array([...body, ...new Uint8Array(extra)]) : body));
  };
  send([{ pid: 100, cc: 0 }, { pid: 100, cc: 1 }, { pid: 100, cc: 2, sync: 0x48 }]);
  send([{ pid: 100, cc: 3 }], 10); // a tail that is no whole packet
  send([{ pid: 100, cc: 5 }]); // cc 4 lost (2 was never seen: 3 follows 1 → error too)
  assert.equal(get("tsSyncErrors"), 2);
  assert.equal(get("tsPackets"), 5);
  assert.equal(get("tsCcErrors"), 2);
  assert.equal(get("rtpPackets"), 3);
  assert.equal(get("rtpLost"), 0);
});

Deno.test("stream health: a worker's extension words fold into the retired sums", () => {
  const c = newCounterBlock(), r = newCounterBlock();
  const e = extBase(SLOT);
  c[e + Ext.rtpLost] = 3;
  c[e + Ext.tsCcErrors] = 2;
  c[e + Ext.rtpJitterUs] = 150;
  c[e + Ext.lastRxUs] = 123456;
  r[e + Ext.rtpLost] = 1;
  r[e + Ext.rtpJitterUs] = 400;
  retireRule(r, c, SLOT);
  assert.equal(r[e + Ext.rtpLost], 4); // counts add up
  assert.equal(r[e + Ext.tsCcErrors], 2);
  assert.equal(r[e + Ext.rtpJitterUs], 400); // the jitter keeps the largest
  assert.equal(r[e + Ext.lastRxUs], 0); // a receive time is that worker's
  zeroRule(r, SLOT);
  for (let k = 0; k < EXT_WORDS; k++) assert.equal(r[e + k], 0);
});

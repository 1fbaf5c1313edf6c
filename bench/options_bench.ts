/**
 * `deno bench` of what a rule's `health`, `rate_limit` and redundant-input
 * options, and a capture running on it (`mcr ctl capture`), cost the hot
 * loop per packet (issue 16): `BatchProcessor.process` over one rule and
 * a batch of 256 frames whose UDP payload is RTP carrying 7 MPEG-TS packets
 * (1328 bytes), with each option on its own and all of them together.
 * Every iteration first advances the RTP sequence numbers, the TS
 * continuity counters and the kernel receive times of the batch (so the
 * analysis sees a live stream, not 256 duplicates), in every variant
 * alike: the differences between variants are the options' costs. A
 * capture copies every frame into its ring (`capture`: the ring is emptied
 * at each iteration, as the supervisor drains it from another thread) or
 * finds no room and counts a capture drop (`capture/full`).
 *
 *     deno bench bench/options_bench.ts
 *     deno run -A bench/options_check.ts     # ns/packet per variant, and the extra cost of each
 *
 * @module
 */
import { buildFrame, packFrames } from "../tests/fixtures/frames.ts";
import { BatchProcessor } from "../src/datapath/batch.ts";
import { buildTables, type RuleSpec, Slots } from "../src/relay/tables.ts";
import { compileTable } from "../src/datapath/match.ts";
import { inBase, newCounterBlock } from "../src/datapath/counters.ts";
import { ETH_HLEN } from "../src/datapath/link_types.ts";
import type { RateLimit } from "../src/datapath/policer.ts";
import type { TableHealth } from "../src/datapath/messages.ts";
import { RxDescWord } from "../ffi/mod.ts";
import { newArbiterState } from "../src/datapath/arbiter.ts";
import { CapHdr, newCaptureRing, WorkerCaptures } from "../src/datapath/capture.ts";

/** Frames per batch. */
export const BATCH = 256;
/** The variants: rule options, by bench name. */
export const VARIANTS: Record<
  string,
  {
    health?: TableHealth;
    rateLimit?: RateLimit;
    outRateLimit?: RateLimit;
    /** A path of a redundant rule (arbiter.ts): mode and reorder_ms (µs). */
    redundancy?: { mode: "merge" | "failover"; reorderUs?: number };
    /** The payload is not RTP (its first byte says version 0): identified by hash. */
    notRtp?: boolean;
    capture?: "draining" | "full";
  }
> = {
  "none": {},
  "health": { health: { silenceMs: 1000, minPps: 0, clockRate: 90_000 } },
  "health/rtp": { health: { silenceMs: 1000, minPps: 0, clockRate: 90_000, payload: "rtp" } },
  "health/ts": { health: { silenceMs: 1000, minPps: 0, clockRate: 90_000, payload: "ts" } },
  "health/rtp+ts": {
    health: { silenceMs: 1000, minPps: 0, clockRate: 90_000, payload: "rtp+ts" },
  },
  // limits far above the offered rate: every datagram passes (the bucket's arithmetic only)
  "rate_limit": { rateLimit: { pps: 1e8, bps: 0, burstPackets: 1e6, burstBytes: 1500 } },
  "rate_limit/pps+bps": {
    rateLimit: { pps: 1e8, bps: 1e12, burstPackets: 1e6, burstBytes: 1e9 },
  },
  "output_rate_limit": {
    outRateLimit: { pps: 1e8, bps: 0, burstPackets: 1e6, burstBytes: 1500 },
  },
  // a limit far below it: nearly every datagram is policed (the drop path)
  "rate_limit/dropping": { rateLimit: { pps: 1, bps: 0, burstPackets: 1, burstBytes: 1500 } },
  // a path of a redundant rule, the first copy of every datagram (all forwarded)
  "merge/rtp": { redundancy: { mode: "merge" } },
  "merge/rtp/reorder_ms": { redundancy: { mode: "merge", reorderUs: 50_000 } },
  "merge/hash (1328-byte payload)": { redundancy: { mode: "merge" }, notRtp: true },
  "failover/rtp (active path)": { redundancy: { mode: "failover" } },
  "capture": { capture: "draining" },
  "capture/full": { capture: "full" },
  "all": {
    health: { silenceMs: 1000, minPps: 0, clockRate: 90_000, payload: "rtp+ts" },
    rateLimit: { pps: 1e8, bps: 1e12, burstPackets: 1e6, burstBytes: 1e9 },
    outRateLimit: { pps: 1e8, bps: 0, burstPackets: 1e6, burstBytes: 1500 },
  },
};

const RTP = 12, TS = 188, PER = 7;

/** One rule with the variant's options and a batch of RTP+TS frames for it. */
function fixture(v: (typeof VARIANTS)[string]) {
  const spec: RuleSpec = {
    id: "r0",
    name: "r0",
    input: {
      interface: "r0",
      group: 0xef010101,
      prefixLen: 32,
      port: 5000,
      source: 0,
      vlan: -1,
      joins: [],
    },
    outputs: [{
      interface: "r1",
      dst: 0xef0a0101,
      hostBits: 0,
      port: 6000,
      srcIp: 0,
      srcPort: 0,
      ttl: 0,
      tos: 0,
      ...(v.outRateLimit ? { rateLimit: v.outRateLimit } : {}),
    }],
    ...(v.rateLimit ? { rateLimit: v.rateLimit } : {}),
    ...(v.health ? { health: v.health } : {}),
    ...(v.redundancy
      ? {
        redundancy: {
          rule: "r0",
          mode: v.redundancy.mode,
          input: 0,
          inputs: 2,
          state: newArbiterState(8192),
          window: 8192,
          maxDelayUs: 50_000,
          reorderUs: v.redundancy.reorderUs ?? 0,
          failoverUs: 200_000,
          revertive: true,
        },
      }
      : {}),
  };
  const payload = new Uint8Array(RTP + PER * TS).fill(0xff);
  payload[0] = v.notRtp ? 0x00 : 0x80;
  payload[1] = 33;
  for (let k = 0; k < PER; k++) {
    const t = RTP + k * TS;
    payload.set([0x47, 0x01, 0x00, 0x10], t);
  }
  const frames = Array.from(
    { length: BATCH },
    () => buildFrame({ dst: "239.1.1.1", dport: 5000, payload, ttl: 8 }),
  );
  const { buf, placed } = packFrames(frames, 2048, 66);
  const desc = new Uint32Array(BATCH * 8);
  placed.forEach((p, k) => {
    desc[k * 8 + RxDescWord.offset] = p.offset;
    desc[k * 8 + RxDescWord.snaplen] = p.length;
    desc[k * 8 + RxDescWord.len] = p.length;
  });
  const pay = placed.map((p) => p.offset + ETH_HLEN + 20 + 8);
  const proc = new BatchProcessor(
    newCounterBlock(),
    new Uint32Array(BATCH * 4 * 8),
    BATCH * 4,
    () => {},
  );
  const table = buildTables([spec], new Slots(), 1, ["r0"]).get("r0")!;
  const lookup = compileTable(table);
  // a capture on the rule, as a worker starts one (datapath/capture.ts)
  const ring = newCaptureRing();
  const hdr = new Int32Array(ring, 0, 16);
  if (v.capture) {
    const r = table.rules[0];
    new WorkerCaptures((_s, slot) => lookup.get(slot)).start({
      id: 1,
      ring,
      count: Number.MAX_SAFE_INTEGER,
      input: 0,
      slot: 0,
      rule: r.slot,
      ruleId: r.id,
    });
    // full: no room for a frame, ever (the reader never takes what was written)
    if (v.capture === "full") Atomics.store(hdr, CapHdr.write, ring.byteLength - 64);
  }
  let seq = 0, t = 0;
  /** Advance the batch: RTP sequence numbers, TS continuity counters, receive times (50 µs apart). */
  const advance = () => {
    for (let i = 0; i < BATCH; i++) {
      const o = pay[i];
      buf[o + 2] = (seq >> 8) & 0xff;
      buf[o + 3] = seq & 0xff;
      const cc = seq * PER;
      for (let k = 0; k < PER; k++) buf[o + RTP + k * TS + 3] = 0x10 | ((cc + k) & 0x0f);
      seq = (seq + 1) & 0xffff;
      desc[i * 8 + RxDescWord.tstampUs] = t || 1;
      t = (t + 50) >>> 0;
    }
    // the supervisor's drain, out of the loop being measured (another thread in the relay)
    if (v.capture === "draining") Atomics.store(hdr, CapHdr.read, Atomics.load(hdr, CapHdr.write));
  };
  return { buf, desc, proc, lookup, base: inBase(0), advance };
}

for (const [name, v] of Object.entries(VARIANTS)) {
  const f = fixture(v);
  Deno.bench({
    name: `options/${name}`,
    group: "options",
    baseline: name === "none",
    fn() {
      f.advance();
      f.proc.process(f.buf, f.desc, BATCH, f.lookup, f.base, ETH_HLEN);
    },
  });
}

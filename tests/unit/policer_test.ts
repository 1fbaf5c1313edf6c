/**
 * Policing: the token bucket (src/datapath/policer.ts) over kernel receive
 * times, and `rate_limit` on a rule and on an output in the hot loop
 * (`BatchProcessor.process`): what exceeds a limit is dropped and counted as
 * `policed` — per output, in the drop totals, and for a rule's own limit in
 * its extension words — and every datagram is accounted for.
 */
import assert from "node:assert/strict";
import { buildFrame, packFrames } from "../fixtures/frames.ts";
import { BatchProcessor } from "../../src/datapath/batch.ts";
import {
  Ext,
  extBase,
  IN_DROP,
  inBase,
  newCounterBlock,
  Out,
  OUT_BASE,
  OUT_WORDS,
} from "../../src/datapath/counters.ts";
import { Drop } from "../../src/datapath/packet.ts";
import { compileTable } from "../../src/datapath/match.ts";
import { Policer, type RateLimit } from "../../src/datapath/policer.ts";
import { normalizeRateLimit } from "../../src/config/stream_options.ts";
import { buildTables, type RuleSpec, Slots } from "../../src/relay/tables.ts";
import { FWD_DESC_WORDS, RX_DESC_WORDS, RxDescWord } from "../../ffi/mod.ts";
import { parseIPv4 } from "../../src/common/net.ts";

const limit = (l: Partial<RateLimit>): RateLimit => ({
  pps: 0,
  bps: 0,
  burstPackets: 1,
  burstBytes: 1500,
  ...l,
});

Deno.test("policer: a packet-rate bucket passes rate × time + burst, the rest is refused", () => {
  // 20 kpps offered for 2 s to a 5 kpps limit with a burst of 50
  const p = new Policer(limit({ pps: 5000, burstPackets: 50 }));
  let passed = 0;
  const n = 40_000;
  for (let i = 0; i < n; i++) if (p.admit(i * 50, 100)) passed++;
  const seconds = (n - 1) * 50 / 1e6;
  assert.ok(passed <= 5000 * seconds + 50, `passed ${passed}`);
  assert.ok(passed >= 5000 * seconds + 50 - 1, `passed ${passed}`);
});

Deno.test("policer: a bit-rate bucket counts payload bytes; both limits at once", () => {
  // 1 Mbit/s = 125,000 bytes/s; 1000-byte datagrams at 1000/s for 1 s: 125 pass (+ burst)
  const p = new Policer(limit({ bps: 1_000_000, burstBytes: 2000 }));
  let passed = 0;
  for (let i = 0; i < 1000; i++) if (p.admit(i * 1000, 1000)) passed++;
  assert.ok(passed >= 125 && passed <= 127, `passed ${passed}`);
  // the stricter of the two decides
  const q = new Policer(limit({ pps: 10, bps: 1_000_000_000, burstPackets: 1, burstBytes: 1e6 }));
  let ok = 0;
  for (let i = 0; i < 1000; i++) if (q.admit(i * 1000, 100)) ok++;
  assert.ok(ok >= 10 && ok <= 11, `passed ${ok}`);
  // a datagram larger than the byte bucket never passes
  const r = new Policer(limit({ bps: 8_000_000, burstBytes: 1500 }));
  assert.equal(r.admit(0, 1501), false);
  assert.equal(r.admit(10_000_000, 1501), false);
});

Deno.test("policer: the µs clock may wrap; an older timestamp refills nothing", () => {
  const p = new Policer(limit({ pps: 1000, burstPackets: 1 }));
  assert.equal(p.admit(0xffffff00, 1), true);
  assert.equal(p.admit(0xffffff10, 1), false); // 16 µs later: no token yet
  assert.equal(p.admit((0xffffff00 + 1000) >>> 0, 1), true); // 1 ms later, across the wrap
  assert.equal(p.admit(5, 1), false); // "earlier": no refill
  // default buckets: 50 ms of the rate, at least one packet / 1500 bytes
  assert.equal(normalizeRateLimit({ pps: 5000 }).burst_packets, 250);
  assert.equal(normalizeRateLimit({ bps: 8000 }).burst_bytes, 1500);
  assert.equal(normalizeRateLimit({ bps: 80_000_000 }).burst_bytes, 500_000);
});

const ip = (s: string) => parseIPv4(s)!;

function spec(rateLimit?: RateLimit, outLimits: (RateLimit | undefined)[] = [undefined]): RuleSpec {
  return {
    id: "r",
    name: "r",
    input: {
      interface: "r0",
      group: ip("239.1.1.1"),
      prefixLen: 32,
      port: 5001,
      source: 0,
      vlan: -1,
      joins: [],
    },
    outputs: outLimits.map((l, k) => ({
      interface: "r1",
      dst: ip("239.2.2.2"),
      hostBits: 0,
      port: 7000 + k,
      srcIp: 0,
      srcPort: 0,
      ttl: 5,
      tos: 0,
      ...(l ? { rateLimit: l } : {}),
    })),
    ...(rateLimit ? { rateLimit } : {}),
  };
}

/** Run `n` frames 100 µs apart (10 kpps) through a processor over rule `r`, in batches of 64. */
function run(r: RuleSpec, n: number) {
  const frame = buildFrame({ dst: "239.1.1.1", dport: 5001, payload: 100 });
  const batch = 64;
  const { buf, placed } = packFrames(Array.from({ length: batch }, () => frame));
  const desc = new Uint32Array(batch * RX_DESC_WORDS);
  const table = buildTables([r], new Slots(), 1, ["r0"]).get("r0")!;
  const counters = newCounterBlock();
  const fdesc = new Uint32Array(4096 * FWD_DESC_WORDS);
  const proc = new BatchProcessor(counters, fdesc, 4096, () => {});
  const lookup = compileTable(table);
  const base = inBase(0);
  const sent = new Array<number>(r.outputs.length).fill(0);
  let t = 0;
  for (let done = 0; done < n; done += batch) {
    const m = Math.min(batch, n - done);
    placed.slice(0, m).forEach((p, k) => {
      const b = k * RX_DESC_WORDS;
      desc[b + RxDescWord.offset] = p.offset;
      desc[b + RxDescWord.snaplen] = p.length;
      desc[b + RxDescWord.len] = p.length;
      desc[b + RxDescWord.tstampUs] = t;
      t += 100;
    });
    const written = proc.process(buf, desc, m, lookup, base, 14);
    for (let d = 0; d < written; d++) {
      const tmpl = fdesc[d * FWD_DESC_WORDS + 4];
      sent[table.rules[0].outputs.findIndex((o) => o.slot === tmpl)]++;
    }
  }
  const rule = table.rules[0];
  const out = (k: number, w: keyof typeof Out) =>
    counters[OUT_BASE + rule.outputs[k].slot * OUT_WORDS + Out[w]];
  return {
    sent,
    out,
    ext: (w: keyof typeof Ext) => counters[extBase(rule.slot) + Ext[w]],
    drops: counters[base + IN_DROP + Drop.policed],
  };
}

Deno.test("policing in the hot loop: a rule's limit drops for every output, counted", () => {
  // 10 kpps for 1 s through a 2.5 kpps rule limit, burst 10: two outputs
  const n = 10_000;
  const r = run(spec(limit({ pps: 2500, burstPackets: 10 }), [undefined, undefined]), n);
  const policed = r.ext("policed");
  assert.ok(policed > 0);
  assert.equal(r.sent[0], n - policed);
  assert.equal(r.sent[1], n - policed);
  assert.ok(r.sent[0] <= 2500 * (n - 1) * 100 / 1e6 + 10, `sent ${r.sent[0]}`);
  assert.ok(r.sent[0] >= 2500 * (n - 1) * 100 / 1e6, `sent ${r.sent[0]}`);
  assert.equal(r.out(0, "policed"), policed);
  assert.equal(r.out(1, "policed"), policed);
  assert.equal(r.ext("policedBytes"), policed * 100);
  assert.equal(r.drops, 2 * policed);
});

Deno.test("policing in the hot loop: an output's limit drops on that output only", () => {
  const n = 10_000;
  const r = run(spec(undefined, [limit({ pps: 1000, burstPackets: 5 }), undefined]), n);
  assert.equal(r.sent[1], n); // the other output gets everything
  assert.equal(r.sent[0] + r.out(0, "policed"), n);
  assert.ok(r.sent[0] <= 1000 * (n - 1) * 100 / 1e6 + 5, `sent ${r.sent[0]}`);
  assert.ok(r.sent[0] >= 1000, `sent ${r.sent[0]}`);
  assert.equal(r.out(1, "policed"), 0);
  assert.equal(r.ext("policed"), 0);
  assert.equal(r.drops, r.out(0, "policed"));
});

Deno.test("policing in the hot loop: a rule without options writes no extension word", () => {
  const r = run(spec(), 1000);
  assert.equal(r.sent[0], 1000);
  assert.equal(r.ext("policed"), 0);
  assert.equal(r.drops, 0);
});

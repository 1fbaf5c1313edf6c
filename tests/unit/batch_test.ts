/**
 * `BatchProcessor.process` itself — the relay's hot loop — over synthetic
 * ring memory: every frame-level drop reason, (S,G) precedence over (*,G),
 * VLAN matching, fixed and decremented TTL (and expiry), several outputs,
 * outputs not installed, and the forward descriptors it writes (checked word
 * by word against the frames), including a flush when they fill up; a ring of
 * a link without a link-layer header (tun) beside an Ethernet one.
 */
import assert from "node:assert/strict";
import { buildFrame, type FrameOptions, packFrames } from "../fixtures/frames.ts";
import { BatchProcessor } from "../../src/datapath/batch.ts";
import {
  In,
  IN_DROP,
  IN_WORDS,
  inBase,
  newCounterBlock,
  Out,
  OUT_BASE,
  OUT_WORDS,
  RULE_BASE,
  RULE_WORDS,
} from "../../src/datapath/counters.ts";
import { Drop } from "../../src/datapath/packet.ts";
import { ETH_HLEN } from "../../src/datapath/link_types.ts";
import { compileTable } from "../../src/datapath/match.ts";
import { buildTables, type RuleSpec, Slots } from "../../src/relay/tables.ts";
import type { TableRule } from "../../src/datapath/messages.ts";
import { FWD_DESC_WORDS, FwdDescWord, RX_DESC_WORDS, RxDescWord } from "../../ffi/mod.ts";
import { parseIPv4 } from "../../src/common/net.ts";

const ip = (s: string) => parseIPv4(s)!;

/** A rule on r0 with outputs to r1 (TTL 0 = decrement). */
function rule(
  name: string,
  group: string,
  port: number,
  outs: { dst: string; ttl: number }[],
  opts: { source?: string; vlan?: number } = {},
): RuleSpec {
  return {
    id: name,
    name,
    input: {
      interface: "r0",
      group: ip(group),
      prefixLen: 32,
      port,
      source: opts.source ? ip(opts.source) : 0,
      vlan: opts.vlan ?? -1,
      joins: [ip(group)],
    },
    outputs: outs.map((o, k) => ({
      interface: "r1",
      dst: ip(o.dst),
      hostBits: 0,
      port: 7000 + k,
      srcIp: 0,
      srcPort: 0,
      ttl: o.ttl,
      tos: 0,
    })),
  };
}

/**
 * One batch: frames in ring memory, their descriptors, a processor over `rules`. With `ip` the
 * frames lose their Ethernet header (`len` cuts them shorter still), as a tun ring holds them.
 */
function batch(
  rules: RuleSpec[],
  frames: { opts: FrameOptions; status?: number; tci?: number; cut?: number; len?: number }[],
  maxDesc = 64,
  ip = false,
) {
  const built = frames.map((f) => {
    const frame = buildFrame(f.opts);
    return ip ? frame.slice(ETH_HLEN, ETH_HLEN + (f.len ?? frame.length)) : frame;
  });
  const { buf, placed } = packFrames(built);
  const desc = new Uint32Array(frames.length * RX_DESC_WORDS);
  placed.forEach((p, k) => {
    const b = k * RX_DESC_WORDS;
    desc[b + RxDescWord.offset] = p.offset;
    desc[b + RxDescWord.snaplen] = frames[k].cut ?? p.length;
    desc[b + RxDescWord.len] = p.length;
    desc[b + RxDescWord.status] = frames[k].status ?? 0;
    desc[b + RxDescWord.vlanTci] = frames[k].tci ?? 0;
  });
  const table = buildTables(rules, new Slots(), 1, ["r0"]).get("r0")!;
  const counters = newCounterBlock();
  const fdesc = new Uint32Array(maxDesc * FWD_DESC_WORDS);
  const flushed: number[][] = [];
  const proc = new BatchProcessor(counters, fdesc, maxDesc, (n) => {
    flushed.push(Array.from(fdesc.subarray(0, n * FWD_DESC_WORDS)));
  });
  const lookup = compileTable(table);
  // input slot 3: the counts must land in that interface's section, nowhere else
  const base = inBase(3);
  const byName = new Map(table.rules.map((r) => [r.name, r]));
  return {
    buf,
    placed,
    desc,
    counters,
    fdesc,
    proc,
    flushed,
    byName,
    lookup,
    base,
    n: frames.length,
  };
}

/** The forward descriptors `m` written in `fdesc`, as objects. */
function descriptors(fdesc: Uint32Array, m: number) {
  const out = [];
  for (let i = 0; i < m; i++) {
    const d = i * FWD_DESC_WORDS;
    out.push({
      frame: fdesc[d + FwdDescWord.frame],
      l3: fdesc[d + FwdDescWord.l3Offset],
      off: fdesc[d + FwdDescWord.payloadOff],
      len: fdesc[d + FwdDescWord.payloadLen],
      tmpl: fdesc[d + FwdDescWord.tmpl],
      ttl: fdesc[d + FwdDescWord.ttl],
    });
  }
  return out;
}

const out = (r: TableRule, k: number, what: keyof typeof Out, c: Float64Array) =>
  c[OUT_BASE + r.outputs[k].slot * OUT_WORDS + Out[what]];
const rulePackets = (r: TableRule, c: Float64Array) => c[RULE_BASE + r.slot * RULE_WORDS];

Deno.test("batch: every frame-level drop reason is counted under its name", () => {
  const rules = [rule("cam", "239.1.1.1", 5001, [{ dst: "239.10.1.1", ttl: 5 }])];
  const b = batch(rules, [
    { opts: { ethertype: 0x0806 } }, // not_ipv4 (ARP)
    { opts: { protocol: 6 } }, // not_udp
    { opts: { mf: true } }, // fragment
    { opts: { fragmentOffset: 8 } }, // fragment
    { opts: { override: { udpLength: 7 } } }, // malformed
    { opts: { payload: 100 }, cut: 60 }, // truncated
    { opts: { vlans: [{ vid: 5 }, { vid: 6 }] } }, // vlan (QinQ)
    { opts: { override: { ipChecksum: 0x1234 } } }, // bad_checksum (would match the rule)
    { opts: { dst: "239.9.9.9" } }, // no_match
    { opts: { dport: 5002 } }, // no_match (port)
    { opts: {} }, // matched
  ]);
  const m = b.proc.process(b.buf, b.desc, b.n, b.lookup, b.base, ETH_HLEN);
  const c = b.counters;
  assert.equal(c[b.base + IN_DROP + Drop.not_ipv4], 1);
  assert.equal(c[b.base + IN_DROP + Drop.not_udp], 1);
  assert.equal(c[b.base + IN_DROP + Drop.fragment], 2);
  assert.equal(c[b.base + IN_DROP + Drop.malformed], 1);
  assert.equal(c[b.base + IN_DROP + Drop.truncated], 1);
  assert.equal(c[b.base + IN_DROP + Drop.vlan], 1);
  assert.equal(c[b.base + IN_DROP + Drop.bad_checksum], 1);
  assert.equal(c[b.base + IN_DROP + Drop.no_match], 2);
  assert.equal(c[b.base + In.frames], 11);
  assert.equal(c[b.base + In.matched], 1);
  assert.equal(m, 1);
  // another interface's section saw nothing
  for (let k = 0; k < IN_WORDS; k++) assert.equal(c[inBase(2) + k] + c[inBase(4) + k], 0);
  assert.equal(rulePackets(b.byName.get("cam")!, c), 1);
  // frames = matched + frame drops
  const drops = [
    Drop.not_ipv4,
    Drop.not_udp,
    Drop.fragment,
    Drop.malformed,
    Drop.truncated,
    Drop.vlan,
    Drop.bad_checksum,
    Drop.no_match,
  ].reduce((a: number, d: number) => a + c[b.base + IN_DROP + d], 0);
  assert.equal(c[b.base + In.frames], c[b.base + In.matched] + drops);
});

Deno.test("batch: (S,G) beats (*,G); VLAN must match; descriptors point at each datagram", () => {
  const rules = [
    rule("any", "239.1.1.1", 5001, [{ dst: "239.10.0.1", ttl: 3 }]),
    rule("ssm", "239.1.1.1", 5001, [{ dst: "239.20.0.1", ttl: 4 }], { source: "10.0.0.7" }),
    rule("v7", "239.1.1.1", 5001, [{ dst: "239.30.0.1", ttl: 6 }], { vlan: 7 }),
  ];
  const b = batch(rules, [
    { opts: { src: "10.0.0.1", payload: 40 } }, // any
    { opts: { src: "10.0.0.7", payload: 50 } }, // ssm
    { opts: { src: "10.0.0.7", payload: 60, vlans: [{ vid: 7 }] } }, // v7, in-band tag
    { opts: { src: "10.0.0.1", payload: 70 }, status: 0x10, tci: 7 }, // v7, stripped tag
    { opts: { src: "10.0.0.1", vlans: [{ vid: 8 }] } }, // no rule for VLAN 8
    { opts: { src: "10.0.0.1", vlans: [{ vid: 0 }] } }, // priority tag = untagged: any
  ]);
  const m = b.proc.process(b.buf, b.desc, b.n, b.lookup, b.base, ETH_HLEN);
  const d = descriptors(b.fdesc, m);
  const r = (n: string) => b.byName.get(n)!;
  assert.deepEqual(d.map((x) => x.tmpl), [
    r("any").outputs[0].slot,
    r("ssm").outputs[0].slot,
    r("v7").outputs[0].slot,
    r("v7").outputs[0].slot,
    r("any").outputs[0].slot,
  ]);
  assert.deepEqual(d.map((x) => x.frame), [0, 1, 2, 3, 5]);
  assert.deepEqual(d.map((x) => x.ttl), [3, 4, 6, 6, 3]);
  assert.deepEqual(d.map((x) => x.len), [40, 50, 60, 70, 32]);
  // offsets: IPv4 header after Ethernet (+ in-band tag), payload after IPv4 + UDP
  const tagged = [false, false, true, false, false, true];
  d.forEach((x) => {
    const base = b.placed[x.frame].offset + 14 + (tagged[x.frame] ? 4 : 0);
    assert.equal(x.l3, base);
    assert.equal(x.off, base + 20 + 8);
    assert.equal(b.buf[x.off], 0, "payload's counting pattern starts at 0");
  });
  assert.equal(b.counters[b.base + IN_DROP + Drop.no_match], 1);
  assert.equal(rulePackets(r("any"), b.counters), 2);
  assert.equal(rulePackets(r("ssm"), b.counters), 1);
  assert.equal(rulePackets(r("v7"), b.counters), 2);
});

Deno.test("batch: several outputs, TTL decrement and expiry, outputs not installed, flush", () => {
  const rules = [rule("fan", "239.1.1.1", 5001, [
    { dst: "239.10.0.1", ttl: 0 }, // decrement
    { dst: "239.10.0.2", ttl: 9 }, // fixed
    { dst: "239.10.0.3", ttl: 0 }, // decrement, not installed
  ])];
  const b = batch(rules, [
    { opts: { ttl: 5 } },
    { opts: { ttl: 1 } }, // expires on the decrementing outputs
    { opts: { ttl: 2 } },
  ], 2); // room for 2 descriptors: the processor flushes
  const fan = b.byName.get("fan")!;
  b.proc.broken[fan.outputs[2].slot] = 1;
  const m = b.proc.process(b.buf, b.desc, b.n, b.lookup, b.base, ETH_HLEN);
  const c = b.counters;
  // written: frame0 out0 (ttl 4), out1 (9); frame1 out1 (9); frame2 out0 (1), out1 (9)
  const all = [
    ...b.flushed.flatMap((f) => descriptors(Uint32Array.from(f), f.length / FWD_DESC_WORDS)),
    ...descriptors(b.fdesc, m),
  ];
  assert.deepEqual(all.map((x) => [x.frame, x.tmpl, x.ttl]), [
    [0, fan.outputs[0].slot, 4],
    [0, fan.outputs[1].slot, 9],
    [1, fan.outputs[1].slot, 9],
    [2, fan.outputs[0].slot, 1],
    [2, fan.outputs[1].slot, 9],
  ]);
  assert.equal(b.flushed.length, 2, "flushed twice when the 2 descriptors were full");
  assert.equal(out(fan, 0, "ttlExpired", c), 1);
  assert.equal(out(fan, 2, "ttlExpired", c), 1);
  assert.equal(out(fan, 1, "ttlExpired", c), 0);
  assert.equal(c[b.base + IN_DROP + Drop.ttl_expired], 2);
  assert.equal(out(fan, 2, "unavailable", c), 2, "frames 0 and 2 skipped for the broken output");
  assert.equal(rulePackets(fan, c), 3);
  // every matched datagram per output: a descriptor, or counted
  for (let k = 0; k < 3; k++) {
    const written = all.filter((x) => x.tmpl === fan.outputs[k].slot).length;
    assert.equal(
      written + out(fan, k, "ttlExpired", c) + out(fan, k, "unavailable", c),
      rulePackets(fan, c),
      `output ${k}`,
    );
  }
});

Deno.test("batch: a tun ring (link header 0) beside an Ethernet ring, one processor", () => {
  const rules = [rule("cam", "239.1.1.1", 5001, [{ dst: "239.10.0.1", ttl: 0 }])];
  const tun = batch(
    rules,
    [
      { opts: { ttl: 5, payload: 40 } }, // matched
      { opts: { override: { version: 5 } } }, // neither IPv4 nor IPv6 on a tun: not_ipv4
      { opts: {}, len: 12 }, // IPv4 header cut short: malformed
      { opts: { protocol: 6 } }, // not_udp
      { opts: { dport: 5002 } }, // no_match
      { opts: { ttl: 9, payload: 50 } }, // matched
    ],
    64,
    true,
  );
  const m = tun.proc.process(tun.buf, tun.desc, tun.n, tun.lookup, tun.base, 0);
  const c = tun.counters;
  const drop = (d: number) => c[tun.base + IN_DROP + d];
  assert.deepEqual(
    [drop(Drop.not_ipv4), drop(Drop.malformed), drop(Drop.not_udp), drop(Drop.no_match)],
    [1, 1, 1, 1],
  );
  assert.equal(c[tun.base + In.frames], 6);
  assert.equal(c[tun.base + In.matched], 2);
  const d = descriptors(tun.fdesc, m);
  assert.deepEqual(d.map((x) => [x.frame, x.ttl, x.len]), [[0, 4, 40], [5, 8, 50]]);
  for (const x of d) {
    assert.equal(x.l3, tun.placed[x.frame].offset, "the IPv4 header is the frame's first byte");
    assert.equal(x.off, x.l3 + 20 + 8);
  }
  // The same processor, an Ethernet ring next: its frames parse with their header again.
  const eth = batch(rules, [{ opts: { ttl: 5, payload: 40 } }]);
  const m2 = tun.proc.process(eth.buf, eth.desc, eth.n, tun.lookup, tun.base, ETH_HLEN);
  assert.equal(m2, 1);
  assert.equal(descriptors(tun.fdesc, m2)[0].l3, eth.placed[0].offset + ETH_HLEN);
  assert.equal(c[tun.base + In.matched], 3);
});

/**
 * The IPv6 data path (issue 14) over synthetic frames: the parser
 * (packet6.ts) with its extension-header walk and every drop reason, the
 * IPv6 match table (exact address, source-specific before any source, port,
 * VLAN, addresses whose folded keys collide), and the batch loop: IPv6
 * descriptors carry the IPv6 flag, the hop limit decrements and expires,
 * and an IPv4 table is untouched by IPv6 rules.
 */
import assert from "node:assert/strict";
import { buildFrame6, buildFrame6Info, type Frame6Options } from "../fixtures/frames6.ts";
import { buildFrame, packFrames } from "../fixtures/frames.ts";
import { Drop, ParsedPacket, parseFrame } from "../../src/datapath/packet.ts";
import { MAX_EXTENSION_HEADERS } from "../../src/datapath/packet6.ts";
import { ETH_HLEN } from "../../src/datapath/link_types.ts";
import { compileTable, fold6, matchRule6 } from "../../src/datapath/match.ts";
import { buildTables, type RuleSpec, Slots } from "../../src/relay/tables.ts";
import { BatchProcessor } from "../../src/datapath/batch.ts";
import {
  IN_DROP,
  inBase,
  newCounterBlock,
  Out,
  OUT_BASE,
  OUT_WORDS,
} from "../../src/datapath/counters.ts";
import { FWD_DESC_WORDS, FwdDescWord, FwdFlag, RX_DESC_WORDS, RxDescWord } from "../../ffi/mod.ts";
import { type Ip6, parseIPv6 } from "../../src/common/net6.ts";
import { parseIPv4 } from "../../src/common/net.ts";

const a6 = (s: string): Ip6 => parseIPv6(s)!;

function parse(f: Uint8Array, linkHeader = ETH_HLEN) {
  const out = new ParsedPacket();
  const rc = parseFrame(f, 0, f.length, f.length, 0, 0, linkHeader, out);
  return { rc, out };
}

const rcOf = (o: Frame6Options) => parse(buildFrame6(o)).rc;

Deno.test("IPv6 parser: every field of a valid datagram, with and without extension headers", () => {
  for (const ext of [[], [{ type: 0 }, { type: 60, bytes: 16 }, { type: 43 }]]) {
    const info = buildFrame6Info({
      src: "2001:db8::5",
      dst: "ff3e::1:2",
      sport: 1234,
      dport: 5001,
      hops: 9,
      tclass: 0xb8,
      payload: 100,
      ext,
    });
    const { rc, out } = parse(info.frame);
    assert.equal(rc, -1, `ext ${ext.length}`);
    assert.equal(out.family, 6);
    assert.equal(out.l3Offset, info.l3);
    assert.equal(out.l4Offset, info.l4);
    assert.equal(out.payloadOffset, info.payload);
    assert.equal(out.payloadLength, 100);
    assert.equal(out.ttl, 9);
    assert.equal(out.tos, 0xb8);
    assert.equal(out.sport, 1234);
    assert.equal(out.dport, 5001);
    assert.deepEqual([out.d0, out.d1, out.d2, out.d3].map((w) => w >>> 0), a6("ff3e::1:2"));
    assert.deepEqual([out.s0, out.s1, out.s2, out.s3].map((w) => w >>> 0), a6("2001:db8::5"));
    assert.notEqual(out.udpChecksum, 0);
  }
  // behind a VLAN tag, and on a link without a link-layer header
  const tagged = parse(buildFrame6({ vlan: 7 }));
  assert.equal(tagged.rc, -1);
  assert.equal(tagged.out.vlan, 7);
  assert.equal(parse(buildFrame6().subarray(ETH_HLEN), 0).rc, -1);
  // Ethernet padding after the payload length is ignored
  const padded = new Uint8Array(buildFrame6({ payload: 1 }).length + 20);
  padded.set(buildFrame6({ payload: 1 }));
  assert.equal(parse(padded).rc, -1);
});

Deno.test("IPv6 parser: hostile headers are counted under their reason", () => {
  const cases: [string, Frame6Options, number][] = [
    ["fragment header", { ext: [{ type: 44 }] }, Drop.fragment],
    ["fragment after hop-by-hop", { ext: [{ type: 0 }, { type: 44 }] }, Drop.fragment],
    ["ICMPv6", { proto: 58 }, Drop.not_udp],
    ["TCP after destination options", { ext: [{ type: 60 }], proto: 6 }, Drop.not_udp],
    ["no next header", { proto: 59 }, Drop.not_udp],
    ["ESP", { proto: 50 }, Drop.not_udp],
    ["hop-by-hop not first", { ext: [{ type: 60 }, { type: 0 }] }, Drop.malformed],
    ["routing header with segments left", {
      ext: [{ type: 43, segmentsLeft: 1 }],
    }, Drop.ipv6_extension],
    [
      "a chain longer than the walk",
      { ext: Array.from({ length: MAX_EXTENSION_HEADERS + 1 }, () => ({ type: 60 })) },
      Drop.ipv6_extension,
    ],
    ["jumbogram (payload length 0)", { override: { payloadLength: 0 } }, Drop.malformed],
    ["payload length beyond the frame", { override: { payloadLength: 200 } }, Drop.malformed],
    ["payload length short of UDP", { override: { payloadLength: 4 } }, Drop.malformed],
    ["UDP length longer", { override: { udpLength: 8 + 32 + 8 } }, Drop.malformed],
    ["UDP length shorter", { override: { udpLength: 8 + 32 - 8 } }, Drop.malformed],
    ["UDP length 0", { override: { udpLength: 0 } }, Drop.malformed],
    ["version 4 under the IPv6 ethertype", { override: { version: 4 } }, Drop.malformed],
  ];
  for (const [what, o, want] of cases) assert.equal(rcOf(o), want, what);
  // the exact chain length is walked
  const longest = Array.from({ length: MAX_EXTENSION_HEADERS }, () => ({ type: 60 }));
  assert.equal(rcOf({ ext: longest }), -1);
  // an extension header whose length runs past the payload
  const f = buildFrame6({ ext: [{ type: 60 }] });
  f[ETH_HLEN + 40 + 1] = 200;
  assert.equal(parse(f).rc, Drop.malformed);
  // every cut of a valid frame is malformed, never read past the end
  const whole = buildFrame6({ ext: [{ type: 0 }] });
  for (let len = ETH_HLEN; len < whole.length; len++) {
    const out = new ParsedPacket();
    assert.equal(parseFrame(whole, 0, len, len, 0, 0, ETH_HLEN, out), Drop.malformed, `${len}`);
  }
});

/** An IPv6 rule on r0 with outputs to r1 (an output `dst` with ":" is IPv6). */
function rule6(
  name: string,
  group: string,
  port: number,
  opts: { source?: string; vlan?: number; outs?: { dst: string; ttl: number }[] } = {},
): RuleSpec {
  const g = a6(group);
  return {
    id: name,
    name,
    input: {
      interface: "r0",
      group: g[3],
      prefixLen: 128,
      port,
      source: 0,
      vlan: opts.vlan ?? -1,
      joins: [],
      group6: g,
      ...(opts.source ? { source6: a6(opts.source) } : {}),
    },
    outputs: (opts.outs ?? [{ dst: "ff15::9", ttl: 5 }]).map((o, k) => ({
      interface: "r1",
      dst: o.dst.includes(":") ? a6(o.dst)[3] : parseIPv4(o.dst)!,
      hostBits: 0,
      port: 7000 + k,
      srcIp: 0,
      srcPort: 0,
      ttl: o.ttl,
      tos: 0,
      ...(o.dst.includes(":") ? { dst6: a6(o.dst) } : {}),
    })),
  };
}

function table(rules: RuleSpec[]) {
  const t = buildTables(rules, new Slots(), 1, ["r0"]).get("r0")!;
  return { t, lookup: compileTable(t) };
}

function match(lookup: ReturnType<typeof compileTable>, o: Frame6Options) {
  const { rc, out } = parse(buildFrame6(o));
  assert.equal(rc, -1);
  return matchRule6(lookup, out)?.id;
}

Deno.test("IPv6 match: whole addresses, (S,G) before (*,G), exact port before any, VLAN", () => {
  // ff3e::1:0:2 and ff3e::2:0:1 fold to the same key: only the whole address tells them apart
  const { lookup } = table([
    rule6("g12", "ff3e::1:0:2", 5001, { source: "fd00::1" }),
    rule6("g21", "ff3e::2:0:1", 5001, { source: "fd00::1" }),
    rule6("any-src", "ff15::1", 5001),
    rule6("ssm", "ff15::1", 5001, { source: "fd00::7" }),
    rule6("any-port", "ff15::1", 0),
    rule6("tagged", "ff15::1", 5001, { vlan: 9 }),
  ]);
  const [x, y] = [a6("ff3e::1:0:2"), a6("ff3e::2:0:1")];
  assert.equal(fold6(x[0], x[1], x[2], x[3]), fold6(y[0], y[1], y[2], y[3]), "a collision");
  assert.equal(match(lookup, { dst: "ff3e::1:0:2", src: "fd00::1" }), "g12");
  assert.equal(match(lookup, { dst: "ff3e::2:0:1", src: "fd00::1" }), "g21");
  assert.equal(match(lookup, { dst: "ff3e::1:0:2", src: "fd00::2" }), undefined);
  assert.equal(match(lookup, { dst: "ff3e::3:3" }), undefined);
  assert.equal(match(lookup, { dst: "ff15::1", src: "fd00::7" }), "ssm");
  assert.equal(match(lookup, { dst: "ff15::1", src: "fd00::8" }), "any-src");
  assert.equal(match(lookup, { dst: "ff15::1", dport: 6000 }), "any-port");
  assert.equal(match(lookup, { dst: "ff15::1", vlan: 9 }), "tagged");
  assert.equal(lookup.size, 6);
  // removing every IPv6 rule leaves no IPv6 table
  for (const slot of [...lookup.slots()]) lookup.delete(slot);
  assert.equal(lookup.v6, null);
});

Deno.test("IPv6 batch: descriptors flagged IPv6, hop limit decremented or expired, IPv4 beside", () => {
  const v4: RuleSpec = {
    id: "v4",
    name: "v4",
    input: {
      interface: "r0",
      group: parseIPv4("239.1.1.1")!,
      prefixLen: 32,
      port: 5001,
      source: 0,
      vlan: -1,
      joins: [],
    },
    outputs: [{
      interface: "r1",
      dst: parseIPv4("239.9.9.9")!,
      hostBits: 0,
      port: 7100,
      srcIp: 0,
      srcPort: 0,
      ttl: 0,
      tos: 0,
    }],
  };
  const v6 = rule6("v6", "ff15::1", 5001, {
    outs: [{ dst: "ff15::9", ttl: 0 }, { dst: "239.2.2.2", ttl: 4 }],
  });
  const frames = [
    buildFrame6({ dst: "ff15::1", hops: 9 }),
    buildFrame({ dst: "239.1.1.1", dport: 5001, ttl: 3 }),
    buildFrame6({ dst: "ff15::1", hops: 1 }), // hop limit 1: expires on the decrementing output
    buildFrame6({ dst: "ff15::2" }), // no rule
  ];
  const { buf, placed } = packFrames(frames);
  const desc = new Uint32Array(frames.length * RX_DESC_WORDS);
  placed.forEach((p, k) => {
    desc[k * RX_DESC_WORDS + RxDescWord.offset] = p.offset;
    desc[k * RX_DESC_WORDS + RxDescWord.snaplen] = p.length;
    desc[k * RX_DESC_WORDS + RxDescWord.len] = p.length;
  });
  const { t, lookup } = table([v4, v6]);
  const counters = newCounterBlock();
  const fdesc = new Uint32Array(16 * FWD_DESC_WORDS);
  const proc = new BatchProcessor(counters, fdesc, 16, () => assert.fail("no flush"));
  const base = inBase(0);
  const m = proc.process(buf, desc, frames.length, lookup, base, ETH_HLEN);
  const d = Array.from({ length: m }, (_, i) => {
    const w = i * FWD_DESC_WORDS;
    return [
      fdesc[w + FwdDescWord.frame],
      fdesc[w + FwdDescWord.ttl],
      fdesc[w + FwdDescWord.flags],
      fdesc[w + FwdDescWord.l3Offset],
    ];
  });
  const r6 = t.rules.find((r) => r.name === "v6")!;
  const r4 = t.rules.find((r) => r.name === "v4")!;
  assert.deepEqual(d, [
    [0, 8, FwdFlag.IN_IPV6, placed[0].offset + ETH_HLEN],
    [0, 4, FwdFlag.IN_IPV6, placed[0].offset + ETH_HLEN],
    [1, 2, 0, placed[1].offset + ETH_HLEN],
    [2, 4, FwdFlag.IN_IPV6, placed[2].offset + ETH_HLEN],
  ]);
  const outWord = (slot: number, w: number) => counters[OUT_BASE + slot * OUT_WORDS + w];
  assert.equal(outWord(r6.outputs[0].slot, Out.ttlExpired), 1);
  assert.equal(outWord(r4.outputs[0].slot, Out.ttlExpired), 0);
  assert.equal(counters[base + IN_DROP + Drop.ttl_expired], 1);
  assert.equal(counters[base + IN_DROP + Drop.no_match], 1);
});

/**
 * A synthetic RX ring for the hot-loop microbenchmarks: `BATCH` valid
 * Ethernet/IPv4/UDP frames (1024-byte payloads) in 2 KiB slots like a
 * TPACKET_V2 ring — or the same IPv4 packets without their Ethernet header,
 * as a tun or WireGuard ring holds them —, their RX descriptors, and compiled
 * rule tables of several sizes whose rules the frames hit round-robin: exact
 * rules (one group and
 * port each), or ranges of mixed prefix lengths and exact or any ports (the
 * matcher then probes one level per distinct length and port kind); and the
 * same over IPv6 ({@link hotloopFixture6}: Ethernet/IPv6/UDP frames, IPv6
 * rules).
 *
 * @module
 */
import { buildFrame, packFrames } from "../../tests/fixtures/frames.ts";
import { buildFrame6 } from "../../tests/fixtures/frames6.ts";
import { formatIPv6 } from "../../src/common/net6.ts";
import { BatchProcessor } from "../../src/datapath/batch.ts";
import { buildTables, type RuleSpec, Slots } from "../../src/relay/tables.ts";
import { compileTable, type MatchTable } from "../../src/datapath/match.ts";
import { inBase, newCounterBlock } from "../../src/datapath/counters.ts";
import { ETH_HLEN, LINK_HEADER } from "../../src/datapath/link_types.ts";
import type { LinkLayout } from "../../ffi/mod.ts";

/** Frames per batch (per `process` call). */
export const BATCH = 256;
/** UDP payload bytes of every frame. */
export const PAYLOAD = 1024;
/** Rule-table sizes benchmarked. */
export const RULE_COUNTS = [1, 50, 1000] as const;
/** Range-table sizes benchmarked. */
export const RANGE_COUNTS = [1000] as const;
/**
 * Prefix lengths of the ranges, round robin; each in its own first octet so
 * that no two ranges overlap. With exact and any ports, 8 levels: a datagram
 * of a /16 any-port range is probed at /28, /24, /20 (exact, any) and /16
 * exact before it matches.
 */
const RANGE_LENS = [28, 24, 20, 16] as const;

/** Input group of rule `i`: 239.1.(i >> 8).(i & 255), port 5000 + i. */
function ruleInput(i: number): { group: string; port: number; groupNum: number } {
  const group = `239.1.${i >> 8}.${i & 255}`;
  return {
    group,
    port: 5000 + i,
    groupNum: ((239 << 24) | (1 << 16) | ((i >> 8) << 8) | (i & 255)) >>> 0,
  };
}

/** A ready-to-run batch: ring, descriptors and a processor with `rules` rules. */
export interface HotloopFixture {
  /** The ring mapping stand-in. */
  ring: Uint8Array;
  /** RX descriptors, 8 words per frame. */
  desc: Uint32Array;
  /** The processor. */
  proc: BatchProcessor;
  /** The compiled table. */
  lookup: MatchTable;
  /** The input section the counts go to. */
  base: number;
  /** The ring's link header length (`process`'s `linkHeader`). */
  linkHeader: number;
}

/**
 * Build the fixture for a table of `rules` rules (one output each); frame k hits rule k % rules.
 * `layout` `ip`: the frames are the IPv4 packets alone (a ring on a tun or WireGuard link).
 */
export function hotloopFixture(rules: number, layout: LinkLayout = "ethernet"): HotloopFixture {
  const specs: RuleSpec[] = [];
  for (let i = 0; i < rules; i++) {
    const inp = ruleInput(i);
    specs.push({
      id: `r${i}`,
      name: `r${i}`,
      input: {
        interface: "r0",
        group: inp.groupNum,
        prefixLen: 32,
        port: inp.port,
        source: 0,
        vlan: -1,
        joins: [inp.groupNum],
      },
      outputs: [{
        interface: "r1",
        dst: (((239 << 24) | (10 << 16)) >>> 0) + i + 1,
        hostBits: 0,
        port: 6000 + i,
        srcIp: 0,
        srcPort: 0,
        ttl: 0,
        tos: 0,
      }],
    });
  }
  const dsts = Array.from({ length: BATCH }, (_, k) => ruleInput(k % rules));
  return fixtureOf(specs, dsts.map((d) => ({ dst: d.group, dport: d.port })), layout);
}

/**
 * Range `i`: a /len of RANGE_LENS (round robin) alone in first octet 236..239
 * by length, port 5000 + i or any (odd i), and a datagram inside it.
 */
function rangeInput(i: number): { net: number; len: number; port: number; dst: string } {
  const len = RANGE_LENS[i % RANGE_LENS.length];
  const k = Math.floor(i / RANGE_LENS.length); // index among the ranges of that length
  const octet = 239 - (i % RANGE_LENS.length);
  const net = ((octet << 24) >>> 0) + k * 2 ** (32 - len);
  const dst = net + 1;
  return {
    net,
    len,
    port: i % 2 === 1 ? 0 : 5000 + i,
    dst: `${dst >>> 24}.${(dst >>> 16) & 255}.${(dst >>> 8) & 255}.${dst & 255}`,
  };
}

/**
 * The fixture for a table of `ranges` ranges of mixed lengths, each kept
 * (output "keep": the datagram's group and port); frame k hits range
 * k % ranges.
 */
export function hotloopRangesFixture(ranges: number): HotloopFixture {
  const specs: RuleSpec[] = [];
  for (let i = 0; i < ranges; i++) {
    const r = rangeInput(i);
    specs.push({
      id: `g${i}`,
      name: `g${i}`,
      input: {
        interface: "r0",
        group: r.net,
        prefixLen: r.len,
        port: r.port,
        source: 0,
        vlan: -1,
        joins: [],
      },
      outputs: [{
        interface: "r1",
        dst: r.net,
        hostBits: 32 - r.len,
        port: 0,
        srcIp: 0,
        srcPort: 0,
        ttl: 0,
        tos: 0,
      }],
    });
  }
  const frames = Array.from({ length: BATCH }, (_, k) => {
    const r = rangeInput(k % ranges);
    return { dst: r.dst, dport: r.port === 0 ? 7000 + k : r.port };
  });
  return fixtureOf(specs, frames);
}

/**
 * As {@link hotloopFixture} over IPv6: rule i takes ff15::(i + 1), port 5000 + i, to an IPv6
 * output; the frames are Ethernet/IPv6/UDP (no extension headers).
 */
export function hotloopFixture6(rules: number): HotloopFixture {
  const group = (i: number) => [0xff150000, 0, 0, i + 1] as const;
  const specs: RuleSpec[] = Array.from({ length: rules }, (_, i) => ({
    id: `r${i}`,
    name: `r${i}`,
    input: {
      interface: "r0",
      group: i + 1,
      prefixLen: 128,
      port: 5000 + i,
      source: 0,
      vlan: -1,
      joins: [],
      group6: group(i),
    },
    outputs: [{
      interface: "r1",
      dst: 0x10000 + i,
      dst6: [0xff150000, 0, 0, 0x10000 + i],
      hostBits: 0,
      port: 6000 + i,
      srcIp: 0,
      srcPort: 0,
      ttl: 0,
      tos: 0,
    }],
  }));
  const dsts = Array.from({ length: BATCH }, (_, k) => ({
    dst: formatIPv6(group(k % rules)),
    dport: 5000 + (k % rules),
    v6: true,
  }));
  return fixtureOf(specs, dsts);
}

/** A processor over `specs` and a batch of one frame per destination, on a `layout` ring. */
function fixtureOf(
  specs: RuleSpec[],
  dsts: { dst: string; dport: number; v6?: boolean }[],
  layout: LinkLayout = "ethernet",
): HotloopFixture {
  const tables = buildTables(specs, new Slots(), 1, ["r0"]);
  const frames = dsts.map((d) => {
    const f = d.v6
      ? buildFrame6({ dst: d.dst, dport: d.dport, payload: PAYLOAD, hops: 8 })
      : buildFrame({ dst: d.dst, dport: d.dport, payload: PAYLOAD, ttl: 8 });
    return layout === "ip" ? f.slice(ETH_HLEN) : f;
  });
  const linkHeader = LINK_HEADER[layout];
  const { buf, placed } = packFrames(frames, 2048, 66);
  const desc = new Uint32Array(BATCH * 8);
  placed.forEach((p, k) => {
    desc[k * 8] = p.offset;
    desc[k * 8 + 1] = p.length;
    desc[k * 8 + 2] = p.length;
    desc[k * 8 + 6] = 2; // PACKET_MULTICAST
  });
  const maxDesc = BATCH * 4;
  const proc = new BatchProcessor(
    newCounterBlock(),
    new Uint32Array(maxDesc * 8),
    maxDesc,
    () => {},
  );
  const lookup = compileTable(tables.get("r0")!);
  const base = inBase(0);
  // Sanity: every frame must produce one descriptor, or the bench measures drops.
  const m = proc.process(buf, desc, BATCH, lookup, base, linkHeader);
  if (m !== BATCH) throw new Error(`hot-loop fixture: ${m} descriptors for ${BATCH} frames`);
  return { ring: buf, desc, proc, lookup, base, linkHeader };
}

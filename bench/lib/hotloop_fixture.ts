/**
 * A synthetic RX ring for the hot-loop microbenchmarks: `BATCH` valid
 * Ethernet/IPv4/UDP frames (1024-byte payloads) in 2 KiB slots like a
 * TPACKET_V2 ring, their RX descriptors, and compiled rule tables of several
 * sizes whose rules the frames hit round-robin.
 *
 * @module
 */
import { buildFrame, packFrames } from "../../tests/fixtures/frames.ts";
import { BatchProcessor } from "../../src/datapath/batch.ts";
import { buildTables, type RuleSpec, Slots } from "../../src/relay/tables.ts";
import { compileTable, type MatchTable } from "../../src/datapath/match.ts";
import { inBase, newCounterBlock } from "../../src/datapath/counters.ts";

/** Frames per batch (per `process` call). */
export const BATCH = 256;
/** UDP payload bytes of every frame. */
export const PAYLOAD = 1024;
/** Rule-table sizes benchmarked. */
export const RULE_COUNTS = [1, 50, 1000] as const;

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
}

/** Build the fixture for a table of `rules` rules (one output each); frame k hits rule k % rules. */
export function hotloopFixture(rules: number): HotloopFixture {
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
  const tables = buildTables(specs, new Slots(), 1, ["r0"]);
  const frames: Uint8Array[] = [];
  for (let k = 0; k < BATCH; k++) {
    const inp = ruleInput(k % rules);
    frames.push(buildFrame({ dst: inp.group, dport: inp.port, payload: PAYLOAD, ttl: 8 }));
  }
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
  const m = proc.process(buf, desc, BATCH, lookup, base);
  if (m !== BATCH) throw new Error(`hot-loop fixture: ${m} descriptors for ${BATCH} frames`);
  return { ring: buf, desc, proc, lookup, base };
}

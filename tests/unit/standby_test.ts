/**
 * The standby role in the data path (src/datapath/standby.ts): a batch run
 * through the hot loop and then counted instead of submitted puts every
 * datagram that would have been sent on its output's `standby` word — the
 * descriptors a mid-batch flush handed over included — so that matched =
 * standby + ttl_expired + unavailable per output, and nothing lands on
 * `packets`. The stats name the count per output and as the `standby` drop
 * reason.
 */
import assert from "node:assert/strict";
import { buildFrame, packFrames } from "../fixtures/frames.ts";
import { BatchProcessor } from "../../src/datapath/batch.ts";
import { countStandby } from "../../src/datapath/standby.ts";
import {
  inBase,
  newCounterBlock,
  Out,
  OUT_BASE,
  OUT_WORDS,
  RULE_BASE,
  RULE_WORDS,
} from "../../src/datapath/counters.ts";
import { Drop, DROP_NAMES } from "../../src/datapath/packet.ts";
import { ETH_HLEN } from "../../src/datapath/link_types.ts";
import { compileTable } from "../../src/datapath/match.ts";
import { buildTables, type RuleSpec, Slots } from "../../src/relay/tables.ts";
import { FWD_DESC_WORDS, RX_DESC_WORDS, RxDescWord } from "../../ffi/mod.ts";
import { parseIPv4 } from "../../src/common/net.ts";
import { Ctl, newControlBlock, ROLE_ACTIVE, ROLE_STANDBY } from "../../src/datapath/messages.ts";

const ip = (s: string) => parseIPv4(s)!;

const spec: RuleSpec = {
  id: "fan",
  name: "fan",
  input: {
    interface: "r0",
    group: ip("239.1.1.1"),
    prefixLen: 32,
    port: 5001,
    source: 0,
    vlan: -1,
    joins: [ip("239.1.1.1")],
  },
  outputs: [0, 9, 0].map((ttl, k) => ({
    interface: "r1",
    dst: ip(`239.10.0.${k + 1}`),
    hostBits: 0,
    port: 7000 + k,
    srcIp: 0,
    srcPort: 0,
    ttl, // 0: decrement
    tos: 0,
  })),
};

Deno.test("standby: every datagram that would be sent is counted as standby on its output", () => {
  const ttls = [5, 1, 2, 7, 9]; // TTL 1 expires on the decrementing outputs
  const { buf, placed } = packFrames(ttls.map((ttl) => buildFrame({ ttl })));
  const desc = new Uint32Array(ttls.length * RX_DESC_WORDS);
  placed.forEach((p, k) => {
    desc[k * RX_DESC_WORDS + RxDescWord.offset] = p.offset;
    desc[k * RX_DESC_WORDS + RxDescWord.snaplen] = p.length;
    desc[k * RX_DESC_WORDS + RxDescWord.len] = p.length;
  });
  const table = buildTables([spec], new Slots(), 1, ["r0"]).get("r0")!;
  const rule = table.rules[0];
  const c = newCounterBlock();
  const maxDesc = 3; // the processor flushes mid-batch: those descriptors are counted too
  const fdesc = new Uint32Array(maxDesc * FWD_DESC_WORDS);
  let flushes = 0;
  const proc = new BatchProcessor(c, fdesc, maxDesc, (n) => {
    flushes++;
    countStandby(fdesc, n, c);
  });
  proc.broken[rule.outputs[2].slot] = 1; // an output that could not be installed
  const m = proc.process(buf, desc, ttls.length, compileTable(table), inBase(0), ETH_HLEN);
  countStandby(fdesc, m, c);
  assert.ok(flushes > 0, "a flush happened mid-batch");
  const word = (k: number, w: number) => c[OUT_BASE + rule.outputs[k].slot * OUT_WORDS + w];
  const matched = c[RULE_BASE + rule.slot * RULE_WORDS];
  assert.equal(matched, 5);
  assert.equal(word(0, Out.standby), 4, "output 0: all but the TTL-1 datagram");
  assert.equal(word(1, Out.standby), 5, "output 1 (fixed TTL): every datagram");
  assert.equal(word(2, Out.standby), 0, "output 2 is not installed: counted unavailable");
  for (let k = 0; k < 3; k++) {
    assert.equal(word(k, Out.packets), 0, `output ${k}: nothing sent`);
    assert.equal(
      word(k, Out.standby) + word(k, Out.ttlExpired) + word(k, Out.unavailable),
      matched,
      `output ${k}: matched = standby + ttl_expired + unavailable`,
    );
  }
});

Deno.test("standby: the role word of the control block, and the drop reason's name", () => {
  const ctl = newControlBlock();
  assert.equal(Atomics.load(ctl, Ctl.role), ROLE_ACTIVE, "a new worker is active");
  Atomics.store(ctl, Ctl.role, ROLE_STANDBY);
  assert.notEqual(ROLE_ACTIVE, ROLE_STANDBY);
  assert.equal(new Set(Object.values(Ctl)).size, Object.keys(Ctl).length, "distinct words");
  assert.equal(DROP_NAMES[Drop.standby], "standby");
});

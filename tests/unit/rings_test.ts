/**
 * Ring sizes (src/relay/rings.ts): RX memory per worker is a budget shared by
 * the interfaces it serves, within bounds; a rate hint and explicit counts
 * win; TX likewise per output interface; promiscuous capture per interface.
 */
import assert from "node:assert/strict";
import {
  HOLD_MS,
  RX_BUDGET_BYTES,
  RX_MAX_FRAMES,
  RX_MIN_FRAMES,
  rxRingFor,
  TX_BUDGET_BYTES,
  TX_MAX_FRAMES,
  TX_MIN_FRAMES,
  txRingFor,
} from "../../src/relay/rings.ts";
import { RX_SLOT_OVERHEAD } from "../../src/datapath/messages.ts";
import { parseConfig } from "../../src/config/mod.ts";
import { dataPathOptions } from "../../src/relay/relay.ts";

/** Slot bytes of an RX ring at MTU 1500 (a power of two). */
const SLOT_1500 = 2048;

Deno.test("rings: one interface gets the full-size RX ring; many share the budget, never below the floor", () => {
  assert.ok(RX_SLOT_OVERHEAD + 1500 <= SLOT_1500 && RX_SLOT_OVERHEAD + 1500 > SLOT_1500 / 2);
  assert.equal(rxRingFor({}, "eth0", 1).frameCount, RX_MAX_FRAMES);
  // 64 interfaces: 32 MiB / 64 / 2 KiB = 256 slots each
  assert.equal(rxRingFor({}, "eth0", 64).frameCount, RX_BUDGET_BYTES / 64 / SLOT_1500);
  assert.equal(rxRingFor({}, "eth0", 256).frameCount, RX_MIN_FRAMES);
  // the memory of a worker's RX rings stays within the budget until the floor is reached
  for (const n of [1, 2, 16, 64, 128]) {
    assert.ok(n * rxRingFor({}, "eth0", n).frameCount! * SLOT_1500 <= RX_BUDGET_BYTES, `${n}`);
  }
  // a jumbo MTU gets fewer, larger slots from the same budget
  assert.equal(rxRingFor({}, "eth0", 16, 9000).frameCount, RX_BUDGET_BYTES / 16 / 16384);
});

Deno.test("rings: rate_pps sizes a ring for HOLD_MS of that rate; explicit counts win", () => {
  const rate = { interfaces: { eth0: { ratePps: 200_000 } } };
  const want = 2 ** Math.ceil(Math.log2(200_000 * HOLD_MS / 1000)); // 10,000 → 16,384
  assert.equal(rxRingFor(rate, "eth0", 256).frameCount, want);
  assert.equal(rxRingFor(rate, "eth1", 256).frameCount, RX_MIN_FRAMES, "others keep the budget");
  const fixed = { rx: { frameCount: 512 }, interfaces: { eth0: { rxFrameCount: 8192 } } };
  assert.equal(rxRingFor(fixed, "eth0", 1).frameCount, 8192);
  assert.equal(rxRingFor(fixed, "eth1", 1).frameCount, 512);
});

Deno.test("rings: TX slots shared over a worker's output interfaces, with overrides", () => {
  assert.equal(txRingFor({}, ["a"]).options.frameCount, TX_MAX_FRAMES);
  assert.equal(
    txRingFor({}, Array.from({ length: 200 }, (_, i) => `o${i}`)).options.frameCount,
    TX_MIN_FRAMES,
  );
  const many = Array.from({ length: 16 }, (_, i) => `o${i}`);
  const n = txRingFor({}, many).options.frameCount!;
  assert.ok(n >= TX_MIN_FRAMES && n <= TX_MAX_FRAMES && n * 2048 * 16 <= TX_BUDGET_BYTES);
  const t = txRingFor(
    { interfaces: { o1: { txFrameCount: 4096 }, o2: { ratePps: 100_000 } } },
    many,
  );
  assert.deepEqual(t.perInterface, { o1: 4096, o2: 8192 });
});

Deno.test("rings: interfaces.X.promisc reaches that interface's RX rings only", () => {
  const c = parseConfig({
    rules: [{
      input: { interface: "span0", group: "10.1.2.3", port: 5001 },
      outputs: [{ interface: "eth1", group: "239.1.1.1", port: 5001 }],
    }],
    interfaces: { span0: { promisc: true } },
  });
  const opts = dataPathOptions(c);
  assert.equal(rxRingFor(opts, "span0", 2).promisc, true);
  assert.equal(rxRingFor(opts, "eth1", 2).promisc, undefined);
  assert.throws(
    () => parseConfig({ rules: [], interfaces: { span0: { promisc: "yes" } } }),
    /interfaces\.span0\.promisc/,
  );
});

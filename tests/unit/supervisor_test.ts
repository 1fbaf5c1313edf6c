/**
 * The supervisor applies a rule set all or nothing: a set it cannot run is
 * refused before anything changes, and later changes still work. Rules read
 * an interface that does not exist (their worker stays pending), so no
 * privileges or network are needed.
 */
import assert from "node:assert/strict";
import { Supervisor } from "../../src/relay/supervisor.ts";
import { CapacityError, type RuleSpec } from "../../src/relay/tables.ts";
import { MAX_OUTPUT_SLOTS } from "../../src/config/limits.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const MISSING = "mcrnx0";

function spec(id: string, port: number, outputs: number): RuleSpec {
  return {
    id,
    name: id,
    input: {
      interface: MISSING,
      group: 0xef010101,
      prefixLen: 32,
      port,
      source: 0,
      vlan: -1,
      joins: [0xef010101],
    },
    outputs: Array.from({ length: outputs }, (_, j) => ({
      interface: "mcrnx1",
      dst: 0xef0a0101 + Math.floor(j / 65535),
      hostBits: 0,
      port: 1 + (j % 65535),
      srcIp: 0,
      srcPort: 0,
      ttl: 1,
      tos: 0,
    })),
  };
}

Deno.test({
  name: "Supervisor.setRules: a rule set over capacity is refused and changes nothing",
  ...opts,
  async fn() {
    const sup = new Supervisor();
    try {
      const a = spec("a", 5001, 2);
      await sup.setRules([a]);
      assert.deepEqual(sup.stats().rules.map((r) => r.id), ["a"]);
      const big = spec("big", 5002, MAX_OUTPUT_SLOTS - 1);
      await assert.rejects(() => sup.setRules([a, big]), (e: unknown) => {
        assert.ok(e instanceof CapacityError);
        assert.ok(
          e.message.includes(
            `${MAX_OUTPUT_SLOTS + 1} output slots needed; the relay has ${MAX_OUTPUT_SLOTS}`,
          ),
          e.message,
        );
        return true;
      });
      assert.deepEqual(sup.stats().rules.map((r) => r.id), ["a"], "the data path is unchanged");
      // Replacing a by a set that fits only with a's slots counted as free applies.
      const fits = spec("fits", 5003, MAX_OUTPUT_SLOTS);
      await sup.setRules([fits]);
      const st = sup.stats();
      assert.deepEqual(st.rules.map((r) => r.id), ["fits"]);
      assert.equal(st.rules[0].outputs.length, MAX_OUTPUT_SLOTS);
      await sup.setRules([a]);
      assert.deepEqual(sup.stats().rules.map((r) => r.id), ["a"]);
    } finally {
      await sup.stop();
    }
  },
});

/**
 * Loops: two relays in two namespaces forwarding into each other (A → B,
 * B → A) with the decrementing TTL policy. Each injected datagram makes exactly
 * (initial TTL − 1) transmissions before it arrives with TTL 1 and is counted as
 * ttl_expired: the storm is bounded. A rule whose output is its own input is
 * refused at configuration time.
 */
import assert from "node:assert/strict";
import { skipReason, Topology } from "../../lab/netns.ts";
import { runCheck, runGen, startDriver } from "../../lab/harness.ts";
import type { RelayStats } from "../../src/relay/stats.ts";
import { addNsNoV6 } from "./lib_robust.ts";

const skip = skipReason();
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };

function sent(s: RelayStats): number {
  return s.rules.reduce((a, r) => a + r.outputs.reduce((b, o) => b + o.packets, 0), 0);
}
function expired(s: RelayStats): number {
  return s.rules.reduce((a, r) => a + r.outputs.reduce((b, o) => b + o.ttl_expired, 0), 0);
}

Deno.test({
  ...opts,
  name: "two relays forwarding into each other with TTL decrement: the storm is bounded by TTL",
  async fn() {
    const t = new Topology("loop");
    try {
      for (const r of ["snd", "A", "B"]) await addNsNoV6(t, r);
      await t.link({ role: "snd", dev: "s0", addr: "10.78.1.1/24" }, {
        role: "A",
        dev: "a0",
        addr: "10.78.1.2/24",
      });
      await t.link({ role: "A", dev: "ab", addr: "10.78.2.1/24" }, {
        role: "B",
        dev: "ba",
        addr: "10.78.2.2/24",
      });
      const dec = { ttl: "decrement" };
      const relayA = await startDriver(t, "A", [{
        rules: [
          {
            name: "in",
            input: { interface: "a0", group: "239.1.1.1", port: 5001 },
            outputs: [{ interface: "ab", group: "239.2.2.2", port: 5002, ...dec }],
          },
          {
            name: "back",
            input: { interface: "ab", group: "239.3.3.3", port: 5003 },
            outputs: [{ interface: "ab", group: "239.2.2.2", port: 5002, ...dec }],
          },
        ],
      }]);
      const relayB = await startDriver(t, "B", [{
        rules: [{
          name: "forth",
          input: { interface: "ba", group: "239.2.2.2", port: 5002 },
          outputs: [{ interface: "ba", group: "239.3.3.3", port: 5003, ...dec }],
        }],
      }]);
      const N = 5, TTL = 10;
      const hops = TTL - 1; // transmissions with TTL 9, 8, ..., 1
      await runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: 50, count: N, ttl: TTL });
      // wait until every datagram has died somewhere, then a little longer for any excess
      const t0 = Date.now();
      let a: RelayStats, b: RelayStats;
      for (;;) {
        a = await relayA.snap();
        b = await relayB.snap();
        if (expired(a) + expired(b) >= N || Date.now() - t0 > 15_000) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, 1000));
      const fa = (await relayA.stop()).stats;
      const fb = (await relayB.stop()).stats;
      const total = sent(fa) + sent(fb);
      assert.equal(expired(fa) + expired(fb), N, "each datagram expired exactly once");
      assert.equal(total, N * hops, `bounded storm: ${N} datagrams × ${hops} hops`);
      // who did what: A's entry rule once per datagram, then the two relays alternate
      assert.equal(fa.rules.find((r) => r.name === "in")!.outputs[0].packets, N);
      assert.equal(fb.rules[0].outputs[0].packets, N * Math.floor(hops / 2));
      assert.equal(fb.rules[0].outputs[0].ttl_expired, N, "B saw them arrive with TTL 1");
      assert.equal(fa.drops.ttl_expired + fb.drops.ttl_expired, N);
      for (const s of [fa, fb]) {
        for (const w of s.workers) assert.equal(w.restarts, 0);
      }
    } finally {
      await t.destroy();
    }
  },
});

Deno.test("a self-loop rule (output = its own input) is refused with a config error", async () => {
  const r = await runCheck({
    rules: [{
      name: "self",
      input: { interface: "eth0", group: "239.1.1.1", port: 5001 },
      outputs: [{ interface: "eth0", group: "239.1.1.1", port: 5001, ttl: "decrement" }],
    }],
  });
  assert.equal(r.code, 1, "exit code 1: invalid configuration");
  assert.match(r.stdout + r.stderr, /rule 0 "self": outputs\[0\].*into itself/);
});

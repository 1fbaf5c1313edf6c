/**
 * A unicast output whose next hop does not answer ARP: the kernel takes each
 * datagram from the relay's socket and drops it later, so "sent" alone would
 * be a lie. The output must be in error with the reason (neighbour FAILED)
 * while nobody answers, and active again — delivering to an independent
 * receiver — once the address exists.
 */
import assert from "node:assert/strict";
import { chainTopology, skipReason } from "../../lab/netns.ts";
import { runGen, startRelayWith, startSink } from "../../lab/harness.ts";
import type { RelayStats } from "../../src/relay/stats.ts";
import { until } from "./lib_robust.ts";

const skip = skipReason();
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };
const DEADLINE_MS = 30_000;
/** An address on the receiver's subnet that nobody holds (yet). */
const GHOST = "10.77.2.99";

const out = (s: RelayStats) => s.rules[0]?.outputs[0];

Deno.test({
  ...opts,
  name: "unicast output to a next hop that does not answer ARP: in error with the reason, " +
    "active again and delivering once the address answers",
  async fn() {
    const t = await chainTopology("nhop");
    try {
      const relay = await startRelayWith(t, "rly", {
        rules: [{
          name: "to-ghost",
          input: { interface: "r0", group: "239.1.1.1", port: 5001 },
          outputs: [{ interface: "r1", group: GHOST, port: 7001 }],
        }],
      }, { control: true });
      // A stream long enough to outlast ARP's retries (about 3 s) on a busy machine.
      const gen = runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: 200, count: 20_000 });
      gen.catch(() => {}); // killed with the namespaces when the test ends
      const failed = await until(
        () => relay.stats(),
        (s) => out(s)?.state === "error",
        DEADLINE_MS,
        "the output in error while its next hop does not answer",
      );
      assert.match(
        out(failed)!.reason ?? "",
        /next hop 10\.77\.2\.99 on r1 does not answer ARP \(neighbour (FAILED|INCOMPLETE)\)/,
      );
      assert.equal(failed.rules[0].state, "active", "the rule still takes its input");

      // The address appears on the receiver: ARP is answered, the output recovers and delivers.
      await t.exec("rcv", ["ip", "addr", "add", `${GHOST}/24`, "dev", "d0"]);
      const sink = await startSink(t, "rcv", "d0", [`${GHOST}:7001`], {
        idleMs: 0,
        durationS: 120,
      });
      await until(
        () => relay.stats(),
        (s) => out(s)?.state === "active",
        DEADLINE_MS,
        "the output active again once the next hop answers",
      );
      const sent = out(await relay.stats())!.packets;
      await until(
        () => relay.stats(),
        (s) => out(s)!.packets > sent + 50,
        DEADLINE_MS,
        "more datagrams sent",
      );
      const rep = await sink.stop();
      const { code, stderr } = await relay.stop();
      assert.equal(code, 0, stderr);
      assert.ok(rep.total.unique > 0, "the receiver got the stream once the address existed");
      assert.equal(rep.total.duplicates, 0);
    } finally {
      await t.destroy();
    }
  },
});

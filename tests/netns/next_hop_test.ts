/**
 * A unicast output whose next hop does not answer ARP (IPv4) or neighbour
 * discovery (IPv6): the kernel takes each datagram from the relay's socket
 * and drops it later, so "sent" alone would be a lie. The output must be in
 * error with the reason (neighbour FAILED or INCOMPLETE) while nobody
 * answers, and active again — delivering to an independent receiver — once
 * the address exists.
 */
import assert from "node:assert/strict";
import { chainTopology, skipReason } from "../../lab/netns.ts";
import { runGen, startRelayWith, startSink } from "../../lab/harness.ts";
import type { RelayStats } from "../../src/relay/stats.ts";
import { until } from "./lib_robust.ts";
import { chain6 } from "./lib_chain6.ts";
import type { Topology } from "../../lab/netns.ts";
import { hostPort } from "../../src/common/net6.ts";

const skip = skipReason();
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };
const DEADLINE_MS = 30_000;
/** An address on the receiver's subnet that nobody holds (yet). */
const GHOST = "10.77.2.99";
/** The same on the receiver's IPv6 subnet. */
const GHOST6 = "fd77:2::99";

const out = (s: RelayStats) => s.rules[0]?.outputs[0];

/**
 * Relay 239.1.1.1:5001 to unicast `ghost` (not held by anyone) and check the
 * output: in error with a reason that `reason` matches while nobody answers;
 * once `ghost` is added to the receiver's d0 (`addr` with its prefix), active
 * again and delivering to a receiver there, once each.
 */
async function ghostOutput(t: Topology, ghost: string, addr: string[], reason: RegExp) {
  const relay = await startRelayWith(t, "rly", {
    rules: [{
      name: "to-ghost",
      input: { interface: "r0", group: "239.1.1.1", port: 5001 },
      outputs: [{ interface: "r1", group: ghost, port: 7001 }],
    }],
  }, { control: true });
  // A stream long enough to outlast ARP's or neighbour discovery's retries (about 3 s) on a busy
  // machine.
  const gen = runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: 200, count: 20_000 });
  gen.catch(() => {}); // killed with the namespaces when the test ends
  const failed = await until(
    () => relay.stats(),
    (s) => out(s)?.state === "error",
    DEADLINE_MS,
    "the output in error while its next hop does not answer",
  );
  assert.match(out(failed)!.reason ?? "", reason);
  assert.equal(failed.rules[0].state, "active", "the rule still takes its input");

  // The address appears on the receiver: it answers, the output recovers and delivers.
  await t.exec("rcv", ["ip", ...addr, "dev", "d0"]);
  const sink = await startSink(t, "rcv", "d0", [hostPort(ghost, 7001)], {
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
}

/** Each family: its topology, the address nobody holds, how to add it, the reason expected. */
const CASES = [{
  name: "unicast output to a next hop that does not answer ARP: in error with the reason, " +
    "active again and delivering once the address answers",
  topology: () => chainTopology("nhop"),
  ghost: GHOST,
  addr: ["addr", "add", `${GHOST}/24`],
  reason: /next hop 10\.77\.2\.99 on r1 does not answer ARP \(neighbour (FAILED|INCOMPLETE)\)/,
}, {
  name: "IPv6 unicast output to a next hop that does not answer neighbour discovery: in error " +
    "with the reason, active again and delivering once the address answers",
  topology: () => chain6("nhop6"),
  ghost: GHOST6,
  addr: ["-6", "addr", "add", `${GHOST6}/64`, "nodad"],
  reason:
    /next hop fd77:2::99 on r1 does not answer neighbour discovery \(neighbour (FAILED|INCOMPLETE)\)/,
}];

for (const c of CASES) {
  Deno.test({
    ...opts,
    name: c.name,
    async fn() {
      const t = await c.topology();
      try {
        await ghostOutput(t, c.ghost, c.addr, c.reason);
      } finally {
        await t.destroy();
      }
    },
  });
}

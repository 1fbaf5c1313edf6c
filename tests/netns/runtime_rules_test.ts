/**
 * Live output changes and runtime rules end to end: a rule added over the
 * control socket gains an output and loses another while its stream flows;
 * the output that stays keeps flowing (no datagram of it missed beyond the
 * counted drops) and keeps its counters; the new output delivers; the rule as
 * changed is in the runtime rules file, so a relay restarted from the same
 * configuration runs it as it was left. Delivery is counted by an
 * independent receiver (mcr-sink); the assertions hold on a busy machine.
 */
import assert from "node:assert/strict";
import { chainTopology, skipReason } from "../../lab/netns.ts";
import { runGen, startRelayWith, startSink } from "../../lab/harness.ts";
import { ControlClient } from "../../src/client/client.ts";
import type { RelayStats } from "../../src/relay/stats.ts";
import {
  assertAccounted,
  assertClean,
  CHAIN_IN,
  CHAIN_OUT,
  hopKey,
  PathMeter,
} from "./lib_account.ts";
import { until, workDir } from "./lib_robust.ts";

const skip = skipReason();
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };

const DEADLINE_MS = 30_000;
const KEEP = { interface: "r1", group: "239.10.1.1", port: 6001 };
const OLD = { interface: "r1", group: "239.10.1.2", port: 6002 };
const NEW = { interface: "r1", group: "239.10.1.3", port: 6003 };
const dst = (o: { group: string; port: number }) => `${o.group}:${o.port}`;

async function ctl(socket: string, cmd: string, args: Record<string, unknown>) {
  await using c = await ControlClient.connect(socket);
  const r = await c.request<Record<string, unknown>>(cmd, args);
  if (!r.ok) throw new Error(`${cmd}: ${JSON.stringify(r.error)}`);
  return r.result;
}

const outputOf = (s: RelayStats, o: { group: string; port: number }) =>
  s.rules.find((r) => r.name === "feed")?.outputs.find((x) =>
    x.group === o.group && x.port === o.port
  );

Deno.test({
  ...opts,
  name: "add-output and remove-output under traffic: the kept output misses nothing and keeps " +
    "its counters; the change is in the runtime rules file and survives a restart",
  async fn() {
    const t = await chainTopology("rtr");
    const dir = await workDir("rtr");
    try {
      const config = { runtime_rules: `${dir}/runtime.json`, rules: [] };
      const meter = await PathMeter.start(t, [CHAIN_IN, CHAIN_OUT]);
      const relay = await startRelayWith(t, "rly", config, { control: true, dir });
      const socket = relay.controlSocket!;
      const added = await ctl(socket, "add", {
        rule: {
          name: "feed",
          input: { interface: "r0", group: "239.1.1.1", port: 5001 },
          outputs: [KEEP, OLD],
        },
      });
      assert.equal(added.persisted, true);
      const N = 30_000;
      const keep = await startSink(t, "rcv", "d0", [dst(KEEP)], { settle: true });
      const other = await startSink(t, "rcv", "d0", [dst(OLD), dst(NEW)], {
        idleMs: 0,
        durationS: 300,
      });
      const gen = runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: 10_000, count: N });
      await until(
        () => relay.stats(),
        (s) => (outputOf(s, KEEP)?.packets ?? 0) > 0,
        DEADLINE_MS,
        "forwarding",
      );
      const r1 = await ctl(socket, "add-output", { rule: "feed", output: NEW });
      assert.equal(r1.persisted, true);
      await until(
        () => relay.stats(),
        (s) => (outputOf(s, NEW)?.packets ?? 0) > 0,
        DEADLINE_MS,
        "new output",
      );
      const before = outputOf(await relay.stats(), KEEP)!.packets;
      await ctl(socket, "remove-output", { rule: "feed", output: OLD });
      const after = outputOf(await relay.stats(), KEEP)!.packets;
      assert.ok(
        after >= before,
        `the kept output's counters did not restart (${before} → ${after})`,
      );
      const g = await gen;
      const up = await meter.read();
      // Every frame that reached r0 taken, and the kept output's outcome known for each (the
      // library's quiesce assumes outputs that lived as long as their rule: not these).
      const arrived = g.sent - up.hops[hopKey(CHAIN_IN)];
      await until(
        () => relay.stats(),
        (s) => {
          const i = s.interfaces.find((x) => x.name === "r0")!;
          const k = outputOf(s, KEEP)!;
          return i.frames + i.kernel_drops >= arrived &&
            k.packets + k.ring_full + k.errors + k.ttl_expired === s.rules[0].packets;
        },
        DEADLINE_MS,
        "the relay to take every frame and send the kept output's datagrams",
      );
      const { code, stats, stderr } = await relay.stop();
      assert.equal(code, 0, stderr);
      const path = await meter.read();
      const k = outputOf(stats, KEEP)!;
      const rep = await keep.settle(k.packets - path.hops[hopKey(CHAIN_OUT)]);
      const rest = await other.stop();
      const r0 = stats.interfaces.find((i) => i.name === "r0")!;
      // The kept output: every datagram of the stream delivered or counted where it was lost.
      assertAccounted({
        sent: g.sent,
        delivered: rep.total.unique,
        drops: {
          "s0→r0": path.hops[hopKey(CHAIN_IN)],
          r0_kernel_drops: r0.kernel_drops,
          kept_output_drops: k.ring_full + k.errors + k.link_down + k.too_big,
          "r1→d0 (all outputs)": path.hops[hopKey(CHAIN_OUT)],
          receiver_socket: rep.socket_drops ?? 0,
        },
      }, "the kept output");
      assertClean(rep, "kept output");
      assertClean(rest, "added and removed outputs");
      assert.equal(
        k.packets + k.ring_full + k.errors + k.link_down + k.too_big,
        stats.rules[0].packets,
      );
      assert.ok(rest.groups.some((x) => x.group === NEW.group), "the added output delivered");
      assert.deepEqual(stats.rules[0].outputs.map((o) => o.group), [KEEP.group, NEW.group]);

      // Restarted from the same configuration: the rule as it was left.
      const again = await startRelayWith(t, "rly", config, { control: true, dir });
      const listed = await ctl(again.controlSocket!, "list", {}) as {
        rules: { name: string; outputs: { group: string }[] }[];
      };
      const stopped = await again.stop();
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.deepEqual(listed.rules.map((r) => [r.name, r.outputs.map((o) => o.group)]), [[
        "feed",
        [KEEP.group, NEW.group],
      ]]);
    } finally {
      await t.destroy();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

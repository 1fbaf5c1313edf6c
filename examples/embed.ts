#!/usr/bin/env -S deno run --allow-ffi --allow-read --allow-env
/**
 * Embedding mcr in a Deno script: the rules are built in code (no rules.json),
 * the relay reports its state changes as events, a rule is added and removed
 * while it runs, and the counters are printed every second and at the end.
 *
 *   deno run --allow-ffi --allow-read --allow-env examples/embed.ts \
 *     --in eth0 --out eth1 [--seconds 30]
 *
 * Needs CAP_NET_RAW (or root). Stops on Ctrl-C / SIGTERM or after --seconds.
 * Every line it prints is "<kind> <json>", easy to read and to parse.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ConfigError, parseConfig, Relay, type RelayStats, type RuleConfig } from "../mod.ts";

const { values: opt } = parseArgs({
  args: Deno.args,
  options: {
    in: { type: "string", default: "eth0" },
    out: { type: "string", default: "eth1" },
    // an interface that may not exist yet: its rule waits ("pending") until it appears
    late: { type: "string" },
    seconds: { type: "string" },
  },
});

function say(kind: string, data: unknown): void {
  console.log(`${kind} ${JSON.stringify(data)}`);
}

/** Rules built in code: a 1:2 fan-out with translation, one output with TTL 4. */
function rulesFor(input: string, output: string): unknown[] {
  return [{
    name: "video",
    input: { interface: input, group: "239.1.1.1", port: 5001 },
    outputs: [
      { interface: output, group: "239.10.1.1", port: 6001 },
      { interface: output, group: "239.10.1.9", port: 6009, ttl: 4 },
    ],
  }];
}

let relay: Relay;
try {
  // parseConfig applies the same checks as `cli.ts check` and fills in defaults
  relay = new Relay(parseConfig({ ttl: 2, rules: rulesFor(opt.in, opt.out) }, "embed.ts"));
} catch (e) {
  if (e instanceof ConfigError) {
    console.error(e.message);
    Deno.exit(1);
  }
  throw e;
}

// Events: rule/output state (active, pending, error), interfaces (running,
// pending, error, removed) and workers.
relay.on((ev) => say("event", ev));

await relay.start();

// Add a rule live: multicast in, a second group out. addRule validates it
// against the running rules (name and input conflicts) and resolves once it forwards.
const added: RuleConfig = await relay.addRule({
  name: "audio",
  input: { interface: opt.in, group: "239.1.1.2", port: 5002 },
  outputs: [{ interface: opt.out, group: "239.10.1.2", port: 6002, dscp: 46 }],
});
say("added", { name: added.name, id: added.id });

// A rule on an interface that may not exist: it stays pending, and becomes
// active by itself when the interface appears (watch the events).
if (opt.late) {
  await relay.addRule({
    name: "late",
    input: { interface: opt.late, group: "239.1.1.3", port: 5003 },
    outputs: [{ interface: opt.out, group: "239.10.1.3", port: 6003 }],
  });
}

// A rule that is added and removed again: removal is live too.
await relay.addRule({
  name: "scratch",
  input: { interface: opt.in, group: "239.1.1.99", port: 5099 },
  outputs: [{ interface: opt.out, group: "239.10.1.99", port: 6099 }],
});
const removed = await relay.removeRule("scratch");
say("removed", removed.map((r) => r.name));

say("ready", { rules: relay.config.rules.map((r) => r.name) });

/** Per rule: matched packets, and sent per output. */
function summary(s: RelayStats) {
  return s.rules.map((r) => ({
    rule: r.name,
    state: r.state,
    packets: r.packets,
    sent: r.outputs.map((o) => o.packets),
  }));
}

const stop = Promise.withResolvers<void>();
for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, stop.resolve);
const timer = setInterval(() => say("stats", summary(relay.stats())), 1000);
const limit = opt.seconds ? setTimeout(stop.resolve, Number(opt.seconds) * 1000) : undefined;
await stop.promise;
clearInterval(timer);
clearTimeout(limit);

await relay.stop(); // drains the TX rings; the counters stay readable
const final = relay.stats();
say("final", { rules: summary(final), drops: final.drops });
Deno.exit(0);

#!/usr/bin/env -S deno run --allow-read --allow-write --allow-net=unix:/run/mcr/control.sock
/**
 * A custom stats exporter: polls a running relay's control socket and writes
 * its counters as InfluxDB line protocol (one line per rule, output, input
 * interface and drop reason), e.g. to pipe into `telegraf`, `influx write` or
 * a file. The relay keeps the counters; this process only reads them, so it
 * needs no capability and can be restarted at will.
 *
 *   deno run --allow-read --allow-write --allow-net=unix:/run/mcr/control.sock \
 *     examples/stats_exporter.ts [--socket /run/mcr/control.sock] [--interval 10] [--count N]
 *
 * Deno asks for read, write and `unix:` net access to the socket path. Run
 * it as a member of the relay's group (the socket is 0660). Without --count
 * it runs until Ctrl-C; when the relay goes away it says so on stderr and
 * keeps retrying.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ControlClient, DEFAULT_CONTROL_SOCKET, type StatsResult } from "../mod.ts";

const { values: opt } = parseArgs({
  args: Deno.args,
  options: {
    socket: { type: "string", default: DEFAULT_CONTROL_SOCKET },
    interval: { type: "string", default: "10" },
    count: { type: "string" },
    measurement: { type: "string", default: "mcr" },
  },
});
const intervalMs = Number(opt.interval) * 1000;
const count = opt.count ? Number(opt.count) : Infinity;

/** Escape a tag key or value (line protocol: comma, equals sign and space). */
function tag(v: string | number): string {
  return String(v).replace(/[,= \\]/g, (c) => `\\${c}`);
}

/** Render one stats snapshot as line-protocol lines. */
export function toLineProtocol(s: StatsResult, m = "mcr"): string[] {
  const ts = BigInt(Date.parse(s.time)) * 1_000_000n; // ns
  const out: string[] = [];
  for (const r of s.rules) {
    out.push(
      `${m}_rule,rule=${tag(r.name)},state=${r.state} ` +
        `packets=${r.packets}i,bytes=${r.bytes}i,pps=${r.pps} ${ts}`,
    );
    for (const o of r.outputs) {
      const dst = `${o.interface} ${o.group}:${o.port}`;
      out.push(
        `${m}_output,rule=${tag(r.name)},output=${tag(dst)},state=${o.state} ` +
          `packets=${o.packets}i,bytes=${o.bytes}i,ring_full=${o.ring_full}i,` +
          `errors=${o.errors}i,ttl_expired=${o.ttl_expired}i,pps=${o.pps} ${ts}`,
      );
    }
  }
  for (const i of s.interfaces) {
    out.push(
      `${m}_interface,interface=${tag(i.name)},state=${i.state} ` +
        `frames=${i.frames}i,matched=${i.matched}i,kernel_drops=${i.kernel_drops}i,` +
        `kernel_freezes=${i.kernel_freezes}i,restarts=${i.restarts}i ${ts}`,
    );
  }
  for (const [reason, n] of Object.entries(s.drops)) {
    out.push(`${m}_drops,reason=${tag(reason)} count=${n}i ${ts}`);
  }
  return out;
}

if (import.meta.main) {
  let client: ControlClient | undefined;
  let stop = false;
  Deno.addSignalListener("SIGINT", () => stop = true);
  const enc = new TextEncoder();
  for (let n = 0; n < count && !stop; n++) {
    if (n > 0) await new Promise((r) => setTimeout(r, intervalMs));
    try {
      client ??= await ControlClient.connect(opt.socket);
      const reply = await client.request<StatsResult>("stats");
      if (!reply.ok) throw new Error(`${reply.error.code}: ${reply.error.message}`);
      const lines = toLineProtocol(reply.result, opt.measurement);
      await Deno.stdout.write(enc.encode(lines.join("\n") + "\n"));
    } catch (e) {
      console.error(`stats_exporter: ${(e as Error).message}`);
      await client?.close().catch(() => {});
      client = undefined; // reconnect next time (the relay may be restarting)
    }
  }
  await client?.close();
}

/**
 * The relays under test, started inside a topology's relay namespace:
 * mcr (ring variants), socat (one process per stream and output), the
 * kernel's own multicast forwarding driven by smcrouted, and the bare C
 * reference relay of bench/floor (the physical floor of mcr's design).
 *
 * Every process started here is tracked, so {@link killTracked} can end them
 * on SIGINT/SIGTERM before the namespaces are deleted.
 *
 * @module
 */
import { BUILD, type Proc, waitForFile } from "../../lab/netns.ts";
import type { RelayStats } from "../../src/relay/stats.ts";
import { startMcr } from "./mcr.ts";
import { spawnTracked } from "./procs.ts";
import type { BenchTopo, Workload } from "./topologies.ts";

/** A relay running for the trials of one workload. */
export interface RunningRelay {
  /** Processes whose CPU and peak RSS are charged to the relay. */
  pids: number[];
  /** "G:P" list the receiver must join to count every output datagram. */
  sinkGroups: string[];
  /** Stop it; returns whatever second-opinion data it offers (relay counters). */
  stop(): Promise<Record<string, unknown>>;
}

/** A relay under test. */
export interface RelayDef {
  /** Name in the tables. */
  name: string;
  /** Kind of relay. */
  kind: "mcr" | "socat" | "smcroute" | "floor";
  /** One-line description (config, command form). */
  describe: string;
  /** Why this relay cannot run a workload, or null. */
  unsupported(w: Workload): string | null;
  /** Start it in the topology's relay namespace for a workload. */
  start(t: BenchTopo, w: Workload, tmp: string): Promise<RunningRelay>;
}

/**
 * mcr with a given `rx` config section (undefined = the relay's defaults);
 * `root`: run another built checkout (a baseline revision) instead of this one.
 */
export function mcrRelay(
  name: string,
  rx: Record<string, unknown> | undefined,
  note: string,
  top: Record<string, unknown> = {},
  root?: string,
): RelayDef {
  return {
    name,
    kind: "mcr",
    describe: `mcr${root ? ` from ${root}` : ""}, ${
      rx ? `"rx": ${JSON.stringify(rx)}` : "default rx settings"
    }${Object.keys(top).length ? `, ${JSON.stringify(top)}` : ""} — ${note}`,
    unsupported: () => null,
    async start(t, w, tmp) {
      const config: Record<string, unknown> = {
        ...top,
        rules: w.streams.map((s, i) => ({
          name: `s${i}`,
          input: { interface: t.relay.inDev, group: s.inGroup, port: s.inPort },
          outputs: s.outs.map((o) => ({ interface: t.relay.outDev, group: o.group, port: o.port })),
        })),
      };
      if (rx) config.rx = rx;
      const relay = await startMcr(t.topo, t.relay.role, config, tmp, root);
      return {
        pids: [relay.pid],
        sinkGroups: w.streams.flatMap((s) => s.outs.map((o) => `${o.group}:${o.port}`)),
        async stop() {
          const stats = await relay.stop();
          return {
            config,
            command: relay.command.slice(1).join(" "),
            stats: summarizeMcrStats(stats),
          };
        },
      };
    },
  };
}

function summarizeMcrStats(s: RelayStats): Record<string, unknown> {
  return {
    rule_packets: s.rules.reduce((a, r) => a + r.packets, 0),
    output_packets: s.rules.reduce((a, r) => a + r.outputs.reduce((b, o) => b + o.packets, 0), 0),
    output_errors: s.rules.reduce((a, r) => a + r.outputs.reduce((b, o) => b + o.errors, 0), 0),
    ring_full: s.rules.reduce(
      (a, r) => a + r.outputs.reduce((b, o) => b + (o.ring_full ?? 0), 0),
      0,
    ),
    interfaces: s.interfaces,
    drops: s.drops,
    // a baseline revision from before the worker pool reports no pool
    priority_raises: s.pool?.reduce((a, w) => a + w.priority_raises, 0) ?? null,
  };
}

async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * socat, one process per stream and output:
 * `socat -u UDP4-RECV:<port>,ip-add-membership=<group>:<in-addr>,reuseaddr
 *  UDP4-SENDTO:<out-group>:<out-port>,ip-multicast-if=<out-addr>,ip-multicast-ttl=8`.
 */
export const SOCAT: RelayDef = {
  name: "socat",
  kind: "socat",
  describe:
    "socat 1.7, one `socat -u UDP4-RECV:P,ip-add-membership=G:IN,reuseaddr UDP4-SENDTO:G':P',ip-multicast-if=OUT,ip-multicast-ttl=8` per stream and output",
  unsupported: () => null,
  async start(t, w) {
    const procs: Proc[] = [];
    for (const s of w.streams) {
      for (const o of s.outs) {
        procs.push(spawnTracked(t.topo.ns(t.relay.role), [
          "socat",
          "-u",
          `UDP4-RECV:${s.inPort},ip-add-membership=${s.inGroup}:${t.relay.inAddr},reuseaddr`,
          `UDP4-SENDTO:${o.group}:${o.port},ip-multicast-if=${t.relay.outAddr},ip-multicast-ttl=8`,
        ]));
      }
    }
    const ports = new Set(w.streams.map((s) => s.inPort));
    const need = procs.length;
    // Ready when every process has its UDP socket bound (socket count on the input ports).
    await waitUntil("socat to bind", async () => {
      const ss = await t.topo.exec(t.relay.role, ["ss", "-uanH"], { allowFail: true });
      let n = 0;
      for (const line of ss.split("\n")) {
        const m = line.match(/:(\d+)\s+\S+\s*$/);
        if (m && ports.has(Number(m[1]))) n++;
      }
      return n >= need;
    });
    await new Promise((r) => setTimeout(r, 200)); // joins follow the bind
    return {
      pids: procs.map((p) => p.child.pid),
      sinkGroups: w.streams.flatMap((s) => s.outs.map((o) => `${o.group}:${o.port}`)),
      async stop() {
        for (const p of procs) p.kill("SIGTERM");
        const codes = await Promise.all(procs.map((p) => p.wait().then((r) => r.code)));
        return { processes: procs.length, exit_codes: [...new Set(codes)] };
      },
    };
  },
};

/**
 * The kernel's multicast forwarding, configured by smcrouted (foreground, no
 * VIFs by default, its own identity/socket/pid file) with one (S,G) `mroute`
 * per stream. The kernel cannot translate groups or ports, so this relay
 * forwards each stream unchanged (receivers join the input group) and cannot
 * do a 1:10 fan-out onto one interface.
 */
export const SMCROUTE: RelayDef = {
  name: "kernel (smcroute)",
  kind: "smcroute",
  describe:
    "kernel IPv4 multicast forwarding, (S,G) routes set by `smcrouted -n -N` (same group in and out: the kernel cannot translate)",
  unsupported: (w) =>
    w.streams.some((s) => s.outs.length !== 1)
      ? "the kernel forwards one copy per interface and cannot translate groups: no 1:10 fan-out onto one interface"
      : null,
  async start(t, w, tmp) {
    const id = `mcrbench-${Deno.pid}-${crypto.randomUUID().slice(0, 6)}`;
    const conf = `${tmp}/${id}.conf`;
    const lines = [`phyint ${t.relay.inDev} enable`, `phyint ${t.relay.outDev} enable`];
    for (const s of w.streams) {
      lines.push(
        `mroute from ${t.relay.inDev} source ${t.sender.addr} group ${s.inGroup} to ${t.relay.outDev}`,
      );
    }
    await Deno.writeTextFile(conf, lines.join("\n") + "\n");
    const proc = spawnTracked(t.topo.ns(t.relay.role), [
      "smcrouted",
      "-n",
      "-N",
      "-i",
      id,
      "-f",
      conf,
      "-u",
      `${tmp}/${id}.sock`,
      "-P",
      `${tmp}/${id}.pid`,
      "-l",
      "err",
    ]);
    await waitUntil("smcrouted to install its routes", async () => {
      const c = await t.topo.exec(t.relay.role, ["cat", "/proc/net/ip_mr_cache"], {
        allowFail: true,
      });
      return c.split("\n").slice(1).filter((l) => l.trim()).length >= w.streams.length;
    });
    return {
      pids: [proc.child.pid],
      sinkGroups: w.streams.map((s) => `${s.inGroup}:${s.inPort}`),
      async stop() {
        const cache = await t.topo.exec(t.relay.role, ["cat", "/proc/net/ip_mr_cache"], {
          allowFail: true,
        });
        proc.kill("SIGTERM");
        const r = await proc.wait();
        return { exit_code: r.code, ip_mr_cache: cache.trim().split("\n") };
      },
    };
  },
};

/**
 * The bare C reference relay (bench/floor/floor-relay.c): TPACKET_V3 RX ring
 * (64 KiB blocks, 1 ms retire timeout), the rewrite mcr does, a TPACKET_V2 TX
 * ring kicked once per RX block. One stream, one output.
 */
export const FLOOR: RelayDef = {
  name: "floor (C)",
  kind: "floor",
  describe:
    "bench/floor/floor-relay.c: TPACKET_V3 RX ring (64 KiB × 64 blocks, 1 ms timeout), mcr's rewrite and checksums, TPACKET_V2 TX ring, one kick per RX block; no libmcr",
  unsupported: (w) =>
    w.streams.length !== 1 || w.streams[0].outs.length !== 1
      ? "the floor relay relays one stream to one output"
      : null,
  async start(t, w, tmp) {
    const s = w.streams[0], o = s.outs[0];
    const ready = `${tmp}/floor-${crypto.randomUUID().slice(0, 8)}.ready`;
    const proc = spawnTracked(t.topo.ns(t.relay.role), [
      `${BUILD}/floor-relay`,
      "--in",
      t.relay.inDev,
      "--out",
      t.relay.outDev,
      "--group",
      `${s.inGroup}:${s.inPort}`,
      "--to",
      `${o.group}:${o.port}`,
      "--ready-file",
      ready,
    ]);
    try {
      await waitForFile(ready, 10_000, "floor-relay to start");
    } catch (e) {
      proc.kill("SIGKILL");
      throw new Error(`${(e as Error).message}: ${(await proc.wait()).stderr}`);
    }
    return {
      pids: [proc.child.pid],
      sinkGroups: [`${o.group}:${o.port}`],
      async stop() {
        proc.kill("SIGTERM");
        const r = await proc.wait();
        let counters: unknown = null;
        try {
          counters = JSON.parse(r.stdout.trim().split("\n").pop() ?? "");
        } catch { /* reported as null */ }
        return { exit_code: r.code, counters, stderr: r.stderr.slice(0, 500) };
      },
    };
  },
};

/**
 * Opt-in HTTP metrics endpoint (`--metrics 127.0.0.1:9464` or config
 * `metrics.listen`): `GET /metrics` serves the Prometheus text exposition
 * format (rendered by prom-client from one `stats()` snapshot per scrape),
 * `GET /healthz` answers 200 when healthy and 503 (with the reasons as JSON)
 * when a rule is not active, an output or an input interface is in error or
 * down, or a worker has failed.
 *
 * Metric names follow Prometheus conventions (`_total` counters, base units,
 * `mcr_` prefix); see docs/control.md for the list.
 *
 * @module
 */
import { Counter, Gauge, Registry } from "prom-client";
import { logger } from "../common/log.ts";
import { type ControlContext, statsWithRates } from "./commands.ts";
import { MCR_VERSION } from "../common/version.ts";
import type { StatsResult } from "./results.ts";

const log = logger("metrics");

/** Parse "HOST:PORT" (IPv6 as "[::1]:9464"). */
export function parseListen(s: string): { hostname: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new Error(`metrics listen address must be HOST:PORT like 127.0.0.1:9464 (got "${s}")`);
  }
  return { hostname: m[1] ?? m[2], port };
}

/** Health verdict for /healthz. */
export interface Health {
  /** "ok" or "fail". */
  status: "ok" | "fail";
  /** What is wrong (rules in error, workers down). */
  problems: string[];
}

/**
 * Healthy only when everything the configuration asks for works: every rule
 * active (not pending on a missing interface, not in error), every output
 * active, every input interface running, every worker running. Anything
 * else is a problem, listed with its reason.
 */
export function health(s: Pick<StatsResult, "rules" | "workers" | "interfaces">): Health {
  const problems: string[] = [];
  const why = (reason?: string) => (reason ? `: ${reason}` : "");
  for (const i of s.interfaces) {
    if (i.state !== "running") problems.push(`interface ${i.name}: ${i.state}${why(i.reason)}`);
  }
  for (const r of s.rules) {
    if (r.state !== "active") problems.push(`rule ${r.name}: ${r.state}${why(r.reason)}`);
    for (const o of r.outputs) {
      if (o.state !== "active") {
        problems.push(
          `rule ${r.name} output ${o.interface} ${o.group}:${o.port}: ${o.state}${why(o.reason)}`,
        );
      }
    }
  }
  for (const w of s.workers) {
    if (w.state === "error") {
      problems.push(`worker ${w.interface}#${w.index}: ${w.state}${why(w.reason)}`);
    }
  }
  return { status: problems.length ? "fail" : "ok", problems };
}

/** Build the registry whose metrics read `snap()` at scrape time. */
export function buildRegistry(snap: () => StatsResult): Registry {
  const reg = new Registry();
  type Fill = (
    set: (labels: Record<string, string | number>, v: number) => void,
    s: StatsResult,
  ) => void;
  // Counters and gauges alike are refilled from one snapshot at scrape time.
  const metric = (kind: "counter" | "gauge") =>
  (
    name: string,
    help: string,
    labelNames: string[],
    fill: Fill,
  ) => {
    const collect = function (this: Counter | Gauge) {
      this.reset();
      fill((l, v) => this instanceof Counter ? this.inc(l, v) : this.set(l, v), snap());
    };
    const opts = { name, help, labelNames, registers: [reg], collect };
    return kind === "counter" ? new Counter(opts) : new Gauge(opts);
  };
  const counter = metric("counter");
  const gauge = metric("gauge");
  const rl = ["rule", "id", "interface"];
  const rlab = (r: StatsResult["rules"][number]) => ({
    rule: r.name,
    id: r.id,
    interface: r.input.interface,
  });
  counter("mcr_rule_packets_total", "Datagrams matched by the rule.", rl, (set, s) => {
    for (const r of s.rules) set(rlab(r), r.packets);
  });
  counter("mcr_rule_bytes_total", "UDP payload bytes matched by the rule.", rl, (set, s) => {
    for (const r of s.rules) set(rlab(r), r.bytes);
  });
  gauge(
    "mcr_rule_state",
    "1 for the rule's current state (active, pending, error), 0 for the others.",
    ["rule", "id", "state"],
    (set, s) => {
      for (const r of s.rules) {
        for (const st of ["active", "pending", "error"]) {
          set({ rule: r.name, id: r.id, state: st }, r.state === st ? 1 : 0);
        }
      }
    },
  );
  const ol = ["rule", "output_interface", "group", "port"];
  const olab = (
    r: StatsResult["rules"][number],
    o: StatsResult["rules"][number]["outputs"][number],
  ) => ({
    rule: r.name,
    output_interface: o.interface,
    group: o.group,
    port: o.port,
  });
  counter("mcr_output_packets_total", "Datagrams sent to the output.", ol, (set, s) => {
    for (const r of s.rules) for (const o of r.outputs) set(olab(r, o), o.packets);
  });
  counter("mcr_output_bytes_total", "UDP payload bytes sent to the output.", ol, (set, s) => {
    for (const r of s.rules) for (const o of r.outputs) set(olab(r, o), o.bytes);
  });
  counter(
    "mcr_output_dropped_total",
    "Datagrams not sent to the output, by reason (ring_full, error, ttl_expired, link_down, " +
      "too_big).",
    [...ol, "reason"],
    (set, s) => {
      for (const r of s.rules) {
        for (const o of r.outputs) {
          set({ ...olab(r, o), reason: "ring_full" }, o.ring_full);
          set({ ...olab(r, o), reason: "error" }, o.errors);
          set({ ...olab(r, o), reason: "ttl_expired" }, o.ttl_expired);
          set({ ...olab(r, o), reason: "link_down" }, o.link_down);
          set({ ...olab(r, o), reason: "too_big" }, o.too_big);
        }
      }
    },
  );
  counter(
    "mcr_output_fragmented_total",
    "Datagrams sent to the output as IPv4 fragments (longer than its MTU, DF clear).",
    ol,
    (set, s) => {
      for (const r of s.rules) for (const o of r.outputs) set(olab(r, o), o.fragmented);
    },
  );
  gauge(
    "mcr_output_queued",
    "Datagrams waiting in a TX ring for the kernel.",
    ol,
    (set, s) => {
      for (const r of s.rules) for (const o of r.outputs) set(olab(r, o), o.queued);
    },
  );
  gauge(
    "mcr_output_up",
    "1 when the output is active (can deliver), 0 when it is in error or pending.",
    ol,
    (set, s) => {
      for (const r of s.rules) {
        for (const o of r.outputs) set(olab(r, o), o.state === "active" ? 1 : 0);
      }
    },
  );
  const il = ["interface"];
  const ifc = (
    name: string,
    help: string,
    key:
      | "frames"
      | "bytes"
      | "matched"
      | "sent"
      | "kernel_packets"
      | "kernel_drops"
      | "kernel_freezes"
      | "restarts",
  ) =>
    counter(name, help, il, (set, s) => {
      for (const i of s.interfaces) set({ interface: i.name }, i[key]);
    });
  ifc("mcr_interface_frames_total", "Frames taken from the input ring.", "frames");
  ifc("mcr_interface_bytes_total", "Wire bytes of the frames taken from the ring.", "bytes");
  ifc("mcr_interface_matched_total", "Frames that matched a rule.", "matched");
  ifc("mcr_interface_sent_total", "Datagrams sent for rules on this input.", "sent");
  ifc(
    "mcr_interface_kernel_packets_total",
    "Frames the kernel offered to the ring.",
    "kernel_packets",
  );
  ifc("mcr_interface_kernel_drops_total", "Frames the kernel dropped: ring full.", "kernel_drops");
  ifc("mcr_interface_kernel_freezes_total", "TPACKET_V3 ring queue freezes.", "kernel_freezes");
  ifc("mcr_interface_restarts_total", "Worker restarts on this input.", "restarts");
  gauge("mcr_interface_up", "1 when the input runs and its link is up.", il, (set, s) => {
    for (const i of s.interfaces) set({ interface: i.name }, i.state === "running" ? 1 : 0);
  });
  counter("mcr_dropped_total", "Frames and datagrams dropped, by reason.", ["reason"], (set, s) => {
    for (const [k, v] of Object.entries(s.drops)) set({ reason: k }, v);
  });
  const wl = ["interface", "worker"];
  gauge("mcr_worker_up", "1 when the data-path worker is running.", wl, (set, s) => {
    for (const w of s.workers) {
      set({ interface: w.interface, worker: w.index }, w.state === "running" ? 1 : 0);
    }
  });
  counter("mcr_worker_restarts_total", "Restarts of the data-path worker.", wl, (set, s) => {
    for (const w of s.workers) set({ interface: w.interface, worker: w.index }, w.restarts);
  });
  counter("mcr_worker_frames_total", "Frames the worker took from its ring.", wl, (set, s) => {
    for (const w of s.workers) set({ interface: w.interface, worker: w.index }, w.frames);
  });
  gauge(
    "mcr_worker_heartbeat_age_seconds",
    "Seconds since the worker's last heartbeat.",
    wl,
    (set, s) => {
      for (const w of s.workers) {
        if (w.heartbeat_age_ms !== null) {
          set({ interface: w.interface, worker: w.index }, w.heartbeat_age_ms / 1000);
        }
      }
    },
  );
  // IGMP memberships and file descriptors (issue 12)
  gauge(
    "mcr_igmp_memberships",
    "IGMP memberships the rules need, by state (joined, pending: input interface missing, " +
      "failed: refused by the kernel).",
    ["state"],
    (set, s) => {
      if (!s.igmp) return;
      set({ state: "joined" }, s.igmp.joined);
      set({ state: "pending" }, s.igmp.pending);
      set({ state: "failed" }, s.igmp.failed);
    },
  );
  gauge("mcr_igmp_sockets", "Sockets holding the IGMP memberships.", [], (set, s) => {
    if (s.igmp) set({}, s.igmp.sockets);
  });
  gauge(
    "mcr_igmp_socket_limit",
    "Per-socket limits of the relay's network namespace: net.ipv4.igmp_max_memberships, " +
      "net.ipv4.igmp_max_msf, net.core.optmem_max.",
    ["sysctl"],
    (set, s) => {
      const l = s.igmp?.limits;
      if (!l) return;
      if (l.max_memberships !== null) {
        set({ sysctl: "net.ipv4.igmp_max_memberships" }, l.max_memberships);
      }
      if (l.max_msf !== null) set({ sysctl: "net.ipv4.igmp_max_msf" }, l.max_msf);
      if (l.optmem_max !== null) set({ sysctl: "net.core.optmem_max" }, l.optmem_max);
    },
  );
  gauge(
    "mcr_fds",
    "File descriptors: open now, needed by the rules (estimated), and the RLIMIT_NOFILE soft " +
      "and hard limits (absent when unlimited).",
    ["kind"],
    (set, s) => {
      const f = s.fds;
      if (!f) return;
      if (f.open !== null) set({ kind: "open" }, f.open);
      set({ kind: "needed" }, f.needed);
      if (f.soft_limit !== null) set({ kind: "soft_limit" }, f.soft_limit);
      if (f.hard_limit !== null) set({ kind: "hard_limit" }, f.hard_limit);
    },
  );
  gauge("mcr_build_info", "Always 1; labels give the version.", ["version", "deno"], (set) => {
    set({ version: MCR_VERSION, deno: Deno.version.deno }, 1);
  });
  gauge("mcr_uptime_seconds", "Seconds since the relay started.", [], (set, s) => {
    set({}, s.uptime_s);
  });
  return reg;
}

/** A running metrics endpoint. */
export class MetricsServer implements AsyncDisposable {
  private constructor(readonly server: Deno.HttpServer<Deno.NetAddr>, readonly address: string) {}

  /** Listen on `listen` ("HOST:PORT") and serve `ctx`'s counters. */
  static start(listen: string, ctx: ControlContext): MetricsServer {
    const { hostname, port } = parseListen(listen);
    const server = Deno.serve({ hostname, port, onListen: () => {} }, async (req) => {
      const url = new URL(req.url);
      if (req.method !== "GET" && req.method !== "HEAD") {
        return new Response("method not allowed\n", {
          status: 405,
          headers: { allow: "GET, HEAD" },
        });
      }
      if (url.pathname === "/metrics") {
        const snapshot = statsWithRates(ctx); // one consistent snapshot per scrape
        const reg = buildRegistry(() => snapshot);
        const body = await reg.metrics();
        return new Response(body, { headers: { "content-type": reg.contentType } });
      }
      if (url.pathname === "/healthz") {
        const h = health(statsWithRates(ctx));
        return Response.json(h, { status: h.status === "ok" ? 200 : 503 });
      }
      if (url.pathname === "/") {
        return new Response("mcr: see /metrics and /healthz\n");
      }
      return new Response("not found\n", { status: 404 });
    });
    const addr = `${server.addr.hostname}:${server.addr.port}`;
    log.info("metrics on http://{address}/metrics", { address: addr });
    return new MetricsServer(server, addr);
  }

  /** Stop serving. */
  async close(): Promise<void> {
    await this.server.shutdown();
  }

  /** Same as close(). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

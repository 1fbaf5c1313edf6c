/**
 * Opt-in HTTP metrics endpoint (`--metrics 127.0.0.1:9464` or config
 * `metrics.listen`): `GET /metrics` serves the Prometheus text exposition
 * format (rendered by prom-client from one `stats()` snapshot per scrape),
 * `GET /healthz` answers 200 when healthy and 503 (with the reasons as JSON)
 * otherwise (health.ts: faults at once, a pending rule after a grace period).
 *
 * Metric names follow Prometheus conventions (`_total` counters, base units,
 * `mcr_` prefix); see docs/control.md for the list.
 *
 * @module
 */
import { Counter, Gauge, Registry } from "prom-client";
import process from "node:process";
import { health, type HealthTracker } from "./health.ts";
import { logger } from "../common/log.ts";
import { type ControlContext, statsWithRates } from "./commands.ts";
import { MCR_VERSION } from "../common/version.ts";
import type { StatsResult } from "./results.ts";
import { ROLES } from "../config/mod.ts";
import { pathMetrics, streamMetrics } from "./stream_metrics.ts";
import { hostPort } from "../common/net6.ts";

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

export { type Health, health } from "./health.ts";

/**
 * Build the registry whose metrics read `snap()` at scrape time (and the
 * reload counts of `tracker`, when given).
 */
export function buildRegistry(snap: () => StatsResult, tracker?: HealthTracker): Registry {
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
  // An output is named as events, ctl and top name it: "IF GROUP:PORT".
  const ol = ["rule", "output"];
  const olab = (
    r: StatsResult["rules"][number],
    o: StatsResult["rules"][number]["outputs"][number],
  ) => ({ rule: r.name, output: `${o.interface} ${hostPort(o.group, o.port)}` });
  counter("mcr_output_packets_total", "Datagrams sent to the output.", ol, (set, s) => {
    for (const r of s.rules) for (const o of r.outputs) set(olab(r, o), o.packets);
  });
  counter("mcr_output_bytes_total", "UDP payload bytes sent to the output.", ol, (set, s) => {
    for (const r of s.rules) for (const o of r.outputs) set(olab(r, o), o.bytes);
  });
  counter(
    "mcr_output_dropped_total",
    "Datagrams not sent to the output, by reason (as mcr_dropped_total spells them: " +
      "tx_ring_full, tx_error, ttl_expired, tx_link_down, tx_too_big, policed; standby: held " +
      "back while the relay is a standby).",
    [...ol, "reason"],
    (set, s) => {
      for (const r of s.rules) {
        for (const o of r.outputs) {
          set({ ...olab(r, o), reason: "tx_ring_full" }, o.ring_full);
          set({ ...olab(r, o), reason: "tx_error" }, o.errors);
          set({ ...olab(r, o), reason: "ttl_expired" }, o.ttl_expired);
          set({ ...olab(r, o), reason: "tx_link_down" }, o.link_down);
          set({ ...olab(r, o), reason: "tx_too_big" }, o.too_big);
          set({ ...olab(r, o), reason: "standby" }, o.standby);
          if (o.policed !== undefined) set({ ...olab(r, o), reason: "policed" }, o.policed);
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
  counter(
    "mcr_rule_policed_total",
    "Datagrams the rule's own rate_limit dropped (rules with one).",
    rl,
    (set, s) => {
      for (const r of s.rules) if (r.policed !== undefined) set(rlab(r), r.policed);
    },
  );
  streamMetrics(counter, gauge, rl, rlab);
  pathMetrics(counter, gauge);
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
  // the pool's workers: priority (worker_priority, src/datapath/priority.ts)
  gauge(
    "mcr_pool_worker_nice",
    "Nice value of the data-path worker's thread now (worker_nice while it is raised).",
    ["worker"],
    (set, s) => {
      for (const w of s.pool) if (w.nice !== null) set({ worker: w.index }, w.nice);
    },
  );
  counter(
    "mcr_pool_worker_priority_raises_total",
    "Times the data-path worker took worker_nice because it fell behind.",
    ["worker"],
    (set, s) => {
      for (const w of s.pool) set({ worker: w.index }, w.priority_raises);
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
  gauge(
    "mcr_port_claims",
    "UDP port claims of unicast inputs, by state (held, not_local: another host's address, " +
      "pending: input interface missing, failed: refused by the kernel).",
    ["state"],
    (set, s) => {
      const c = s.claims;
      if (!c) return;
      for (const st of ["held", "not_local", "pending", "failed"] as const) {
        set({ state: st }, c[st]);
      }
    },
  );
  gauge(
    "mcr_mld_memberships",
    "MLD memberships the IPv6 rules need, by state (joined, pending: input interface missing, " +
      "failed: refused by the kernel).",
    ["state"],
    (set, s) => {
      if (!s.mld) return;
      set({ state: "joined" }, s.mld.joined);
      set({ state: "pending" }, s.mld.pending);
      set({ state: "failed" }, s.mld.failed);
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
  gauge(
    "mcr_role",
    "1 for the relay's current role (active, standby), 0 for the other.",
    ["role"],
    (set, s) => {
      if (!s.role) return;
      for (const r of ROLES) set({ role: r }, s.role.role === r ? 1 : 0);
    },
  );
  counter(
    "mcr_role_changes_total",
    "Changes of the relay's role since it started (ctl role, a reload that edited role).",
    [],
    (set, s) => {
      if (s.role) set({}, s.role.changes);
    },
  );
  gauge("mcr_uptime_seconds", "Seconds since the relay started.", [], (set, s) => {
    set({}, s.uptime_s);
  });
  // The process's own metrics under their conventional names. Not prom-client's
  // collectDefaultMetrics: it reads /proc/self, which Deno allows only with --allow-all, and
  // reports 0 (a wrong figure) without it; these come from what the relay may read.
  gauge("process_resident_memory_bytes", "Resident memory size in bytes.", [], (set) => {
    set({}, Deno.memoryUsage().rss);
  });
  counter(
    "process_cpu_seconds_total",
    "Total user and system CPU time spent in seconds (all threads).",
    [],
    (set) => {
      const u = process.cpuUsage();
      set({}, (u.user + u.system) / 1e6);
    },
  );
  gauge("process_start_time_seconds", "Start time of the process (Unix time).", [], (set) => {
    set({}, Math.round(Date.now() / 1000 - performance.now() / 1000));
  });
  // Registered only when known: an unset gauge would read 0.
  const fds = snap().fds;
  if (fds?.open != null) {
    const open = fds.open;
    gauge("process_open_fds", "Number of open file descriptors.", [], (set) => set({}, open));
  }
  if (fds?.soft_limit != null) {
    const max = fds.soft_limit;
    gauge(
      "process_max_fds",
      "Maximum number of open file descriptors (soft limit).",
      [],
      (set) => set({}, max),
    );
  }
  if (tracker) {
    counter("mcr_reloads_total", "Reloads of the configuration, by result.", ["result"], (set) => {
      set({ result: "done" }, tracker.reloads.done);
      set({ result: "failed" }, tracker.reloads.failed);
    });
    // Registered only once there was a reload: an unset gauge would read 0 ("failed", 1970).
    const last = tracker.reloads.last;
    if (last) {
      gauge(
        "mcr_last_reload_timestamp_seconds",
        "When the last reload ended (Unix time; absent before the first).",
        [],
        (set) => set({}, last.at / 1000),
      );
      gauge(
        "mcr_last_reload_success",
        "1 when the last reload applied, 0 when it was refused (absent before the first).",
        [],
        (set) => set({}, last.ok ? 1 : 0),
      );
    }
  }
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
        const reg = buildRegistry(() => snapshot, ctx.health);
        const body = await reg.metrics();
        return new Response(body, { headers: { "content-type": reg.contentType } });
      }
      if (url.pathname === "/healthz") {
        const snap = statsWithRates(ctx);
        const h = ctx.health ? ctx.health.check(snap) : health(snap);
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

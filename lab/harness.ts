/**
 * Runs the relay, the generator (mcr-gen) and the receiver (mcr-sink) inside
 * namespaces: shared by the tests, the demo and the benchmarks.
 *
 * @module
 */
import {
  BUILD,
  Proc,
  RELAY_V8_FLAGS,
  REPO,
  runDeno,
  type RunResult,
  type Topology,
  waitForFile,
} from "./netns.ts";
import type { RelayStats } from "../src/relay/stats.ts";
import { ControlClient } from "../src/client/client.ts";

/** The receiver's JSON report (see csrc/tools/README.md). */
export interface SinkReport {
  groups: {
    group: string;
    port: number;
    streams: {
      stream: number;
      received: number;
      unique: number;
      duplicates: number;
      reordered: number;
      lost: number;
      corrupt: number;
      first_seq: number;
      last_seq: number;
      highest_seq: number;
      /** CLOCK_MONOTONIC receive time (ns) of the first unique datagram; null when none. */
      first_rx_ns?: number | null;
      /** CLOCK_MONOTONIC receive time (ns) of the last unique datagram; null when none. */
      last_rx_ns?: number | null;
      /** Longest time between two consecutive unique datagrams, µs; null when none. */
      max_gap_us?: number | null;
      /** Receive time (ns) that ended the longest gap; null when none. */
      max_gap_end_ns?: number | null;
    }[];
  }[];
  total: {
    received: number;
    unique: number;
    duplicates: number;
    reordered: number;
    lost: number;
    corrupt: number;
    foreign: number;
  };
  latency_us: { p50: number; p90: number; p99: number; p999: number; max: number; count: number };
  udp: { in_datagrams: number; in_errors: number; in_csum_errors: number; rcvbuf_errors: number };
  /**
   * Datagrams the kernel dropped at the sink's own sockets (receive buffer full, checksum
   * errors), from each socket's drop counter; null when the kernel cannot report them.
   */
  socket_drops: number | null;
  /** Per socket (one per UDP port): its receive buffer and drops. */
  sockets: { port: number; rcvbuf: number; drops: number | null }[];
  /** Why the sink stopped (`stop-file`, `stop-file-timeout`, `idle`, `expect-total`, ...). */
  stop_reason: string;
}

/** The generator's JSON report (see csrc/tools/README.md). */
export interface GenReport {
  /** Per destination (stream). */
  streams: { stream: number; dst: string; port: number; sent: number; first_seq: number }[];
  /** Datagrams the socket accepted (all streams); a failed send is retried, never counted. */
  sent: number;
  /** Failed sendmmsg calls (retried; nothing of them was sent). */
  send_errors: { total: number; enobufs: number; eagain: number; other: number };
}

let tmpRoot: string | undefined;
async function tmpDir(): Promise<string> {
  tmpRoot ??= await Deno.makeTempDir({ prefix: "mcr-test-" });
  return tmpRoot;
}
async function tmp(name: string): Promise<string> {
  return `${await tmpDir()}/${name}`;
}

/** The final stats JSON a relay prints as its last stdout line when it stops. */
function finalStats(
  r: { code: number; stdout: string; stderr: string },
  what: string,
): { code: number; stats: RelayStats; stderr: string } {
  try {
    return {
      code: r.code,
      stats: JSON.parse(r.stdout.trim().split("\n").pop() ?? ""),
      stderr: r.stderr,
    };
  } catch {
    throw new Error(
      `${what} exited ${r.code} without JSON stats.\nstdout: ${r.stdout}\nstderr: ${r.stderr}`,
    );
  }
}

/** A running relay. */
export class RelayProc {
  /**
   * @param proc the relay process
   * @param configPath its config file
   * @param command the exact command line it runs
   */
  constructor(
    readonly proc: Proc,
    readonly configPath: string,
    readonly command: string[] = [],
    readonly controlSocket?: string,
  ) {}

  /**
   * One snapshot of every counter, over the control socket (the relay must have been started
   * with `control: true`).
   */
  async stats(): Promise<RelayStats> {
    if (!this.controlSocket) throw new Error("relay started without a control socket");
    await using c = await ControlClient.connect(this.controlSocket);
    const r = await c.request<RelayStats>("stats");
    if (!r.ok) throw new Error(`stats failed: ${JSON.stringify(r.error)}`);
    return r.result;
  }

  /** SIGTERM, wait, parse the final JSON stats. */
  async stop(): Promise<{ code: number; stats: RelayStats; stderr: string }> {
    this.proc.kill("SIGTERM");
    return finalStats(await this.proc.wait(), "relay");
  }
}

/** Options of {@link startRelayWith}. */
export interface RelayRun {
  /** Directory for the config and the ready file (default: a private temp dir). */
  dir?: string;
  /** Command prepended to the deno invocation (e.g. setpriv ...). */
  wrap?: string[];
  /** Deno executable (default Deno.execPath()). */
  deno?: string;
  /**
   * Another built checkout of mcr to run instead of this one (its cli.ts and
   * build/libmcr.so): the benchmarks compare a baseline revision in the same run.
   */
  root?: string;
  /** Deno permission flags (default: ffi, read, env, write to `dir`). */
  perms?: string[];
  /** Extra relay arguments (default --no-control, or the control socket with `control`). */
  args?: string[];
  /**
   * Give the relay a control socket in `dir` (permission to it added to the default perms) so
   * that {@link RelayProc.stats} can read its counters while it runs.
   */
  control?: boolean;
  /** Environment. */
  env?: Record<string, string>;
  /** Wait for the ready file (default true). */
  waitReady?: boolean;
  /** Process starter (default `new Proc`; the benchmarks track their processes). */
  spawn?: (ns: string, cmd: string[], env: Record<string, string>) => Proc;
}

/** Start cli.ts in a namespace with full control over the command line. */
export async function startRelayWith(
  topo: Topology,
  role: string,
  config: unknown,
  run: RelayRun = {},
): Promise<RelayProc> {
  const dir = run.dir ?? await tmpDir();
  const id = `${topo.prefix}-${role}-${crypto.randomUUID().slice(0, 8)}`;
  const cfg = `${dir}/relay-${id}.json`;
  const ready = `${cfg}.ready`;
  // Unix socket paths are short (108 bytes): a short name in the (short) temp dir.
  const socket = run.control ? `${dir}/c-${crypto.randomUUID().slice(0, 8)}.sock` : undefined;
  await Deno.writeTextFile(cfg, JSON.stringify(config, null, 2));
  const perms = run.perms ??
    [
      "--allow-ffi",
      "--allow-read",
      "--allow-env",
      `--allow-write=${dir}`,
      ...(socket ? [`--allow-net=unix:${socket}`] : []),
    ];
  const command = [
    ...(run.wrap ?? []),
    run.deno ?? Deno.execPath(),
    "run",
    ...RELAY_V8_FLAGS,
    ...perms,
    `${run.root ?? REPO}/cli.ts`,
    "--config",
    cfg,
    "--ready-file",
    ready,
    "--json",
    "--log-level",
    "warning",
    ...(socket ? ["--control-socket", socket] : []),
    ...(run.args ?? (socket ? [] : ["--no-control"])),
  ];
  const lib = run.root ? `${run.root}/build/libmcr.so` : `${BUILD}/libmcr.so`;
  const env = { MCR_LIB: lib, NO_COLOR: "1", ...(run.env ?? {}) };
  const proc = (run.spawn ?? ((ns, cmd, e) => new Proc(ns, cmd, e)))(topo.ns(role), command, env);
  if (run.waitReady ?? true) {
    try {
      await waitForFile(ready, 20_000, "the relay to start");
    } catch (e) {
      proc.kill("SIGKILL");
      const r = await proc.wait();
      throw new Error(`${(e as Error).message}\nrelay stderr: ${r.stderr}\nstdout: ${r.stdout}`);
    }
  }
  return new RelayProc(proc, cfg, command, socket);
}

/** Start the relay in a namespace with a config object; resolves when it is forwarding. */
export function startRelay(topo: Topology, role: string, config: unknown): Promise<RelayProc> {
  return startRelayWith(topo, role, config);
}

/** A running receiver. */
export class SinkProc {
  /**
   * @param proc the mcr-sink process
   * @param stopFile its `--stop-file`, when started with `settle`
   */
  constructor(readonly proc: Proc, readonly stopFile?: string) {}

  /**
   * Tell the sink how many datagrams were put on the wire toward it (e.g. a relay's final
   * output counters) and wait for its report: it stops once that many have been read or dropped
   * at its sockets (`socket_drops`), so nothing still in flight is missed however busy the
   * machine is (or after mcr-sink's --stop-wait-ms, then the report shows fewer).
   */
  async settle(count: number): Promise<SinkReport> {
    if (!this.stopFile) throw new Error("sink started without settle: true");
    const tmpPath = `${this.stopFile}.tmp`;
    await Deno.writeTextFile(tmpPath, `${count}\n`);
    await Deno.rename(tmpPath, this.stopFile);
    return this.result();
  }

  /** Wait for the receiver to finish and parse its report. */
  async result(): Promise<SinkReport> {
    const r = await this.proc.wait();
    try {
      return JSON.parse(r.stdout);
    } catch {
      throw new Error(`mcr-sink exited ${r.code}: ${r.stderr}\n${r.stdout}`);
    }
  }

  /** Stop it early (SIGTERM) and parse its report. */
  stop(): Promise<SinkReport> {
    this.proc.kill("SIGTERM");
    return this.result();
  }
}

/** How long a settling sink waits for the announced count before it reports what it has. */
const SETTLE_WAIT_MS = 30_000;

/** Start mcr-sink in a namespace on `groups` ("G:P"); resolves once it has joined. */
export async function startSink(
  topo: Topology,
  role: string,
  iface: string,
  groups: string[],
  opts: { expectTotal?: number; idleMs?: number; durationS?: number; settle?: boolean } = {},
): Promise<SinkProc> {
  const base = await tmp(`${topo.prefix}-sink-${crypto.randomUUID().slice(0, 8)}`);
  const ready = `${base}.ready`;
  const stopFile = opts.settle ? `${base}.stop` : undefined;
  const args = [`${BUILD}/mcr-sink`, "--iface", iface, "--ready-file", ready, "--json"];
  for (const g of groups) args.push("--group", g);
  if (opts.expectTotal !== undefined) args.push("--expect-total", String(opts.expectTotal));
  // A settling sink runs until it is told how many datagrams to account for: no idle timer
  // (it would fire early while a starved relay catches up).
  args.push("--idle-ms", String(opts.idleMs ?? (stopFile ? 0 : 1500)));
  args.push("--duration", String(opts.durationS ?? (stopFile ? 300 : 60)));
  if (stopFile) args.push("--stop-file", stopFile, "--stop-wait-ms", String(SETTLE_WAIT_MS));
  const proc = new Proc(topo.ns(role), args);
  try {
    await waitForFile(ready, 10_000, "mcr-sink to join");
  } catch (e) {
    proc.kill("SIGKILL");
    const r = await proc.wait();
    throw new Error(`${(e as Error).message}: ${r.stderr}`);
  }
  return new SinkProc(proc, stopFile);
}

/** Run mcr-gen to completion in a namespace; returns its JSON report. */
export async function runGen(
  topo: Topology,
  role: string,
  iface: string,
  dsts: string[],
  opts: {
    rate?: number;
    count?: number;
    size?: number;
    ttl?: number;
    streamBase?: number;
    /** Source address: the socket is bound to it (default: the interface's primary address). */
    srcIp?: string;
  } = {},
): Promise<GenReport> {
  const args = [`${BUILD}/mcr-gen`, "--iface", iface, "--json"];
  for (const d of dsts) args.push("--dst", d);
  args.push("--rate", String(opts.rate ?? 20_000));
  args.push("--count", String(opts.count ?? 10_000));
  args.push("--size", String(opts.size ?? 1024));
  if (opts.ttl !== undefined) args.push("--ttl", String(opts.ttl));
  if (opts.streamBase !== undefined) args.push("--stream-base", String(opts.streamBase));
  if (opts.srcIp !== undefined) args.push("--src-ip", opts.srcIp);
  const r = await new Proc(topo.ns(role), args).wait();
  if (r.code !== 0) throw new Error(`mcr-gen failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Run `cli.ts check` (no namespace needed); returns exit code and output. */
export async function runCheck(config: unknown): Promise<RunResult> {
  const cfg = await tmp(`check-${crypto.randomUUID().slice(0, 8)}.json`);
  await Deno.writeTextFile(cfg, typeof config === "string" ? config : JSON.stringify(config));
  return runDeno(["run", "--allow-read", `${REPO}/cli.ts`, "check", "--config", cfg]);
}

/** A relay run through lab/relay_driver.ts (mod.ts API, driven by files). */
export class RelayDriver {
  #n = 0;
  constructor(readonly proc: Proc, readonly dir: string) {}

  async #trigger(name: string, reply: string, timeoutMs = 15_000): Promise<string> {
    await Deno.writeTextFile(`${this.dir}/${name}`, "");
    await waitForFile(`${this.dir}/${reply}`, timeoutMs, reply);
    // the driver writes a reply to a temp file and renames it: complete once it exists
    return await Deno.readTextFile(`${this.dir}/${reply}`);
  }

  /** Apply config number `i` (as passed to startDriver). */
  async apply(i: number): Promise<RelayStats> {
    return JSON.parse(await this.#trigger(`apply-${i}`, `applied-${i}`));
  }

  /** Crash a worker through the test hook; true when the hook is enabled. */
  async fault(iface: string, index: number): Promise<boolean> {
    return (await this.#trigger(`fault-${iface}-${index}`, `faulted-${iface}-${index}`)) ===
      "true";
  }

  /** Current stats. */
  async snap(): Promise<RelayStats> {
    const n = ++this.#n;
    return JSON.parse(await this.#trigger(`snap-${n}`, `stats-${n}`));
  }

  /** Poll stats until `pred` holds (or throw after timeoutMs). */
  async until(
    pred: (s: RelayStats) => boolean,
    timeoutMs = 20_000,
    what = "state",
  ): Promise<RelayStats> {
    const t0 = Date.now();
    for (;;) {
      const s = await this.snap();
      if (pred(s)) return s;
      if (Date.now() - t0 > timeoutMs) {
        throw new Error(`timed out waiting for ${what}: ${JSON.stringify(s)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Stop and return the final stats. */
  async stop(): Promise<{ code: number; stats: RelayStats; stderr: string }> {
    await Deno.writeTextFile(`${this.dir}/stop`, "");
    const r = await this.proc.wait();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    return finalStats(r, "relay driver");
  }
}

/**
 * Start the file-driven relay (mod.ts `Relay`) in a namespace with a list of
 * configs (the first is applied at start); `env` may set MCR_FAULT_INJECTION.
 */
export async function startDriver(
  topo: Topology,
  role: string,
  configs: unknown[],
  env: Record<string, string> = {},
): Promise<RelayDriver> {
  const dir = await Deno.makeTempDir({ prefix: "mcr-driver-" });
  const paths: string[] = [];
  for (let i = 0; i < configs.length; i++) {
    paths.push(`${dir}/c${i}.json`);
    await Deno.writeTextFile(paths[i], JSON.stringify(configs[i]));
  }
  const proc = new Proc(topo.ns(role), [
    Deno.execPath(),
    "run",
    "--allow-ffi",
    "--allow-read",
    "--allow-env",
    "--allow-write",
    `${REPO}/lab/relay_driver.ts`,
    dir,
    ...paths,
  ], { MCR_LIB: `${BUILD}/libmcr.so`, ...env });
  try {
    await waitForFile(`${dir}/ready`, 20_000, "the relay driver");
  } catch (e) {
    proc.kill("SIGKILL");
    const r = await proc.wait();
    throw new Error(`${(e as Error).message}: ${r.stderr}`);
  }
  return new RelayDriver(proc, dir);
}

/** One datagram as decoded by lab/capture.py (independent of mcr). */
export interface CapturedDatagram {
  /** IP version. */
  family: 4 | 6;
  /** Destination MAC, "01:00:5e:14:01:01". */
  dst_mac: string;
  ttl: number;
  tos: number;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  udp_len: number;
  ip_csum_ok: boolean;
  udp_csum_ok: boolean;
  udp_csum: number;
}

/**
 * Capture `count` IPv4/UDP or IPv6/UDP datagrams to `port` on `iface` in a namespace with
 * a plain AF_PACKET socket (python3) that verifies both checksums itself.
 * Resolves once the capture socket is open; `result()` waits for it.
 */
export async function startCapture(
  topo: Topology,
  role: string,
  iface: string,
  port: number,
  count: number,
  timeoutS = 20,
): Promise<{ result(): Promise<CapturedDatagram[]> }> {
  const ready = await tmp(`${topo.prefix}-cap-${crypto.randomUUID().slice(0, 8)}.ready`);
  const proc = new Proc(topo.ns(role), [
    "python3",
    `${REPO}/lab/capture.py`,
    iface,
    String(port),
    String(count),
    String(timeoutS),
    ready,
  ]);
  try {
    await waitForFile(ready, 10_000, "the capture");
  } catch (e) {
    proc.kill("SIGKILL");
    throw new Error(`${(e as Error).message}: ${(await proc.wait()).stderr}`);
  }
  return {
    async result() {
      const r = await proc.wait();
      return r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
    },
  };
}

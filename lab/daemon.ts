/**
 * Test helpers: run the daemon (`cli.ts`) with a control socket in a fresh
 * 0750 temporary directory, optionally inside a network namespace, and talk
 * to it with `cli.ts ctl` or a {@link ControlClient}.
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
  waitForFile,
} from "./netns.ts";
import { ControlClient } from "../src/client/client.ts";
import type { Reply } from "../src/control/protocol.ts";

/** A daemon started by {@link startDaemon}. */
export class Daemon {
  /**
   * Wrap a started daemon (see {@link startDaemon}).
   * @param proc the process
   * @param dir its private 0750 directory (socket, config, ready file)
   * @param socket control socket path
   * @param configPath config file path
   * @param output waits for exit; exit code and output
   */
  constructor(
    readonly proc: Deno.ChildProcess | Proc,
    readonly dir: string,
    readonly socket: string,
    readonly configPath: string,
    readonly output: () => Promise<{ code: number; stdout: string; stderr: string }>,
  ) {}

  /** Pid of the process (the `ip netns exec` wrapper execs, so it is the relay's). */
  get pid(): number {
    return this.proc instanceof Proc ? this.proc.child.pid : this.proc.pid;
  }

  /** Send a signal. */
  kill(sig: Deno.Signal): void {
    try {
      if (this.proc instanceof Proc) this.proc.kill(sig);
      else this.proc.kill(sig);
    } catch { /* gone */ }
  }

  /** One request on a fresh connection. */
  async request<T = unknown>(cmd: string, args: Record<string, unknown> = {}): Promise<Reply<T>> {
    await using c = await ControlClient.connect(this.socket);
    return await c.request<T>(cmd, args);
  }

  /** A request that must succeed; returns its result. */
  async ok<T = unknown>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const r = await this.request<T>(cmd, args);
    if (!r.ok) throw new Error(`${cmd} failed: ${JSON.stringify(r.error)}`);
    return r.result;
  }

  /** Run `cli.ts ctl --control-socket SOCKET ...args`. */
  ctl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return runCtl(["--control-socket", this.socket, ...args]);
  }

  /** SIGTERM and wait; returns exit code and output. */
  async stop(): Promise<{ code: number; stdout: string; stderr: string }> {
    this.kill("SIGTERM");
    const r = await this.output();
    try {
      await Deno.remove(this.dir, { recursive: true });
    } catch { /* gone */ }
    return r;
  }
}

/** Run `cli.ts ctl` with arguments; returns exit code and output. */
export function runCtl(args: string[]): Promise<RunResult> {
  return runDeno([
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-net",
    `${REPO}/cli.ts`,
    "ctl",
    ...args,
  ]);
}

/** Options of {@link startDaemon}. */
export interface DaemonOptions {
  /** Run inside this network namespace (needs root). */
  netns?: string;
  /** `--metrics` address. */
  metrics?: string;
  /** Extra arguments for cli.ts. */
  args?: string[];
  /** Log level (default warning). */
  logLevel?: string;
  /** How long to wait for the ready file (ms; default 20 s). */
  readyTimeoutMs?: number;
  /** Wait for the ready file (default true). */
  waitReady?: boolean;
  /** Also a read-only control socket, `status.sock` beside the control socket. */
  readonlySocket?: boolean;
}

/**
 * Start `cli.ts` with `config` and a control socket in a new 0750 temporary
 * directory, with the documented minimal permissions.
 */
export async function startDaemon(config: unknown, opts: DaemonOptions = {}): Promise<Daemon> {
  const dir = await Deno.makeTempDir({ prefix: "mcr-ctl-" });
  await Deno.chmod(dir, 0o750);
  const cfg = `${dir}/rules.json`;
  const socket = `${dir}/control.sock`;
  const status = `${dir}/status.sock`;
  if (opts.readonlySocket) {
    const c = config as { control?: Record<string, unknown> };
    config = { ...c, control: { ...c.control, readonly_socket: status } };
  }
  await Deno.writeTextFile(cfg, JSON.stringify(config, null, 2));
  const ready = `${dir}/ready`;
  const perms = [
    "--allow-ffi",
    "--allow-read",
    "--allow-env",
    `--allow-write=${dir}`,
    `--allow-net=unix:${socket}${opts.readonlySocket ? `,unix:${status}` : ""}${
      opts.metrics ? `,${opts.metrics}` : ""
    }`,
  ];
  const cmd = [
    Deno.execPath(),
    "run",
    ...RELAY_V8_FLAGS,
    ...perms,
    `${REPO}/cli.ts`,
    "--config",
    cfg,
    "--control-socket",
    socket,
    "--ready-file",
    ready,
    "--json",
    "--log-level",
    opts.logLevel ?? "warning",
    ...(opts.metrics ? ["--metrics", opts.metrics] : []),
    ...(opts.args ?? []),
  ];
  const env = { MCR_LIB: `${BUILD}/libmcr.so`, NO_COLOR: "1" };
  let d: Daemon;
  if (opts.netns) {
    const p = new Proc(opts.netns, cmd, env);
    d = new Daemon(p, dir, socket, cfg, () => p.wait());
  } else {
    const child = new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
      env,
    }).spawn();
    const out = new Response(child.stdout).text();
    const err = new Response(child.stderr).text();
    d = new Daemon(child, dir, socket, cfg, async () => ({
      code: (await child.status).code,
      stdout: await out,
      stderr: await err,
    }));
  }
  if (opts.waitReady ?? true) {
    try {
      await waitForFile(ready, opts.readyTimeoutMs ?? 20_000, "the relay to start");
    } catch (e) {
      d.kill("SIGKILL");
      const r = await d.output();
      throw new Error(`${(e as Error).message}\nstderr: ${r.stderr}\nstdout: ${r.stdout}`);
    }
  }
  return d;
}

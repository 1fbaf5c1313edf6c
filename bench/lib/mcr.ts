/**
 * Starts the mcr relay for the benchmarks: like `startRelay` in
 * src/harness.ts, but with `--no-control` (the benchmark needs no control
 * socket, and several relays of different runs must not share
 * /run/mcr/control.sock) and with the process tracked for cleanup.
 *
 * @module
 */
import { BUILD, REPO, type Topology, waitForFile } from "../../src/netns.ts";
import type { RelayStatsJson } from "../../src/harness.ts";
import { spawnTracked } from "./relays.ts";

/** A running relay process. */
export interface McrProc {
  /** The relay's pid (deno; worker threads included). */
  pid: number;
  /** The exact command line. */
  command: string[];
  /** SIGTERM, wait, parse the final stats JSON. */
  stop(): Promise<RelayStatsJson>;
}

/** Start `cli.ts` with a config in a namespace; resolves once it wrote its ready file. */
export async function startMcr(
  topo: Topology,
  role: string,
  config: unknown,
  tmp: string,
): Promise<McrProc> {
  const cfg = `${tmp}/mcr-${crypto.randomUUID().slice(0, 8)}.json`;
  const ready = `${cfg}.ready`;
  await Deno.writeTextFile(cfg, JSON.stringify(config, null, 2));
  const command = [
    Deno.execPath(),
    "run",
    "--allow-ffi",
    "--allow-read",
    "--allow-env",
    "--allow-write",
    `${REPO}/cli.ts`,
    "--config",
    cfg,
    "--ready-file",
    ready,
    "--no-control",
    "--json",
    "--log-level",
    "warning",
  ];
  const proc = spawnTracked(topo.ns(role), command, {
    MCR_LIB: `${BUILD}/libmcr.so`,
    NO_COLOR: "1",
  });
  try {
    await waitForFile(ready, 20_000, "the relay to start");
  } catch (e) {
    proc.kill("SIGKILL");
    const r = await proc.wait();
    throw new Error(`${(e as Error).message}\nrelay stderr: ${r.stderr}\nstdout: ${r.stdout}`);
  }
  return {
    pid: proc.child.pid,
    command,
    async stop() {
      proc.kill("SIGTERM");
      const r = await proc.wait();
      try {
        return JSON.parse(r.stdout.trim().split("\n").pop() ?? "");
      } catch {
        throw new Error(`relay exited ${r.code} without JSON stats: ${r.stderr}`);
      }
    },
  };
}

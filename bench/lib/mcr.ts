/**
 * Starts the mcr relay for the benchmarks through `startRelayWith` in
 * lab/harness.ts (no control socket), with the process tracked for cleanup.
 *
 * @module
 */
import type { Topology } from "../../lab/netns.ts";
import { startRelayWith } from "../../lab/harness.ts";
import type { RelayStats } from "../../src/relay/stats.ts";
import { spawnTracked } from "./procs.ts";

/** A running relay process. */
export interface McrProc {
  /** The relay's pid (deno; worker threads included). */
  pid: number;
  /** The exact command line. */
  command: string[];
  /** SIGTERM, wait, parse the final stats JSON. */
  stop(): Promise<RelayStats>;
}

/**
 * Start `cli.ts` with a config in a namespace; resolves once it wrote its ready
 * file. `root`: another built checkout to run (a baseline revision).
 */
export async function startMcr(
  topo: Topology,
  role: string,
  config: unknown,
  tmp: string,
  root?: string,
): Promise<McrProc> {
  const relay = await startRelayWith(topo, role, config, {
    dir: tmp,
    root,
    perms: ["--allow-ffi", "--allow-read", "--allow-env", "--allow-write"],
    spawn: spawnTracked,
  });
  return {
    pid: relay.proc.child.pid,
    command: relay.command,
    async stop() {
      return (await relay.stop()).stats;
    },
  };
}

/**
 * The data-path workers' priority (`worker_nice`): a relay run as root puts
 * every worker thread at nice -10 by default (at the configured value when
 * `worker_nice` is given), while its other threads keep the process's
 * priority; the relay forwards as before. Running without the privilege to
 * raise priority is covered by privilege_test.ts (the workers stay at the
 * process's priority and forward).
 *
 * Why (issue 12): on a host busy with other processes a worker at the
 * default priority waits for a CPU while its rings overflow.
 */
import assert from "node:assert/strict";
import { skipReason, Topology } from "../../lab/netns.ts";
import { runGen, startRelay, startSink } from "../../lab/harness.ts";
import { chainV4, dataPathThreads, threadNices } from "./lib_robust.ts";

/** CAP_SYS_NICE's bit in /proc/PID/status CapEff. */
const CAP_SYS_NICE_BIT = 23n;

/** Why raising a priority cannot be tested here, or null. */
async function noSysNice(): Promise<string | null> {
  const status = await Deno.readTextFile("/proc/self/status");
  const eff = BigInt("0x" + (status.match(/^CapEff:\s+([0-9a-f]+)/m)?.[1] ?? "0"));
  return (eff >> CAP_SYS_NICE_BIT) & 1n ? null : "root without CAP_SYS_NICE";
}

const skip = skipReason();
if (skip) console.warn(`netns worker priority tests skipped: ${skip}`);
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };
const noNice = skip ?? await noSysNice();
if (!skip && noNice) console.warn(`worker priority: the nice -10 test is skipped: ${noNice}`);

/** Datagrams sent through the relay (fit its RX ring and the receiver's buffer). */
const COUNT = 500;

const RULES = [{
  name: "prio",
  input: { interface: "r0", group: "239.1.1.1", port: 5001 },
  outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
}];

/** Start a relay with `extra` config, check its threads' nice values, forward COUNT datagrams. */
async function check(tag: string, extra: Record<string, unknown>, expect: number): Promise<void> {
  const t = new Topology(tag);
  try {
    await chainV4(t);
    const relay = await startRelay(t, "rly", { workers: 2, ...extra, rules: RULES });
    const pid = relay.proc.child.pid;
    const threads = await threadNices(pid);
    const workers = dataPathThreads(threads);
    assert.equal(
      workers.length,
      2,
      `one thread per pool worker: ${JSON.stringify(threads.map((x) => x.comm))}`,
    );
    for (const w of workers) assert.equal(w.nice, expect, `nice of ${w.comm}`);
    // the relay inherited the test's nice value; its main thread keeps it
    const own = (await threadNices(Deno.pid)).find((x) => x.tid === Deno.pid)!;
    const main = threads.find((x) => x.tid === pid)!;
    assert.equal(main.nice, own.nice, "the main thread keeps the process's priority");

    const sink = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], {
      expectTotal: COUNT,
      idleMs: 0,
    });
    await runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: 2000, count: COUNT });
    const rep = await sink.result();
    const { stats, code, stderr } = await relay.stop();
    assert.equal(code, 0, stderr);
    assert.equal(rep.total.unique, COUNT, "every datagram forwarded");
    assert.equal(rep.total.duplicates, 0);
    assert.equal(stats.rules[0].packets, COUNT);
  } finally {
    await t.destroy();
  }
}

Deno.test({
  ...opts,
  ignore: noNice !== null,
  name: "worker priority: as root the data-path workers run at nice -10 by default",
  fn: () => check("prio", {}, -10),
});

Deno.test({
  ...opts,
  name: "worker priority: worker_nice sets the workers' nice value (a lower priority too)",
  fn: () => check("prio5", { worker_nice: 5 }, 5),
});

/**
 * The examples run for real: `examples/embed.ts` relays traffic in a
 * namespace with rules built in code (and reports rule and interface events
 * as an interface appears and goes away); `examples/stats_exporter.ts` reads
 * a running daemon's counters through its control socket. Delivery is
 * counted by an independent receiver (mcr-sink).
 */
import assert from "node:assert/strict";
import { BUILD, chainTopology, type Proc, REPO, runDeno, skipReason } from "../../lab/netns.ts";
import { runGen, startRelayWith, startSink } from "../../lab/harness.ts";
import { until } from "./lib_robust.ts";
import { toLineProtocol } from "../../examples/stats_exporter.ts";
import type { StatsResult } from "../../mod.ts";

const skip = skipReason();
if (skip) console.warn(`examples tests (namespaces) skipped: ${skip}`);

/**
 * Datagrams per stream. Two streams of 2,000 frames fit the relay's 4096-slot RX ring and the
 * receiver's socket buffer, so no buffer on the path can overflow however busy the machine is:
 * every datagram arrives, and the receivers wait for all of them (no idle timer).
 */
const N = 2_000;
const RATE = 10_000;

/** The shared chain topology (lab/netns.ts). */
const chain = chainTopology;

/** A process whose stdout lines ("<kind> <json>") are collected as they come. */
class LineProc {
  readonly child: Deno.ChildProcess;
  readonly lines: { kind: string; data: unknown }[] = [];
  readonly stderr: Promise<string>;
  readonly #done: Promise<void>;

  constructor(ns: string, cmd: string[], env: Record<string, string>) {
    this.child = new Deno.Command("ip", {
      args: ["netns", "exec", ns, ...cmd],
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
      env,
    }).spawn();
    this.stderr = new Response(this.child.stderr).text();
    const stdout = this.child.stdout;
    this.#done = (async () => {
      let buf = "";
      for await (const chunk of stdout.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          const sp = line.indexOf(" ");
          if (sp > 0) {
            this.lines.push({ kind: line.slice(0, sp), data: JSON.parse(line.slice(sp)) });
          }
        }
      }
    })();
  }

  /** Wait until a line matches `pred`. */
  async until(
    pred: (l: { kind: string; data: unknown }) => boolean,
    what: string,
    timeoutMs = 20_000,
  ) {
    const t0 = Date.now();
    for (;;) {
      const l = this.lines.find(pred);
      if (l) return l;
      if (Date.now() - t0 > timeoutMs) {
        this.child.kill("SIGKILL");
        throw new Error(
          `timed out waiting for ${what}; got:\n${
            this.lines.map((x) => `${x.kind} ${JSON.stringify(x.data)}`).join("\n")
          }\nstderr: ${await this.stderr}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGTERM and wait. */
  async stop(): Promise<number> {
    this.child.kill("SIGTERM");
    const st = await this.child.status;
    await this.#done;
    return st.code;
  }
}

type Ev = { type: string; rule?: string; interface?: string; state?: string };
const isEvent = (f: (e: Ev) => boolean) => (l: { kind: string; data: unknown }) =>
  l.kind === "event" && f(l.data as Ev);

Deno.test({
  name:
    "examples/embed.ts: rules built in code forward, events follow an interface, final counters",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await chain("exembed");
    let p: LineProc | undefined;
    try {
      p = new LineProc(t.ns("rly"), [
        Deno.execPath(),
        "run",
        "--allow-ffi",
        "--allow-read",
        "--allow-env",
        `${REPO}/examples/embed.ts`,
        "--in",
        "r0",
        "--out",
        "r1",
        "--late",
        "late0",
      ], { MCR_LIB: `${BUILD}/libmcr.so`, NO_COLOR: "1" });
      await p.until((l) => l.kind === "ready", "the example to start");
      assert.deepEqual(p.lines.find((l) => l.kind === "removed")?.data, ["scratch"]);
      assert.ok(
        p.lines.some(
          isEvent((e) => e.type === "rule" && e.rule === "video" && e.state === "active"),
        ),
      );
      assert.ok(
        p.lines.some(
          isEvent((e) => e.type === "rule" && e.rule === "late" && e.state === "pending"),
        ),
      );

      // traffic: both built-in rules, counted by an independent receiver
      const sink = await startSink(t, "rcv", "d0", [
        "239.10.1.1:6001",
        "239.10.1.9:6009",
        "239.10.1.2:6002",
      ], { expectTotal: 3 * N, idleMs: 0 });
      await runGen(t, "snd", "s0", ["239.1.1.1:5001", "239.1.1.2:5002"], {
        rate: RATE,
        count: N,
      });
      const rep = await sink.result();
      assert.equal(rep.total.unique, 3 * N, JSON.stringify(rep.total));
      assert.equal(rep.total.duplicates, 0);
      assert.equal(rep.total.corrupt, 0);

      // an interface appears: the pending rule becomes active by itself
      await t.exec("rly", ["ip", "link", "add", "late0", "type", "veth", "peer", "name", "late0p"]);
      await t.exec("rly", ["ip", "link", "set", "late0p", "up"]);
      await t.exec("rly", ["ip", "link", "set", "late0", "up"]);
      await p.until(
        isEvent((e) => e.type === "rule" && e.rule === "late" && e.state === "active"),
        "rule late to become active",
      );
      await p.until(
        isEvent((e) => e.type === "interface" && e.interface === "late0" && e.state === "running"),
        "interface late0 running",
      );
      // ... and goes away: reported, the rule waits again
      await t.exec("rly", ["ip", "link", "del", "late0"]);
      await p.until(
        isEvent((e) => e.type === "interface" && e.interface === "late0" && e.state !== "running"),
        "interface late0 down event",
      );

      const code = await p.stop();
      assert.equal(code, 0, await p.stderr);
      const fin = p.lines.find((l) => l.kind === "final")?.data as {
        rules: { rule: string; packets: number; sent: number[] }[];
      };
      assert.ok(fin, "final counters printed");
      const by = Object.fromEntries(fin.rules.map((r) => [r.rule, r]));
      assert.equal(by.video.packets, N);
      assert.deepEqual(by.video.sent, [N, N]);
      assert.equal(by.audio.packets, N);
      assert.deepEqual(by.audio.sent, [N]);
      assert.equal(by.scratch, undefined, "removed rule is gone");
    } finally {
      try {
        p?.child.kill("SIGKILL");
      } catch { /* exited */ }
      await t.destroy();
    }
  },
});

Deno.test({
  name: "examples/stats_exporter.ts: line protocol from a running daemon's control socket",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await chain("exstats");
    const dir = await Deno.makeTempDir({ prefix: "mcr-exporter-" });
    let sock = `${dir}/control.sock`; // the relay's, once it runs
    let relay: Proc | undefined;
    const exporter = (...args: string[]) =>
      runDeno([
        "run",
        "--allow-read",
        "--allow-write",
        `--allow-net=unix:${sock}`,
        `${REPO}/examples/stats_exporter.ts`,
        "--socket",
        sock,
        ...args,
      ]);
    try {
      const rp = await startRelayWith(t, "rly", {
        rules: [{
          name: "cam1",
          input: { interface: "r0", group: "239.1.1.1", port: 5001 },
          outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
        }],
      }, { dir, perms: ["-A"], control: true });
      relay = rp.proc;
      sock = rp.controlSocket!;
      const sink = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], {
        expectTotal: N,
        idleMs: 0,
      });
      await runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: RATE, count: N });
      assert.equal((await sink.result()).total.unique, N);
      // The workers copy the output counters about every 100 ms: wait until they did.
      await until(
        () => rp.stats(),
        (s) => s.rules[0].outputs[0].packets === N,
        20_000,
        "the output counters",
      );

      const r = await exporter("--count", "2", "--interval", "0.5");
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split("\n");
      const rule = lines.filter((l) => l.startsWith("mcr_rule,"));
      assert.equal(rule.length, 2, "one rule line per sample");
      for (const l of rule) {
        assert.match(l, /^mcr_rule,rule=cam1,state=active packets=\d+i,bytes=\d+i,pps=[\d.]+ \d+$/);
      }
      // counters settled before the first sample
      assert.ok(rule[1].includes(`packets=${N}i`), rule[1]);
      const out = lines.filter((l) => l.startsWith("mcr_output,")).at(-1);
      assert.ok(out?.startsWith("mcr_output,rule=cam1,output=r1\\ 239.10.1.1:6001,"), out);
      assert.ok(out?.includes(`packets=${N}i`), out);
      const ifl = lines.filter((l) => l.startsWith("mcr_interface,interface=r0,")).at(-1);
      assert.ok(ifl, r.stdout);
      assert.ok(Number(/frames=(\d+)i/.exec(ifl)![1]) >= N, ifl);
      assert.ok(lines.some((l) => l.startsWith("mcr_drops,reason=no_match ")), r.stdout);
      // every line: measurement,tags fields timestamp(ns)
      for (const l of lines) assert.match(l, /^mcr_\w+,(?:[^ \\]|\\.)+ \S+ \d{16,}$/);

      relay.kill("SIGTERM");
      assert.equal((await relay.wait()).code, 0);
      relay = undefined;
      const gone = await exporter("--count", "1");
      assert.equal(gone.code, 0);
      assert.equal(gone.stdout, "");
      assert.match(gone.stderr, /stats_exporter: cannot connect/);
    } finally {
      relay?.kill("SIGKILL");
      await t.destroy();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("examples/stats_exporter.ts: toLineProtocol escapes tags and types fields", () => {
  const s = {
    time: "2026-01-02T03:04:05.000Z",
    uptime_s: 1,
    rate_window_s: 1,
    rules: [{
      id: "x",
      name: "a b=c",
      state: "active",
      input: { interface: "eth0", group: "239.1.1.1", port: 1 },
      packets: 3,
      bytes: 30,
      pps: 1.5,
      bps: 12,
      outputs: [{
        interface: "eth1",
        group: "239.2.2.2",
        port: 2,
        state: "active",
        packets: 3,
        bytes: 30,
        ring_full: 0,
        errors: 0,
        ttl_expired: 0,
        pps: 1.5,
        bps: 12,
      }],
    }],
    interfaces: [],
    workers: [],
    drops: { no_match: 7 },
    drops_ps: {},
  } as unknown as StatsResult;
  const ts = "1767323045000000000";
  assert.deepEqual(toLineProtocol(s), [
    `mcr_rule,rule=a\\ b\\=c,state=active packets=3i,bytes=30i,pps=1.5 ${ts}`,
    `mcr_output,rule=a\\ b\\=c,output=eth1\\ 239.2.2.2:2,state=active packets=3i,bytes=30i,ring_full=0i,errors=0i,ttl_expired=0i,pps=1.5 ${ts}`,
    `mcr_drops,reason=no_match count=7i ${ts}`,
  ]);
});

/**
 * The control plane against a running daemon in network namespaces, while
 * traffic flows: `ctl add` → the new output receives its stream, `ctl
 * remove` → it stops; list/stats/workers return the documented fields
 * (validated with zod); `ctl reload` and SIGHUP that change an unrelated
 * rule leave the unchanged rule's stream without a missing sequence number
 * and its counters counting; the metrics page parses as Prometheus text and
 * agrees with `ctl stats`; /healthz answers.
 *
 * Under load the relay's RX ring may overflow (counted as `kernel_drops`, for
 * every stream on r0 together): the counts below allow exactly those counted
 * drops and nothing else (tests/netns/lib_account.ts), so on a quiet machine
 * they are the exact counts.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import parsePrometheus from "parse-prometheus-text-format";
import { BUILD, chainTopology, Proc, REPO, skipReason, type Topology } from "../../lab/netns.ts";
import { runGen, startSink } from "../../lab/harness.ts";
import { CHAIN_IN, CHAIN_OUT, drained, hopKey, PathMeter, total } from "./lib_account.ts";
import { startDaemon } from "../../lab/daemon.ts";
import type { StatsResult } from "../../src/control/results.ts";

const skip = skipReason();
if (skip) console.warn(`netns control tests skipped: ${skip}`);

const State = z.enum(["active", "pending", "error"]);
const Input = z.object({
  interface: z.string(),
  group: z.string(),
  port: z.number().int(),
  source: z.string().optional(),
  vlan: z.number().int().optional(),
});
const Count = z.number().int().nonnegative();
const Rate = { pps: z.number().nonnegative(), bps: z.number().nonnegative() };
const Worker = z.object({
  interface: z.string(),
  index: z.number().int().nonnegative(),
  worker: z.number().int().nonnegative(),
  state: z.string(),
  restarts: Count,
  frames: Count,
  heartbeat_age_ms: z.number().nullable(),
});
const ListSchema = z.object({
  rules: z.array(z.object({
    id: z.string().regex(/^[0-9a-f]{16}$/),
    name: z.string(),
    enabled: z.boolean(),
    state: z.enum(["active", "pending", "error", "disabled"]),
    reason: z.string().optional(),
    input: Input,
    outputs: z.array(z.object({
      interface: z.string(),
      group: z.string(),
      port: z.number().int(),
      ttl: z.union([z.number().int(), z.literal("decrement")]),
      dscp: z.number().int(),
      state: z.enum(["active", "pending", "error", "disabled"]),
      packets: Count,
      bytes: Count,
      ...Rate,
    })).min(1),
    packets: Count,
    bytes: Count,
    ...Rate,
  })),
});
const StatsSchema = z.object({
  time: z.iso.datetime(),
  uptime_s: z.number().nonnegative(),
  rate_window_s: z.number().nonnegative(),
  rules: z.array(z.object({
    id: z.string(),
    name: z.string(),
    state: State,
    input: Input,
    packets: Count,
    bytes: Count,
    ...Rate,
    outputs: z.array(z.object({
      interface: z.string(),
      group: z.string(),
      port: z.number().int(),
      state: State,
      packets: Count,
      bytes: Count,
      ring_full: Count,
      errors: Count,
      ttl_expired: Count,
      ...Rate,
    })),
  })),
  interfaces: z.array(z.object({
    name: z.string(),
    state: z.string(),
    frames: Count,
    bytes: Count,
    matched: Count,
    sent: Count,
    kernel_packets: Count,
    kernel_drops: Count,
    kernel_freezes: Count,
    restarts: Count,
    drops: z.record(z.string(), Count),
    ...Rate,
    kernel_drops_ps: z.number().nonnegative(),
  })),
  workers: z.array(Worker),
  pool: z.array(z.object({
    index: z.number().int().nonnegative(),
    state: z.string(),
    restarts: Count,
    interfaces: Count,
    rings: Count,
    polls: Count,
    gathers: Count,
    heartbeat_age_ms: z.number().nullable(),
  })).min(1),
  drops: z.record(z.string(), Count),
  drops_ps: z.record(z.string(), z.number().nonnegative()),
});
const WorkersSchema = z.object({
  workers: z.array(Worker).min(1),
  pool: z.array(z.object({ interfaces: Count, rings: Count })).min(1),
});

/** The shared chain topology (lab/netns.ts). */
const chain = chainTopology;

const cam1 = {
  name: "cam1",
  input: { interface: "r0", group: "239.1.1.1", port: 5001 },
  outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
};
const camx = (port: number) => ({
  name: "camx",
  input: { interface: "r0", group: "239.1.1.9", port: 5009 },
  outputs: [{ interface: "r1", group: "239.10.9.9", port }],
});
const camy = {
  name: "camy",
  input: { interface: "r0", group: "239.1.1.8", port: 5008 },
  outputs: [{ interface: "r1", group: "239.10.8.8", port: 6008 }],
};

/** Fetch a URL from inside a namespace (the metrics endpoint listens on its loopback). */
async function fetchIn(
  t: Topology,
  role: string,
  url: string,
): Promise<{ status: number; body: string }> {
  const out = await t.exec(role, [
    Deno.execPath(),
    "eval",
    `const r = await fetch(${JSON.stringify(url)}); ` +
    `console.log(JSON.stringify({ status: r.status, body: await r.text() }));`,
  ]);
  return JSON.parse(out);
}

Deno.test({
  name:
    "control: add/remove while traffic flows, list/stats/workers fields, reload and SIGHUP miss nothing, metrics agree",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await chain("ctl");
    let gen1: Proc | undefined;
    let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined;
    try {
      const meter = await PathMeter.start(t, [CHAIN_IN, CHAIN_OUT]);
      const d = daemon = await startDaemon({ rules: [cam1, camx(6009)] }, {
        netns: t.ns("rly"),
        metrics: "127.0.0.1:9464",
      });
      const stats = async () => StatsSchema.parse(await d.ok("stats")) as StatsResult;
      const until = async (pred: (s: StatsResult) => boolean, what: string) => {
        for (let i = 0; i < 300; i++) {
          const s = await stats();
          if (pred(s)) return s;
          await new Promise((r) => setTimeout(r, 50));
        }
        throw new Error(`timed out waiting for ${what}: ${JSON.stringify(await stats())}`);
      };
      const rule = (s: StatsResult, name: string) => s.rules.find((r) => r.name === name);
      /** Wait until the relay took every frame that arrived so far (cam1 keeps flowing). */
      const settled = async () => await drained(stats, Date.now()) as StatsResult;
      const inR0 = (s: StatsResult) => s.interfaces.find((i) => i.name === "r0")!;
      /** Datagrams lost since `a` where the relay or the veths count them (all streams). */
      const lostSince = async (a: { s: StatsResult; hops: number }, b: StatsResult) =>
        inR0(b).kernel_drops - inR0(a.s).kernel_drops + total((await meter.read()).hops) - a.hops;
      const mark = async (s: StatsResult) => ({ s, hops: total((await meter.read()).hops) });

      // Documented fields.
      const list = ListSchema.parse(await d.ok("list"));
      assert.deepEqual(list.rules.map((r) => [r.name, r.state]), [
        ["cam1", "active"],
        ["camx", "active"],
      ]);
      const ws = WorkersSchema.parse(await d.ok("workers"));
      // one pool worker serves the one input interface, with one RX ring on it
      assert.deepEqual(ws.pool.map((w) => [w.interfaces, w.rings]), [[1, 1]]);
      await stats();
      const listCli = await d.ctl("--json", "list");
      assert.equal(listCli.code, 0, listCli.stderr);
      // JSON Lines: the header, then one record per rule, each as in the one-reply result.
      const [head, ...recs] = listCli.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
      assert.equal(head.kind, "list");
      assert.equal(head.records.rules, recs.length);
      assert.ok(recs.every((r) => r.kind === "rule"));
      const listed = ListSchema.parse({ rules: recs.map(({ kind: _, ...r }) => r) });
      assert.deepEqual(listed.rules.map((r) => r.name), list.rules.map((r) => r.name));

      // The cam1 stream flows through everything below; it is stopped at the end.
      const s1 = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], { settle: true });
      const s2 = await startSink(t, "rcv", "d0", ["239.10.2.2:6002"], {
        idleMs: 0,
        durationS: 300,
      });
      gen1 = new Proc(t.ns("snd"), [
        `${BUILD}/mcr-gen`,
        "--iface",
        "s0",
        "--dst",
        "239.1.1.1:5001",
        "--rate",
        "4000",
        "--size",
        "512",
        "--json",
      ]);
      await until((s) => (rule(s, "cam1")?.packets ?? 0) > 0, "cam1 traffic");

      // Phase 1: the cam2 stream has no rule: counted as no_match, nothing delivered.
      const K = 2000;
      const cam2dst = ["239.1.1.2:5002"];
      const m0 = await mark(await settled());
      await runGen(t, "snd", "s0", cam2dst, { rate: 10_000, count: K, streamBase: 10 });
      const p1 = await settled();
      const nm1 = p1.drops.no_match - m0.s.drops.no_match;
      assert.ok(nm1 <= K && nm1 >= K - await lostSince(m0, p1), `phase-1 no_match ${nm1}`);

      // ctl add with flags → the new output receives the stream.
      const add = await d.ctl(
        "add",
        "--name",
        "cam2",
        "--input-interface",
        "r0",
        "--input-group",
        "239.1.1.2",
        "--input-port",
        "5002",
        "--outputs",
        "239.10.2.2:6002:r1",
      );
      assert.equal(add.code, 0, add.stderr);
      assert.match(add.stdout, /added cam2 \(id [0-9a-f]{16}\)/);
      const l2 = ListSchema.parse(await d.ok("list"));
      assert.equal(l2.rules.find((r) => r.name === "cam2")?.state, "active");
      const m1 = await mark(p1);
      await runGen(t, "snd", "s0", cam2dst, { rate: 10_000, count: K, streamBase: 20 });
      const p2 = await settled();
      const cam2 = rule(p2, "cam2")!;
      assert.ok(
        cam2.packets <= K && cam2.packets >= K - await lostSince(m1, p2),
        `cam2 matched its stream (${cam2.packets})`,
      );
      assert.equal(p2.drops.no_match, p1.drops.no_match, "nothing of it unmatched");
      const o2 = cam2.outputs[0];
      assert.equal(o2.packets + o2.ring_full + o2.errors, cam2.packets, "cam2 forwarding");

      // ctl remove (by id) → it stops.
      const id = l2.rules.find((r) => r.name === "cam2")!.id;
      const rm = await d.ctl("--json", "remove", id);
      assert.equal(rm.code, 0, rm.stderr);
      assert.deepEqual(JSON.parse(rm.stdout).removed, [{ id, name: "cam2" }]);
      const m2 = await mark(p2);
      await runGen(t, "snd", "s0", cam2dst, { rate: 10_000, count: K, streamBase: 30 });
      const p3 = await settled();
      const nm3 = p3.drops.no_match - p2.drops.no_match;
      assert.ok(nm3 <= K && nm3 >= K - await lostSince(m2, p3), `phase-3 no_match ${nm3}`);
      const r2 = await s2.stop();
      const sd2 = r2.socket_drops ?? 0;
      const hopOut = (await meter.read()).hops[hopKey(CHAIN_OUT)];
      assert.ok(
        r2.total.unique + sd2 <= o2.packets && r2.total.unique + sd2 >= o2.packets - hopOut,
        `only the datagrams sent while cam2 existed (${r2.total.unique} of ${o2.packets})`,
      );
      assert.deepEqual(r2.groups[0].streams.map((s) => s.stream), [20]);
      assert.equal(r2.total.duplicates, 0);

      // ctl reload: camx's output changes, cam1 is untouched.
      const before = rule(await stats(), "cam1")!.packets;
      await Deno.writeTextFile(d.configPath, JSON.stringify({ rules: [cam1, camx(6010)] }));
      const rl = await d.ctl("--json", "reload");
      assert.equal(rl.code, 0, rl.stderr);
      const sum = JSON.parse(rl.stdout);
      assert.deepEqual([sum.changed, sum.unchanged, sum.added, sum.removed], [
        ["camx"],
        ["cam1"],
        [],
        [],
      ]);
      const afterReload = await until(
        (s) => rule(s, "cam1")!.packets > before,
        "cam1 counting after reload",
      );
      assert.equal(rule(afterReload, "camx")!.outputs[0].port, 6010);

      // SIGHUP: camx goes, camy comes; cam1 untouched.
      const before2 = rule(afterReload, "cam1")!.packets;
      await Deno.writeTextFile(d.configPath, JSON.stringify({ rules: [camy, cam1] }));
      d.kill("SIGHUP");
      const afterHup = await until(
        (s) => !rule(s, "camx") && rule(s, "camy")?.state === "active",
        "SIGHUP reload",
      );
      await until((s) => rule(s, "cam1")!.packets > before2, "cam1 counting after SIGHUP");
      assert.ok(rule(afterHup, "cam1")!.packets >= before2);

      // Stop the cam1 stream; once the relay took all of it, the receiver is told how many
      // datagrams the relay sent it.
      gen1.kill("SIGTERM");
      const g1 = JSON.parse((await gen1.wait()).stdout) as { sent: number };
      gen1 = undefined;
      const final = await settled();
      const c1 = rule(final, "cam1")!, o1 = c1.outputs[0];
      const path = await meter.read();
      const r1 = await s1.settle(o1.packets - path.hops[hopKey(CHAIN_OUT)]);
      const st = r1.groups[0].streams[0];
      const sd1 = r1.socket_drops ?? 0;
      assert.equal(st.first_seq, 0);
      // Every datagram of cam1 arrived, except drops counted where they happened (shared with
      // cam2's phases): nothing was lost to add, remove, reload or SIGHUP.
      const missing = g1.sent - r1.total.unique - sd1 - o1.ring_full - o1.errors;
      const counted = inR0(final).kernel_drops + total(path.hops);
      assert.ok(
        missing >= 0 && missing <= counted,
        `cam1 missed nothing through add, remove, reload, SIGHUP: ${missing} missing, ` +
          `${counted} counted drops`,
      );
      assert.equal(r1.total.duplicates, 0);
      assert.equal(r1.total.reordered, 0);
      // cam1's counters were never reset: they hold every datagram it delivered.
      assert.ok(
        r1.total.unique + sd1 <= o1.packets &&
          o1.packets <= r1.total.unique + sd1 + path.hops[hopKey(CHAIN_OUT)],
        `cam1 counters = datagrams delivered (${o1.packets}, ${r1.total.unique})`,
      );
      assert.equal(c1.packets, o1.packets + o1.ring_full + o1.errors + o1.ttl_expired);

      // Metrics agree with ctl stats (traffic has stopped: counters are still).
      const m = await fetchIn(t, "rly", "http://127.0.0.1:9464/metrics");
      assert.equal(m.status, 200);
      const fams = parsePrometheus(m.body) as {
        name: string;
        type: string;
        metrics: { value: string; labels?: Record<string, string> }[];
      }[];
      const metric = (name: string, labels: Record<string, string>) => {
        const f = fams.find((x) => x.name === name);
        assert.ok(f, `metric ${name} missing`);
        const hit = f.metrics.find((x) =>
          Object.entries(labels).every(([k, v]) => x.labels?.[k] === v)
        );
        assert.ok(hit, `${name}${JSON.stringify(labels)} missing`);
        return Number(hit.value);
      };
      const after = await stats();
      for (const r of after.rules) {
        assert.equal(metric("mcr_rule_packets_total", { rule: r.name }), r.packets);
        assert.equal(metric("mcr_rule_bytes_total", { rule: r.name }), r.bytes);
        for (const o of r.outputs) {
          assert.equal(
            metric("mcr_output_packets_total", {
              rule: r.name,
              output: `${o.interface} ${o.group}:${o.port}`,
            }),
            o.packets,
          );
        }
      }
      const r0 = after.interfaces.find((i) => i.name === "r0")!;
      assert.equal(metric("mcr_interface_frames_total", { interface: "r0" }), r0.frames);
      assert.equal(
        metric("mcr_interface_kernel_drops_total", { interface: "r0" }),
        r0.kernel_drops,
      );
      assert.equal(metric("mcr_dropped_total", { reason: "no_match" }), after.drops.no_match);
      assert.equal(metric("mcr_rule_state", { rule: "cam1", state: "active" }), 1);
      // the reloads above (ctl reload, SIGHUP) counted; the process's own metrics
      assert.ok(metric("mcr_reloads_total", { result: "done" }) >= 2);
      assert.equal(metric("mcr_last_reload_success", {}), 1);
      assert.ok(metric("process_resident_memory_bytes", {}) > 0);
      assert.ok(metric("process_open_fds", {}) > 0);
      assert.equal(rule(final, "cam1")!.packets, rule(after, "cam1")!.packets);
      const h = await fetchIn(t, "rly", "http://127.0.0.1:9464/healthz");
      assert.equal(h.status, 200, h.body);
      assert.equal(JSON.parse(h.body).status, "ok");

      // Human output of stats and top (one frame) mention the rules and interfaces.
      const human = await d.ctl("stats");
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /cam1/);
      assert.match(human.stdout, /r0\s+running/);
      const top = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${REPO}/cli.ts`, "top", "--control-socket", d.socket, "--count", "1"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const topOut = new TextDecoder().decode(top.stdout);
      assert.equal(top.code, 0, new TextDecoder().decode(top.stderr));
      assert.match(topOut, /^mcr top/);
      assert.match(topOut, /cam1/);
      assert.match(topOut, /MBIT\/S/);

      daemon = undefined;
      const out = await d.stop();
      assert.equal(out.code, 0, out.stderr);
    } finally {
      gen1?.kill("SIGKILL");
      if (daemon) {
        daemon.kill("SIGKILL");
        await Deno.remove(daemon.dir, { recursive: true }).catch(() => {});
      }
      await t.destroy();
    }
  },
});

/**
 * Hostile frames: the corpus of tests/fixtures/hostile (one pcap per kind, see
 * generate.ts and manifest.json) is replayed with mcr-inject onto the relay's
 * input interface, each hostile frame preceded by valid matching datagrams.
 * The relay must not crash, an independent receiver (mcr-sink) must get exactly
 * the valid datagrams plus the kinds the manifest marks "forwarded", and the
 * relay's counters must account for every frame by reason. The IPv6 kinds
 * target a second rule, IPv6 in and the same IPv4 outputs out.
 */
import assert from "node:assert/strict";
import { skipReason, Topology } from "../../lab/netns.ts";
import { type SinkReport, startRelayWith, startSink } from "../../lab/harness.ts";
import { hopKey, outputPackets, PathMeter, quiesce } from "./lib_account.ts";
import type { RelayStats } from "../../src/relay/stats.ts";
import type { Kind, Manifest } from "../fixtures/hostile/generate.ts";
import { chainV4, FRAME_DROPS, frameDrops, runInject, workDir } from "./lib_robust.ts";

const skip = skipReason();
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };
const DIR = new URL("../fixtures/hostile/", import.meta.url).pathname;
const manifest: Manifest = JSON.parse(Deno.readTextFileSync(`${DIR}manifest.json`));

/** Each corpus frame is sent REPEAT times, each time after VALID_EVERY valid datagrams. */
const REPEAT = 3;
const VALID_EVERY = 2;

const G1 = { group: "239.10.1.1", port: 6001 };
const G2 = { group: "239.10.1.2", port: 6002 };

function config(filter: boolean) {
  return {
    rx: { filter },
    rules: [manifest.target, manifest.target6].map((target, k) => ({
      name: k === 0 ? "main" : "main6",
      input: { interface: "r0", group: target.group, port: target.port },
      outputs: [
        { interface: "r1", ...G1, ttl: 8 },
        { interface: "r1", ...G2, ttl: "decrement" },
      ],
    })),
  };
}

interface Outcome {
  stats: RelayStats;
  code: number;
  stderr: string;
  sink: SinkReport;
  valid: number;
}

/**
 * Replay the corpus; `seen` are the kinds that reach the relay's ring. The whole replay (a few
 * hundred frames) fits the relay's 4096-slot RX ring and the receiver's socket buffer, so no
 * frame can be lost to load: the counts below are exact on a busy machine too. The relay is
 * stopped once it took every frame that reaches its ring, and the receiver once it read every
 * datagram the relay sent except those its kernel discards for a bad UDP checksum.
 */
async function replay(tag: string, filter: boolean, seen: Kind[]): Promise<Outcome> {
  const t = new Topology(tag);
  const dir = await workDir(tag);
  try {
    await chainV4(t, { mtu: 9000 });
    const hops = [{ role: "snd", dev: "s0" }, { role: "rly", dev: "r1" }];
    const meter = await PathMeter.start(t, hops);
    const relay = await startRelayWith(t, "rly", config(filter), { dir, control: true });
    const dsts = [`${G1.group}:${G1.port}`, `${G2.group}:${G2.port}`];
    const sink = await startSink(t, "rcv", "d0", dsts, { settle: true });
    const files = manifest.kinds.flatMap((k) => ["--pcap", `${DIR}${k.name}.pcap`]);
    const inj = await runInject(t, "snd", [
      "--iface",
      "s0",
      "--repeat",
      String(REPEAT),
      "--valid",
      `${manifest.target.group}:${manifest.target.port}`,
      "--valid-every",
      String(VALID_EVERY),
      "--pps",
      "4000",
      ...files,
    ]);
    assert.equal(inj.file_rejected, 0, "the kernel accepted every corpus frame for sending");
    assert.equal(inj.valid_rejected, 0);
    assert.equal(inj.file_sent, REPEAT * manifest.kinds.length);
    const lostIn = (await meter.read()).hops[hopKey(hops[0])];
    assert.equal(lostIn, 0, "no frame lost between the injector and the relay");
    await quiesce(() => relay.stats(), { r0: inj.valid_sent + REPEAT * seen.length });
    const { stats, code, stderr } = await relay.stop();
    const lostOut = (await meter.read()).hops[hopKey(hops[1])];
    assert.equal(lostOut, 0, "no frame lost between the relay and the receiver");
    // Both outputs carry each corrupted-checksum kind; the receiving kernel discards those
    // before any socket (check() compares them with its InCsumErrors).
    const badCsum = 2 * REPEAT * seen.filter((k) => k.sink === "csum_error").length;
    const rep = await sink.settle(outputPackets(stats, dsts) - badCsum);
    // (rep.stop_reason is checked after the relay's counters, which say why it differs)
    return { stats, code, stderr, sink: rep, valid: inj.valid_sent };
  } finally {
    await t.destroy();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function stream(rep: SinkReport, g: { group: string; port: number }, id: number) {
  const grp = rep.groups.find((x) => x.group === g.group && x.port === g.port);
  return grp?.streams.find((s) => s.stream === id);
}

function foreign(rep: SinkReport, g: { group: string; port: number }): number {
  const grp = rep.groups.find((x) => x.group === g.group && x.port === g.port) as
    | { foreign?: number }
    | undefined;
  return grp?.foreign ?? 0;
}

/** Assertions shared by both runs; `seen` are the kinds that reach the relay's ring. */
function check(o: Outcome, seen: Kind[]): void {
  const { stats, sink } = o;
  assert.equal(o.code, 0, `relay exited cleanly: ${o.stderr}`);
  // never crashed: no worker restarted, every worker still running at the end
  const r0 = stats.interfaces.find((i) => i.name === "r0")!;
  assert.equal(r0.restarts, 0, "no worker restart");
  for (const w of stats.workers) assert.equal(w.restarts, 0, `worker ${w.index} never restarted`);
  assert.equal(r0.kernel_drops, 0, "no kernel ring drops (the replay fits the ring)");

  // every frame accounted for, by reason
  const expectedFrames = o.valid + REPEAT * seen.length;
  assert.equal(r0.frames, expectedFrames, "frames received = valid + every corpus frame seen");
  // the IPv4 and the IPv6 rule, summed: both send to the same two outputs
  const sum = (f: (r: RelayStats["rules"][number]) => number) =>
    stats.rules.reduce((a, r) => a + f(r), 0);
  const out = (k: number) => (w: "packets" | "errors" | "ring_full" | "ttl_expired") =>
    sum((r) => r.outputs[k][w]);
  const rule = { packets: sum((r) => r.packets) };
  assert.equal(stats.rules.length, 2);
  assert.equal(r0.frames, rule.packets + frameDrops(stats), "received = matched + drops");
  for (const reason of FRAME_DROPS) {
    const want = REPEAT * seen.filter((k) => k.expect === reason).length;
    assert.equal(stats.drops[reason] ?? 0, want, `drops.${reason}`);
  }
  assert.equal(sink.stop_reason, "stop-file", "the receiver read every other datagram sent");
  const fwd = seen.filter((k) => k.expect === "forwarded");
  const expired = fwd.filter((k) => k.ttl_expired);
  assert.equal(rule.packets, o.valid + REPEAT * fwd.length, "matched = valid + forwarded kinds");
  const [out0, out1] = [out(0), out(1)];
  assert.equal(out0("packets"), rule.packets, "fixed-TTL output sent every matched datagram");
  assert.equal(out0("errors") + out0("ring_full") + out0("ttl_expired"), 0);
  assert.equal(out1("ttl_expired"), REPEAT * expired.length, "decrement output: ttl_expired");
  assert.equal(
    out1("packets"),
    rule.packets - out1("ttl_expired"),
    "decrement output sent the rest",
  );
  assert.equal(out1("errors") + out1("ring_full"), 0);
  assert.equal(stats.drops.ttl_expired ?? 0, out1("ttl_expired"));
  assert.equal((stats.drops.tx_ring_full ?? 0) + (stats.drops.tx_error ?? 0), 0);

  // the receiver got exactly the valid datagrams and the forwarded kinds
  for (const g of [G1, G2]) {
    const v = stream(sink, g, 0);
    assert.ok(v, `${g.group}: valid stream arrived`);
    assert.equal(v.unique, o.valid, `${g.group}: every valid datagram`);
    assert.equal(v.received, o.valid, `${g.group}: each exactly once`);
    assert.equal(v.corrupt + v.duplicates + v.lost, 0);
    for (const k of fwd.filter((k) => k.sink === "stream")) {
      const s = stream(sink, g, k.stream!);
      const want = g === G2 && k.ttl_expired ? 0 : REPEAT;
      assert.equal(s?.received ?? 0, want, `${g.group}: kind ${k.name} delivered ${want}×`);
      if (s) assert.equal(s.corrupt, 0, `${k.name}: payload intact`);
    }
    // nothing else: no stream the corpus did not send
    const grp = sink.groups.find((x) => x.group === g.group && x.port === g.port)!;
    const known = new Set([0, ...fwd.map((k) => k.stream)]);
    for (const s of grp.streams) assert.ok(known.has(s.stream), `unexpected stream ${s.stream}`);
    const short = fwd.filter((k) => k.sink === "foreign" && !(g === G2 && k.ttl_expired));
    assert.equal(foreign(sink, g), REPEAT * short.length, `${g.group}: short payloads`);
  }
  const bad = fwd.filter((k) => k.sink === "csum_error").length;
  assert.equal(
    sink.udp.in_csum_errors,
    2 * REPEAT * bad,
    "a corrupted datagram stays detectably corrupted (both outputs)",
  );
}

let first: Outcome | undefined;

Deno.test({
  ...opts,
  name: `hostile corpus (${manifest.kinds.length} kinds, no kernel filter): no crash, ` +
    "exact forwarding, every frame counted by reason",
  async fn() {
    assert.ok(manifest.kinds.length >= 40, "at least 40 kinds");
    const seen = manifest.kinds.filter((k) => k.expect !== "kernel");
    first = await replay("hostile", false, seen);
    check(first, seen);
  },
});

Deno.test({
  ...opts,
  name: "hostile corpus with the default kernel filter: same forwarding, fewer frames counted",
  async fn() {
    const seen = manifest.kinds.filter((k) => k.expect !== "kernel" && k.bpf);
    const o = await replay("hostilef", true, seen);
    check(o, seen);
    assert.equal(o.stats.drops.not_ipv4 ?? 0, 0, "the filter keeps non-IPv4 out of the ring");
    assert.equal(o.stats.drops.not_udp ?? 0, 0, "the filter keeps non-UDP out of the ring");
    if (first) {
      const f0 = first.stats.interfaces[0].frames - first.valid;
      const f1 = o.stats.interfaces[0].frames - o.valid;
      assert.ok(f1 < f0, `fewer corpus frames reach the ring (${f1} < ${f0})`);
      const matched = (s: RelayStats) => s.rules.reduce((a, r) => a + r.packets, 0);
      assert.equal(
        matched(o.stats) - o.valid,
        matched(first.stats) - first.valid,
        "the same corpus frames are forwarded",
      );
    }
  },
});

Deno.test("hostile corpus fixtures are up to date with generate.ts", async () => {
  const { corpus, pcap } = await import("../fixtures/hostile/generate.ts");
  const { manifest: m, frames } = corpus();
  assert.deepEqual(m, manifest);
  for (const [name, f] of frames) {
    const disk = await Deno.readFile(`${DIR}${name}.pcap`);
    assert.deepEqual(disk, pcap([f]), `${name}.pcap`);
  }
});

/**
 * Loss accounting for the namespace tests, so that they assert what holds on a
 * busy machine: every datagram the generator sent is either delivered to the
 * receiver or counted as a drop at the place it was lost, exactly.
 *
 * The places a datagram can be lost between mcr-gen and mcr-sink, and the
 * counter each one has:
 * - the sender: nothing is lost there unnoticed. mcr-gen counts a datagram as
 *   sent only when sendmmsg took it (failed sends are retried), and a veth has
 *   no queueing discipline that could drop it afterwards;
 * - every veth hop: `tx_dropped` of the sending end (the peer's per-CPU
 *   backlog, `netdev_max_backlog`, was full, or the peer was down). The
 *   receiving end counts the same drops again as `rx_dropped`, and a UDP
 *   sender's namespace again as `SndbufErrors` (the ENOBUFS of such a drop is
 *   not reported to a socket without IP_RECVERR), so only the sending end's
 *   `tx_dropped` is summed;
 * - the relay's RX ring: the interface's `kernel_drops` (PACKET_STATISTICS);
 * - the relay itself: its drop reasons (`no_match`, ..., per output
 *   `ring_full`, `errors`, `ttl_expired`, and `standby`: held back by a
 *   standby relay);
 * - the receiver's sockets: mcr-sink's `socket_drops` (each socket's own drop
 *   counter: receive buffer full). A datagram with a bad UDP checksum is
 *   discarded before it reaches a socket and shows only in the receiver
 *   namespace's InCsumErrors (relay_test checks it stays 0; hostile_test
 *   expects the corrupted kinds there).
 *
 * Order of a run: the generator finishes; {@link quiesce} waits (polling the
 * relay's counters, generous deadline) until the relay has taken every frame
 * that reached its ring or the kernel counted it as dropped; the relay stops
 * and prints one final snapshot of its counters; the sink is told how many
 * datagrams the relay put on the wire toward it (`SinkProc.settle`) and stops
 * once every one of them was read or dropped at its sockets. Each counter set
 * is one snapshot read after its traffic has stopped, so no sum mixes two
 * moments.
 *
 * `MCR_TEST_LEDGER=1` prints every ledger a test checks (to see what load did).
 *
 * @module
 */
import { hostPort } from "../../src/common/net6.ts";
import assert from "node:assert/strict";
import { linkCounters, type Topology } from "../../lab/netns.ts";
import type { GenReport, SinkReport } from "../../lab/harness.ts";
import type { RelayStats } from "../../src/relay/stats.ts";
import { frameDrops } from "./lib_robust.ts";

/** A veth hop on the path, named by its sending end (namespace role and device). */
export interface Hop {
  /** Namespace role of the sending end. */
  role: string;
  /** Device name of the sending end. */
  dev: string;
}

/** The chain's hop from the sender into the relay (s0 → r0). */
export const CHAIN_IN: Hop = { role: "snd", dev: "s0" };
/** The chain's hop from the relay to the receiver (r1 → d0). */
export const CHAIN_OUT: Hop = { role: "rly", dev: "r1" };

/** Drops outside the relay and the receiver since {@link PathMeter.start}. */
export interface PathDrops {
  /** Per hop (`role/dev`): frames the veth could not hand to its peer. */
  hops: Record<string, number>;
}

/** Key of a hop in {@link PathDrops.hops}. */
export function hopKey(h: Hop): string {
  return `${h.role}/${h.dev}`;
}

/** Reads the drop counters of a path's hops; `read()` returns deltas since start. */
export class PathMeter {
  private constructor(
    readonly t: Topology,
    readonly hops: Hop[],
    readonly base: PathDrops,
  ) {}

  static async #snapshot(t: Topology, hops: Hop[]): Promise<PathDrops> {
    const byRole = new Map<string, Awaited<ReturnType<typeof linkCounters>>>();
    for (const role of new Set(hops.map((h) => h.role))) {
      byRole.set(role, await linkCounters(t, role)); // one `ip -s link` per namespace
    }
    const out: PathDrops = { hops: {} };
    for (const h of hops) {
      const c = byRole.get(h.role)![h.dev];
      assert.ok(c, `no interface ${h.dev} in ${h.role}`);
      out.hops[hopKey(h)] = c.tx_dropped;
    }
    return out;
  }

  /** Take the baseline (before any traffic of the test). */
  static async start(t: Topology, hops: Hop[]): Promise<PathMeter> {
    return new PathMeter(t, hops, await PathMeter.#snapshot(t, hops));
  }

  /** Drops since {@link PathMeter.start}. */
  async read(): Promise<PathDrops> {
    const now = await PathMeter.#snapshot(this.t, this.hops);
    const d: PathDrops = { hops: {} };
    for (const k of Object.keys(now.hops)) d.hops[k] = now.hops[k] - this.base.hops[k];
    return d;
  }
}

/** Sum of a record's values. */
export function total(r: Record<string, number>): number {
  return Object.values(r).reduce((a, v) => a + v, 0);
}

/** One stage of the path: what went in, what came out, and every counted loss in between. */
export interface Ledger {
  /** Datagrams (or frames) that entered the stage. */
  sent: number;
  /** Datagrams that came out at its far end. */
  delivered: number;
  /** Counted losses by place/reason. */
  drops: Record<string, number>;
}

/** Assert delivered + counted drops = sent, exactly; the message shows the whole ledger. */
export function assertAccounted(l: Ledger, what: string): void {
  const dropped = total(l.drops);
  if (Deno.env.get("MCR_TEST_LEDGER")) console.log(`ledger ${what}: ${JSON.stringify(l)}`);
  assert.equal(
    l.delivered + dropped,
    l.sent,
    `${what}: delivered ${l.delivered} + counted drops ${dropped} ≠ sent ${l.sent}; ` +
      `drops ${JSON.stringify(l.drops)}`,
  );
}

/**
 * Poll the relay's counters until every frame expected on each input interface has been taken
 * from the ring or counted as a kernel drop (`frames + kernel_drops ≥ arrivals`) and every
 * matched datagram shows up in its outputs' counters (the workers copy some of them about every
 * 100 ms), so that stopping the relay loses nothing still queued and a snapshot taken now is
 * complete. Throws after `timeoutMs` (no timing assertion: the deadline only bounds the wait).
 */
export async function quiesce(
  stats: () => Promise<RelayStats>,
  arrivals: Record<string, number>,
  timeoutMs = 30_000,
): Promise<RelayStats> {
  const t0 = Date.now();
  for (;;) {
    const s = await stats();
    const taken = Object.entries(arrivals).every(([name, n]) => {
      const i = s.interfaces.find((x) => x.name === name);
      return i !== undefined && i.frames + i.kernel_drops >= n;
    });
    const synced = s.rules.every((r) =>
      r.outputs.reduce(
        (a, o) =>
          a + o.packets + o.ring_full + o.errors + o.ttl_expired + o.standby + (o.policed ?? 0),
        0,
      ) === r.packets * r.outputs.length
    );
    if (taken && synced) return s;
    if (Date.now() - t0 > timeoutMs) {
      const short = Object.entries(arrivals).map(([name, n]) => {
        const i = s.interfaces.find((x) => x.name === name);
        const got = i ? i.frames + i.kernel_drops : 0;
        return `${name}: ${got} of ${n} frames taken or counted as kernel drops, ${n - got} not`;
      });
      throw new Error(
        `after ${timeoutMs} ms, ${short.join("; ")} (lost before the ring without a count, or ` +
          `the relay is stuck); outputs synced: ${synced}; ` +
          JSON.stringify({ interfaces: s.interfaces, rules: s.rules }),
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Poll until the relay has taken every frame that reached its rings before `since` (a
 * `Date.now()`): a snapshot whose workers all copied the kernel's counters after `since` (their
 * heartbeat) and whose rings were empty then (`kernel_packets ≤ frames + kernel_drops`). For
 * streams that keep flowing, where {@link quiesce} cannot know how many frames to expect. One
 * worker per interface (with several, the sums could hide one member's backlog).
 */
export async function drained(
  stats: () => Promise<RelayStats>,
  since: number,
  timeoutMs = 30_000,
): Promise<RelayStats> {
  const t0 = Date.now();
  for (;;) {
    const asked = Date.now();
    const s = await stats();
    const fresh = s.workers.every((w) =>
      w.heartbeat_age_ms !== null && asked - w.heartbeat_age_ms > since
    );
    const empty = s.interfaces.every((i) => i.kernel_packets <= i.frames + i.kernel_drops);
    if (fresh && empty) return s;
    if (Date.now() - t0 > timeoutMs) {
      throw new Error(`the relay did not drain within ${timeoutMs} ms: ${JSON.stringify(s)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A relay the tests can stop for its final counters (RelayProc, RelayDriver). */
export interface StoppableRelay {
  /** Stop it; its exit code, final counters (one snapshot) and stderr. */
  stop(): Promise<{ code: number; stats: RelayStats; stderr: string }>;
}

/**
 * Send with `send` (the generator behind `input.hops`, the hops toward the relay), wait until the
 * relay took every frame that reached `input.iface` ({@link quiesce}), stop it; returns the generator's report,
 * the relay's final counters and the hop drops since `meter` started.
 */
export async function drive(
  relay: StoppableRelay,
  stats: () => Promise<RelayStats>,
  meter: PathMeter,
  send: () => Promise<GenReport>,
  input: { iface: string; hops: Hop[] } = { iface: "r0", hops: [CHAIN_IN] },
): Promise<{ gen: GenReport; stats: RelayStats; path: PathDrops }> {
  const gen = await send();
  const up = await meter.read();
  const lost = input.hops.reduce((a, h) => a + up.hops[hopKey(h)], 0);
  await quiesce(stats, { [input.iface]: gen.sent - lost });
  const { stats: final, code, stderr } = await relay.stop();
  assert.equal(code, 0, stderr);
  return { gen, stats: final, path: await meter.read() };
}

/**
 * Output-level drops (ring_full, errors, ttl_expired, standby, policed) of every output of every listed
 * rule.
 */
export function outputDrops(s: RelayStats): number {
  return s.rules.reduce(
    (a, r) =>
      a +
      r.outputs.reduce(
        (b, o) => b + o.ring_full + o.errors + o.ttl_expired + o.standby + (o.policed ?? 0),
        0,
      ),
    0,
  );
}

/**
 * The relay's counters agree with each other (one snapshot, taken after traffic stopped and the
 * relay drained its rings): every frame the kernel put in a ring was taken or counted as a
 * kernel drop; every frame taken matched a rule or was dropped for a reason; every matched
 * datagram was sent or dropped at each of its outputs; the drop totals are the sums of the
 * per-output counters. Only for relays whose rule set never lost a rule (a removed rule's
 * counters stay in the totals but leave `rules`).
 */
export function assertRelayConsistent(s: RelayStats): void {
  let frames = 0, matched = 0, sent = 0;
  for (const i of s.interfaces) {
    assert.equal(
      i.kernel_packets,
      i.frames + i.kernel_drops,
      `${i.name}: kernel packets = frames taken + kernel drops (nothing left in the ring)`,
    );
    frames += i.frames;
    matched += i.matched;
    sent += i.sent;
  }
  const rulePackets = s.rules.reduce((a, r) => a + r.packets, 0);
  assert.equal(matched, rulePackets, "interfaces' matched = sum of rule packets");
  assert.equal(frames, rulePackets + frameDrops(s), "frames = matched + frame-level drops");
  let ringFull = 0, errors = 0, ttl = 0, standby = 0, outPackets = 0, policed = 0;
  for (const r of s.rules) {
    let outs = 0;
    for (const o of r.outputs) {
      outs += o.packets + o.ring_full + o.errors + o.ttl_expired + o.standby + (o.policed ?? 0);
      standby += o.standby;
      policed += o.policed ?? 0;
      ringFull += o.ring_full;
      errors += o.errors;
      ttl += o.ttl_expired;
      outPackets += o.packets;
    }
    assert.equal(
      outs,
      r.packets * r.outputs.length,
      `rule ${r.name}: matched × outputs = sent + output drops`,
    );
  }
  assert.equal(sent, outPackets, "interfaces' sent = sum of output packets");
  assert.equal(
    s.drops.tx_ring_full ?? 0,
    ringFull,
    "drops.tx_ring_full = sum of outputs' ring_full",
  );
  assert.equal(s.drops.tx_error ?? 0, errors, "drops.tx_error = sum of outputs' errors");
  assert.equal(s.drops.ttl_expired ?? 0, ttl, "drops.ttl_expired = sum of outputs' ttl_expired");
  assert.equal(s.drops.standby ?? 0, standby, "drops.standby = sum of outputs' standby");
  assert.equal(s.drops.policed ?? 0, policed, "drops.policed = sum of outputs' policed");
}

/**
 * What a receiver must see under any load: nothing duplicated, nothing reordered within a
 * stream, nothing corrupt or foreign, and something delivered.
 */
export function assertClean(rep: SinkReport, what: string): void {
  const t = rep.total;
  assert.ok(t.unique > 0, `${what}: something was delivered`);
  assert.equal(t.duplicates, 0, `${what}: nothing delivered twice`);
  assert.equal(t.received, t.unique, `${what}: every datagram received once`);
  assert.equal(t.reordered, 0, `${what}: in order`);
  assert.equal(t.corrupt, 0, `${what}: payload byte-identical`);
  assert.equal(t.foreign, 0, `${what}: nothing foreign`);
  assert.notEqual(rep.socket_drops, null, "the kernel reports socket drops (SO_MEMINFO)");
}

/**
 * Each stream of the groups `only` ("group:port"; every group the sink saw when omitted)
 * delivered something, each datagram at most once, in order and intact.
 */
export function assertEachStream(rep: SinkReport, what: string, only?: readonly string[]): void {
  const groups = only === undefined ? rep.groups : only.map((want) => {
    const [ip, port] = want.split(":");
    const g = rep.groups.find((x) => x.group === ip && x.port === Number(port));
    assert.ok(g, `${what}: ${want} delivered something`);
    return g;
  });
  for (const g of groups) {
    const name = `${what}: ${g.group}:${g.port}`;
    for (const s of g.streams) {
      assert.ok(s.unique > 0, `${name} delivered`);
      assert.equal(s.duplicates, 0, `${name} nothing twice`);
      assert.equal(s.reordered, 0, `${name} in order`);
      assert.equal(s.corrupt, 0, `${name} intact`);
    }
  }
}

/** Datagrams a sink accounts for: read (valid, corrupt or foreign) + dropped at its sockets. */
export function sinkAccounted(rep: SinkReport): number {
  return rep.total.received + rep.total.foreign + (rep.socket_drops ?? 0);
}

/** Sum of the relay's output packets toward the given group:port destinations. */
export function outputPackets(s: RelayStats, dsts: string[]): number {
  let n = 0;
  for (const r of s.rules) {
    for (const o of r.outputs) if (dsts.includes(hostPort(o.group, o.port))) n += o.packets;
  }
  return n;
}

/**
 * Every datagram sent on the chain (lab/netns.ts `chainTopology`) was delivered (unique at the
 * sink) or counted where it was lost: `lostIn` on the hop into the relay (default: that hop's
 * counted drops), its RX ring, its frame-level drops (`no_match` included), its outputs, the hop
 * to the receiver and the receiver's sockets.
 */
export function assertChainAccounted(
  what: string,
  sent: number,
  stats: RelayStats,
  path: PathDrops,
  rep: SinkReport,
  lostIn: number = path.hops[hopKey(CHAIN_IN)],
): void {
  const r0 = stats.interfaces.find((i) => i.name === "r0")!;
  assertAccounted({
    sent,
    delivered: rep.total.unique,
    drops: {
      "s0→r0": lostIn,
      r0_kernel_drops: r0.kernel_drops,
      relay_frame_drops: frameDrops(stats),
      relay_output_drops: outputDrops(stats),
      "r1→d0": path.hops[hopKey(CHAIN_OUT)],
      receiver_socket: rep.socket_drops ?? 0,
    },
  }, what);
}

/** Stream ids that delivered anything to `g` (a group and port, or "GROUP:PORT") at the receiver, sorted. */
export function streamsAt(rep: SinkReport, g: { group: string; port: number } | string): number[] {
  const [group, port] = typeof g === "string" ? g.split(":") : [g.group, String(g.port)];
  const grp = rep.groups.find((x) => x.group === group && x.port === Number(port));
  return (grp?.streams ?? []).filter((s) => s.received > 0).map((s) => s.stream).sort((a, b) =>
    a - b
  );
}

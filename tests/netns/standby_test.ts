/**
 * An active/standby pair of relays under keepalived (Debian package), in
 * namespaces the test creates and removes: a sender segment and a receiver
 * segment (two bridges), two relays each attached to both with the same rule,
 * keepalived in each relay's namespace (VRRP on the receiver segment; the
 * relay tracked through a file written when it is ready and when it exits, as
 * the packaged systemd drop-in does; the packaged notify script
 * packaging/keepalived/mcr-keepalived calling `mcr ctl role`). keepalived's
 * track_process cannot be used here: the kernel's process events reach only
 * the initial network namespace. A 10 kpps stream is counted at an
 * independent receiver.
 *
 * What is asserted (it holds on a busy machine):
 * - both relays up: exactly one copy of every datagram arrives — a receiver
 *   that listens only then sees no duplicate and no reordering, and the
 *   standby sent nothing while it counted what it held back as `standby`;
 * - the active relay's process killed (SIGKILL): the standby is made active
 *   by keepalived ("keepalived MASTER") and forwards; over the whole run the
 *   receiver sees no corrupt or foreign datagram, and at most one batch of
 *   duplicates or reorderings (the switch-over batch: datagrams the standby
 *   still held in its ring when it became active and that the dead relay had
 *   sent; {@link BATCH_MAX}, the relays' `rx.batch_max`);
 * - the survivor's counters agree with each other (matched = sent + standby +
 *   drops per output);
 * - keepalived stopped (SIGTERM) on the active relay, a planned switch-over:
 *   the notify script makes its relay a standby ("keepalived STOP") and the
 *   peer becomes active; duplicates at most what the two relays' role
 *   timestamps let overlap, plus a batch at each end.
 *
 * The receiver's gap (its longest silence) and the time from the kill to the
 * survivor answering "active" are printed, not asserted (bench/README.md has
 * measured figures). `MCR_TEST_VRRP_ADVERT_S` sets the VRRP advertisement
 * interval (default 0.1 s; 1 is keepalived's default).
 *
 * Needs keepalived (`apt-get install keepalived`); outside CI the test is
 * skipped with a message when it is missing, in CI (`CI=true`) it fails.
 */
import assert from "node:assert/strict";
import { BUILD, Proc, REPO, skipReason, Topology } from "../../lab/netns.ts";
import {
  type GenReport,
  type RelayProc,
  type SinkReport,
  startRelayWith,
  startSink,
} from "../../lab/harness.ts";
import type { RelayStats } from "../../src/relay/stats.ts";
import type { RoleStats } from "../../src/relay/role.ts";
import { ControlClient } from "../../src/client/client.ts";
import { assertClean, assertRelayConsistent, drained } from "./lib_account.ts";

const KEEPALIVED = "/usr/sbin/keepalived";
/** Rate of the stream (datagrams per second). */
const RATE = 10_000;
/** The relays' RX batch (`rx.batch_max`): what "the switch-over batch" is at most. */
const BATCH_MAX = 64;
/** How long a state may take to show on a busy machine (a bound on polling, not an assertion). */
const DEADLINE_MS = 60_000;
/** VRRP advertisement interval (s). */
const ADVERT_S = Number(Deno.env.get("MCR_TEST_VRRP_ADVERT_S") ?? "0.1");
const NOTIFY_SCRIPT = `${REPO}/packaging/keepalived/mcr-keepalived`;

function keepalivedMissing(): string | null {
  try {
    Deno.statSync(KEEPALIVED);
    return null;
  } catch {
    const why = "keepalived is not installed (apt-get install keepalived)";
    if (Deno.env.get("CI") === "true") throw new Error(`${why}: CI must install it (.ci/run)`);
    return why;
  }
}

const skip = skipReason() ?? keepalivedMissing();
if (skip) console.warn(`standby tests skipped: ${skip}`);
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };

const GROUP_IN = "239.1.1.1:5001";
const GROUP_OUT = "239.20.1.1:6001";
const relayConfig = {
  role: "standby", // VRRP decides; a (re)started relay sends nothing until then
  rx: { batch_max: BATCH_MAX },
  rules: [{
    name: "feed",
    input: { interface: "a0", group: "239.1.1.1", port: 5001 },
    outputs: [{ interface: "b0", group: "239.20.1.1", port: 6001 }],
  }],
};

/**
 * Sender segment (bridge brA): snd s0, ra a0, rb a0. Receiver segment (brB): ra b0, rb b0,
 * rcv d0. Bridges in namespace `sw`, without IGMP snooping (they flood the groups).
 */
async function buildPair(t: Topology): Promise<void> {
  for (const r of ["snd", "sw", "ra", "rb", "rcv"]) await t.addNs(r);
  for (const br of ["brA", "brB"]) {
    await t.exec("sw", ["ip", "link", "add", br, "type", "bridge", "mcast_snooping", "0"]);
    await t.exec("sw", ["ip", "link", "set", br, "up"]);
  }
  const ports: [string, string, string, string, string][] = [
    ["snd", "s0", "10.88.1.1/24", "psnd", "brA"],
    ["ra", "a0", "10.88.1.11/24", "pra_a", "brA"],
    ["rb", "a0", "10.88.1.12/24", "prb_a", "brA"],
    ["ra", "b0", "10.88.2.11/24", "pra_b", "brB"],
    ["rb", "b0", "10.88.2.12/24", "prb_b", "brB"],
    ["rcv", "d0", "10.88.2.2/24", "prcv", "brB"],
  ];
  for (const [role, dev, addr, swDev, br] of ports) {
    await t.link({ role, dev, addr }, { role: "sw", dev: swDev });
    await t.exec("sw", ["ip", "link", "set", swDev, "master", br]);
  }
}

/** One relay of the pair and its keepalived. */
interface PairMember {
  role: "ra" | "rb";
  relay: RelayProc;
  /** The relay's own pid (its process runs under a shell that reports its exit). */
  pid: number;
  keepalived: Proc;
  /** The notify script's log (the roles it set). */
  notifyLog: string;
}

/**
 * Start the relay of namespace `role` the way the packaged systemd drop-in runs it
 * (packaging/keepalived/): once it is ready "0" goes to its track file, and when it exits,
 * however it exits, "1" (there systemd's ExecStartPost/ExecStopPost, here a shell around it);
 * keepalived watches the file (inotify) and goes to FAULT at once. Then keepalived beside it.
 */
async function startMember(
  t: Topology,
  dir: string,
  role: "ra" | "rb",
  priority: number,
): Promise<PairMember> {
  const trackFile = `${dir}/${role}.down`;
  const relay = await startRelayWith(t, role, relayConfig, {
    control: true,
    dir,
    wrap: ["/bin/sh", "-c", `"$@"; code=$?; echo 1 > ${trackFile}; exit $code`, "sh"],
  });
  await Deno.writeTextFile(trackFile, "0\n");
  const pid = (await relay.stats().then(() => versionOf(relay.controlSocket!))).pid;
  const socket = relay.controlSocket!;
  const notifyLog = `${dir}/${role}-notify.log`;
  const notify = `${dir}/${role}-notify`;
  const home = Deno.env.get("HOME") ?? "/root";
  const denoDir = Deno.env.get("DENO_DIR") ?? `${home}/.cache/deno`;
  await Deno.writeTextFile(
    notify,
    [
      "#!/bin/sh",
      `cd ${REPO}`,
      `export DENO_DIR=${denoDir} HOME=${home} NO_COLOR=1`,
      `export MCR_CONTROL_SOCKET=${socket}`,
      `export MCR_CTL="${Deno.execPath()} run --allow-read --allow-write=${socket} ` +
      `--allow-net=unix:${socket} ${REPO}/cli.ts ctl"`,
      `exec ${NOTIFY_SCRIPT} "$@" >>${notifyLog} 2>&1`,
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  const conf = `${dir}/${role}-keepalived.conf`;
  await Deno.writeTextFile(
    conf,
    `global_defs {
  router_id ${role}
  vrrp_version 3
  script_user root
  vrrp_priority -15
  vrrp_notify_fifo ${dir}/${role}.fifo
  vrrp_notify_fifo_script ${notify}
}
track_file relay_down {
  file ${trackFile}
  weight 0
  init_file 1
}
vrrp_instance mcr {
  state BACKUP
  interface b0
  virtual_router_id 51
  priority ${priority}
  advert_int ${ADVERT_S}
  nopreempt
  track_interface {
    a0
  }
  track_file {
    relay_down
  }
  virtual_ipaddress {
    10.88.2.100/24 dev b0
  }
}
`,
  );
  const keepalived = new Proc(t.ns(role), [
    KEEPALIVED,
    ...["--dont-fork", "--log-console", "--log-detail", "--vrrp", "--no-syslog"],
    ...["-f", conf, "-p", `${dir}/${role}.pid`, "-r", `${dir}/${role}-vrrp.pid`],
  ]);
  return { role, relay, pid, keepalived, notifyLog };
}

/** `ctl version` of the relay behind `socket` (its pid). */
async function versionOf(socket: string): Promise<{ pid: number }> {
  await using c = await ControlClient.connect(socket);
  const r = await c.request<{ pid: number }>("version");
  if (!r.ok) throw new Error(`version: ${JSON.stringify(r.error)}`);
  return r.result;
}

/** SIGTERM the relay itself and take its final counters (the last line it prints). */
async function stopRelay(m: PairMember): Promise<{ code: number; stats: RelayStats }> {
  Deno.kill(m.pid, "SIGTERM");
  const r = await m.relay.proc.wait();
  const last = r.stdout.trim().split("\n").pop() ?? "";
  assert.equal(r.code, 0, r.stderr);
  return { code: r.code, stats: JSON.parse(last) };
}

/** The role a relay answers now (`ctl role`: cheap enough to poll, unlike `stats`). */
async function roleOf(m: PairMember): Promise<RoleStats> {
  await using c = await ControlClient.connect(m.relay.controlSocket!);
  const r = await c.request<RoleStats>("role");
  if (!r.ok) throw new Error(`role: ${JSON.stringify(r.error)}`);
  return r.result;
}

/** Poll `f` until it returns a value, or throw with `what` and the last state after the deadline. */
async function until<T>(
  what: string,
  f: () => Promise<T | undefined>,
  state: () => Promise<string>,
): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() - t0 > DEADLINE_MS) {
      throw new Error(`${what}: not after ${DEADLINE_MS} ms; ${await state()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function readText(path: string): Promise<string> {
  return await Deno.readTextFile(path).catch(() => "(none)");
}

/** The feed's one output. */
function out(s: RelayStats) {
  return s.rules[0].outputs[0];
}

/** A running pair: VRRP has elected ra (active) and rb (standby). */
interface Pair {
  t: Topology;
  a: PairMember;
  b: PairMember;
  /** Both relays' roles and notify logs, for a failure message. */
  state(): Promise<string>;
}

/**
 * Build the pair (topology, relays, keepalived), wait for the election — VRRP picks ra, the higher
 * priority; its notify script makes it active, rb stays standby — run `body`, and remove
 * everything (the namespaces' processes too) whatever happens; on a failure print both relays'
 * roles, notify logs and keepalived logs.
 */
async function withPair(tag: string, body: (p: Pair) => Promise<void>): Promise<void> {
  const t = new Topology(tag);
  const dir = await Deno.makeTempDir({ prefix: "mcr-pair-" });
  const members: PairMember[] = [];
  const state = async () => {
    const lines = [];
    for (const m of members) {
      const r = await roleOf(m).catch((e) => `unreachable: ${(e as Error).message}`);
      lines.push(`${m.role}: ${JSON.stringify(r)}; notify log: ${await readText(m.notifyLog)}`);
    }
    return lines.join("\n");
  };
  try {
    await buildPair(t);
    members.push(await startMember(t, dir, "ra", 150));
    members.push(await startMember(t, dir, "rb", 100));
    const [a, b] = members;
    await until("ra active, rb standby", async () => {
      const [ra, rb] = [await roleOf(a), await roleOf(b)];
      return ra.role === "active" && rb.role === "standby" ? true : undefined;
    }, state);
    assert.equal((await roleOf(a)).set_by, "keepalived MASTER");
    // Both notify scripts' role setters (`mcr ctl role --stdin`) have started and set a role, as
    // they have long before any failover in service (their start takes a second or two here).
    for (const m of [a, b]) {
      await until(`${m.role}'s role setter running`, async () => {
        return /\.\d{3} role \w+ \(.*\), set by keepalived /.test(await readText(m.notifyLog)) ||
          undefined;
      }, state);
    }
    await body({ t, a, b, state });
  } catch (e) {
    console.error(`pair state at the failure:\n${await state()}`);
    for (const m of members) {
      m.keepalived.kill("SIGKILL");
      const k = await m.keepalived.wait();
      console.error(`${m.role} keepalived:\n${k.stderr.slice(-3000)}${k.stdout.slice(-3000)}`);
    }
    throw e;
  } finally {
    await t.destroy();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The stream at RATE from the sender, until SIGTERM. */
function startStream(t: Topology): Proc {
  return new Proc(t.ns("snd"), [
    `${BUILD}/mcr-gen`,
    ...["--iface", "s0", "--dst", GROUP_IN, "--rate", String(RATE), "--json"],
  ]);
}

/** Stop the stream; its report. */
async function stopStream(gen: Proc): Promise<GenReport> {
  gen.kill("SIGTERM");
  return JSON.parse((await gen.wait()).stdout);
}

/** What the receiver saw of the stream, as one line. */
function seen(rep: SinkReport): string {
  const s = rep.groups.find((x) => `${x.group}:${x.port}` === GROUP_OUT)!.streams[0];
  return `receiver gap ${((s.max_gap_us ?? 0) / 1000).toFixed(1)} ms, ${rep.total.lost} ` +
    `datagrams lost, ${rep.total.duplicates} duplicates, ${rep.total.reordered} reordered`;
}

/** Wait until `m` has sent one more second of the stream than now. */
async function aSecondThrough(m: PairMember, state: () => Promise<string>): Promise<void> {
  const sent0 = out(await m.relay.stats()).packets;
  await until(`a second of the stream through ${m.role}`, async () => {
    return out(await m.relay.stats()).packets >= sent0 + RATE ? true : undefined;
  }, state);
}

Deno.test({
  name:
    "standby: keepalived pair, one copy while both run, the standby takes over when the active relay dies",
  ...opts,
  fn: () =>
    withPair("pair", async ({ t, a, b, state }) => {
      const both = await startSink(t, "rcv", "d0", [GROUP_OUT], { idleMs: 0, durationS: 300 });
      const whole = await startSink(t, "rcv", "d0", [GROUP_OUT], { idleMs: 0, durationS: 300 });
      const gen = startStream(t);
      // One second of the stream through the active relay, held back by the standby.
      const [sa, sb] = await until("a second of the stream on both relays", async () => {
        const [sa, sb] = [await a.relay.stats(), await b.relay.stats()];
        return out(sa).packets >= RATE && out(sb).standby >= RATE ? [sa, sb] : undefined;
      }, state);
      assert.equal(sa.role!.role, "active");
      assert.equal(out(sa).standby, 0, "the active relay holds nothing back");
      assert.equal(sb.role!.role, "standby");
      assert.equal(out(sb).packets, 0, "the standby sent nothing");
      // (drops.standby = the outputs' standby is checked on the survivor's final counters: a live
      // snapshot reads the two while the worker counts)
      // a receiver that listened only while both ran: one copy of each datagram
      assertClean(await both.stop(), "both relays up");

      // The active relay dies; keepalived hears of it and the standby takes over.
      Deno.kill(a.pid, "SIGKILL");
      const killed = performance.now(), killedAt = Date.now();
      console.log(`killed ra at ${new Date(killedAt).toISOString().slice(11, 23)}`);
      const taken = await until("rb active", async () => {
        const r = await roleOf(b);
        return r.role === "active" ? r : undefined;
      }, state);
      const activeMs = performance.now() - killed;
      assert.equal(taken.set_by, "keepalived MASTER", "keepalived made the standby active");
      await aSecondThrough(b, state);

      const g = await stopStream(gen);
      await drained(() => b.relay.stats(), Date.now());
      const { stats: fb } = await stopRelay(b);
      assertRelayConsistent(fb);
      assert.ok(out(fb).packets >= RATE, "the survivor forwarded");
      assert.ok(out(fb).standby >= RATE, "and counted what it held back while standby");
      const rep: SinkReport = await whole.stop();
      console.log(
        `failover (VRRP advert_int ${ADVERT_S} s, ${RATE} pps): ${seen(rep)}; kill → "active" ` +
          `answered after ${activeMs.toFixed(0)} ms (rb took it ` +
          `${Date.parse(taken.since) - killedAt} ms after the kill); sent ${g.sent}`,
      );
      console.log(`rb's notify script:\n${await readText(b.notifyLog)}`);
      assert.equal(rep.total.corrupt, 0, "nothing corrupt");
      assert.equal(rep.total.foreign, 0, "nothing foreign");
      assert.ok(
        rep.total.duplicates <= BATCH_MAX,
        `duplicates ${rep.total.duplicates} within the switch-over batch (${BATCH_MAX})`,
      );
      assert.ok(
        rep.total.reordered <= BATCH_MAX,
        `reordered ${rep.total.reordered} within the switch-over batch (${BATCH_MAX})`,
      );
      assert.ok(rep.total.unique > out(sa).packets, "the receiver got the stream again");
    }),
});

Deno.test({
  name: "standby: keepalived stopped on the active relay: its relay becomes a standby, the peer " +
    "takes over; duplicates only while their roles overlapped",
  ...opts,
  fn: () =>
    withPair("plan", async ({ t, a, b, state }) => {
      const sink = await startSink(t, "rcv", "d0", [GROUP_OUT], { idleMs: 0, durationS: 300 });
      const gen = startStream(t);
      await aSecondThrough(a, state);
      // A planned switch-over: keepalived stops (SIGTERM) on the active relay. It tells its
      // notify script (which makes the relay a standby) and the peer (priority 0).
      a.keepalived.kill("SIGTERM");
      const [ra, rb] = await until("ra standby, rb active", async () => {
        const [ra, rb] = [await roleOf(a), await roleOf(b)];
        return ra.role === "standby" && rb.role === "active" ? [ra, rb] : undefined;
      }, state);
      assert.equal(ra.set_by, "keepalived STOP", "ra's script made it a standby as it stopped");
      assert.equal(rb.set_by, "keepalived MASTER");
      await aSecondThrough(b, state);
      const g = await stopStream(gen);
      await drained(() => b.relay.stats(), Date.now());
      const rep = await sink.stop();
      // Both relays active from rb's switch to ra's (when rb switched first): the window in which
      // both send. Each relay's data path switches at its next batch, and rb may start with what
      // its ring still held: a batch at each end beyond the window.
      const overlapMs = Date.parse(ra.since) - Date.parse(rb.since);
      const bound = Math.ceil(Math.max(0, overlapMs + 2) * RATE / 1000) + 2 * BATCH_MAX;
      console.log(
        `planned switch-over (keepalived stopped, VRRP advert_int ${ADVERT_S} s, ${RATE} pps): ` +
          `${seen(rep)}; roles overlapped ${overlapMs} ms (negative: a gap); sent ${g.sent}`,
      );
      console.log(`ra's notify script:\n${await readText(a.notifyLog)}`);
      console.log(`rb's notify script:\n${await readText(b.notifyLog)}`);
      assert.equal(rep.total.corrupt, 0, "nothing corrupt");
      assert.equal(rep.total.foreign, 0, "nothing foreign");
      assert.ok(
        rep.total.duplicates <= bound,
        `duplicates ${rep.total.duplicates} within the roles' overlap (${overlapMs} ms) and a ` +
          `batch at each end: at most ${bound}`,
      );
      assert.ok(out(await b.relay.stats()).packets >= RATE, "rb forwards");
      assertRelayConsistent((await stopRelay(b)).stats);
    }),
});

Deno.test({
  name: "standby: the packaged keepalived.conf passes keepalived's own check",
  ...opts,
  async fn() {
    const t = new Topology("kaconf");
    try {
      await t.addNs("ka");
      // the interfaces it names
      await t.exec("ka", ["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"]);
      const r = await new Deno.Command("ip", {
        args: ["netns", "exec", t.ns("ka"), KEEPALIVED, "--config-test", "--log-console"]
          .concat(["-f", `${REPO}/packaging/keepalived/keepalived.conf`]),
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(r.stderr) + new TextDecoder().decode(r.stdout);
      assert.equal(r.code, 0, `keepalived --config-test: ${text}`);
    } finally {
      await t.destroy();
    }
  },
});

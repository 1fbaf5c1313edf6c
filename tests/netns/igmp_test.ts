/**
 * IGMP memberships and file descriptors at scale, on a real kernel, in
 * namespaces whose own per-socket limits are lowered (they are per network
 * namespace): more rules than `net.ipv4.igmp_max_memberships` join every
 * group in ceil(N / limit) sockets (what /proc/net/igmp lists on the input
 * interface, and the relay process's socket descriptors), sources beyond
 * `net.ipv4.igmp_max_msf` (/proc/net/mcfilter), leaving on removal, joining
 * again on a re-created input interface without leaking a socket, a refusal
 * that names the sysctl and is not fatal, and a relay that refuses to start
 * when RLIMIT_NOFILE is too low for its rules.
 */
import assert from "node:assert/strict";
import { chainTopology, skipReason, waitForFile } from "../../lab/netns.ts";
import { type RelayDriver, startDriver, startRelayWith } from "../../lab/harness.ts";
import type { RelayStats } from "../../src/relay/stats.ts";
import { igmpGroups, igmpHex, mcfilterSources } from "./lib_igmp.ts";

const skip = skipReason();
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };

/** How long a state may take to show on a busy machine. */
const DEADLINE_MS = 20_000;

function asm(i: number, group: string) {
  return {
    name: `g${i}`,
    input: { interface: "r0", group, port: 5000 + i },
    outputs: [{ interface: "r1", group: "239.99.0.1", port: 6000 + i }],
  };
}

function ssm(i: number, source: string) {
  return {
    name: `s${i}`,
    input: { interface: "r0", group: "232.5.5.5", port: 5100 + i, source },
    outputs: [{ interface: "r1", group: "239.99.0.2", port: 6100 + i }],
  };
}

/** Socket descriptors the process holds now. */
async function socketFds(pid: number): Promise<number> {
  // Unix, packet and netlink sockets are not IGMP sockets (the Deno runtime opens Unix
  // socket pairs of its own when it needs them): count the others.
  const other = new Set<string>();
  for (const f of ["unix", "packet", "netlink"]) {
    const text = await Deno.readTextFile(`/proc/${pid}/net/${f}`).catch(() => "");
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      // the inode column: 7th of unix (Inode), last of packet and netlink
      const inode = f === "unix" ? cols[6] : cols[cols.length - 1];
      if (inode) other.add(inode);
    }
  }
  let n = 0;
  for await (const e of Deno.readDir(`/proc/${pid}/fd`)) {
    try {
      const l = await Deno.readLink(`/proc/${pid}/fd/${e.name}`);
      if (l.startsWith("socket:[") && !other.has(l.slice(8, -1))) n++;
    } catch { /* closed meanwhile */ }
  }
  return n;
}

/** Poll `f` until `ok` holds (or fail with the last value after the deadline). */
async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, what: string): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() - t0 > DEADLINE_MS) {
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v, setReplacer)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function setReplacer(_k: string, v: unknown) {
  return v instanceof Set ? [...v] : v;
}

const GROUPS = Array.from({ length: 13 }, (_, i) => `239.5.0.${i + 1}`);
const SOURCES = Array.from({ length: 5 }, (_, i) => `10.77.1.${11 + i}`);

Deno.test({
  ...opts,
  name: "IGMP: rules beyond igmp_max_memberships/igmp_max_msf share ceil(N/limit) sockets, " +
    "leave on removal, join again on a re-created input",
  async fn() {
    const t = await chainTopology("igmp");
    let relay: RelayDriver | undefined;
    try {
      await t.sysctl("rly", "net.ipv4.igmp_max_memberships", "4");
      await t.sysctl("rly", "net.ipv4.igmp_max_msf", "2");
      const only1 = { rules: [asm(0, GROUPS[0])] };
      const all13 = { rules: GROUPS.map((g, i) => asm(i, g)) };
      const withSsm = { rules: [asm(0, GROUPS[0]), ...SOURCES.map((s, i) => ssm(i, s))] };
      relay = await startDriver(t, "rly", [only1, all13, withSsm, only1]);
      const pid = relay.proc.child.pid;
      const r = relay;
      const active = (s: RelayStats) =>
        s.rules.length > 0 && s.rules.every((x) => x.state === "active");
      let st = await r.until(active, DEADLINE_MS, "rule active");
      assert.deepEqual(st.igmp?.limits.max_memberships, 4, "the namespace's own limit is read");
      assert.deepEqual(st.igmp?.limits.max_msf, 2);
      assert.equal(st.igmp?.sockets, 1);
      assert.ok(st.fds && st.fds.needed > 0 && (st.fds.soft_limit ?? Infinity) >= st.fds.needed);
      assert.ok((await igmpGroups(t, "r0")).has(igmpHex(GROUPS[0])));
      const base = await socketFds(pid);
      assert.equal(
        base,
        1,
        "one IGMP socket (the only socket that is not unix, packet or netlink)",
      );

      // 13 groups at 4 per socket: 4 sockets, every group joined on r0
      st = await r.apply(1);
      const joined13 = await until(
        () => igmpGroups(t, "r0"),
        (g) => GROUPS.every((x) => g.has(igmpHex(x))),
        "13 groups on r0",
      );
      assert.equal(joined13.size >= 13, true);
      await until(() => socketFds(pid), (n) => n === base + 3, "ceil(13/4) = 4 IGMP sockets");
      st = await r.snap();
      assert.equal(st.igmp?.joined, 13);
      assert.equal(st.igmp?.sockets, 4);

      // 12 rules go, 5 sources of one group come (2 per socket): sockets for the sources,
      // the remaining group shares one of them; the 12 groups are left
      await r.apply(2);
      const after = await until(
        () => igmpGroups(t, "r0"),
        (g) => GROUPS.slice(1).every((x) => !g.has(igmpHex(x))) && g.has(igmpHex("232.5.5.5")),
        "12 groups left, 232.5.5.5 joined",
      );
      assert.ok(after.has(igmpHex(GROUPS[0])), "the rule that stayed keeps its group");
      assert.deepEqual(await mcfilterSources(t, "r0", "232.5.5.5"), SOURCES);
      await until(() => socketFds(pid), (n) => n === base + 2, "ceil(5/2) = 3 IGMP sockets");
      st = await r.snap();
      assert.equal(st.igmp?.joined, 6);
      assert.equal(st.igmp?.sockets, 3);

      // r0 deleted and re-created (a new interface index): joined again, no socket leaked
      await t.exec("rly", ["ip", "link", "del", "r0"]);
      await r.until((s) => s.rules.every((x) => x.state === "pending"), DEADLINE_MS, "pending");
      await t.link({ role: "snd", dev: "s0", addr: "10.77.1.1/24" }, {
        role: "rly",
        dev: "r0",
        addr: "10.77.1.2/24",
      });
      await r.until(active, DEADLINE_MS, "rules active again");
      await until(
        () => igmpGroups(t, "r0"),
        (g) => g.has(igmpHex(GROUPS[0])) && g.has(igmpHex("232.5.5.5")),
        "groups joined on the new r0",
      );
      assert.deepEqual(await mcfilterSources(t, "r0", "232.5.5.5"), SOURCES);
      await until(() => socketFds(pid), (n) => n === base + 2, "the same 3 IGMP sockets");
      assert.equal((await r.snap()).igmp?.sockets, 3);

      // back to one rule: the source-specific group is left, one socket remains
      await r.apply(3);
      await until(
        () => igmpGroups(t, "r0"),
        (g) => !g.has(igmpHex("232.5.5.5")) && g.has(igmpHex(GROUPS[0])),
        "232.5.5.5 left",
      );
      await until(() => socketFds(pid), (n) => n === base, "one IGMP socket");
      const { code, stats, stderr } = await r.stop();
      relay = undefined;
      assert.equal(code, 0, stderr);
      assert.equal(stats.igmp?.sockets, 0, "every membership left at stop");
      assert.equal((await igmpGroups(t, "r0")).has(igmpHex(GROUPS[0])), false);
    } finally {
      if (relay) await relay.stop().catch(() => {});
      await t.destroy();
    }
  },
});

Deno.test({
  ...opts,
  name:
    "IGMP: igmp_max_memberships=0 refuses the join with the sysctl named; the rule still runs, " +
    "and joins once the sysctl is raised",
  async fn() {
    const t = await chainTopology("igmp0");
    let relay: RelayDriver | undefined;
    try {
      await t.sysctl("rly", "net.ipv4.igmp_max_memberships", "0");
      const cfg = { rules: [asm(0, GROUPS[0]), ssm(0, SOURCES[0])] };
      relay = await startDriver(t, "rly", [cfg, cfg]);
      const st = await relay.until(
        (s) => s.rules.every((x) => x.state === "active") && (s.igmp?.failed ?? 0) === 2,
        DEADLINE_MS,
        "rules active, joins refused",
      );
      assert.equal(st.igmp?.joined, 0);
      for (const f of st.igmp?.failures ?? []) {
        assert.equal(f.interface, "r0");
        assert.match(
          f.reason,
          /net\.ipv4\.igmp_max_memberships=0 reached on IGMP socket \d+ \(it holds 0 groups\); raise it: sysctl -w net\.ipv4\.igmp_max_memberships=20/,
        );
      }
      assert.deepEqual(st.igmp?.failures.map((f) => f.source), [undefined, SOURCES[0]]);
      assert.equal(st.igmp?.sockets, 0, "no socket kept for a refused join");
      assert.equal((await igmpGroups(t, "r0")).has(igmpHex(GROUPS[0])), false);
      // raised: the next change of the rule set joins them
      await t.sysctl("rly", "net.ipv4.igmp_max_memberships", "20");
      const again = await relay.apply(1);
      assert.equal(again.igmp?.joined, 2);
      assert.equal(again.igmp?.limits.max_memberships, 20);
      assert.ok((await igmpGroups(t, "r0")).has(igmpHex(GROUPS[0])));
      const { code, stderr } = await relay.stop();
      relay = undefined;
      assert.equal(code, 0, stderr);
    } finally {
      if (relay) await relay.stop().catch(() => {});
      await t.destroy();
    }
  },
});

Deno.test({
  ...opts,
  name: "RLIMIT_NOFILE below what the rules need: the relay refuses to start, naming the limit",
  async fn() {
    const t = await chainTopology("nofile");
    try {
      // one group per IGMP socket: 150 rules need 150 sockets, more than the hard limit of 128
      await t.sysctl("rly", "net.ipv4.igmp_max_memberships", "1");
      const rules = Array.from({ length: 150 }, (_, i) => asm(i, `239.6.${i >> 8}.${i & 255}`));
      const dir = await Deno.makeTempDir({ prefix: "mcr-nofile-" });
      try {
        const relay = await startRelayWith(t, "rly", { rules }, {
          dir,
          wrap: ["prlimit", "--nofile=128:128"],
          waitReady: false,
        });
        const ready = `${relay.configPath}.ready`;
        const started = waitForFile(ready, 60_000, "ready").then(() => true, () => false);
        const exited = relay.proc.wait();
        const first = await Promise.race([
          exited.then(() => "exited"),
          started.then(() => "ready"),
        ]);
        if (first === "ready") {
          relay.proc.kill("SIGKILL");
          await exited;
          assert.fail(
            "the relay started although RLIMIT_NOFILE (128) is below what its rules need",
          );
        }
        const r = await exited;
        assert.equal(r.code, 3, `exit 3 (runtime failure); stderr: ${r.stderr}`);
        assert.match(
          r.stderr,
          /the configuration needs about \d+ file descriptors \(.*150 IGMP sockets\), more than the open-file limit allows \(RLIMIT_NOFILE hard limit 128\): raise it to at least \d+ — `ulimit -n \d+`.*LimitNOFILE=\d+/,
        );
      } finally {
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    } finally {
      await t.destroy();
    }
  },
});

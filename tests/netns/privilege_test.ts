/**
 * Least privilege: the relay runs as an unprivileged system user with only
 * ambient CAP_NET_RAW (setpriv), under narrow Deno permissions (read: the
 * repository and its own directory; write: its own directory only; net: its
 * control socket only), forwards real traffic, and writes nothing to /tmp or
 * other world-writable places. Without the capability it must fail with a clear
 * error (exit 3, naming CAP_NET_RAW). Without CAP_SYS_NICE its data-path
 * workers cannot raise their priority (worker_nice): they keep the process's,
 * say so, and forward.
 */
import assert from "node:assert/strict";
import { BUILD, REPO, sh, skipReason, Topology } from "../../lab/netns.ts";
import { runGen, startRelayWith, startSink } from "../../lab/harness.ts";
import { chainV4, dataPathThreads, threadNices } from "./lib_robust.ts";

const skip = skipReason() ??
  (await sh(["sh", "-c", "command -v setpriv useradd"], { allowFail: true })
    ? null
    : "setpriv/useradd missing");
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };
const USER = "mcrtest";
const CAP_NET_RAW_BIT = 13n;

/** Ensure the system user exists; returns uid and gid. */
async function ensureUser(): Promise<{ uid: number; gid: number }> {
  const have = await sh(["id", "-u", USER], { allowFail: true });
  if (!have.trim()) {
    await sh([
      "useradd",
      "--system",
      "--no-create-home",
      "--home-dir",
      "/nonexistent",
      "--shell",
      "/usr/sbin/nologin",
      USER,
    ]);
  }
  const uid = Number((await sh(["id", "-u", USER])).trim());
  const gid = Number((await sh(["id", "-g", USER])).trim());
  return { uid, gid };
}

/**
 * A 0750 directory owned by the user (not under /tmp) holding a copy of the deno
 * binary (the npx cache under /root is not reachable for other users), a
 * DENO_DIR with the npm packages already cached, and the relay's files.
 */
async function privateHome(uid: number, gid: number): Promise<string> {
  const dir = `/var/lib/mcr-privtest-${Deno.pid}-${crypto.randomUUID().slice(0, 6)}`;
  await Deno.mkdir(dir, { mode: 0o750 });
  await Deno.copyFile(Deno.execPath(), `${dir}/deno`);
  const rootDenoDir = Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME") ?? "/root"}/.cache/deno`;
  await Deno.mkdir(`${dir}/deno_dir`);
  await sh(["cp", "-r", `${rootDenoDir}/npm`, `${dir}/deno_dir/npm`]);
  await Deno.mkdir(`${dir}/run`, { mode: 0o700 });
  await sh(["chown", "-R", `${uid}:${gid}`, dir]);
  await Deno.chmod(dir, 0o750);
  return dir;
}

/** Files owned by the user in world-writable places. */
async function strayFiles(): Promise<string[]> {
  const out = await sh(
    ["find", "/tmp", "/var/tmp", "/dev/shm", "-xdev", "-user", USER],
    { allowFail: true },
  );
  return out.split("\n").filter(Boolean);
}

function relayCmd(dir: string, caps: boolean): string[] {
  return [
    "setpriv",
    `--reuid=${USER}`,
    `--regid=${USER}`,
    "--init-groups",
    ...(caps ? ["--inh-caps=+net_raw", "--ambient-caps=+net_raw"] : ["--inh-caps=-all"]),
    "--",
    "env",
    `HOME=${dir}`,
    `DENO_DIR=${dir}/deno_dir`,
  ];
}

function perms(dir: string): string[] {
  return [
    "--cached-only",
    "--allow-ffi",
    `--allow-read=${REPO},${dir}`,
    "--allow-env=MCR_LIB,MCR_FAULT_INJECTION,NO_COLOR",
    `--allow-write=${dir}`,
    `--allow-net=unix:${dir}/run/control.sock`,
  ];
}

const RULES = {
  rules: [{
    name: "priv",
    input: { interface: "r0", group: "239.1.1.1", port: 5001 },
    outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
  }],
};

Deno.test({
  ...opts,
  name: "non-root user with only ambient CAP_NET_RAW: forwards, narrow permissions, " +
    "nothing written to /tmp",
  async fn() {
    const { uid, gid } = await ensureUser();
    const t = new Topology("priv");
    const dir = await privateHome(uid, gid);
    try {
      const before = await strayFiles();
      await chainV4(t);
      const relay = await startRelayWith(t, "rly", RULES, {
        dir,
        wrap: relayCmd(dir, true),
        deno: `${dir}/deno`,
        perms: perms(dir),
        args: ["--control-socket", `${dir}/run/control.sock`, "--log-level", "info"],
        env: { MCR_LIB: `${BUILD}/libmcr.so` },
      });
      // the relay process: the user's uid, and CAP_NET_RAW is its only effective capability
      const pid = relay.proc.child.pid;
      const status = await Deno.readTextFile(`/proc/${pid}/status`);
      const uidLine = status.match(/^Uid:\s+(\d+)\s+(\d+)/m)!;
      assert.equal(Number(uidLine[1]), uid, "real uid");
      assert.equal(Number(uidLine[2]), uid, "effective uid");
      const capEff = BigInt("0x" + status.match(/^CapEff:\s+([0-9a-f]+)/m)![1]);
      assert.equal(capEff, 1n << CAP_NET_RAW_BIT, "effective capabilities = CAP_NET_RAW only");
      const sock = await Deno.stat(`${dir}/run/control.sock`);
      assert.equal(sock.uid, uid, "control socket created by the user in its own directory");
      // no CAP_SYS_NICE: the worker could not take nice -10 and kept the process's priority
      const threads = await threadNices(pid);
      const workers = dataPathThreads(threads);
      assert.equal(workers.length, 1, "one pool worker thread");
      const main = threads.find((x) => x.tid === pid)!;
      assert.equal(workers[0].nice, main.nice, "the worker keeps the process's priority");

      // 2000 frames fit the relay's RX ring and the receiver's socket buffer: none can be lost
      // to load, and the receiver waits for all of them (no idle timer).
      const sink = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], {
        expectTotal: 2000,
        idleMs: 0,
      });
      await runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: 5000, count: 2000 });
      const rep = await sink.result();
      const { stats, code, stderr } = await relay.stop();
      assert.equal(code, 0, stderr);
      assert.match(stderr, /worker 0 keeps the process's priority: nice -10 not permitted/);
      assert.equal(rep.total.unique, 2000, "every datagram forwarded");
      assert.equal(rep.total.received, 2000);
      assert.equal(stats.rules[0].packets, 2000);
      const after = await strayFiles();
      assert.deepEqual(after, before, "no file of the relay's user in /tmp, /var/tmp, /dev/shm");
    } finally {
      await t.destroy();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  ...opts,
  name: "non-root user without CAP_NET_RAW: exits 3 with an error naming CAP_NET_RAW",
  async fn() {
    const { uid, gid } = await ensureUser();
    const t = new Topology("nopriv");
    const dir = await privateHome(uid, gid);
    try {
      await chainV4(t);
      const relay = await startRelayWith(t, "rly", RULES, {
        dir,
        wrap: relayCmd(dir, false),
        deno: `${dir}/deno`,
        perms: perms(dir),
        args: ["--no-control"],
        waitReady: false,
      });
      // it must give up on its own; if it is still running after 20 s it never will
      const timer = setTimeout(() => relay.proc.kill("SIGKILL"), 20_000);
      const r = await relay.proc.wait();
      clearTimeout(timer);
      assert.notEqual(r.code, 137, `the relay kept running without CAP_NET_RAW:\n${r.stderr}`);
      assert.equal(r.code, 3, `exit code 3 (runtime failure):\n${r.stderr}`);
      assert.match(r.stderr, /CAP_NET_RAW/, "the message names the missing capability");
    } finally {
      await t.destroy();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

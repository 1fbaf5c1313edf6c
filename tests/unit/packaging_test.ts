/**
 * Service packaging: the systemd units pass `systemd-analyze verify` (and
 * its offline security review), carry the settings the relay relies on; the
 * sysusers and tmpfiles snippets create the user and a 0750 /run/mcr in a
 * scratch root; libmcr's sd_notify reaches path and abstract sockets; and
 * `cli.ts run` reports READY/RELOADING/STOPPING to a notify socket.
 */
import assert from "node:assert/strict";
import { sdNotify } from "../../ffi/mod.ts";
import { McrError } from "../../ffi/errors.ts";
import { DEFAULT_WORKER_NICE } from "../../src/config/limits.ts";
import { type Proc, REPO, runDeno, skipReason, Topology } from "../../lab/netns.ts";
import { startRelayWith } from "../../lab/harness.ts";

const PKG = `${REPO}/packaging`;
const UNITS = ["mcr.service", "mcr@.service"];

function have(cmd: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

async function run(cmd: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

const noAnalyze = have("systemd-analyze")
  ? null
  : "systemd-analyze not installed (apt-get install systemd)";
if (noAnalyze) console.warn(`unit verification skipped: ${noAnalyze}`);

/** Copies of the units whose ExecStart binary exists (verify checks it). */
async function unitCopies(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "mcr-units-" });
  const stub = `${dir}/mcr`;
  await Deno.writeTextFile(stub, "#!/bin/sh\nexit 0\n");
  await Deno.chmod(stub, 0o755);
  for (const u of UNITS) {
    const text = await Deno.readTextFile(`${PKG}/systemd/${u}`);
    await Deno.writeTextFile(`${dir}/${u}`, text.replaceAll("/usr/local/bin/mcr", stub));
  }
  return dir;
}

Deno.test({
  name: "systemd units pass systemd-analyze verify without a warning",
  ignore: noAnalyze !== null,
  async fn() {
    const dir = await unitCopies();
    try {
      for (const u of ["mcr.service", "mcr@blue.service"]) {
        const r = await run(["systemd-analyze", "verify", `${dir}/${u}`]);
        assert.equal(r.code, 0, `${u}: ${r.stderr}`);
        assert.equal(r.stderr.trim(), "", `${u}: systemd-analyze complained:\n${r.stderr}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "systemd unit: offline security review rates the exposure OK",
  ignore: noAnalyze !== null,
  async fn() {
    const dir = await unitCopies();
    try {
      const r = await run([
        "systemd-analyze",
        "security",
        "--offline=yes",
        "--no-pager",
        `${dir}/mcr.service`,
      ]);
      if (/unrecognized option|--offline/.test(r.stderr) && r.code !== 0) {
        console.warn("systemd-analyze security --offline not supported here; skipped");
        return;
      }
      const m = /Overall exposure level for mcr\.service: ([\d.]+)/.exec(r.stdout);
      assert.ok(m, r.stdout + r.stderr);
      assert.ok(Number(m[1]) <= 3.0, `exposure ${m[1]} (want <= 3.0):\n${r.stdout}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Parse a unit file into [section, key, value] entries (comments dropped). */
function entries(text: string): { section: string; key: string; value: string; line: number }[] {
  let section = "";
  const out: { section: string; key: string; value: string; line: number }[] = [];
  text.split("\n").forEach((l, i) => {
    const s = l.trim();
    if (!s || s.startsWith("#") || s.startsWith(";")) return;
    const sec = /^\[(.+)\]$/.exec(s);
    if (sec) {
      section = sec[1];
      return;
    }
    const eq = s.indexOf("=");
    out.push({ section, key: s.slice(0, eq), value: s.slice(eq + 1), line: i });
  });
  return out;
}

for (const u of UNITS) {
  Deno.test(`${u}: unprivileged, CAP_NET_RAW only (explained), notify, 0750 runtime dir`, () => {
    const text = Deno.readTextFileSync(`${PKG}/systemd/${u}`);
    const e = entries(text);
    const get = (k: string) => e.filter((x) => x.section === "Service" && x.key === k);
    const one = (k: string) => {
      const v = get(k);
      assert.equal(v.length, 1, `${u}: ${k}= should be set once`);
      return v[0].value;
    };
    assert.ok(!["root", "0", ""].includes(one("User")), "runs as a non-root user");
    assert.equal(one("AmbientCapabilities"), "CAP_NET_RAW");
    assert.equal(one("CapabilityBoundingSet"), "CAP_NET_RAW");
    assert.equal(one("NoNewPrivileges"), "yes");
    // RLIMIT_NICE lets the unprivileged user give its workers the default worker_nice
    assert.equal(one("LimitNICE"), String(DEFAULT_WORKER_NICE), "LimitNICE = default worker_nice");
    assert.equal(one("Type"), "notify");
    assert.equal(one("RuntimeDirectoryMode"), "0750");
    const rt = one("RuntimeDirectory");
    // the control socket lives in the runtime directory
    assert.ok(one("ExecStart").includes(`--control-socket /run/${rt}/control.sock`), rt);
    assert.match(one("ExecReload"), /\bctl --control-socket \S+ reload$/);
    assert.equal(get("MemoryDenyWriteExecute").length, 0, "V8 needs W+X memory");
    assert.match(text, /# .*MemoryDenyWriteExecute[\s\S]*V8/, "the omission is explained");
    // a comment right above AmbientCapabilities says why (AF_PACKET)
    const lines = text.split("\n");
    const at = lines.findIndex((l) => l.startsWith("AmbientCapabilities="));
    const above = lines.slice(Math.max(0, at - 10), at).filter((l) => l.startsWith("#")).join(
      "\n",
    );
    assert.match(above, /CAP_NET_RAW|AF_PACKET/, "AmbientCapabilities is explained");
    if (u === "mcr@.service") assert.equal(one("NetworkNamespacePath"), "/run/netns/%i");
  });
}

const noSysusers = !have("systemd-sysusers") || !have("systemd-tmpfiles")
  ? "systemd-sysusers/systemd-tmpfiles not installed (apt-get install systemd)"
  : Deno.uid() !== 0
  ? "needs root (chown in a scratch root)"
  : null;
if (noSysusers) console.warn(`sysusers/tmpfiles check skipped: ${noSysusers}`);

Deno.test({
  name: "sysusers and tmpfiles snippets create user mcr and a 0750 /run/mcr (scratch root)",
  ignore: noSysusers !== null,
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "mcr-root-" });
    try {
      await Deno.mkdir(`${root}/etc`, { recursive: true });
      for (const f of ["passwd", "group", "shadow", "gshadow"]) {
        await Deno.writeTextFile(`${root}/etc/${f}`, "");
      }
      const su = await run([
        "systemd-sysusers",
        `--root=${root}`,
        `${PKG}/sysusers.d/mcr.conf`,
      ]);
      assert.equal(su.code, 0, su.stderr);
      const passwd = await Deno.readTextFile(`${root}/etc/passwd`);
      const m = /^mcr:x:(\d+):(\d+):[^:]*:[^:]*:(\S+)$/m.exec(passwd);
      assert.ok(m, passwd);
      assert.ok(Number(m[1]) < 1000, "a system user");
      assert.equal(m[3], "/usr/sbin/nologin");
      const tf = await run([
        "systemd-tmpfiles",
        `--root=${root}`,
        "--create",
        `${PKG}/tmpfiles.d/mcr.conf`,
      ]);
      assert.equal(tf.code, 0, tf.stderr);
      const st = await Deno.stat(`${root}/run/mcr`);
      assert.ok(st.isDirectory);
      assert.equal(st.mode! & 0o7777, 0o750);
      assert.equal(st.uid, Number(m[1]));
      assert.ok((await Deno.stat(`${root}/etc/mcr`)).isDirectory);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

// ---------------------------------------------------------------- sd_notify

const noPython = have("python3") ? null : "python3 not installed (receiver for the test)";
if (noPython) console.warn(`sd_notify tests skipped: ${noPython}`);

/** A Unix datagram receiver (python3) collecting messages as JSON lines. */
class NotifyReceiver {
  readonly child: Deno.ChildProcess;
  readonly messages: string[] = [];
  readonly ready: Promise<void>;

  constructor(readonly address: string) {
    const py = `
import json, socket, sys
a = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\\0" + a[1:] if a.startswith("@") else a)
print("ready", flush=True)
while True:
    print(json.dumps(s.recv(65536).decode()), flush=True)
`;
    this.child = new Deno.Command("python3", {
      args: ["-c", py, address],
      stdout: "piped",
      stderr: "inherit",
      stdin: "null",
    }).spawn();
    const ready = Promise.withResolvers<void>();
    this.ready = ready.promise;
    const stdout = this.child.stdout;
    (async () => {
      let buf = "";
      for await (const c of stdout.pipeThrough(new TextDecoderStream())) {
        buf += c;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const l = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (l === "ready") ready.resolve();
          else this.messages.push(JSON.parse(l));
        }
      }
    })();
  }

  async waitFor(pred: (m: string) => boolean, what: string, timeoutMs = 20_000): Promise<string> {
    const t0 = Date.now();
    for (;;) {
      const m = this.messages.find(pred);
      if (m !== undefined) return m;
      if (Date.now() - t0 > timeoutMs) {
        throw new Error(`no ${what} notification; got ${JSON.stringify(this.messages)}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async close(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch { /* gone */ }
    await this.child.status;
  }
}

async function withNotifySocket(addr: string, f: (r: NotifyReceiver) => Promise<void>) {
  const r = new NotifyReceiver(addr);
  const before = Deno.env.get("NOTIFY_SOCKET");
  try {
    await r.ready;
    Deno.env.set("NOTIFY_SOCKET", addr);
    await f(r);
  } finally {
    if (before === undefined) Deno.env.delete("NOTIFY_SOCKET");
    else Deno.env.set("NOTIFY_SOCKET", before);
    await r.close();
  }
}

Deno.test("sdNotify: nothing to do (false) when NOTIFY_SOCKET is unset", () => {
  const before = Deno.env.get("NOTIFY_SOCKET");
  Deno.env.delete("NOTIFY_SOCKET");
  try {
    assert.equal(sdNotify("READY=1"), false);
  } finally {
    if (before !== undefined) Deno.env.set("NOTIFY_SOCKET", before);
  }
});

Deno.test({
  name: "sdNotify reaches a path socket and an abstract (@) socket; RELOADING gets a timestamp",
  ignore: noPython !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mcr-notify-" });
    try {
      await withNotifySocket(`${dir}/notify.sock`, async (r) => {
        assert.equal(sdNotify("READY=1\nSTATUS=hello"), true);
        assert.equal(
          await r.waitFor((m) => m.startsWith("READY"), "READY"),
          "READY=1\nSTATUS=hello",
        );
        assert.equal(sdNotify("RELOADING=1"), true);
        const rel = await r.waitFor((m) => m.startsWith("RELOADING"), "RELOADING");
        assert.match(rel, /^RELOADING=1\nMONOTONIC_USEC=\d+$/);
      });
      await withNotifySocket(`@mcr-test-${Deno.pid}-${Date.now()}`, async (r) => {
        assert.equal(sdNotify("STOPPING=1"), true);
        assert.equal(await r.waitFor((m) => m === "STOPPING=1", "STOPPING"), "STOPPING=1");
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("sdNotify: an unreachable or unsupported NOTIFY_SOCKET is an McrError", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mcr-notify-" });
  const before = Deno.env.get("NOTIFY_SOCKET");
  try {
    Deno.env.set("NOTIFY_SOCKET", `${dir}/nobody-listens.sock`);
    assert.throws(
      () => sdNotify("READY=1"),
      (e) => e instanceof McrError && /ENOENT|No such/.test(e.message),
    );
    Deno.env.set("NOTIFY_SOCKET", "vsock:2:1234");
    assert.throws(
      () => sdNotify("READY=1"),
      (e) => e instanceof McrError && /only \/path and @abstract/.test(e.message),
    );
  } finally {
    if (before === undefined) Deno.env.delete("NOTIFY_SOCKET");
    else Deno.env.set("NOTIFY_SOCKET", before);
    await Deno.remove(dir, { recursive: true });
  }
});

const noNetns = skipReason() ?? noPython;
if (noNetns) console.warn(`cli.ts run sd_notify test skipped: ${noNetns}`);

Deno.test({
  name:
    "cli.ts run under a notify socket: READY=1 with status, RELOADING/READY on SIGHUP and ctl reload, STOPPING=1",
  ignore: noNetns !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = new Topology("notify");
    const dir = await Deno.makeTempDir({ prefix: "mcr-notify-" });
    const rcv = new NotifyReceiver(`${dir}/notify.sock`);
    let relay: Proc | undefined;
    try {
      await rcv.ready;
      await t.addNs("rly");
      await t.exec("rly", ["ip", "link", "add", "a0", "type", "veth", "peer", "name", "a1"]);
      await t.exec("rly", ["ip", "addr", "add", "10.77.9.1/24", "dev", "a1"]);
      for (const d of ["a0", "a1"]) await t.exec("rly", ["ip", "link", "set", d, "up"]);
      const rules = (n: number) => ({
        rules: Array.from({ length: n }, (_, i) => ({
          name: `r${i}`,
          input: { interface: "a0", group: `239.1.1.${i + 1}`, port: 5000 + i },
          outputs: [{ interface: "a1", group: `239.10.1.${i + 1}`, port: 6000 + i }],
        })),
      });
      const started = await startRelayWith(t, "rly", rules(1), {
        dir,
        perms: ["-A"],
        args: ["--control-socket", `${dir}/control.sock`],
        env: { NOTIFY_SOCKET: `${dir}/notify.sock` },
      });
      relay = started.proc;
      const config = started.configPath;
      assert.equal(
        await rcv.waitFor((m) => m.startsWith("READY=1"), "READY"),
        "READY=1\nSTATUS=1 of 1 rules forwarding",
      );

      // SIGHUP (kill -HUP, or systemctl reload without ExecReload)
      await Deno.writeTextFile(config, JSON.stringify(rules(2)));
      relay.kill("SIGHUP");
      await rcv.waitFor((m) => m.startsWith("RELOADING=1"), "RELOADING");
      await rcv.waitFor(
        (m) => m === "READY=1\nSTATUS=2 of 2 rules forwarding",
        "READY after reload",
      );

      // ExecReload: `mcr ctl reload` through the control socket
      await Deno.writeTextFile(config, JSON.stringify(rules(3)));
      const ctl = await runDeno([
        "run",
        "-A",
        `${REPO}/cli.ts`,
        "ctl",
        "--control-socket",
        `${dir}/control.sock`,
        "reload",
      ]);
      assert.equal(ctl.code, 0, ctl.stderr);
      await rcv.waitFor(
        (m) => m === "READY=1\nSTATUS=3 of 3 rules forwarding",
        "READY after ctl reload",
      );
      assert.equal(rcv.messages.filter((m) => m.startsWith("RELOADING=1")).length, 2);

      relay.kill("SIGTERM");
      const r = await relay.wait();
      relay = undefined;
      assert.equal(r.code, 0, r.stderr);
      await rcv.waitFor((m) => m === "STOPPING=1", "STOPPING");
      assert.equal(rcv.messages.at(-1), "STOPPING=1");
    } finally {
      relay?.kill("SIGKILL");
      await rcv.close();
      await t.destroy();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

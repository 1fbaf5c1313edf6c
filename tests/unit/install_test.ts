/**
 * `deno task install` (scripts/install.sh) into a scratch PREFIX: the
 * installed `mcr` runs with nothing but /usr/bin:/bin on the PATH (no deno,
 * no npx) and no network, never stops at a permission prompt (the launcher
 * passes --no-prompt, so a missing permission is an error here), finds the
 * libmcr installed with it without MCR_LIB, works for an unprivileged user
 * (the install is read-only to them), and `--uninstall` removes every file.
 */
import assert from "node:assert/strict";
import { REPO } from "../../lab/netns.ts";

const FIX = `${REPO}/tests/fixtures/config`;
const dec = new TextDecoder();

function have(cmd: string): boolean {
  return new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
    .outputSync().success;
}

/** Run with a bare environment: only /usr/bin:/bin on the PATH. */
async function bare(cmd: string[], opts: { cwd?: string; user?: string } = {}) {
  const env = ["env", "-i", "PATH=/usr/bin:/bin", "HOME=/nonexistent", ...cmd];
  const argv = opts.user ? ["runuser", "-u", opts.user, "--", ...env] : env;
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: opts.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function install(prefix: string, ...args: string[]) {
  const out = await new Deno.Command("bash", {
    args: [`${REPO}/scripts/install.sh`, ...args],
    env: { DENO: Deno.execPath(), PREFIX: prefix, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function waitFor(path: string, what: string, timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    try {
      await Deno.stat(path);
      return;
    } catch { /* not yet */ }
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: ${path} did not appear`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const unprivileged = Deno.uid() === 0 && have("runuser") ? "nobody" : null;
if (!unprivileged) console.warn("install test: the unprivileged-user run is skipped (needs root)");

Deno.test({
  name:
    "deno task install: mcr on the PATH runs run/check/ctl/top without deno, npx or a prompt; --uninstall removes it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { version } = JSON.parse(await Deno.readTextFile(`${REPO}/deno.json`));
    const prefix = await Deno.makeTempDir({ prefix: "mcr-install-" });
    const work = await Deno.makeTempDir({ prefix: "mcr-install-run-" });
    let relay: Deno.ChildProcess | undefined;
    try {
      await Deno.chmod(prefix, 0o755);
      await Deno.chmod(work, 0o755);
      const inst = await install(prefix);
      assert.equal(inst.code, 0, inst.stdout + inst.stderr);
      const mcr = `${prefix}/bin/mcr`;
      for (
        const f of [
          "lib/mcr/deno",
          "lib/mcr/libmcr.so",
          "lib/mcr/mcr-gen",
          "lib/mcr/app/cli.ts",
          "lib/mcr/app/node_modules/commander/package.json",
          "share/man/man8/mcr.8",
          "share/man/man5/mcr.json.5",
          "share/bash-completion/completions/mcr",
          "share/zsh/site-functions/_mcr",
          "share/fish/vendor_completions.d/mcr.fish",
        ]
      ) {
        assert.ok((await Deno.stat(`${prefix}/${f}`)).isFile, f);
      }

      const v = await bare([mcr, "--version"]);
      assert.equal(v.code, 0, v.stderr);
      assert.equal(v.stdout, `mcr ${version}\n`);
      const ok = await bare([mcr, "check", "--config", `${FIX}/valid-full.json`]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /valid \(\d+ rules\)/);
      const bad = await bare([mcr, "check", "--config", `${FIX}/invalid-port-range.json`]);
      assert.equal(bad.code, 1, bad.stdout + bad.stderr);
      // help, of every permission profile (commander looks at the terminal and colours)
      for (const args of [["--help"], ["help", "ctl"], ["ctl", "--help"], ["top", "--help"]]) {
        const h = await bare([mcr, ...args]);
        assert.equal(h.code, 0, `${args.join(" ")}: ${h.stderr}`);
        assert.match(h.stdout, /^Usage: mcr/, args.join(" "));
      }
      const tool = await bare([mcr, "gen", "--help"]);
      assert.equal(tool.code, 0, tool.stderr);
      assert.match(tool.stdout, /usage: mcr-gen/);
      const typo = await bare([mcr, "chek"]);
      assert.equal(typo.code, 2);
      assert.match(typo.stderr, /did you mean check\?/i);

      // The relay (no rules: no CAP_NET_RAW needed) with a control socket, then ctl and top.
      const rules = `${work}/rules.json`;
      await Deno.writeTextFile(rules, JSON.stringify({ rules: [] }));
      const sockDir = `${work}/run`;
      await Deno.mkdir(sockDir, { mode: 0o750 });
      await Deno.chmod(sockDir, 0o750);
      const sock = `${sockDir}/control.sock`;
      relay = new Deno.Command("env", {
        args: [
          "-i",
          "PATH=/usr/bin:/bin",
          "HOME=/nonexistent",
          mcr,
          "--config",
          rules,
          "--control-socket",
          sock,
          "--ready-file",
          `${work}/ready`,
          "--log-level",
          "warning",
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      await waitFor(`${work}/ready`, "the installed relay");
      const ping = await bare([mcr, "ctl", "--control-socket", sock, "--json", "ping"]);
      assert.equal(ping.code, 0, ping.stderr);
      assert.equal(JSON.parse(ping.stdout).pong, true);
      // a relative socket path, as --opt=value after the command
      const ver = await bare([mcr, "ctl", "version", "--json", "--control-socket=control.sock"], {
        cwd: sockDir,
      });
      assert.equal(ver.code, 0, ver.stderr);
      assert.equal(JSON.parse(ver.stdout).version, version);
      const top = await bare([mcr, "top", "--control-socket", sock, "--count", "1"]);
      assert.equal(top.code, 0, top.stderr);
      assert.match(top.stdout, /^mcr top/);
      relay.kill("SIGTERM");
      const end = await relay.output();
      relay = undefined;
      const err = dec.decode(end.stderr);
      assert.equal(end.code, 0, err);
      assert.doesNotMatch(err, /libmcr|sd_notify failed|NotCapable|permission/i);

      if (unprivileged) {
        const r = await bare([mcr, "check", "--config", rules], { user: unprivileged });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const m = await bare([mcr, "man", "mcr.json"], { user: unprivileged });
        assert.equal(m.code, 0, m.stderr);
        assert.match(m.stdout, /^\.TH MCR/m);
      }

      const un = await install(prefix, "--uninstall");
      assert.equal(un.code, 0, un.stderr);
      const left = await bare(["find", prefix, "-not", "-type", "d"]);
      assert.equal(left.stdout, "", "files left after --uninstall");
    } finally {
      if (relay) {
        relay.kill("SIGKILL");
        await relay.output();
      }
      await Deno.remove(prefix, { recursive: true }).catch(() => {});
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});

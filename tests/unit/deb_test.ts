/**
 * The Debian package (scripts/deb.sh): its metadata and contents as dpkg-deb
 * reads them, and a real `apt-get install ./mcr_VERSION_amd64.deb` — then
 * `mcr --version`, `mcr check`, the system user, remove and purge — in a
 * throwaway copy of this system: an overlay of / in a private mount namespace,
 * entered with chroot, so the installation (user, files, dpkg database) never
 * reaches the real system. Needs root, dpkg-deb, apt-get, unshare and overlayfs;
 * skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import { REPO } from "../../lab/netns.ts";

const FIX = `${REPO}/tests/fixtures/config`;
const dec = new TextDecoder();

function have(cmd: string): boolean {
  return new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
    .outputSync().success;
}

async function run(cmd: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const missing = ["dpkg-deb", "apt-get", "unshare", "chroot"].filter((c) => !have(c));
const skip = Deno.uid() !== 0
  ? "needs root (mount namespace, overlay, chroot)"
  : missing.length
  ? `${missing.join(", ")} not installed`
  : null;
if (skip) console.warn(`Debian package test skipped: ${skip}`);

/** What the install script in the throwaway system prints, as KEY=value lines. */
const IN_CHROOT = `
set -eu
cd /mcr-test
apt-get install -y --no-install-recommends ./"$1" >apt-install.log 2>&1 || { cat apt-install.log; exit 1; }
echo "VERSION=$(mcr --version)"
mcr check --config /mcr-test/valid.json >/dev/null && echo "CHECK_VALID=0"
mcr check --config /mcr-test/invalid.json >/dev/null 2>&1 || echo "CHECK_INVALID=$?"
echo "USER=$(getent passwd mcr)"
echo "ETC=$(stat -c %U:%a /etc/mcr)"
for f in /usr/share/man/man8/mcr.8.gz /usr/share/man/man5/mcr.json.5.gz /lib/systemd/system/mcr.service; do
  test -f "$f" && echo "FILE=$f"
done
apt-get remove -y mcr >apt-remove.log 2>&1 || { cat apt-remove.log; exit 1; }
test -e /usr/bin/mcr || echo "REMOVED=/usr/bin/mcr"
test -e /usr/lib/mcr || echo "REMOVED=/usr/lib/mcr"
apt-get purge -y mcr >apt-purge.log 2>&1 || { cat apt-purge.log; exit 1; }
echo "STATUS=$(dpkg-query -W -f='\${db:Status-Status}' mcr 2>/dev/null || echo not-installed)"
for f in /usr/bin/mcr /usr/lib/mcr /lib/systemd/system/mcr.service /lib/systemd/system/mcr@.service \\
  /usr/lib/sysusers.d/mcr.conf /usr/lib/tmpfiles.d/mcr.conf /usr/share/man/man8/mcr.8.gz \\
  /usr/share/bash-completion/completions/mcr /usr/share/doc/mcr /etc/mcr; do
  test -e "$f" && echo "LEFT=$f"
done
echo "DONE=1"
`;

Deno.test({
  name:
    "deb: dpkg-deb metadata and contents; apt-get install in a throwaway system, mcr --version, mcr check, remove, purge",
  ignore: skip !== null,
  async fn() {
    const { version } = JSON.parse(await Deno.readTextFile(`${REPO}/deno.json`));
    const dir = await Deno.makeTempDir({ prefix: "mcr-deb-test-" });
    const userBefore = (await run(["getent", "passwd", "mcr"])).stdout;
    try {
      // the overlay's upper layer: what the throwaway system sees at /mcr-test
      const upper = `${dir}/upper`;
      const test = `${upper}/mcr-test`;
      await Deno.mkdir(test, { recursive: true });
      await Deno.mkdir(`${dir}/work`);
      await Deno.mkdir(`${dir}/root`);
      const build = await run(["bash", `${REPO}/scripts/deb.sh`], {
        DENO: Deno.execPath(),
        MCR_DEB_OUT: test,
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        NO_COLOR: "1",
      });
      assert.equal(build.code, 0, build.stdout + build.stderr);
      const name = `mcr_${version}_amd64.deb`;
      const deb = `${test}/${name}`;

      const field = async (f: string) => (await run(["dpkg-deb", "--field", deb, f])).stdout.trim();
      assert.equal(await field("Package"), "mcr");
      assert.equal(await field("Version"), version);
      assert.equal(await field("Architecture"), "amd64");
      assert.match(await field("Depends"), /\blibc6\b/);
      const contents = (await run(["dpkg-deb", "--contents", deb])).stdout.trim().split("\n");
      const paths = contents.map((l) => l.split(/\s+/).pop()!.replace(/^\./, ""));
      for (
        const p of [
          "/usr/bin/mcr",
          "/usr/lib/mcr/deno",
          "/usr/lib/mcr/libmcr.so",
          "/usr/lib/mcr/app/cli.ts",
          "/lib/systemd/system/mcr.service",
          "/lib/systemd/system/mcr@.service",
          "/usr/lib/sysusers.d/mcr.conf",
          "/usr/lib/tmpfiles.d/mcr.conf",
          "/usr/share/man/man8/mcr.8.gz",
          "/usr/share/man/man5/mcr.json.5.gz",
          "/usr/share/bash-completion/completions/mcr",
          "/usr/share/zsh/vendor-completions/_mcr",
          "/usr/share/fish/vendor_completions.d/mcr.fish",
          "/usr/share/doc/mcr/copyright",
          "/usr/share/doc/mcr/examples/keepalived/keepalived.conf",
          "/usr/share/doc/mcr/examples/keepalived/mcr-keepalived",
          "/usr/share/doc/mcr/examples/keepalived/mcr-keepalived.service.conf",
          "/usr/share/doc/mcr/examples/prometheus/mcr-alerts.yml",
          "/usr/share/doc/mcr/examples/grafana/mcr-dashboard.json",
        ]
      ) assert.ok(paths.includes(p), `the package lacks ${p}`);
      assert.ok(contents.every((l) => l.split(/\s+/)[1] === "root/root"), "every file root's");
      const unit = await run([
        "sh",
        "-c",
        `dpkg-deb --fsys-tarfile '${deb}' | tar -xO ./lib/systemd/system/mcr.service`,
      ]);
      assert.match(unit.stdout, /^ExecStart=\/usr\/bin\/mcr run /m);
      assert.doesNotMatch(unit.stdout, /\/usr\/local\//);
      const postinst = await run([
        "sh",
        "-c",
        `dpkg-deb --ctrl-tarfile '${deb}' | tar -xO ./postinst`,
      ]);
      assert.match(postinst.stdout, /systemd-sysusers mcr\.conf/);

      await Deno.copyFile(`${FIX}/valid-full.json`, `${test}/valid.json`);
      await Deno.copyFile(`${FIX}/invalid-port-range.json`, `${test}/invalid.json`);
      await Deno.writeTextFile(`${test}/t.sh`, IN_CHROOT);
      const root = `${dir}/root`;
      const r = await run([
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        `mount -t overlay overlay -o lowerdir=/,upperdir=${upper},workdir=${dir}/work ${root} &&
         mount -t proc proc ${root}/proc && mount --rbind /dev ${root}/dev &&
         exec chroot ${root} /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
           DEBIAN_FRONTEND=noninteractive HOME=/root bash /mcr-test/t.sh ${name}`,
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const out = r.stdout.split("\n");
      const values = (k: string) =>
        out.filter((l) => l.startsWith(`${k}=`)).map((l) => l.slice(k.length + 1));
      assert.deepEqual(values("DONE"), ["1"], r.stdout + r.stderr);
      assert.deepEqual(values("VERSION"), [`mcr ${version}`]);
      assert.deepEqual(values("CHECK_VALID"), ["0"]);
      assert.deepEqual(values("CHECK_INVALID"), ["1"]);
      const user = /^mcr:x:(\d+):\d+:[^:]*:[^:]*:(\S+)$/.exec(values("USER")[0] ?? "");
      assert.ok(user, `no system user mcr: ${values("USER")}`);
      assert.ok(Number(user[1]) < 1000, "a system user");
      assert.equal(user[2], "/usr/sbin/nologin");
      assert.deepEqual(values("ETC"), ["root:755"]);
      assert.equal(values("FILE").length, 3, r.stdout);
      assert.deepEqual(values("REMOVED"), ["/usr/bin/mcr", "/usr/lib/mcr"]);
      assert.ok(["not-installed", ""].includes(values("STATUS")[0]), `dpkg: ${values("STATUS")}`);
      assert.deepEqual(values("LEFT"), [], "files left after purge");

      // and the real system saw none of it
      assert.equal((await run(["getent", "passwd", "mcr"])).stdout, userBefore);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

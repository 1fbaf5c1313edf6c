/**
 * A control client cannot make the daemon read what it should not, block it,
 * grow it, or leak file content: `check`/`reload` read only the configured
 * file and `*.json` files beside it, only regular files, and their errors
 * (and the log) quote no content; `log-level` overrides are bounded; `ctl`
 * prints daemon strings with terminal controls escaped. A real daemon
 * (`cli.ts`, no rules, no privileges) over its real socket.
 */
import assert from "node:assert/strict";
import { startDaemon } from "../../lab/daemon.ts";
import { MAX_LOG_CATEGORIES } from "../../src/common/log.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const SECRET = "s3cr3t-t0ken";

/** Resolves with `p`'s outcome, or rejects when it takes longer than `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what}: no reply within ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(t));
}

Deno.test({
  name: "control socket: check/reload read only the configured file and *.json beside it",
  ...opts,
  async fn() {
    const d = await startDaemon({ rules: [] });
    let stderr = "";
    try {
      // Outside the configuration directory: refused before the file system is asked,
      // so the reply is the same whether the file exists or not.
      const refusal = async (cmd: string, path: string) => {
        const r = await within(d.request(cmd, { path }), 20_000, `${cmd} ${path}`);
        assert.equal(r.ok, false, `${cmd} ${path}: ${JSON.stringify(r)}`);
        if (r.ok) throw new Error("unreachable");
        assert.equal(r.error.code, "forbidden", `${cmd} ${path}: ${r.error.message}`);
        return r.error.message.replaceAll(path, "PATH");
      };
      const existing = await refusal("check", "/etc/hostname");
      assert.equal(await refusal("check", "/nonexistent-mcr-dir/x.json"), existing);
      assert.equal(await refusal("reload", "/etc/passwd"), existing);
      await refusal("check", "/dev/zero");
      await refusal("check", `${d.dir}/../outside.json`);
      const rel = await d.request("check", { path: "relative.json" });
      assert.ok(!rel.ok && rel.error.code === "bad_args", JSON.stringify(rel));
      // In the directory but not a .json file (the daemon's ready file).
      await refusal("check", `${d.dir}/ready`);
      // A .json symlink in the directory that leads out of it.
      await Deno.symlink("/etc/passwd", `${d.dir}/link.json`);
      await Deno.symlink("/dev/zero", `${d.dir}/zero.json`);
      await refusal("check", `${d.dir}/link.json`);
      await refusal("reload", `${d.dir}/zero.json`);

      // A FIFO in the directory: refused at once, and nothing else waits behind it.
      const fifo = `${d.dir}/fifo.json`;
      assert.equal((await new Deno.Command("mkfifo", { args: [fifo] }).output()).code, 0);
      const rl = await within(d.request("reload", { path: fifo }), 20_000, "reload FIFO");
      assert.ok(!rl.ok && rl.error.code === "invalid_config", JSON.stringify(rl));
      assert.match(rl.error.message, /not a regular file \(a FIFO\)/);
      const rm = await within(d.request("remove", { rule: "nope" }), 20_000, "remove after FIFO");
      assert.ok(!rm.ok && rm.error.code === "not_found", JSON.stringify(rm));
      const ck = await within(d.ok<{ valid: boolean }>("check", { path: fifo }), 20_000, "check");
      assert.equal(ck.valid, false);

      // Files beside the configuration are read, but no error quotes their content.
      await Deno.writeTextFile(`${d.dir}/secret.json`, `{"rules": [], "ttl": "${SECRET}"}`);
      await Deno.writeTextFile(`${d.dir}/shadow.json`, `root:${SECRET}:19000:0:99999:7:::\n`);
      for (const name of ["secret.json", "shadow.json"]) {
        const path = `${d.dir}/${name}`;
        const c = await d.ok<{ valid: boolean; message: string; issues: unknown[] }>("check", {
          path,
        });
        assert.equal(c.valid, false);
        const r = await d.request("reload", { path });
        assert.ok(!r.ok && r.error.code === "invalid_config", JSON.stringify(r));
        for (const text of [JSON.stringify(c), JSON.stringify(r)]) {
          assert.ok(!text.includes(SECRET), text);
          assert.ok(!text.includes("root"), text);
          assert.ok(!text.includes("'r'"), text);
        }
      }
      // The daemon's own file still reloads.
      await d.ok("reload");
    } finally {
      stderr = (await d.stop()).stderr;
    }
    // The log says the reloads were refused, without the content either.
    assert.match(stderr, /reload refused/);
    assert.ok(!stderr.includes(SECRET), stderr);
    assert.ok(!stderr.includes("root:"), stderr);
  },
});

Deno.test({
  name: "control socket: log-level overrides are bounded and so are the replies",
  ...opts,
  async fn() {
    const d = await startDaemon({ rules: [] });
    try {
      for (let i = 0; i < MAX_LOG_CATEGORIES; i++) {
        await d.ok("log-level", { action: "set", level: "debug", category: `c${i}` });
      }
      const over = await d.request("log-level", { action: "set", level: "debug", category: "one" });
      assert.ok(!over.ok && over.error.code === "bad_args", JSON.stringify(over));
      assert.match(over.error.message, new RegExp(`${MAX_LOG_CATEGORIES} category overrides`));
      // Changing an existing override, or removing one, still works at the cap.
      await d.ok("log-level", { action: "set", level: "error", category: "c0" });
      await d.ok("log-level", { action: "set", level: "default", category: "c1" });
      await d.ok("log-level", { action: "set", level: "debug", category: "one" });
      const got = await d.ok<{ categories: Record<string, string> }>("log-level");
      assert.equal(Object.keys(got.categories).length, MAX_LOG_CATEGORIES);
      // Category names are short words, not arbitrary text.
      for (const category of ["x".repeat(200), "a\u009bb", "a b", "a/b"]) {
        const r = await d.request("log-level", { action: "set", level: "debug", category });
        assert.ok(!r.ok && r.error.code === "bad_args", `${category}: ${JSON.stringify(r)}`);
      }
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "ctl: daemon strings are printed with terminal controls escaped (text and --json)",
  ...opts,
  async fn() {
    const d = await startDaemon({ rules: [] });
    try {
      const path = `${d.dir}/x\u009b2J\u202e.json`; // does not exist: the error quotes the path
      const text = await d.ctl("check", path);
      assert.equal(text.code, 1, text.stderr);
      const json = await d.ctl("--json", "check", path);
      assert.equal(json.code, 1, json.stderr);
      for (const out of [text.stdout, text.stderr, json.stdout, json.stderr]) {
        assert.ok(!/[\u0080-\u009f\u202e]/.test(out), out);
      }
      assert.match(text.stdout + text.stderr, /x\\u009b2J\\u202e\.json/);
      // --json escapes as JSON does: the value is unchanged.
      assert.ok(JSON.stringify(JSON.parse(json.stdout)).includes("x\u009b2J\u202e.json"));
    } finally {
      await d.stop();
    }
  },
});

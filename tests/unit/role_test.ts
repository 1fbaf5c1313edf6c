/**
 * The relay's role through a real daemon (no rules: no privileges needed):
 * `role` in the file, `ctl role` (JSON and text), what a reload does to a
 * role set at run time (kept unless the file's `role` was edited), the
 * read-only socket (may look, may not change), bad arguments, the role in
 * `stats`, the events `Relay.role.set` emits, and `ctl role --stdin` (one
 * connection following roles line by line, as keepalived's notify script
 * runs it).
 */
import assert from "node:assert/strict";
import { startDaemon } from "../../lab/daemon.ts";
import { Relay } from "../../src/relay/relay.ts";
import type { RelayEvent } from "../../src/relay/events.ts";
import { parseConfig } from "../../src/config/mod.ts";
import type { RoleStats } from "../../src/relay/role.ts";
import { followRoles, parseRoleLine, RETRY_MS } from "../../src/client/role_follow.ts";
import { roleDiffLine } from "../../src/client/ctl.ts";
import { REPO } from "../../lab/netns.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test({
  name: "role: from the file, ctl role sets it, a reload keeps it unless the file's role changed",
  ...opts,
  async fn() {
    const d = await startDaemon({ role: "standby", rules: [] });
    try {
      const role = () => d.ok<RoleStats>("role");
      assert.deepEqual(
        { ...(await role()), since: "" },
        { role: "standby", changes: 0, set_by: "config", since: "" },
      );
      // the file's role edited: a reload applies it
      await Deno.writeTextFile(d.configPath, JSON.stringify({ role: "active", rules: [] }));
      await d.ok("reload");
      assert.equal((await role()).role, "active");
      assert.equal((await role()).set_by, "config");
      // set at run time (keepalived's notify script), then a reload of an unchanged file
      const set = await d.ok<RoleStats & { previous: string; changed: boolean }>("role", {
        role: "standby",
        source: "keepalived",
      });
      assert.equal(set.previous, "active");
      assert.equal(set.changed, true);
      await d.ok("reload");
      const kept = await role();
      assert.equal(kept.role, "standby", "a reload keeps the role set at run time");
      assert.equal(kept.set_by, "keepalived");
      assert.equal(kept.changes, 2);
      // setting the role in force changes nothing
      const same = await d.ok<{ changed: boolean; changes: number }>("role", { role: "standby" });
      assert.equal(same.changed, false);
      assert.equal(same.changes, 2);
      // in stats, for ctl stats, top and the metrics
      const stats = await d.ok<{ role: RoleStats }>("stats");
      assert.equal(stats.role.role, "standby");
      // bad arguments
      const bad = await d.request("role", { role: "master" });
      assert.equal(bad.ok, false);
      assert.equal(!bad.ok && bad.error.code, "bad_args");
      const long = await d.request("role", { role: "active", source: "x".repeat(65) });
      assert.equal(!long.ok && long.error.code, "bad_args");
      // the command line
      const show = await d.ctl("role");
      assert.equal(show.code, 0, show.stderr);
      assert.match(show.stdout, /^role standby; since \S+, set by keepalived, 2 changes/);
      const act = await d.ctl("role", "active", "--source", "test");
      assert.equal(act.code, 0, act.stderr);
      assert.match(act.stdout, /^role active \(was standby\)/);
      const json = await d.ctl("--json", "role");
      assert.equal(JSON.parse(json.stdout).role, "active");
      const usage = await d.ctl("role", "master");
      assert.equal(usage.code, 2, "a role that does not exist is a usage error");
      const out = await d.stop();
      assert.equal(out.code, 0, out.stderr);
    } finally {
      await d.stop().catch(() => {});
    }
  },
});

Deno.test({
  name: "role: the read-only socket shows the role and refuses to change it",
  ...opts,
  async fn() {
    const d = await startDaemon({ rules: [] }, { readonlySocket: true });
    try {
      const status = `${d.dir}/status.sock`;
      const { ControlClient } = await import("../../src/client/client.ts");
      await using c = await ControlClient.connect(status);
      const look = await c.request<RoleStats>("role");
      assert.equal(look.ok && look.result.role, "active");
      const change = await c.request("role", { role: "standby" });
      assert.equal(!change.ok && change.error.code, "forbidden");
      assert.equal((await d.ok<RoleStats>("role")).role, "active", "unchanged");
    } finally {
      await d.stop().catch(() => {});
    }
  },
});

Deno.test("role: Relay.role.set emits one event per change and shows in stats", () => {
  const relay = new Relay(parseConfig({ rules: [] }));
  const seen: RelayEvent[] = [];
  relay.on((e) => seen.push(e));
  assert.equal(relay.role.current, "active");
  relay.role.set("standby", "keepalived");
  relay.role.set("standby", "keepalived"); // no change, no event
  relay.role.set("active");
  assert.deepEqual(seen, [
    { type: "role", role: "standby", previous: "active", set_by: "keepalived" },
    { type: "role", role: "active", previous: "standby", set_by: "api" },
  ]);
  const s = relay.stats().role!;
  assert.equal(s.role, "active");
  assert.equal(s.changes, 2);
  assert.equal(s.set_by, "api");
});

Deno.test({
  name: "role --stdin: one connection follows the roles of its input, in order, to the end",
  ...opts,
  async fn() {
    const d = await startDaemon({ role: "standby", rules: [] });
    try {
      const p = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          `${REPO}/cli.ts`,
          "ctl",
          "--control-socket",
          d.socket,
          "role",
          "--stdin",
          "--source",
          "test",
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).spawn();
      const w = p.stdin.getWriter();
      const enc = new TextEncoder();
      await w.write(enc.encode("active keepalived MASTER\n"));
      const t0 = Date.now();
      while ((await d.ok<RoleStats>("role")).role !== "active") {
        assert.ok(Date.now() - t0 < 30_000, "the role follows its input");
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal((await d.ok<RoleStats>("role")).set_by, "keepalived MASTER");
      await w.write(enc.encode("bogus\n\nstandby\n"));
      await w.close();
      const out = await p.output();
      const text = new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const lines = text.trim().split("\n");
      assert.equal(lines.length, 3, text);
      assert.match(
        lines[0],
        /^\d\d:\d\d:\d\d\.\d{3} role active \(was standby\), set by keepalived MASTER \(\d+ ms\)$/,
      );
      assert.equal(lines[1], 'mcr ctl role: "bogus" is not a role (active or standby)');
      assert.match(lines[2], /^\S+ role standby \(was active\), set by test \(\d+ ms\)$/);
      const r = await d.ok<RoleStats>("role");
      assert.equal(r.role, "standby");
      assert.equal(r.changes, 2);
    } finally {
      await d.stop().catch(() => {});
    }
  },
});

Deno.test("role --stdin: a relay that cannot be reached is tried again, then reported", async () => {
  const logged: string[] = [];
  // the refusal of "bogus" is printed after the outcome of the line before it
  const input = ReadableStream.from([new TextEncoder().encode("active\nbogus\n")]);
  const code = await followRoles("/nonexistent/mcr.sock", {
    input,
    source: "test",
    timeoutMs: 1000,
    retryMs: 3 * RETRY_MS,
    log: (l) => logged.push(l),
  });
  assert.equal(code, 1);
  assert.equal(logged.length, 2, logged.join("\n"));
  assert.match(logged[0], /^mcr ctl role: could not set active: cannot connect/);
  assert.equal(logged[1], 'mcr ctl role: "bogus" is not a role (active or standby)');
  assert.deepEqual(parseRoleLine("  standby  keepalived BACKUP ", "x"), {
    role: "standby",
    source: "keepalived BACKUP",
  });
  assert.deepEqual(parseRoleLine("active", "x"), { role: "active", source: "x" });
  assert.equal(parseRoleLine("   ", "x"), null);
});

Deno.test("role: diff and check say what a reload would do to the role", () => {
  const relay = new Relay(parseConfig({ rules: [] }));
  assert.equal(relay.diff(parseConfig({ rules: [] })).role, undefined, "same role: nothing to say");
  // the file was edited to standby: a reload applies it
  assert.deepEqual(relay.diff(parseConfig({ role: "standby", rules: [] })).role, {
    in_force: "active",
    file: "standby",
    applies: true,
  });
  // keepalived made it a standby; the unedited file (active) does not change that at reload
  relay.role.set("standby", "keepalived");
  const d = relay.diff(parseConfig({ rules: [] })).role!;
  assert.deepEqual(d, { in_force: "standby", file: "active", applies: false });
  assert.match(roleDiffLine(d), /file says active, standby in force: kept at reload/);
});

/**
 * The control socket of a real daemon (`cli.ts` with no rules, so it needs
 * no privileges and no network): garbage, truncated, oversized, unknown and
 * malformed requests each get a structured error and leave the daemon
 * serving; 50 concurrent clients are all answered; `ctl` exit codes and
 * JSON; the socket directory and stale-socket rules.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { startDaemon } from "../../lab/daemon.ts";
import { ControlClient } from "../../src/client/client.ts";
import { MAX_REQUEST_BYTES } from "../../src/control/protocol.ts";
import { REPO } from "../../lab/netns.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Send raw bytes on a fresh connection, half-close, read every reply line. */
async function raw(socket: string, data: Uint8Array | string): Promise<Record<string, unknown>[]> {
  const c = await Deno.connect({ transport: "unix", path: socket });
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  let off = 0;
  while (off < bytes.length) off += await c.write(bytes.subarray(off));
  await c.closeWrite();
  const text = await new Response(c.readable).text();
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

const ErrorReply = z.object({
  v: z.literal(1),
  id: z.union([z.string(), z.number(), z.null()]),
  ok: z.literal(false),
  error: z.object({ code: z.string(), message: z.string().min(1) }),
});

Deno.test({
  name: "control socket: bad requests get structured errors and the daemon keeps serving",
  ...opts,
  async fn() {
    const d = await startDaemon({ rules: [] });
    try {
      const codeOf = (r: Record<string, unknown>) => ErrorReply.parse(r).error.code;
      // Garbage, a wrong shape, an unknown command, a wrong version: one connection.
      const replies = await raw(
        d.socket,
        'garbage\n[1,2]\n{"v":1,"id":2}\n{"v":1,"id":3,"cmd":"frobnicate"}\n' +
          '{"v":7,"id":4,"cmd":"ping"}\n{"v":1,"id":5,"cmd":"add","args":{}}\n' +
          '{"v":1,"id":6,"cmd":"add","args":{"rule":{"input":{"interface":"eth0","group":"127.1.1.1","port":5}}}}\n' +
          '{"v":1,"id":7,"cmd":"remove","args":{"rule":"nope"}}\n' +
          '{"v":1,"id":8,"cmd":"ping"}\n',
      );
      assert.deepEqual(replies.map((r) => r.ok ? "ok" : codeOf(r)), [
        "bad_request",
        "bad_request",
        "bad_request",
        "unknown_command",
        "unsupported_version",
        "bad_args",
        "invalid_rule",
        "not_found",
        "ok",
      ]);
      assert.deepEqual(replies.map((r) => r.id), [null, null, 2, 3, 4, 5, 6, 7, 8]);
      const invalid = replies[6].error as { issues: { field: string }[] };
      assert.ok(invalid.issues.some((i) => i.field === "input.group"), JSON.stringify(invalid));
      assert.ok(invalid.issues.some((i) => i.field === "outputs"), JSON.stringify(invalid));

      // Truncated: the stream ends in the middle of a request.
      const trunc = await raw(d.socket, '{"v":1,"id":9,"cmd":"li');
      assert.equal(trunc.length, 1);
      assert.equal(codeOf(trunc[0]), "bad_request");

      // Oversized: refused, discarded up to its newline; the connection still works.
      const big = `{"v":1,"id":10,"cmd":"ping","args":{"pad":"${
        "x".repeat(MAX_REQUEST_BYTES)
      }"}}\n`;
      const over = await raw(d.socket, big + '{"v":1,"id":11,"cmd":"ping"}\n');
      assert.equal(over.length, 2);
      assert.equal(codeOf(over[0]), "too_large");
      assert.equal(over[1].ok, true);
      assert.equal(over[1].id, 11);

      // A client that disconnects without reading does not disturb the daemon.
      const gone = await Deno.connect({ transport: "unix", path: d.socket });
      await gone.write(enc.encode('{"v":1,"id":1,"cmd":"stats"}\n{"v":1,"id":2,"cmd'));
      gone.close();

      // Still serving.
      const pong = await d.ok<{ pong: boolean }>("ping");
      assert.equal(pong.pong, true);
    } finally {
      const r = await d.stop();
      assert.equal(r.code, 0, r.stderr);
    }
  },
});

Deno.test({
  name: "control socket: 50 concurrent clients are all answered, replies matched by id",
  ...opts,
  async fn() {
    const d = await startDaemon({ rules: [] });
    try {
      const clients = await Promise.all(
        Array.from({ length: 50 }, () => ControlClient.connect(d.socket)),
      );
      const replies = await Promise.all(clients.flatMap((c) => [
        c.request("ping"),
        c.request("list"),
        c.request("stats"),
        c.request("version"),
      ]));
      assert.equal(replies.length, 200);
      assert.ok(replies.every((r) => r.ok), JSON.stringify(replies.find((r) => !r.ok)));
      await Promise.all(clients.map((c) => c.close()));
      // The real client, several processes at once.
      const runs = await Promise.all(Array.from({ length: 10 }, () => d.ctl("--json", "ping")));
      assert.ok(runs.every((r) => r.code === 0), runs.map((r) => r.stderr).join("\n"));
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "ctl: JSON output, exit codes 0/1/2/3, check and reload of a bad file, log levels",
  ...opts,
  async fn() {
    const d = await startDaemon({ rules: [] });
    try {
      const v = await d.ctl("--json", "version");
      assert.equal(v.code, 0, v.stderr);
      z.object({
        version: z.string(),
        protocol: z.literal(1),
        deno: z.string(),
        pid: z.number().int(),
        config: z.string(),
        uptime_s: z.number(),
      }).parse(JSON.parse(v.stdout));

      const human = await d.ctl("list");
      assert.equal(human.code, 0);
      assert.match(human.stdout, /no rules/);

      const missing = await d.ctl("remove", "nope");
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /not_found/);

      const badAdd = await d.ctl(
        "--json",
        "add",
        "--input-interface",
        "eth0",
        "--input-group",
        "239.1.1.1",
        "--input-port",
        "70000",
        "--outputs",
        "239.2.2.2:5000:eth1",
      );
      assert.equal(badAdd.code, 1);
      const e = JSON.parse(badAdd.stdout);
      assert.equal(e.error.code, "invalid_rule");
      assert.ok(e.error.issues.some((i: { field: string }) => i.field === "input.port"));

      const usage = await d.ctl("add", "--input-group", "239.1.1.1");
      assert.equal(usage.code, 2);
      const unknown = await d.ctl("frobnicate");
      assert.equal(unknown.code, 2);

      const away = await d.ctl("--control-socket", `${d.dir}/nobody.sock`, "ping");
      assert.equal(away.code, 3);
      assert.match(away.stderr, /cannot connect/);

      // check: a bad file is reported (exit 1), nothing applied; a good one shows the diff.
      const bad = `${d.dir}/bad.json`;
      await Deno.writeTextFile(bad, '{"rules": [{"input": {}}]}');
      const chk = await d.ctl("--json", "check", bad);
      assert.equal(chk.code, 1);
      assert.equal(JSON.parse(chk.stdout).valid, false);
      const good = await d.ctl("check", d.configPath);
      assert.equal(good.code, 0, good.stderr);
      assert.match(good.stdout, /valid \(0 rules\)/);

      // reload of a broken file: refused, the daemon keeps its rules and keeps serving.
      await Deno.writeTextFile(d.configPath, "{ not json");
      const rl = await d.ctl("--json", "reload");
      assert.equal(rl.code, 1);
      assert.equal(JSON.parse(rl.stdout).error.code, "invalid_config");
      assert.equal((await d.ctl("ping")).code, 0);

      // log levels, live.
      const set = await d.ctl("--json", "log-level", "set", "debug", "supervisor");
      assert.equal(set.code, 0, set.stderr);
      assert.deepEqual(JSON.parse(set.stdout), {
        global: "warning",
        categories: { supervisor: "debug" },
      });
      const g = await d.ctl("--json", "log-level", "set", "error");
      assert.equal(JSON.parse(g.stdout).global, "error");
      const badLevel = await d.ctl("log-level", "set", "loud");
      assert.equal(badLevel.code, 1);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "control socket: refuses a group/world-writable directory; cleans a stale socket; one daemon per socket",
  ...opts,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mcr-ctl-unsafe-" });
    try {
      await Deno.chmod(dir, 0o770);
      await Deno.writeTextFile(`${dir}/r.json`, '{"rules":[]}');
      // the relay asked to put its control socket in `dir`
      const start = () =>
        new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            `${REPO}/cli.ts`,
            "--config",
            `${dir}/r.json`,
            "--control-socket",
            `${dir}/c.sock`,
          ],
          stdout: "piped",
          stderr: "piped",
        }).output();
      const out = await start();
      assert.equal(out.code, 3);
      assert.match(dec.decode(out.stderr), /group-writable/);
      assert.match(dec.decode(out.stderr), /chmod 750/);
      // a shared (sticky) directory such as /tmp: the advice is another path, never chmod
      await Deno.chmod(dir, 0o1777);
      const shared = await start();
      assert.equal(shared.code, 3);
      const msg = dec.decode(shared.stderr);
      assert.match(msg, /world-writable/);
      assert.doesNotMatch(msg, /chmod/);
      assert.match(msg, new RegExp(`--control-socket ${dir}/mcr/control\\.sock`));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }

    // A stale socket (its owner died) is replaced.
    const stale = await Deno.makeTempDir({ prefix: "mcr-ctl-stale-" });
    await Deno.chmod(stale, 0o750);
    const py = await new Deno.Command("python3", {
      args: ["-c", `import socket; s=socket.socket(socket.AF_UNIX); s.bind("${stale}/c.sock")`],
    }).output();
    assert.equal(py.code, 0);
    assert.ok((await Deno.lstat(`${stale}/c.sock`)).isSocket);
    await Deno.writeTextFile(`${stale}/r.json`, '{"rules":[]}');
    const proc = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${REPO}/cli.ts`,
        "--config",
        `${stale}/r.json`,
        "--control-socket",
        `${stale}/c.sock`,
        "--ready-file",
        `${stale}/ready`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const err = new Response(proc.stderr).text();
    const outp = new Response(proc.stdout).text();
    try {
      for (let i = 0; i < 400; i++) {
        try {
          await Deno.stat(`${stale}/ready`);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      await using c = await ControlClient.connect(`${stale}/c.sock`);
      assert.equal((await c.request("ping")).ok, true);
      const mode = (await Deno.stat(`${stale}/c.sock`)).mode! & 0o777;
      assert.equal(mode, 0o660);

      // A second daemon on the same, live, socket refuses to start.
      const second = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          `${REPO}/cli.ts`,
          "--config",
          `${stale}/r.json`,
          "--control-socket",
          `${stale}/c.sock`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(second.code, 3);
      assert.match(dec.decode(second.stderr), /already listening/);
    } finally {
      proc.kill("SIGTERM");
      await proc.status;
      await err;
      await outp;
      await Deno.remove(stale, { recursive: true });
    }
  },
});

Deno.test({
  name: "read-only control socket: the group may look (0660), only the owner may change (0600)",
  ...opts,
  async fn() {
    const d = await startDaemon({ rules: [] }, { readonlySocket: true });
    const status = `${d.dir}/status.sock`;
    try {
      assert.equal((await Deno.stat(d.socket)).mode! & 0o777, 0o600, "control socket: owner only");
      assert.equal((await Deno.stat(status)).mode! & 0o777, 0o660, "read-only socket: the group");
      const replies = await raw(
        status,
        '{"v":1,"id":1,"cmd":"stats"}\n{"v":1,"id":2,"cmd":"list"}\n' +
          '{"v":1,"id":3,"cmd":"log-level","args":{"action":"get"}}\n' +
          '{"v":1,"id":4,"cmd":"add","args":{"rule":{}}}\n' +
          '{"v":1,"id":5,"cmd":"remove","args":{"rule":"x"}}\n' +
          '{"v":1,"id":6,"cmd":"reload"}\n' +
          '{"v":1,"id":7,"cmd":"log-level","args":{"action":"set","level":"debug"}}\n' +
          '{"v":1,"id":8,"cmd":"log-level","args":{"level":"debug"}}\n' +
          '{"v":1,"id":9,"cmd":"add-output","args":{"rule":"x","output":{}}}\n',
      );
      const codes = replies.map((r) =>
        r.ok ? "ok" : (r.error as { code: string; message: string }).code
      );
      assert.deepEqual(codes, [
        "ok",
        "ok",
        "ok",
        "forbidden",
        "forbidden",
        "forbidden",
        "forbidden",
        "forbidden",
        "forbidden",
      ]);
      assert.match(String((replies[3].error as { message: string }).message), /read-only/);
      // the control socket still changes things
      const levels = await raw(
        d.socket,
        '{"v":1,"id":1,"cmd":"log-level","args":{"action":"set","level":"info"}}\n',
      );
      assert.equal(levels[0].ok, true, JSON.stringify(levels[0]));
      const out = await d.stop();
      assert.equal(out.code, 0, out.stderr);
    } finally {
      await d.stop().catch(() => {});
    }
  },
});

Deno.test({
  name: "add: an interface that does not exist is a warning that lists the existing ones",
  ...opts,
  async fn() {
    const d = await startDaemon({ rules: [] });
    try {
      const [r] = await raw(
        d.socket,
        JSON.stringify({
          v: 1,
          id: 1,
          cmd: "add",
          args: {
            rule: {
              name: "typo",
              input: { interface: "etth0", group: "239.1.1.1", port: 5000 },
              outputs: [{ interface: "lo", group: "239.2.1.1", port: 5000 }],
            },
          },
        }) + "\n",
      );
      assert.equal(r.ok, true, JSON.stringify(r));
      const result = r.result as { warnings?: string[]; persisted: boolean; note?: string };
      assert.equal(result.warnings?.length, 1, "lo exists: one warning, for etth0");
      assert.match(result.warnings![0], /^interface etth0 does not exist \(yet\)/);
      assert.match(result.warnings![0], /Existing interfaces: .*\blo\b/);
      assert.equal(result.persisted, false);
      assert.match(result.note!, /next reload or restart undoes it/);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "ctl add, add-output, remove-output, diff, remove: changes saved in the runtime rules file",
  ...opts,
  async fn() {
    const d = await startDaemon({ runtime_rules: "runtime.json", rules: [] });
    try {
      const ok = async (...args: string[]) => {
        const r = await d.ctl(...args);
        assert.equal(r.code, 0, `ctl ${args.join(" ")}: ${r.stderr}`);
        return r.stdout;
      };
      let out = await ok(
        ...["add", "--name", "feed", "--input-interface", "lo", "--input-group", "239.1.1.1"],
        ...["--input-port", "5000", "--outputs", "239.2.2.2:6000:lo"],
      );
      assert.match(out, new RegExp(`saved in ${d.dir}/runtime\\.json`));
      out = await ok("add-output", "feed", "239.3.3.3:6000:lo:8");
      assert.match(out, /feed: 2 outputs \(lo 239\.2\.2\.2:6000, lo 239\.3\.3\.3:6000\)/);
      const saved = () =>
        Deno.readTextFile(`${d.dir}/runtime.json`).then((t) =>
          JSON.parse(t.replace(/^\/\/.*$/gm, "")) as {
            rules: { outputs: { group: string; ttl?: unknown }[] }[];
          }
        );
      assert.deepEqual((await saved()).rules[0].outputs.map((o) => [o.group, o.ttl]), [
        ["239.2.2.2", undefined],
        ["239.3.3.3", 8],
      ]);
      out = await ok("remove-output", "feed", "239.2.2.2:6000:lo");
      assert.match(out, /feed: 1 outputs \(lo 239\.3\.3\.3:6000\)/);
      assert.deepEqual((await saved()).rules[0].outputs.map((o) => o.group), ["239.3.3.3"]);
      // the file and the running rules agree: a reload would change nothing
      out = await ok("diff");
      assert.match(out, /added\s+-\n\s+removed\s+-\n\s+changed\s+-\n\s+unchanged\s+feed/);
      const none = await d.ctl("remove-output", "feed", "239.9.9.9:6000:lo");
      assert.equal(none.code, 1);
      assert.match(none.stderr, /no output 239\.9\.9\.9:6000 on lo \[not_found\]/);
      const last = await d.ctl("remove-output", "feed", "239.3.3.3:6000:lo");
      assert.equal(last.code, 1, "the last output cannot be removed");
      await ok("remove", "feed");
      assert.deepEqual((await saved()).rules, []);
      const usage = await d.ctl("add-output", "feed");
      assert.equal(usage.code, 2, usage.stderr);
    } finally {
      await d.stop();
    }
  },
});

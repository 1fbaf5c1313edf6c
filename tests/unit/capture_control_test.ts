/**
 * The `capture` command over a real daemon's control socket, without
 * traffic (no privileges needed: the rule's input interface does not exist,
 * so the rule waits for it, `pending`, and nothing is captured): the live
 * stream's framing (a `capture` record, `progress` at least every second, an
 * `end` record, an empty last part), the argument checks (`--input` other
 * than 0, a count out of range, no such rule), one capture per rule
 * (`busy`), a client that goes away (its capture stops: a new one is
 * accepted), and the read-only socket refusing it. The frames themselves:
 * tests/netns/capture_test.ts.
 */
import assert from "node:assert/strict";
import { startDaemon } from "../../lab/daemon.ts";
import { waitForFile } from "../../lab/netns.ts";
import { ControlClient, ControlRefusedError } from "../../src/client/client.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

const RULES = {
  rules: [{
    name: "cam1",
    input: { interface: "mcrcap-none0", group: "239.1.1.1", port: 5001 },
    outputs: [{ interface: "mcrcap-none1", group: "239.10.1.1", port: 6001 }],
  }],
};

type Rec = { type: string; [k: string]: unknown };

/** Every record of a capture stream, and how many parts brought them. */
async function records(c: ControlClient, args: Record<string, unknown>) {
  const all: Rec[] = [];
  let parts = 0;
  for await (const rs of c.stream<Rec>("capture", args)) {
    parts++;
    all.push(...rs);
  }
  return { all, parts };
}

Deno.test({
  name:
    "capture over the control socket: live stream records, argument checks, one per rule, a client that goes away stops it, refused on the read-only socket",
  ...opts,
  async fn() {
    // the rule waits for its interface: no ready file
    const d = await startDaemon(RULES, { readonlySocket: true, waitReady: false });
    try {
      await waitForFile(d.socket, 20_000, "the control socket");
      await using c = await ControlClient.connect(d.socket);
      // the socket listens before the first table is in force: on a busy machine the rule may
      // not be there yet (refused as not in force) — poll, generously
      let got: Awaited<ReturnType<typeof records>> | undefined;
      for (const end = Date.now() + 20_000; !got;) {
        try {
          got = await records(c, { rule: "cam1", seconds: 2 });
        } catch (e) {
          const early = e instanceof ControlRefusedError && /not in force/.test(e.message);
          if (!early || Date.now() > end) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      const { all, parts } = got;
      assert.equal(all[0].type, "capture");
      assert.equal(all[0].rule, "cam1");
      assert.equal(all[0].interface, "mcrcap-none0");
      assert.equal(all[0].linktype, 1);
      assert.equal(all[0].count, 1000);
      assert.ok(all.some((r) => r.type === "progress"), "progress while no frame comes");
      const end = all[all.length - 1];
      assert.deepEqual(end, { type: "end", reason: "seconds", frames: 0, drops: 0 });
      assert.ok(parts >= 3, `parts: ${parts}`);

      const refused = async (args: Record<string, unknown>, code: string, re: RegExp) => {
        await assert.rejects(records(c, args), (e) => {
          assert.ok(e instanceof ControlRefusedError, String(e));
          assert.equal(e.reply.error.code, code);
          assert.match(e.reply.error.message, re);
          return true;
        });
      };
      await refused(
        { rule: "cam1", input: 1 },
        "bad_args",
        /args\.input: the rule has 1 input \(index 0\); got 1/,
      );
      await refused({ rule: "cam1", count: 0 }, "bad_args", /args\.count must be an integer/);
      await refused({ rule: "cam1", seconds: 3601 }, "bad_args", /args\.seconds/);
      await refused({ rule: "nope" }, "not_found", /nope/);

      // one capture per rule; a client that goes away stops its capture
      const first = await ControlClient.connect(d.socket);
      const it = first.stream<Rec>("capture", { rule: "cam1", seconds: 3600 });
      assert.equal((await it.next()).value?.[0].type, "capture");
      await refused({ rule: "cam1", seconds: 1 }, "busy", /being captured already/);
      await first.close();
      const t0 = Date.now();
      for (;;) {
        try {
          const again = await records(c, { rule: "cam1", seconds: 1 });
          assert.equal(again.all[again.all.length - 1].reason, "seconds");
          break;
        } catch (e) {
          if (!(e instanceof ControlRefusedError) || e.reply.error.code !== "busy") throw e;
          if (Date.now() - t0 > 30_000) throw new Error("the capture of a closed client runs on");
          await new Promise((r) => setTimeout(r, 100));
        }
      }

      // frames carry payloads: not on the read-only socket
      await using ro = await ControlClient.connect(`${d.dir}/status.sock`);
      const r = await ro.request("capture", { rule: "cam1" });
      assert.equal(r.ok, false);
      assert.equal(!r.ok && r.error.code, "forbidden");
    } finally {
      await d.stop();
    }
  },
});

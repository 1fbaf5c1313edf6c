/**
 * Streamed answers over the control socket at the scale of issue 12: a
 * daemon with 65,536 synthetic rules (tests/fixtures/relay_stats.ts) answers
 * `stats`/`list` with `stream: true` in parts of at most MAX_PART_BYTES, each
 * part a complete JSON line, every record once and in order; the same request
 * without `stream` (as clients before streaming send it) is refused with
 * `reply_too_large` instead of one line of ~70 MB, and the connection goes
 * on; small answers and filtered ones still come in one reply.
 */
import assert from "node:assert/strict";
import { ControlServer } from "../../src/control/server.ts";
import type { ControlContext } from "../../src/control/commands.ts";
import {
  encodeParts,
  LineSplitter,
  MAX_PART_BYTES,
  MAX_REPLY_BYTES,
  type OkReply,
} from "../../src/control/protocol.ts";
import { ControlClient, ControlRefusedError } from "../../src/client/client.ts";
import type { ListResult, StatsResult } from "../../src/control/results.ts";
import { syntheticRelay } from "../fixtures/relay_stats.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const dec = new TextDecoder();

type Part = OkReply<{ records: unknown[] }>;

/** Decode the lines of `encodeParts`. */
function decodeParts(lines: Uint8Array[]): Part[] {
  return lines.map((l) => {
    assert.equal(l[l.length - 1], 10, "each part is one line");
    assert.equal(l.indexOf(10), l.length - 1, "with no newline inside");
    return JSON.parse(dec.decode(l));
  });
}

Deno.test("encodeParts: bounded parts, more on all but the last, every record once in order", () => {
  const records = Array.from(
    { length: 10_000 },
    (_, i) => ({ kind: "rule", i, pad: "x".repeat(i % 97) }),
  );
  const lines = [...encodeParts(7, records)];
  assert.ok(lines.length > 10, `${lines.length} parts`);
  for (const l of lines) assert.ok(l.length <= MAX_PART_BYTES, `part of ${l.length} bytes`);
  const parts = decodeParts(lines);
  assert.ok(parts.slice(0, -1).every((p) => p.more === true && p.id === 7 && p.ok));
  assert.equal(parts.at(-1)!.more, undefined);
  assert.deepEqual(parts.flatMap((p) => p.result.records), records);
  // A record longer than a part travels alone; the others stay within the bound.
  const big = { kind: "rule", pad: "y".repeat(MAX_PART_BYTES * 2) };
  const mixed = [...encodeParts("s", [{ a: 1 }, big, { b: 2 }])];
  assert.deepEqual(decodeParts(mixed).map((p) => p.result.records.length), [1, 1, 1]);
  // No records: one last part with none.
  assert.deepEqual(decodeParts([...encodeParts(1, [])]).map((p) => [p.more, p.result.records]), [
    [undefined, []],
  ]);
});

/** A control server over a synthetic relay of `rules` rules. */
async function serve(rules: number) {
  const relay = syntheticRelay({ rules });
  const dir = await Deno.makeTempDir({ prefix: "mcr-stream-" });
  await Deno.chmod(dir, 0o750);
  const path = `${dir}/control.sock`;
  const ctx = {
    relay: { stats: () => relay.stats, config: { rules: relay.config } },
    rates: { rates: () => relay.rates, sample() {} },
    startedAt: performance.now(),
  } as unknown as ControlContext;
  const server = await ControlServer.start(path, ctx);
  return {
    path,
    relay,
    async close() {
      await server.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Send raw request lines; collect reply lines until `done` says the last one came. */
async function exchange(
  path: string,
  requests: unknown[],
  done: (replies: Record<string, unknown>[]) => boolean,
): Promise<{ lines: number[]; replies: Record<string, unknown>[] }> {
  const c = await Deno.connect({ transport: "unix", path });
  try {
    const text = requests.map((r) => JSON.stringify(r) + "\n").join("");
    await c.write(new TextEncoder().encode(text));
    const split = new LineSplitter(MAX_REPLY_BYTES);
    const buf = new Uint8Array(256 * 1024);
    const lines: number[] = [];
    const replies: Record<string, unknown>[] = [];
    while (!done(replies)) {
      const n = await c.read(buf);
      if (n === null) throw new Error("the daemon closed the connection");
      for (const ev of split.push(buf.subarray(0, n))) {
        assert.ok("line" in ev, "no reply line beyond MAX_REPLY_BYTES");
        lines.push(new TextEncoder().encode(ev.line).length);
        replies.push(JSON.parse(ev.line));
      }
    }
    return { lines, replies };
  } finally {
    c.close();
  }
}

Deno.test({
  name:
    "control stream: 65,536 rules in parts of at most MAX_PART_BYTES; without stream: reply_too_large, then the connection goes on",
  ...opts,
  async fn() {
    const s = await serve(65_536);
    try {
      const last = (id: string) => (rs: Record<string, unknown>[]) =>
        rs.some((r) => r.id === id && r.more === undefined);
      const { lines, replies } = await exchange(
        s.path,
        [
          { v: 1, id: "s", cmd: "stats", args: { stream: true } },
          { v: 1, id: "old", cmd: "stats" },
          { v: 1, id: "one", cmd: "stats", args: { rule: "r77" } },
          { v: 1, id: "p", cmd: "ping" },
        ],
        last("p"),
      );
      const parts = replies.filter((r) => r.id === "s") as unknown as Part[];
      assert.ok(parts.length > 100, `${parts.length} parts`);
      for (const n of lines.slice(0, parts.length)) {
        assert.ok(n + 1 <= MAX_PART_BYTES, `a part of ${n} bytes`);
      }
      assert.ok(parts.slice(0, -1).every((p) => p.more === true));
      const records = parts.flatMap((p) => p.result.records) as { kind: string; name?: string }[];
      assert.equal(records[0].kind, "stats");
      const names = records.filter((r) => r.kind === "rule").map((r) => r.name);
      assert.equal(names.length, 65_536);
      assert.equal(new Set(names).size, 65_536, "every rule once");
      assert.deepEqual(names.slice(0, 3), ["r0", "r1", "r2"], "in the relay's order");
      assert.equal(records.filter((r) => r.kind === "interface").length, 16);
      assert.equal(records.filter((r) => r.kind === "worker").length, 16);
      // The request of a client before streaming: refused, with what to do instead.
      const old = replies.find((r) => r.id === "old") as {
        ok: boolean;
        error: { code: string; message: string };
      };
      assert.equal(old.ok, false);
      assert.equal(old.error.code, "reply_too_large");
      assert.match(old.error.message, /stream/);
      // A filtered one-line request and a ping on the same connection are answered.
      const one = replies.find((r) => r.id === "one") as unknown as OkReply<StatsResult>;
      assert.deepEqual(one.result.rules.map((r) => r.name), ["r77"]);
      assert.equal(replies.at(-1)!.id, "p");
      assert.equal(replies.at(-1)!.ok, true);
    } finally {
      await s.close();
    }
  },
});

Deno.test({
  name:
    "control stream: the client yields every record of a 65,536-rule list; refusals and old-style requests",
  ...opts,
  async fn() {
    const s = await serve(65_536);
    try {
      await using c = await ControlClient.connect(s.path);
      let rules = 0, parts = 0;
      let header: { kind: string; total?: number; records?: { rules: number } } | undefined;
      for await (const recs of c.stream<{ kind: string }>("list", { view: "full" })) {
        parts++;
        header ??= recs[0];
        rules += recs.filter((r) => r.kind === "rule").length;
      }
      assert.equal(header?.kind, "list");
      assert.equal(header?.total, 65_536);
      assert.equal(rules, 65_536);
      assert.ok(parts > 100);
      // The same connection goes on; a refused stream throws the daemon's error.
      await assert.rejects(
        async () => {
          for await (const _ of c.stream("stats", { rule: "nope" })) { /* none */ }
        },
        (e) => e instanceof ControlRefusedError && e.reply.error.code === "not_found",
      );
      const sum = await c.request<StatsResult>("stats", { view: "summary", sort: "drops" });
      assert.ok(sum.ok);
      if (sum.ok) {
        assert.equal(sum.result.rules.length, 10);
        assert.equal(sum.result.summary?.outputs, 65_536 * 4);
      }
    } finally {
      await s.close();
    }
    // A small relay: `list` with no arguments answers in one reply, as before streaming.
    const small = await serve(100);
    try {
      await using c = await ControlClient.connect(small.path);
      const r = await c.request<ListResult>("list");
      assert.ok(r.ok);
      if (r.ok) assert.equal(r.result.rules.length, 100);
      // Stopping a stream early closes the connection (the rest would block it).
      for await (const _ of c.stream("list", { view: "full" })) break;
      await assert.rejects(() => c.request("ping"), /closed/);
    } finally {
      await small.close();
    }
  },
});

/**
 * `ctl list`/`stats` and `top` for people and machines at the scale of issue
 * 12, fed 65,536 synthetic rules (tests/fixtures/relay_stats.ts) through the
 * daemon's views and the client's formatting: the streamed table prints while
 * records arrive with columns that only widen, every rule once; a truncated
 * stream is an error; JSON Lines parse line by line; a summary shows the
 * totals, the top rules and how to see more; `top` fits the terminal; the
 * command line maps to the documented arguments.
 */
import assert from "node:assert/strict";
import {
  listRecords,
  listView,
  parseViewArgs,
  statsRecords,
  statsResult,
  statsView,
} from "../../src/control/views.ts";
import { jsonLines, RecordPrinter, RecordStreamError } from "../../src/client/listing.ts";
import { formatStatsResult } from "../../src/client/format.ts";
import { renderTop, topArgs } from "../../src/client/top.ts";
import { ctlRequest } from "../../src/client/ctl.ts";
import { SYNTHETIC_OUTPUTS, syntheticRelay } from "../fixtures/relay_stats.ts";

const N = 65_536;
const relay = syntheticRelay({ rules: N });
const clock = { time: "2026-01-01T00:00:00.000Z", uptime_s: 1 };
const records = (cmd: "list" | "stats", args: Record<string, unknown>) =>
  cmd === "stats"
    ? [...statsRecords(statsView(relay.stats, relay.rates, clock, parseViewArgs(cmd, args)))]
    : [...listRecords(listView(relay.config, relay.stats, relay.rates, parseViewArgs(cmd, args)))];

/** Feed `recs` to a printer in parts of `part`; returns every write and the writes before end(). */
function print(cmd: "list" | "stats", recs: unknown[], part = 500) {
  const writes: string[] = [];
  const p = new RecordPrinter(cmd, (t) => writes.push(t));
  for (let i = 0; i < recs.length; i += part) p.push(recs.slice(i, i + part));
  const beforeEnd = writes.length;
  p.end();
  return { writes, beforeEnd, lines: writes.join("\n").split("\n") };
}

Deno.test("listing: 65,536 rules print while they arrive, each once, columns that only widen", () => {
  const { writes, beforeEnd, lines } = print("stats", records("stats", { view: "full" }));
  assert.ok(beforeEnd >= 60, `the table was printed in blocks as rules came (${beforeEnd})`);
  assert.ok(writes.every((w) => w.length < 1_000_000), "no write holds the whole table");
  const ruleLines = lines.filter((l) => /^r\d+ /.test(l));
  assert.equal(ruleLines.length, N);
  assert.equal(new Set(ruleLines.map((l) => l.split(" ")[0])).size, N);
  assert.equal(lines.filter((l) => l.includes("→ out")).length, N * SYNTHETIC_OUTPUTS);
  assert.equal(lines.filter((l) => /^RULE\s+STATE\s+OUTPUT/.test(l)).length, 1, "one header");
  // The STATE column starts where the NAME column ends: never further left than before.
  const at = ruleLines.map((l) => l.search(/ (active|pending|error) /));
  for (let i = 1; i < at.length; i++) assert.ok(at[i] >= at[i - 1], `row ${i} moved left`);
  // After the rules: interfaces, workers, drops.
  const tail = lines.slice(lines.findIndex((l) => l.startsWith("INTERFACE  STATE")));
  assert.equal(tail.filter((l) => /^in\d+\s+running/.test(l)).length, 16);
  assert.ok(lines.some((l) => l.startsWith("drops: no_match=5")));
  // list: one row per output, the rule's name on the first.
  const list = print("list", records("list", { view: "full" }));
  assert.equal(list.lines.filter((l) => /^r\d+ /.test(l)).length, N);
});

Deno.test("listing: a stream that ends before the records its header announced is an error", () => {
  const recs = records("stats", { interface: "in2" });
  const p = new RecordPrinter("stats", () => {});
  p.push(recs.slice(0, 100));
  assert.throws(() => p.end(), (e) => e instanceof RecordStreamError && /100|99/.test(e.message));
  const q = new RecordPrinter("list", () => {});
  assert.throws(() => q.push([{ kind: "rule" }]), RecordStreamError, "no header");
});

Deno.test("listing: JSON Lines parse line by line to the records, terminal controls escaped", () => {
  const recs = records("list", { interface: "in1" });
  const text = jsonLines(recs);
  const lines = text.split("\n");
  assert.equal(lines.pop(), "", "every line ends with a newline");
  assert.equal(lines.length, recs.length);
  assert.deepEqual(lines.map((l) => JSON.parse(l)), recs);
  const hostile = jsonLines([{ kind: "rule", name: "a\u009b31m\u202eb" }]);
  assert.doesNotMatch(hostile, /[\u009b\u202e]/);
  assert.equal(JSON.parse(hostile).name, "a\u009b31m\u202eb");
});

Deno.test("listing: a summary of 65,536 rules: totals, per-interface table, top rules, the hint", () => {
  const s = statsResult(
    statsView(relay.stats, relay.rates, clock, parseViewArgs("stats", { view: "auto" })),
  );
  const text = formatStatsResult(s);
  const lines = text.split("\n");
  assert.match(lines[0], /^65,536 rules: 64,\d{3} active, \d+ pending, \d+ error$/);
  assert.match(lines[1], /^262,144 outputs: /);
  assert.equal(lines.filter((l) => /^in\d+\s+4,096\s/.test(l)).length, 16);
  assert.ok(lines.includes("top rules by pps:"));
  const top = lines.filter((l) => /^r\d+ /.test(l));
  assert.equal(top.length, 10, "one line per top rule");
  assert.ok(lines.some((l) => l.includes("a summary of 65,536 rules and the top 10 by pps")));
  assert.ok(lines.some((l) => l.includes("every rule: ctl stats --all")));
  assert.ok(text.length < 10_000, `${text.length} characters for 65,536 rules`);
  // The same through the stream printer.
  const streamed = print("stats", records("stats", { view: "auto" }));
  assert.deepEqual(streamed.lines.filter((l) => /^r\d+ /.test(l)), top);
  assert.ok(streamed.lines.some((l) => l.includes("every rule: ctl stats --all")));
  // A filter that matches nothing says so.
  const none = print("list", records("list", { group: "239.99.99.99" }));
  assert.ok(none.lines.includes("no rules match (group 239.99.99.99)"), none.lines.join("\n"));
});

Deno.test("top: fits the terminal with 65,536 rules; asks the daemon for only what it shows", () => {
  const args = topArgs(200, "drops", { interface: "in4" });
  assert.deepEqual(args, { interface: "in4", view: "summary", sort: "drops", limit: 200 });
  const s = statsResult(
    statsView(relay.stats, relay.rates, clock, parseViewArgs("stats", { ...args })),
  );
  for (const [w, h] of [[80, 24], [200, 60], [100, 12]]) {
    const screen = renderTop(s, "/run/mcr/control.sock", w, h).split("\n");
    assert.ok(screen.length <= h, `${screen.length} rows on a ${h}-row terminal`);
    assert.ok(screen.every((l) => l.length <= w));
    assert.ok(screen.some((l) => l.includes("top ") && l.includes("of 4,096 rules by drops")));
  }
  const all = statsResult(
    statsView(
      relay.stats,
      relay.rates,
      clock,
      parseViewArgs("stats", { ...topArgs(40, "pps", {}) }),
    ),
  );
  const screen = renderTop(all, "/s", 300, 50).split("\n");
  assert.ok(screen.length <= 50);
  assert.match(screen[1], /^rules: 65,536 \(/);
  // 16 input interfaces do not fit a third of 50 rows: the busiest are shown, the rest counted.
  assert.ok(screen.some((l) => /^… \d+ more interfaces/.test(l)), screen.join("\n"));
});

Deno.test("ctl: list/stats command lines map to the documented arguments", () => {
  assert.deepEqual(ctlRequest(["stats"]), { cmd: "stats", args: { view: "auto", stream: true } });
  assert.deepEqual(ctlRequest(["--json", "list"]), {
    cmd: "list",
    args: { view: "full", stream: true },
  });
  assert.deepEqual(
    ctlRequest([
      "stats",
      "cam1",
      "--interface",
      "eth0",
      "--group",
      "239.1.1.1",
      "--sort",
      "drops",
      "--limit",
      "5",
      "--all",
    ]),
    {
      cmd: "stats",
      args: {
        view: "full",
        stream: true,
        rule: "cam1",
        interface: "eth0",
        group: "239.1.1.1",
        sort: "drops",
        limit: 5,
      },
    },
  );
  assert.deepEqual(ctlRequest(["--json", "list", "--summary"]).args.view, "summary");
  assert.throws(() => ctlRequest(["stats", "--all", "--summary"]), /exclude each other/);
  assert.throws(() => ctlRequest(["stats", "--sort", "size"]), /--sort must be one of/);
  assert.throws(() => ctlRequest(["list", "--limit", "0"]), /--limit must be a positive/);
  assert.throws(() => ctlRequest(["list", "--limit", "5x"]), /--limit/);
  assert.throws(() => ctlRequest(["stats", "a", "b"]), /unexpected argument "b"/);
});

/**
 * Log lines (src/common/log.ts): one line per event with ASCII separators;
 * under the systemd journal (stderr is the stream JOURNAL_STREAM names) each
 * line carries its syslog priority and no timestamp of its own.
 */
import assert from "node:assert/strict";
import { REPO } from "../../lab/netns.ts";
import { textValue } from "../../src/common/log.ts";

const PROBE = `${REPO}/tests/fixtures/log_probe.ts`;

/** Run the probe; with `journal`, JOURNAL_STREAM names its stderr (as systemd does). */
async function probe(journal: boolean): Promise<string[]> {
  const deno = Deno.execPath();
  const run = `exec "${deno}" run --allow-env --allow-read "${PROBE}"`;
  const script = journal
    ? `JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) ${run}`
    : `JOURNAL_STREAM=1:2 ${run}`; // another stream's: stderr redirected away from the journal
  const out = await new Deno.Command("sh", {
    args: ["-c", script],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stderr).split("\n").filter(Boolean);
}

Deno.test("logs: one line per event; ASCII category separator; values as text, controls escaped", async () => {
  const lines = await probe(false);
  assert.equal(lines.length, 2, lines.join("\n"));
  assert.match(lines[0], /^\d{4}-\d\d-\d\d /, "a timestamp of its own");
  assert.match(lines[0], /mcr\.probe/);
  assert.match(lines[0], /invalid configuration \(2 problems\): \| rule 0: a \| rule 1: b$/);
  for (const l of lines) assert.doesNotMatch(l, /[^\x20-\x7e]/, "printable ASCII only");
  assert.doesNotMatch(lines[0], /^</, "no priority prefix off the journal");
});

Deno.test("logs: under the journal each line starts with its syslog priority, without a timestamp", async () => {
  const lines = await probe(true);
  assert.equal(lines.length, 2, lines.join("\n"));
  assert.match(lines[0], /^<3>/);
  assert.match(lines[1], /^<6>/);
  assert.doesNotMatch(lines[0], /^<3>\d{4}-/, "the journal keeps the time");
  assert.match(lines[1], /ready$/);
});

Deno.test("textValue: strings as they are, other values on one line, controls escaped", () => {
  assert.equal(textValue("eth0 is down"), "eth0 is down");
  assert.equal(textValue("a\u001b[2Jb\rc"), "a\\u001b[2Jb\\u000dc");
  assert.equal(textValue("x\u009b2J\u202e.json"), "x\\u009b2J\\u202e.json");
  assert.equal(textValue({ a: 1, b: [1, 2] }), "{ a: 1, b: [ 1, 2 ] }");
  assert.equal(textValue("two\nlines"), "two\nlines", "line breaks are the sink's (joined with |)");
});

/**
 * `ctl list`/`stats` and `top` against a running relay with 3,000 rules
 * (namespaces): every filter answers exactly the rules it names, checked
 * against the configuration written here (input or output on an interface; an
 * input or output group; one rule by name; an unknown name and a bad group are
 * refused with exit 1); `--json` is JSON Lines that parse line by line, whose
 * header announces the records that follow; the default for people is a
 * summary with a hint; `--all` lists every matching rule; `top` shows only
 * the rules its screen holds. On the wire: a streamed `stats` comes in
 * several parts of at most MAX_PART_BYTES, every rule once; a request without
 * `stream` (a client before streaming) still gets one reply, and requests on
 * the connection are answered in order. The order by packets is checked on three
 * streams sent through the relay: what holds under load (the order, the
 * set of rules that counted packets), not how many arrived.
 */
import assert from "node:assert/strict";
import { chainTopology, REPO, runDeno, skipReason } from "../../lab/netns.ts";
import { runGen } from "../../lab/harness.ts";
import { type Daemon, startDaemon } from "../../lab/daemon.ts";
import type { StatsResult } from "../../src/control/results.ts";
import { LineSplitter, MAX_PART_BYTES, MAX_REPLY_BYTES } from "../../src/control/protocol.ts";

const skip = skipReason();
const opts = { ignore: skip !== null, sanitizeResources: false, sanitizeOps: false };

const A = 2000, B = 500, C = 500;
const quad = (k: number) => `${k >> 8}.${k & 255}`;
/** a: r0 → r1; b: a missing input nx0 → r1 (pending); c: r0 → a missing output ny0, one group. */
const rules = [
  ...Array.from({ length: A }, (_, k) => ({
    name: `a${k}`,
    input: { interface: "r0", group: `239.3.${quad(k)}`, port: 5000 },
    outputs: [{ interface: "r1", group: `239.30.${quad(k)}`, port: 6000 }],
  })),
  ...Array.from({ length: B }, (_, k) => ({
    name: `b${k}`,
    input: { interface: "nx0", group: `239.4.${quad(k)}`, port: 5000 },
    outputs: [{ interface: "r1", group: `239.40.${quad(k)}`, port: 6000 }],
  })),
  ...Array.from({ length: C }, (_, k) => ({
    name: `c${k}`,
    input: { interface: "r0", group: `239.5.${quad(k)}`, port: 5000 },
    outputs: [{ interface: "ny0", group: "239.50.0.1", port: 7000 + k }],
  })),
];
const names = (prefix: string, n: number) => Array.from({ length: n }, (_, k) => `${prefix}${k}`);

interface Rec {
  kind: string;
  name?: string;
  state?: string;
  packets?: number;
  records?: Record<string, number>;
  total?: number;
  matched?: number;
}

/** Run `ctl --json ARGS`; every line must parse; returns the records. */
async function jsonl(d: Daemon, ...args: string[]): Promise<Rec[]> {
  const r = await d.ctl("--timeout", "60000", "--json", ...args);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split("\n");
  assert.equal(lines.pop(), "", "the output ends with a newline");
  return lines.map((l, i) => {
    try {
      return JSON.parse(l);
    } catch {
      throw new Error(`line ${i + 1} of ctl --json ${args.join(" ")} is not JSON: ${l}`);
    }
  });
}

/** The rule names of a record stream, after checking its header against what follows. */
function ruleNames(recs: Rec[], cmd: "list" | "stats"): string[] {
  const [head, ...rest] = recs;
  assert.equal(head.kind, cmd);
  const count = (k: string) => rest.filter((r) => r.kind === k).length;
  assert.equal(head.records!.rules, count("rule"));
  if (cmd === "stats") {
    assert.equal(head.records!.interfaces, count("interface"));
    assert.equal(head.records!.workers, count("worker"));
  }
  return rest.filter((r) => r.kind === "rule").map((r) => r.name!);
}

const sorted = (xs: string[]) => [...xs].sort();

/** One reply line as it came off the socket: its size in bytes and its JSON. */
interface WireLine {
  bytes: number;
  reply: {
    id: string;
    ok: boolean;
    more?: boolean;
    result: { records?: Rec[]; rules?: Rec[]; pong?: boolean };
  };
}

/** Send raw request lines on one connection; read reply lines until the reply to `lastId`. */
async function wire(socket: string, requests: unknown[], lastId: string): Promise<WireLine[]> {
  const c = await Deno.connect({ transport: "unix", path: socket });
  try {
    const enc = new TextEncoder();
    await c.write(enc.encode(requests.map((r) => JSON.stringify(r) + "\n").join("")));
    const split = new LineSplitter(MAX_REPLY_BYTES);
    const buf = new Uint8Array(256 * 1024);
    const out: WireLine[] = [];
    while (out.at(-1)?.reply.id !== lastId) {
      const n = await c.read(buf);
      if (n === null) throw new Error("the daemon closed the connection");
      for (const ev of split.push(buf.subarray(0, n))) {
        if (!("line" in ev)) throw new Error("a reply line over MAX_REPLY_BYTES");
        out.push({ bytes: enc.encode(ev.line).length + 1, reply: JSON.parse(ev.line) });
      }
    }
    return out;
  } finally {
    c.close();
  }
}

Deno.test({
  ...opts,
  name:
    "ctl at scale: 3,000 rules; filters answer exactly the matching rules, JSON Lines stream, summary, --all, top",
  async fn() {
    const t = await chainTopology("cscale");
    let d: Daemon | undefined;
    try {
      d = await startDaemon({ rules }, { netns: t.ns("rly") });
      const daemon = d;

      // Filters, as JSON Lines.
      const cases: [string[], string[]][] = [
        [["--interface", "r0"], [...names("a", A), ...names("c", C)]],
        [["--interface", "r1"], [...names("a", A), ...names("b", B)]],
        [["--interface", "nx0"], names("b", B)],
        [["--interface", "ny0"], names("c", C)],
        [["--group", "239.50.0.1"], names("c", C)],
        [["--group", `239.3.${quad(300)}`], ["a300"]],
        [["--group", `239.40.${quad(7)}`], ["b7"]],
        [["--interface", "r0", "--group", "239.50.0.1"], names("c", C)],
        [["--interface", "r1", "--group", "239.50.0.1"], []],
        [["a42"], ["a42"]],
        [[], rules.map((r) => r.name)],
      ];
      for (const [args, want] of cases) {
        for (const cmd of ["stats", "list"] as const) {
          const recs = await jsonl(daemon, cmd, ...args);
          assert.deepEqual(sorted(ruleNames(recs, cmd)), sorted(want), `${cmd} ${args.join(" ")}`);
          assert.equal(recs[0].total, rules.length);
          assert.equal(recs[0].matched, want.length);
        }
      }
      // On the wire: a streamed stats in bounded parts, then an old-style list in one reply,
      // then a ping, answered in that order on one connection.
      const lines = await wire(daemon.socket, [
        { v: 1, id: "s", cmd: "stats", args: { stream: true } },
        { v: 1, id: "old", cmd: "list" },
        { v: 1, id: "p", cmd: "ping" },
      ], "p");
      assert.deepEqual(
        [...new Set(lines.map((l) => l.reply.id))],
        ["s", "old", "p"],
        "replies in request order, a stream not interleaved",
      );
      const parts = lines.filter((l) => l.reply.id === "s");
      assert.ok(parts.length > 1, `${parts.length} parts`);
      for (const p of parts) {
        assert.ok(p.reply.ok);
        assert.ok(p.bytes <= MAX_PART_BYTES, `a part of ${p.bytes} bytes`);
      }
      assert.ok(parts.slice(0, -1).every((p) => p.reply.more === true), "more on all but the last");
      assert.equal(parts.at(-1)!.reply.more, undefined);
      const streamed = ruleNames(parts.flatMap((p) => p.reply.result.records!), "stats");
      assert.equal(new Set(streamed).size, rules.length, "every rule once");
      assert.deepEqual(sorted(streamed), sorted(rules.map((r) => r.name)));
      const old = lines.filter((l) => l.reply.id === "old");
      assert.equal(old.length, 1, "one reply without stream");
      assert.deepEqual(old[0].reply.result.rules!.map((r) => r.name), rules.map((r) => r.name));
      assert.equal(lines.at(-1)!.reply.result.pong, true);

      // States as the relay reports them: b on a missing input is pending.
      const b = await jsonl(daemon, "list", "--interface", "nx0");
      assert.ok(b.slice(1).every((r) => r.state === "pending"), JSON.stringify(b[1]));
      // With a filter, stats shows only the input interfaces of the matching rules.
      const r0 = await jsonl(daemon, "stats", "--interface", "r0");
      assert.deepEqual(r0.filter((r) => r.kind === "interface").map((r) => r.name), ["r0"]);

      // Unknown names and bad arguments are refused (exit 1) and say why.
      const unknown = await daemon.ctl("stats", "nosuch");
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /no rule named or with id "nosuch" \[not_found\]/);
      const badGroup = await daemon.ctl("list", "--group", "239.3.1");
      assert.equal(badGroup.code, 1);
      assert.match(badGroup.stderr, /args\.group must be an IPv4 address.*\[bad_args\]/);
      const badIf = await daemon.ctl("--json", "stats", "--interface", "no/slash");
      assert.equal(badIf.code, 1);
      assert.equal(JSON.parse(badIf.stdout).error.code, "bad_args");

      // For people: a summary by default, every rule with --all.
      const human = await daemon.ctl("stats");
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /^3,000 rules: 2,500 active, 500 pending/m);
      assert.match(human.stdout, /^r0\s+2,500\s+2,500\s+0\s+0\s+0\s+2,500\s/m);
      assert.match(human.stdout, /^nx0\s+500\s+0\s+500\s/m);
      assert.match(human.stdout, /every rule: ctl stats --all/);
      assert.ok(human.stdout.split("\n").length < 80, "a summary, not 3,000 rules");
      const all = await daemon.ctl("list", "--all", "--interface", "ny0");
      assert.equal(all.code, 0, all.stderr);
      assert.deepEqual(
        sorted(all.stdout.split("\n").filter((l) => /^c\d+ /.test(l)).map((l) => l.split(" ")[0])),
        sorted(names("c", C)),
      );

      // Order by packets: three streams through a1, a2, a3.
      for (const [k, count] of [[1, 300], [2, 200], [3, 100]]) {
        await runGen(t, "snd", "s0", [`239.3.${quad(k)}:5000`], { rate: 2000, count });
      }
      const sent = ["a1", "a2", "a3"];
      let last = "";
      for (let i = 0;; i++) {
        const s = await daemon.ok<StatsResult>("stats", { view: "full", group: "239.30.0.1" });
        const one = await Promise.all(
          sent.map((n) => daemon.ok<StatsResult>("stats", { rule: n })),
        );
        const now = JSON.stringify(one.map((x) => x.rules[0].packets));
        if (one.every((x) => x.rules[0].packets > 0) && now === last) break;
        assert.ok(i < 300, `the streams were counted: ${now} ${JSON.stringify(s.rules)}`);
        last = now;
        await new Promise((r) => setTimeout(r, 200));
      }
      const full = await jsonl(daemon, "stats", "--interface", "r0", "--sort", "packets");
      const packets = full.filter((r) => r.kind === "rule").map((r) => r.packets!);
      assert.equal(packets.length, A + C);
      for (let i = 1; i < packets.length; i++) assert.ok(packets[i] <= packets[i - 1]);
      const counted = full.filter((r) => r.kind === "rule" && r.packets! > 0).map((r) => r.name!);
      assert.deepEqual(sorted(counted), sent, "only the rules that got a stream counted");
      const top = await jsonl(daemon, "stats", "--summary", "--sort", "packets", "--limit", "3");
      assert.deepEqual(ruleNames(top, "stats"), counted);
      assert.equal((top[0] as { summary?: unknown }).summary !== undefined, true);

      // top: a summary and no more rules than asked for.
      const topRun = await runDeno([
        "run",
        "-A",
        `${REPO}/cli.ts`,
        "top",
        "--control-socket",
        daemon.socket,
        "--count",
        "1",
        "--limit",
        "5",
        "--sort",
        "packets",
      ]);
      assert.equal(topRun.code, 0, topRun.stderr);
      const ruleRows = topRun.stdout.split("\n").filter((l) => /^[abc]\d+ /.test(l));
      assert.equal(ruleRows.length, 5);
      assert.deepEqual(ruleRows.slice(0, 3).map((l) => l.split(" ")[0]), counted);
      assert.match(topRun.stdout, /top 5 of 3,000 rules by packets/);

      d = undefined;
      const out = await daemon.stop();
      assert.equal(out.code, 0, out.stderr);
    } finally {
      if (d) {
        d.kill("SIGKILL");
        await d.output();
        await Deno.remove(d.dir, { recursive: true }).catch(() => {});
      }
      await t.destroy();
    }
  },
});

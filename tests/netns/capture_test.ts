/**
 * `mcr ctl capture` with real traffic (issue 16), in the chain topology
 * (sender — relay — receiver):
 *
 * - tshark on the sender's interface records what the sender put on the
 *   wire; `ctl capture cam1 --count N -w FILE` meanwhile writes N frames the
 *   relay matched, which tshark reads: exactly N, and every one identical to
 *   a frame the sender sent (every Ethernet, IPv4 and UDP header field, the
 *   length and the payload), in the order sent, with no frame of the stream
 *   left out between the first and the last; their times within a minute
 *   of the sender's (the 32-bit receive times are dated right);
 * - forwarding goes on while the capture runs: the receiver gets the stream;
 * - `--input 1` is refused with a clear error (a rule has one input);
 * - a capture client that dies (SIGKILL) leaves no capture running: a new
 *   capture of the rule is accepted (a second one at once is refused `busy`).
 *
 * Skipped, with the reason, without root or without tshark
 * (`apt-get install tshark`).
 */
import assert from "node:assert/strict";
import { BUILD, chainTopology, findProgram, Proc, skipReason } from "../../lab/netns.ts";
import { startSink } from "../../lab/harness.ts";
import { startDaemon } from "../../lab/daemon.ts";
import type { StatsResult } from "../../src/control/results.ts";

/** tshark's path, or null when it is not installed. */
const findTshark = (): string | null => findProgram("tshark");

const TSHARK = findTshark();
const skip = skipReason() ??
  (TSHARK ? null : "tshark not found (apt-get install tshark; .ci/run installs it)");
if (skip) console.warn(`netns capture tests skipped: ${skip}`);

const REPO = new URL("../..", import.meta.url).pathname;

/** Frames to capture. */
const N = 200;

/** The header fields and payload tshark reads from each frame (whole frames: Ethernet to payload). */
const FIELDS = [
  "frame.len",
  "frame.cap_len",
  "eth.dst",
  "eth.src",
  "eth.type",
  "ip.version",
  "ip.hdr_len",
  "ip.dsfield",
  "ip.len",
  "ip.id",
  "ip.flags",
  "ip.frag_offset",
  "ip.ttl",
  "ip.proto",
  "ip.checksum",
  "ip.src",
  "ip.dst",
  "udp.srcport",
  "udp.dstport",
  "udp.length",
  "udp.checksum",
  "udp.payload",
];

/** tshark's reading of a file: per frame, its time (µs) and the fields (one string). */
async function readPcap(file: string): Promise<{ timeUs: number; frame: string }[]> {
  const args = ["-r", file, "-T", "fields", "-E", "separator=|", "-e", "frame.time_epoch"];
  for (const f of FIELDS) args.push("-e", f);
  const out = await new Deno.Command(TSHARK!, { args, stdout: "piped", stderr: "piped" }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `tshark -r ${file}: ${err}`);
  return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.trim()).map((l) => {
    const [t, ...rest] = l.split("|");
    return { timeUs: Math.round(Number(t) * 1e6), frame: rest.join("|") };
  });
}

/** Wait until `path` exists and holds at least `bytes` (generous deadline). */
async function waitForBytes(path: string, bytes: number, what: string): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    try {
      if ((await Deno.stat(path)).size >= bytes) return;
    } catch { /* not yet */ }
    if (Date.now() - t0 > 30_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test({
  name:
    "capture: ctl capture --count N -w FILE writes N frames tshark reads, identical to what the sender sent; forwarding goes on; a dead client leaves no capture",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await chainTopology("capt");
    const dir = await Deno.makeTempDir({ prefix: "mcr-capture-" });
    let d: Awaited<ReturnType<typeof startDaemon>> | undefined;
    const procs: { kill(sig?: Deno.Signal): void }[] = [];
    try {
      d = await startDaemon({
        rules: [{
          name: "cam1",
          input: { interface: "r0", group: "239.1.1.1", port: 5001 },
          outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
        }],
      }, { netns: t.ns("rly") });
      const daemon = d;
      const sentFile = `${dir}/sent.pcapng`;
      const capFile = `${dir}/cam1.pcapng`;

      // what the sender puts on the wire, recorded on its own interface
      const wire = new Proc(t.ns("snd"), [
        TSHARK!,
        "-i",
        "s0",
        "-f",
        "udp dst port 5001",
        "-w",
        sentFile,
        "-q",
      ]);
      procs.push(wire);
      await waitForBytes(sentFile, 64, "tshark to start capturing on s0");
      const sink = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], {
        idleMs: 3000,
        durationS: 120,
      });
      const gen = new Proc(t.ns("snd"), [
        `${BUILD}/mcr-gen`,
        "--iface",
        "s0",
        "--dst",
        "239.1.1.1:5001",
        "--rate",
        "500",
        "--duration",
        "12",
        "--json",
      ]);
      procs.push(gen);
      // the stream flows through the relay
      const t0 = Date.now();
      for (;;) {
        const s = await daemon.ok("stats") as StatsResult;
        if ((s.rules.find((r) => r.name === "cam1")?.packets ?? 0) > 0) break;
        if (Date.now() - t0 > 30_000) throw new Error("no datagram reached the relay");
        await new Promise((r) => setTimeout(r, 50));
      }

      const cap = await daemon.ctl(
        "capture",
        "cam1",
        "--count",
        String(N),
        "-w",
        capFile,
        "--json",
      );
      assert.equal(cap.code, 0, cap.stderr);
      const end = JSON.parse(cap.stdout.trim().split("\n").pop()!);
      assert.equal(end.type, "end");
      assert.equal(end.reason, "count");
      assert.equal(end.frames, N);
      assert.equal(end.drops, 0, "a 4 MiB capture buffer holds 500 pps");
      assert.match(cap.stderr, new RegExp(`${N} frames of rule cam1 written`));
      assert.equal((await Deno.stat(capFile)).mode! & 0o777, 0o600);

      // a rule with one input has input 0 only
      const bad = await daemon.ctl("capture", "cam1", "--input", "1", "-w", `${dir}/x.pcapng`);
      assert.equal(bad.code, 1, bad.stderr);
      assert.match(bad.stderr, /args\.input: the rule has 1 input \(index 0\); got 1 \[bad_args\]/);
      const none = await daemon.ctl("capture", "nope", "-w", `${dir}/x.pcapng`);
      assert.equal(none.code, 1, none.stderr);
      assert.match(none.stderr, /not_found/);

      // a client that dies leaves no capture running
      const longFile = `${dir}/long.pcapng`;
      const long = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-write",
          "--allow-net",
          `${REPO}/cli.ts`,
          "ctl",
          "--control-socket",
          daemon.socket,
          "capture",
          "cam1",
          "--count",
          "1000000",
          "--seconds",
          "3600",
          "-w",
          longFile,
        ],
        stdout: "null",
        stderr: "null",
      }).spawn();
      procs.push(long);
      await waitForBytes(longFile, 64, "the long capture to start");
      const busy = await daemon.ctl("capture", "cam1", "--count", "1", "-w", `${dir}/y.pcapng`);
      assert.equal(busy.code, 1, busy.stderr);
      assert.match(busy.stderr, /being captured already \[busy\]/);
      long.kill("SIGKILL");
      await long.status;
      const t1 = Date.now();
      for (;;) {
        const again = await daemon.ctl(
          "capture",
          "cam1",
          "--count",
          "3",
          "--seconds",
          "5",
          "-w",
          `${dir}/again.pcapng`,
        );
        if (again.code === 0) break;
        assert.match(again.stderr, /busy/, again.stderr);
        if (Date.now() - t1 > 30_000) throw new Error("the dead client's capture still runs");
        await new Promise((r) => setTimeout(r, 200));
      }

      const g = await gen.wait();
      assert.equal(g.code, 0, g.stderr);
      const sent = JSON.parse(g.stdout).sent as number;
      const sunk = await sink.result();
      const got = sunk.groups[0].streams[0]?.received ?? 0;
      assert.ok(got >= N, `the receiver got the stream while it was captured (${got} of ${sent})`);
      await new Promise((r) => setTimeout(r, 500)); // the last frames into tshark's file
      wire.kill("SIGINT");
      await wire.wait();

      // tshark reads the capture: N frames, each one a frame the sender sent, in order, none
      // of the stream left out between the first and the last
      const captured = await readPcap(capFile);
      const onWire = await readPcap(sentFile);
      assert.equal(captured.length, N);
      assert.ok(onWire.length >= N, `tshark on s0 recorded ${onWire.length} frames`);
      const first = onWire.findIndex((w) => w.frame === captured[0].frame);
      assert.ok(
        first >= 0,
        `the first captured frame is one the sender sent: ${captured[0].frame.slice(0, 160)}`,
      );
      for (let k = 0; k < N; k++) {
        const w = onWire[first + k];
        assert.ok(w, `the sender's frame ${first + k}`);
        assert.equal(captured[k].frame, w.frame, `frame ${k} as the sender sent it`);
        assert.ok(
          Math.abs(captured[k].timeUs - w.timeUs) < 60_000_000,
          `frame ${k} dated ${captured[k].timeUs} µs, sent at ${w.timeUs} µs`,
        );
      }
      console.log(
        `capture: ${N} frames, identical to the sender's frames ${first}..${first + N - 1} of ` +
          `${onWire.length} recorded on s0; the receiver got ${got} of ${sent}`,
      );
      // the payloads differ (a sequence number): the comparison is not of N equal frames
      assert.equal(new Set(captured.map((c) => c.frame)).size, N);
    } finally {
      for (const p of procs) {
        try {
          p.kill("SIGKILL");
        } catch { /* gone */ }
      }
      await d?.stop();
      await t.destroy();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

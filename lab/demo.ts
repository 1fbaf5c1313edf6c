/**
 * `cli.ts demo`: a self-contained demonstration. Builds a small topology in
 * network namespaces (sender — relay — two receivers), runs the relay with an
 * embedded rule set (translation, 1:3 fan-out over two interfaces, multicast →
 * unicast), drives paced test traffic, shows live delivery, prints a final
 * delivery table per output counted by independent receivers, and tears
 * everything down — also when interrupted.
 *
 * @module
 */
import { BUILD, REPO, Topology, waitForFile } from "./netns.ts";
import { type RelayProc, runGen, type SinkReport, startRelayWith } from "./harness.ts";
import { ControlClient } from "../src/client/client.ts";
import type { StatsResult } from "../src/control/results.ts";

/** The demo's rule set (also printed by the demo). */
export const DEMO_RULES = {
  rules: [
    {
      name: "translate",
      input: { interface: "r0", group: "239.1.1.1", port: 5001 },
      outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
    },
    {
      name: "fanout",
      input: { interface: "r0", group: "239.1.1.2", port: 5002 },
      outputs: [
        { interface: "r1", group: "239.10.2.1", port: 6002 },
        { interface: "r2", group: "239.20.2.1", port: 6002 },
        { interface: "r2", group: "239.20.2.2", port: 6003 },
      ],
    },
    {
      name: "to-unicast",
      input: { interface: "r0", group: "239.1.1.3", port: 5003 },
      outputs: [{ interface: "r2", group: "10.77.3.2", port: 7003 }],
    },
  ],
};

interface LiveSink {
  label: string;
  groups: string[];
  expect: number;
  latest: { unique: number; lost: number; duplicates: number };
  done: Promise<SinkReport>;
  kill(): void;
}

function spawnSink(
  topo: Topology,
  role: string,
  iface: string,
  label: string,
  groups: string[],
  expect: number,
  ready: string,
): LiveSink {
  const args = ["netns", "exec", topo.ns(role), `${BUILD}/mcr-sink`, "--iface", iface, "--json"];
  for (const g of groups) args.push("--group", g);
  args.push("--expect-total", String(expect), "--idle-ms", "2000", "--duration", "60");
  args.push("--interval-ms", "250", "--ready-file", ready);
  const child = new Deno.Command("ip", { args, stdout: "piped", stderr: "piped", stdin: "null" })
    .spawn();
  const sink: LiveSink = {
    label,
    groups,
    expect,
    latest: { unique: 0, lost: 0, duplicates: 0 },
    done: new Response(child.stdout).text().then((t) => JSON.parse(t) as SinkReport),
    kill: () => {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
    },
  };
  (async () => {
    let buf = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const j = JSON.parse(line);
          if (typeof j.unique === "number") sink.latest = j;
        } catch { /* not a progress line */ }
      }
    }
  })();
  return sink;
}

function bar(done: number, total: number, width = 24): string {
  const f = total ? Math.min(1, done / total) : 0;
  const n = Math.round(f * width);
  return "[" + "#".repeat(n) + ".".repeat(width - n) + "]";
}

const num = (n: number) => Math.round(n).toLocaleString("en-US");

/** Start the relay (cli.ts) in the relay namespace with a control socket in `dir`. */
function spawnRelay(t: Topology, dir: string): Promise<RelayProc> {
  return startRelayWith(t, "rly", DEMO_RULES, {
    dir,
    perms: ["-A"],
    args: ["--control-socket", `${dir}/control.sock`],
  });
}

/**
 * The live view: sender progress, the relay's own counters (read through its
 * control socket, as `cli.ts top` does) and what each receiver counted.
 */
export function renderLive(
  elapsedS: number,
  seconds: number,
  rate: number,
  stats: StatsResult | undefined,
  sinks: { label: string; unique: number; expect: number }[],
): string[] {
  const lines = [
    `sender    ${bar(elapsedS, seconds)} ${
      String(Math.min(100, Math.round(elapsedS / seconds * 100))).padStart(3)
    }%  ${Math.min(elapsedS, seconds).toFixed(1)} of ${seconds} s, 3 streams × ${num(rate)} pps`,
  ];
  if (stats) {
    stats.rules.forEach((r, i) => {
      const sent = r.outputs.reduce((a, o) => a + o.packets, 0);
      lines.push(
        `${i === 0 ? "relay" : ""}`.padEnd(10) +
          `${r.name.padEnd(11)} in ${num(r.packets).padStart(7)}  ${num(r.pps).padStart(6)} pps` +
          `  → ${r.outputs.length} out, sent ${num(sent).padStart(7)}`,
      );
    });
    const drops = Object.entries(stats.drops).filter(([, v]) => v > 0);
    const kernel = stats.interfaces.reduce((a, i) => a + i.kernel_drops, 0);
    lines.push(
      "".padEnd(10) +
        `drops: ${drops.length ? drops.map(([k, v]) => `${k} ${num(v)}`).join(", ") : "none"}` +
        `, kernel ring drops ${num(kernel)}`,
    );
  } else lines.push("relay     (waiting for the control socket)");
  sinks.forEach((s, i) =>
    lines.push(
      `${i === 0 ? "receivers" : ""}`.padEnd(10) +
        `${s.label} ${bar(s.unique, s.expect)} ${num(s.unique)}/${num(s.expect)}`,
    )
  );
  return lines;
}

/** Run the demo; returns an exit code. */
export async function runDemo(opts: { rate?: number; seconds?: number } = {}): Promise<number> {
  if (Deno.uid() !== 0) {
    console.error(
      "mcr demo builds network namespaces and needs root: run it with sudo (or as root).",
    );
    return 3;
  }
  for (const f of ["libmcr.so", "mcr-gen", "mcr-sink"]) {
    try {
      Deno.statSync(`${BUILD}/${f}`);
    } catch {
      console.log("building libmcr and the traffic tools ...");
      const b = await new Deno.Command("bash", { args: [`${REPO}/scripts/build.sh`] }).output();
      if (!b.success) {
        console.error(new TextDecoder().decode(b.stderr));
        return 3;
      }
      break;
    }
  }
  const rate = opts.rate ?? 5000;
  const seconds = opts.seconds ?? 5;
  const count = rate * seconds;
  const sinks: LiveSink[] = [];
  let interrupted = false;
  const ref: { topo?: Topology; tmp?: string } = {};
  // Registered before the Topology's own handler (which removes the
  // namespaces and exits): first stop everything running inside them.
  const onSig = () => {
    interrupted = true;
    for (const s of sinks) s.kill();
    for (const n of ref.topo?.namespaces ?? []) {
      const pids = new Deno.Command("ip", { args: ["netns", "pids", n], stdout: "piped" })
        .outputSync();
      for (const p of new TextDecoder().decode(pids.stdout).split("\n").filter(Boolean)) {
        try {
          Deno.kill(Number(p), "SIGKILL");
        } catch { /* gone */ }
      }
    }
    if (ref.tmp) {
      try {
        Deno.removeSync(ref.tmp, { recursive: true });
      } catch { /* gone */ }
    }
    console.log("\ninterrupted: relay and receivers stopped, topology removed");
  };
  Deno.addSignalListener("SIGINT", onSig);
  Deno.addSignalListener("SIGTERM", onSig);
  const t = new Topology("demo");
  ref.topo = t;
  const tmp = await Deno.makeTempDir({ prefix: "mcr-demo-" });
  ref.tmp = tmp;
  let client: ControlClient | undefined;
  try {
    console.log("topology: sender(s0) —— (r0) relay (r1) —— (d0) receiver-1");
    console.log("                                 (r2) —— (e0) receiver-2\n");
    await t.addNs("snd");
    await t.addNs("rly");
    await t.addNs("rc1");
    await t.addNs("rc2");
    await t.link({ role: "snd", dev: "s0", addr: "10.77.1.1/24" }, {
      role: "rly",
      dev: "r0",
      addr: "10.77.1.2/24",
    });
    await t.link({ role: "rly", dev: "r1", addr: "10.77.2.1/24" }, {
      role: "rc1",
      dev: "d0",
      addr: "10.77.2.2/24",
    });
    await t.link({ role: "rly", dev: "r2", addr: "10.77.3.1/24" }, {
      role: "rc2",
      dev: "e0",
      addr: "10.77.3.2/24",
    });
    console.log("rules:");
    for (const r of DEMO_RULES.rules) {
      const outs = r.outputs.map((o) => `${o.interface} ${o.group}:${o.port}`).join(", ");
      console.log(
        `  ${r.name.padEnd(11)} ${r.input.interface} ${r.input.group}:${r.input.port} → ${outs}`,
      );
    }
    const relay = await spawnRelay(t, tmp);
    try {
      client = await ControlClient.connect(`${tmp}/control.sock`, 2000);
    } catch { /* the live view shows receivers only */ }
    const specs: [string, string, string, string[]][] = [
      ["rc1", "d0", "receiver-1", ["239.10.1.1:6001", "239.10.2.1:6002"]],
      ["rc2", "e0", "receiver-2", ["239.20.2.1:6002", "239.20.2.2:6003", "0.0.0.0:7003"]],
    ];
    for (const [role, dev, label, groups] of specs) {
      const ready = `${tmp}/${label}.ready`;
      sinks.push(spawnSink(t, role, dev, label, groups, groups.length * count, ready));
      await waitForFile(ready, 10_000, `${label} to join`);
    }
    console.log(`\nsending 3 streams × ${rate} pps × ${seconds} s (1024-byte payloads) ...`);
    const gen = runGen(t, "snd", "s0", ["239.1.1.1:5001", "239.1.1.2:5002", "239.1.1.3:5003"], {
      rate: rate * 3,
      count,
      size: 1024,
    });
    let genDone = false;
    gen.finally(() => genDone = true);
    const tty = Deno.stdout.isTerminal();
    const enc = new TextEncoder();
    const t0 = performance.now();
    let drawn = 0;
    let lastPlain = 0;
    const draw = async (final = false) => {
      let stats: StatsResult | undefined;
      try {
        const r = await client?.request<StatsResult>("stats");
        if (r?.ok) stats = r.result;
      } catch { /* relay busy or gone: keep the last view */ }
      const el = (performance.now() - t0) / 1000;
      const lines = renderLive(
        final ? seconds : el,
        seconds,
        rate,
        stats,
        sinks.map((s) => ({ label: s.label, unique: s.latest.unique, expect: s.expect })),
      );
      if (tty) {
        // redraw in place: up over the previous frame, clear each line
        const up = drawn ? `\x1b[${drawn}A` : "";
        await Deno.stdout.write(enc.encode(up + lines.map((l) => `\x1b[2K${l}\n`).join("")));
        drawn = lines.length;
      } else if (final || el - lastPlain >= 1) {
        lastPlain = el;
        console.log(lines.join("\n") + "\n");
      }
    };
    while (!genDone && !interrupted) {
      await new Promise((r) => setTimeout(r, 250));
      await draw();
    }
    const genReport = await gen;
    const reports = await Promise.all(sinks.map((s) => s.done));
    for (const [i, s] of sinks.entries()) s.latest = reports[i].total;
    if (!interrupted) await draw(true);
    await client?.close();
    client = undefined;
    const { stats } = await relay.stop();
    console.log(`\ngenerator sent ${genReport.sent} datagrams\n`);
    const rows: string[][] = [[
      "RULE",
      "OUTPUT",
      "RECEIVER",
      "DELIVERED",
      "LOST",
      "DUP",
      "REORDERED",
      "CORRUPT",
    ]];
    for (const r of stats.rules) {
      for (const o of r.outputs) {
        const key = `${o.group}:${o.port}`;
        let found: { rep: SinkReport; label: string } | undefined;
        sinks.forEach((s, i) => {
          const g = s.groups.find((x) => x === key || x === `0.0.0.0:${o.port}`);
          if (g) found = { rep: reports[i], label: s.label };
        });
        const grp = found?.rep.groups.find((g) => g.port === o.port);
        const sum = (k: "unique" | "lost" | "duplicates" | "reordered" | "corrupt") =>
          grp ? grp.streams.reduce((a, s) => a + s[k], 0) : 0;
        rows.push([
          r.name,
          `${o.interface} ${key}`,
          found?.label ?? "?",
          `${sum("unique")}/${count}`,
          String(sum("lost")),
          String(sum("duplicates")),
          String(sum("reordered")),
          String(sum("corrupt")),
        ]);
      }
    }
    const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    for (const r of rows) console.log(r.map((v, c) => v.padEnd(w[c])).join("  "));
    const ok = rows.slice(1).every((r) => r[3] === `${count}/${count}` && r[5] === "0");
    console.log(
      ok
        ? "\nevery output received every datagram exactly once (counted by independent receivers)"
        : "\nsome datagrams were not delivered: see the table",
    );
    return ok ? 0 : 1;
  } finally {
    Deno.removeSignalListener("SIGINT", onSig);
    Deno.removeSignalListener("SIGTERM", onSig);
    for (const s of sinks) s.kill();
    await client?.close().catch(() => {});
    await t.destroy();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    if (interrupted) console.log("interrupted: topology removed");
  }
}

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({
    args: Deno.args,
    options: { rate: { type: "string" }, seconds: { type: "string" } },
  });
  Deno.exit(
    await runDemo({
      rate: values.rate ? Number(values.rate) : undefined,
      seconds: values.seconds ? Number(values.seconds) : undefined,
    }),
  );
}

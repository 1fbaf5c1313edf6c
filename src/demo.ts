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
import { runGen, type SinkReport, startRelay } from "./harness.ts";

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
  const t = new Topology("demo");
  const sinks: LiveSink[] = [];
  let interrupted = false;
  const onSig = () => {
    interrupted = true;
    for (const s of sinks) s.kill();
  };
  Deno.addSignalListener("SIGINT", onSig);
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
    const relay = await startRelay(t, "rly", DEMO_RULES);
    const tmp = await Deno.makeTempDir({ prefix: "mcr-demo-" });
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
    while (!genDone && !interrupted) {
      await new Promise((r) => setTimeout(r, 250));
      const line = sinks.map((s) =>
        `${s.label} ${bar(s.latest.unique, s.expect)} ${s.latest.unique}/${s.expect}`
      ).join("   ");
      if (tty) await Deno.stdout.write(new TextEncoder().encode(`\r${line}`));
    }
    const genReport = await gen;
    const reports = await Promise.all(sinks.map((s) => s.done));
    if (tty) console.log();
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
    for (const s of sinks) s.kill();
    await t.destroy();
    if (interrupted) console.log("\ninterrupted: topology removed");
  }
}

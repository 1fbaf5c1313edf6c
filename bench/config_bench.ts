/**
 * What reading and validating rules.json costs, for ordinary and hostile
 * files: wall time and peak RSS of `loadConfig` in a fresh process per case
 * (the figures behind MAX_CONFIG_BYTES and MAX_CONFIG_VALUES in
 * src/config/; see docs/limits.md).
 *
 *     deno run -A bench/config_bench.ts            # all cases, table on stdout
 *     deno run -A bench/config_bench.ts --json     # the same as JSON
 *
 * Not part of `deno task test` (no timing assertions in tests).
 *
 * @module
 */
import { loadConfig, MAX_CONFIG_BYTES, MAX_CONFIG_VALUES } from "../src/config/mod.ts";

/** A hostile or ordinary rules.json. */
interface Case {
  name: string;
  what: string;
  make: () => string;
}

const output = (i: number, j: number) => ({
  interface: `eth${j + 1}`,
  group: `239.${100 + j}.${(i >> 8) & 255}.${i & 255}`,
  port: 6000,
  ttl: 8,
  dscp: 46,
  source_ip: "10.0.0.2",
  source_port: 7000,
});

function rulesDoc(rules: number, outputs: number, full: boolean): string {
  const doc = {
    rules: Array.from({ length: rules }, (_, i) => {
      const outs = Array.from({ length: outputs }, (_, j) => {
        const o = output(i, j);
        return full ? o : { interface: o.interface, group: o.group, port: o.port, ttl: o.ttl };
      });
      const input = {
        interface: "eth0",
        group: `239.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
        port: 5000,
      };
      return full
        ? {
          name: `rule-${i}`,
          enabled: true,
          input: { ...input, source: "10.0.0.1", vlan: 100 },
          outputs: outs,
          ttl: 16,
          dscp: 10,
          allow_link_local: false,
        }
        : { name: `rule-${i}`, input, outputs: outs };
    }),
  };
  return JSON.stringify(doc, null, 2);
}

/** Rules whose every field is wrong: the most problems per value. */
function allInvalid(rules: number): string {
  const o =
    '{"interface":"a/b","group":"1","port":0,"ttl":0,"dscp":99,"source_ip":"x","source_port":0}';
  const r = `{"name":"bad name","input":{"interface":"a/b","group":"x","port":0},"outputs":[${
    Array(64).fill(o).join(",")
  }],"ttl":0,"dscp":99}`;
  return `{"rules": [${Array(rules).fill(r).join(",")}]}`;
}

const CASES: Case[] = [
  {
    name: "largest-runnable",
    what: "4096 rules x 4 outputs (16,384: the slot capacity), every field set, 2-space indent",
    make: () => rulesDoc(4096, 4, true),
  },
  {
    name: "65536x4",
    what: "65,536 rules x 4 outputs, 2-space indent (what MAX_CONFIG_BYTES is sized for)",
    make: () => rulesDoc(65536, 4, false),
  },
  {
    name: "string-63MiB",
    what: "one 63 MiB string value (was: a minute, GBs with the old scanner)",
    make: () => `{"rules": [], "x": "${"a".repeat(63 * 1024 * 1024)}"}`,
  },
  {
    name: "over-size",
    what: "MAX_CONFIG_BYTES + 1 bytes (refused before reading)",
    make: () => " ".repeat(MAX_CONFIG_BYTES + 1),
  },
  {
    name: "empty-objects",
    what: '{"rules": [{},{},...]} at the byte cap: 22 M objects',
    make: () => `{"rules": [${"{},".repeat(Math.floor((MAX_CONFIG_BYTES - 20) / 3))}{}]}`,
  },
  {
    name: "invalid-4096x64",
    what: "4096 rules x 64 outputs, every field invalid (1.9 M problems unbounded)",
    make: () => allInvalid(4096),
  },
  {
    name: "invalid-at-value-cap",
    what: "as many all-invalid rules as fit under MAX_CONFIG_VALUES (the worst validation)",
    // 1 root + 1 array + per rule: rule, name, input + 3, outputs array, 64 x 8, ttl, dscp
    make: () => allInvalid(Math.floor((MAX_CONFIG_VALUES - 2) / (8 + 64 * 8 + 2))),
  },
];

/** Peak resident set size of this process, in MB (VmHWM). */
async function peakRssMb(): Promise<number> {
  const status = await Deno.readTextFile("/proc/self/status");
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  return Math.round(kb / 1024);
}

/** Child: load one file, report time, peak RSS and the outcome. */
async function child(path: string): Promise<void> {
  const t0 = performance.now();
  let outcome: string;
  try {
    const c = await loadConfig(path, { quoteValues: false });
    outcome = `valid (${c.rules.length} rules)`;
  } catch (e) {
    const issues = (e as { issues?: unknown[] }).issues?.length;
    const first = (e as Error).message.split("\n")[1]?.trim() ?? String(e);
    outcome = `refused (${issues} issue${issues === 1 ? "" : "s"}): ${first.slice(0, 100)}`;
  }
  const ms = Math.round(performance.now() - t0);
  console.log(JSON.stringify({ ms, peak_rss_mb: await peakRssMb(), outcome }));
}

async function main(): Promise<void> {
  const args = Deno.args;
  const at = args.indexOf("--child");
  if (at >= 0) return await child(args[at + 1]);
  const dir = await Deno.makeTempDir({ prefix: "mcr-config-bench-" });
  const rows: Record<string, unknown>[] = [];
  try {
    for (const c of CASES) {
      const path = `${dir}/${c.name}.json`;
      const text = c.make();
      await Deno.writeTextFile(path, text);
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL(import.meta.url).pathname, "--child", path],
        stdout: "piped",
        stderr: "inherit",
      }).output();
      const r = JSON.parse(new TextDecoder().decode(out.stdout));
      rows.push({ case: c.name, what: c.what, bytes: text.length, ...r });
      await Deno.remove(path);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  if (args.includes("--json")) {
    console.log(JSON.stringify({ deno: Deno.version, cases: rows }, null, 2));
    return;
  }
  console.log("| case | bytes | time | peak RSS | outcome |\n|---|---|---|---|---|");
  for (const r of rows) {
    console.log(
      `| ${r.case} | ${(r.bytes as number).toLocaleString("en-US")} | ${r.ms} ms | ` +
        `${r.peak_rss_mb} MB | ${r.outcome} |`,
    );
  }
}

await main();

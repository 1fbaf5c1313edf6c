/**
 * `deno task compile` (scripts/compile.sh): without a denort base binary it
 * fails with a message saying what to do; with one (DENORT_BIN), the single
 * binary it builds validates configs, prints the schema and — copied alone to
 * another directory, with no libmcr.so beside it and no MCR_LIB — relays
 * traffic in namespaces with the libmcr and worker it carries.
 */
import assert from "node:assert/strict";
import { chainTopology, Proc, skipReason, type Topology, waitForFile } from "../../lab/netns.ts";
import { runGen, startSink } from "../../lab/harness.ts";

const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const denort = Deno.env.get("DENORT_BIN");
let denortProblem: string | null = null;
if (!denort) {
  denortProblem = "DENORT_BIN is not set (deno compile needs a denort base binary, which " +
    "cannot be downloaded on this machine)";
} else {
  try {
    if (!Deno.statSync(denort).isFile) denortProblem = `DENORT_BIN=${denort} is not a file`;
  } catch {
    denortProblem = `DENORT_BIN=${denort} does not exist`;
  }
}
if (denortProblem) console.warn(`compile test (single binary) skipped: ${denortProblem}`);

async function compile(env: Record<string, string>) {
  const out = await new Deno.Command("bash", {
    args: [`${REPO}/scripts/compile.sh`],
    env: { DENO: Deno.execPath(), NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

async function run(cmd: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

Deno.test("deno task compile without DENORT_BIN fails saying what to do (exit 1)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mcr-compile-" });
  try {
    const r = await compile({ DENORT_BIN: "", MCR_COMPILE_OUT: dir });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /DENORT_BIN is not set/);
    assert.match(r.stderr, /dl\.deno\.land\/release\/v\d+\.\d+\.\d+\/denort-/);
    assert.match(r.stderr, /DENORT_BIN=\/path\/to\/denort deno task compile/);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "nothing built");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task compile with a DENORT_BIN that does not exist fails (exit 1)", async () => {
  const r = await compile({ DENORT_BIN: "/nonexistent/denort" });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /DENORT_BIN=\/nonexistent\/denort is not an executable file/);
});

Deno.test({
  name: "deno task compile: one binary that carries libmcr and its worker, and relays",
  ignore: denortProblem !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mcr-compile-" });
    const alone = await Deno.makeTempDir({ prefix: "mcr-alone-" });
    let t: Topology | undefined;
    try {
      const c = await compile({ DENORT_BIN: denort!, MCR_COMPILE_OUT: dir });
      assert.equal(c.code, 0, c.stdout + c.stderr);
      assert.ok(Deno.statSync(`${dir}/libmcr.so`).isFile, "libmcr.so shipped beside it");
      const bin = `${alone}/mcr`;
      await Deno.copyFile(`${dir}/mcr`, bin);
      await Deno.chmod(bin, 0o755);
      const noLib = { MCR_LIB: "" };

      const schema = await run([bin, "schema"], noLib);
      assert.equal(schema.code, 0, schema.stderr);
      assert.equal(schema.stdout, Deno.readTextFileSync(`${REPO}/schema/rules.schema.json`));
      const check = await run(
        [bin, "check", "--config", `${REPO}/tests/fixtures/config/valid-full.json`],
        noLib,
      );
      assert.equal(check.code, 0, check.stderr);
      const bad = await run(
        [bin, "check", "--config", `${REPO}/tests/fixtures/config/invalid-port-range.json`],
        noLib,
      );
      assert.equal(bad.code, 1);

      const skip = skipReason();
      if (skip) {
        console.warn(`compiled binary relay check skipped: ${skip}`);
        return;
      }
      t = await chainTopology("compiled");
      await Deno.writeTextFile(
        `${alone}/rules.json`,
        JSON.stringify({
          rules: [{
            name: "cam1",
            input: { interface: "r0", group: "239.1.1.1", port: 5001 },
            outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
          }],
        }),
      );
      // env -u: the binary must find libmcr by itself (embedded), not through MCR_LIB
      const relay = new Proc(t.ns("rly"), [
        "env",
        "-u",
        "MCR_LIB",
        bin,
        "--config",
        `${alone}/rules.json`,
        "--ready-file",
        `${alone}/ready`,
        "--no-control",
        "--json",
      ]);
      await waitForFile(`${alone}/ready`, 20_000, "the compiled relay").catch(async (e) => {
        relay.kill("SIGKILL");
        throw new Error(`${e.message}: ${(await relay.wait()).stderr}`);
      });
      const N = 5000;
      const sink = await startSink(t, "rcv", "d0", ["239.10.1.1:6001"], { expectTotal: N });
      await runGen(t, "snd", "s0", ["239.1.1.1:5001"], { rate: 10_000, count: N });
      const rep = await sink.result();
      relay.kill("SIGTERM");
      const r = await relay.wait();
      assert.equal(r.code, 0, r.stderr);
      assert.equal(rep.total.unique, N);
      assert.equal(rep.total.duplicates, 0);
      const stats = JSON.parse(r.stdout.trim().split("\n").pop()!);
      assert.equal(stats.rules[0].packets, N);
      assert.ok(!Deno.readDirSync(alone).some((e) => e.name === "libmcr.so"));
    } finally {
      await t?.destroy();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(alone, { recursive: true }).catch(() => {});
    }
  },
});

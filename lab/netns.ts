/**
 * Network-namespace topologies for tests, the demo and the benchmarks. Every
 * namespace name is unique to this process
 * (`<MCR_TEST_PREFIX>-<pid>-<n>-<tag>-<role>`, prefix `mcrt` by default), every
 * address lives inside the namespaces the test made, and `Topology.destroy()`
 * (called in `finally` and on SIGINT/SIGTERM) deletes everything even when a
 * test fails.
 *
 * @module
 */

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
/** Repository root. */
export const REPO: string = ROOT;

/**
 * The V8 flags the relay is run with everywhere it is documented (deno.json
 * `relay`, the README, scripts/compile.sh, packaging): a young generation of
 * at most 4 MB per semi-space instead of V8's default for a machine with
 * this much memory — about 120 MB less RSS at 65,536 rules (README
 * "Memory"). `MCR_RELAY_V8_FLAGS` replaces them for the tests and benches
 * ("none": V8's defaults), to measure what they change.
 */
export const RELAY_V8_FLAGS: string[] = ((f) => f === "none" ? [] : [`--v8-flags=${f}`])(
  Deno.env.get("MCR_RELAY_V8_FLAGS") ?? "--max-semi-space-size=4",
);

/** Build directory with libmcr and the tools. */
export const BUILD: string = `${ROOT}/build`;

/** The path of an installed program `name` (in /usr/bin, /usr/sbin or /usr/local/bin), or null. */
export function findProgram(name: string): string | null {
  for (const dir of ["/usr/bin", "/usr/sbin", "/usr/local/bin"]) {
    try {
      Deno.statSync(`${dir}/${name}`);
      return `${dir}/${name}`;
    } catch { /* next */ }
  }
  return null;
}

/** True when running as root (namespace tests need it). */
export function isRoot(): boolean {
  return Deno.uid() === 0;
}

/** Reason to skip namespace tests, or null when they can run. */
export function skipReason(): string | null {
  if (!isRoot()) return "needs root (network namespaces)";
  try {
    Deno.statSync(`${BUILD}/libmcr.so`);
    Deno.statSync(`${BUILD}/mcr-gen`);
    Deno.statSync(`${BUILD}/mcr-sink`);
  } catch {
    return "build/ is missing libmcr.so or the tools: run `deno task build`";
  }
  return null;
}

/** Run a command, throw with its stderr on failure; returns stdout. */
export async function sh(cmd: string[], opts: { allowFail?: boolean } = {}): Promise<string> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success && !opts.allowFail) {
    throw new Error(
      `${cmd.join(" ")} failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return text;
}

/** Output of a finished command. */
export interface RunResult {
  /** Exit code. */
  code: number;
  /** Decoded standard output. */
  stdout: string;
  /** Decoded standard error. */
  stderr: string;
}

/** Run this Deno executable with `args` (NO_COLOR set) to completion. */
export async function runDeno(args: string[]): Promise<RunResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/** Namespace name prefix when MCR_TEST_PREFIX is unset. */
export const DEFAULT_TEST_PREFIX = "mcrt";
/** What MCR_TEST_PREFIX may hold: it becomes part of namespace names (a file in /run/netns). */
const TEST_PREFIX_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

/**
 * The namespace name prefix: MCR_TEST_PREFIX, or {@link DEFAULT_TEST_PREFIX}.
 * Lets two runs on one machine (or a CI job and a developer) tell their
 * namespaces apart and clean up only their own (`ip netns list | grep ^PREFIX-`).
 */
export function testPrefix(): string {
  const p = Deno.env.get("MCR_TEST_PREFIX") ?? DEFAULT_TEST_PREFIX;
  if (!TEST_PREFIX_RE.test(p)) {
    throw new Error(
      `MCR_TEST_PREFIX must be 1-32 characters of letters, digits, '_', '.' or '-', starting ` +
        `with a letter or digit (it becomes part of network namespace names)`,
    );
  }
  return p;
}

let counter = 0;
const live = new Set<Topology>();
let handlersInstalled = false;

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const cleanup = () => {
    for (const t of live) t.destroySync();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", cleanup);
  Deno.addSignalListener("SIGTERM", cleanup);
  globalThis.addEventListener("unload", () => {
    for (const t of live) t.destroySync();
  });
}

/** A set of namespaces and links made by one test. */
export class Topology {
  /** Namespace name prefix (`<MCR_TEST_PREFIX>-<pid>-<n>-<tag>`), unique to this process and topology. */
  readonly prefix: string;
  /**
   * Short unique tag for temporary link names (≤ 10 chars; interface names have at most 15). A
   * veth pair is created directly inside its two namespaces, so these names never meet another
   * run's and carry no MCR_TEST_PREFIX (there is no room for it).
   */
  readonly short: string;
  /** Namespaces created so far. */
  readonly namespaces: string[] = [];
  #links = 0;

  /** @param tag short label that ends up in namespace names */
  constructor(tag: string) {
    ++counter;
    this.prefix = `${testPrefix()}-${Deno.pid}-${counter}-${tag}`;
    this.short = `m${Deno.pid.toString(36)}${counter.toString(36)}`.slice(0, 10);
    live.add(this);
    installHandlers();
  }

  /** Full name of a namespace role. */
  ns(role: string): string {
    return `${this.prefix}-${role}`;
  }

  /** Create a namespace with lo up. */
  async addNs(role: string): Promise<string> {
    const n = this.ns(role);
    await sh(["ip", "netns", "add", n]);
    this.namespaces.push(n);
    await this.exec(role, ["ip", "link", "set", "lo", "up"]);
    return n;
  }

  /** Run a command inside a namespace. */
  exec(role: string, cmd: string[], opts: { allowFail?: boolean } = {}): Promise<string> {
    return sh(["ip", "netns", "exec", this.ns(role), ...cmd], opts);
  }

  /**
   * Create a veth pair between two namespaces, with names and optional
   * addresses (CIDR), both ends up.
   */
  async link(
    a: { role: string; dev: string; addr?: string },
    b: { role: string; dev: string; addr?: string },
  ): Promise<void> {
    const t = `${this.short}${(++this.#links).toString(36)}a`;
    const u = t.slice(0, -1) + "b";
    await sh([
      "ip",
      "link",
      "add",
      t,
      "netns",
      this.ns(a.role),
      "type",
      "veth",
      "peer",
      "name",
      u,
      "netns",
      this.ns(b.role),
    ]);
    await this.exec(a.role, ["ip", "link", "set", t, "name", a.dev]);
    await this.exec(b.role, ["ip", "link", "set", u, "name", b.dev]);
    for (const e of [a, b]) {
      if (e.addr) await this.exec(e.role, ["ip", "addr", "add", e.addr, "dev", e.dev]);
      await this.exec(e.role, ["ip", "link", "set", e.dev, "up"]);
    }
  }

  /** Set a sysctl inside a namespace. */
  sysctl(role: string, key: string, value: string): Promise<string> {
    return this.exec(role, ["sysctl", "-qw", `${key}=${value}`]);
  }

  /** Delete every namespace (idempotent). */
  async destroy(): Promise<void> {
    for (const n of this.namespaces.splice(0)) {
      const pids = await sh(["ip", "netns", "pids", n], { allowFail: true });
      for (const p of pids.split("\n").filter(Boolean)) {
        try {
          Deno.kill(Number(p), "SIGKILL");
        } catch { /* gone */ }
      }
      await sh(["ip", "netns", "del", n], { allowFail: true });
    }
    live.delete(this);
  }

  /** Synchronous best-effort cleanup for signal/unload paths. */
  destroySync(): void {
    for (const n of this.namespaces.splice(0)) {
      new Deno.Command("ip", { args: ["netns", "del", n], stdout: "null", stderr: "null" })
        .outputSync();
    }
    live.delete(this);
  }
}

/** A background process inside a namespace. */
export class Proc {
  readonly child: Deno.ChildProcess;
  readonly #stdout: Promise<string>;
  readonly #stderr: Promise<string>;

  constructor(ns: string, cmd: string[], env: Record<string, string> = {}) {
    this.child = new Deno.Command("ip", {
      args: ["netns", "exec", ns, ...cmd],
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
      env,
    }).spawn();
    this.#stdout = new Response(this.child.stdout).text();
    this.#stderr = new Response(this.child.stderr).text();
  }

  /** Send a signal. */
  kill(sig: Deno.Signal = "SIGTERM"): void {
    try {
      this.child.kill(sig);
    } catch { /* exited */ }
  }

  /** Wait for exit; returns code and output. */
  async wait(): Promise<{ code: number; stdout: string; stderr: string }> {
    const st = await this.child.status;
    return { code: st.code, stdout: await this.#stdout, stderr: await this.#stderr };
  }
}

/** Wait until a file exists (a tool's ready file), or throw after timeoutMs. */
export async function waitForFile(path: string, timeoutMs = 10_000, what = path): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    try {
      await Deno.stat(path);
      return;
    } catch { /* not yet */ }
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Packet and drop counters of one interface (`ip -s link`). */
export interface LinkCounters {
  /** Frames received. */
  rx_packets: number;
  /** Frames dropped on receive (for a veth: its peer's transmissions the backlog could not take). */
  rx_dropped: number;
  /** Frames sent. */
  tx_packets: number;
  /**
   * Frames dropped on transmit. For a veth this counts every frame the peer could not take
   * (peer's per-CPU backlog full: `netdev_max_backlog`, peer down, too big); the peer counts
   * the same drops again as `rx_dropped`.
   */
  tx_dropped: number;
}

/** Counters of every interface in a namespace, read in one `ip -s -j link` call (one snapshot). */
export async function linkCounters(
  topo: Topology,
  role: string,
): Promise<Record<string, LinkCounters>> {
  const links = JSON.parse(await topo.exec(role, ["ip", "-s", "-j", "link", "show"])) as {
    ifname: string;
    stats64?: {
      rx: { packets: number; dropped: number };
      tx: { packets: number; dropped: number };
    };
  }[];
  const out: Record<string, LinkCounters> = {};
  for (const l of links) {
    if (!l.stats64) continue;
    out[l.ifname] = {
      rx_packets: l.stats64.rx.packets,
      rx_dropped: l.stats64.rx.dropped,
      tx_packets: l.stats64.tx.packets,
      tx_dropped: l.stats64.tx.dropped,
    };
  }
  return out;
}

/**
 * Read one section of /proc/net/snmp inside a namespace (`Udp`, `Icmp`, `Ip`, ...):
 * counter name → value.
 */
export async function snmp(
  topo: Topology,
  role: string,
  section: string,
): Promise<Record<string, number>> {
  const text = await topo.exec(role, ["cat", "/proc/net/snmp"]);
  const lines = text.split("\n").filter((l) => l.startsWith(`${section}:`));
  if (lines.length < 2) throw new Error(`/proc/net/snmp has no ${section} section`);
  const keys = lines[0].split(/\s+/).slice(1);
  const vals = lines[1].split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(keys.map((k, i) => [k, vals[i]]));
}

/** Read Udp counters of /proc/net/snmp inside a namespace. */
export function udpSnmp(topo: Topology, role: string): Promise<Record<string, number>> {
  return snmp(topo, role, "Udp");
}

/**
 * Build the chain topology every test, the demo's core and the benchmarks use
 * into `t`: namespaces `snd` — `rly` — `rcv` (made by `addNs`, default
 * `t.addNs`); sender `s0` 10.77.1.1/24 ↔ relay input `r0` 10.77.1.2/24;
 * relay output `r1` 10.77.2.1/24 ↔ receiver `d0` 10.77.2.2/24. Every address
 * lives inside these namespaces.
 */
export async function buildChain(
  t: Topology,
  addNs: (role: string) => Promise<unknown> = (role) => t.addNs(role),
): Promise<void> {
  for (const role of ["snd", "rly", "rcv"]) await addNs(role);
  await t.link({ role: "snd", dev: "s0", addr: "10.77.1.1/24" }, {
    role: "rly",
    dev: "r0",
    addr: "10.77.1.2/24",
  });
  await t.link({ role: "rly", dev: "r1", addr: "10.77.2.1/24" }, {
    role: "rcv",
    dev: "d0",
    addr: "10.77.2.2/24",
  });
}

/**
 * Wait until IPv6 is up on every `[role, dev]`: the kernel's `multicast ff00::/8` route in the
 * local table, up to a second after the link came up. Before it, IPv6 multicast sent there is
 * dropped (Ip6InNoRoutes) and unicast waits on neighbour discovery.
 */
export async function waitIPv6(t: Topology, devs: [string, string][], ms = 10_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    let ready = true;
    for (const [role, dev] of devs) {
      const r = await t.exec(role, ["ip", "-6", "route", "show", "table", "local"]);
      if (!r.includes(`multicast ff00::/8 dev ${dev} `)) ready = false;
    }
    if (ready) return;
    if (Date.now() - t0 > ms) throw new Error("IPv6 did not come up on the links");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A new {@link Topology} holding the chain of {@link buildChain} (removed again on failure). */
export async function chainTopology(tag: string): Promise<Topology> {
  const t = new Topology(tag);
  try {
    await buildChain(t);
  } catch (e) {
    await t.destroy();
    throw e;
  }
  return t;
}

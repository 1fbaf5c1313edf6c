/**
 * Helpers for the robustness tests (hostile frames, faults, loops, privilege):
 * topologies with IPv6 off and a chosen MTU, a relay started with extra
 * arguments (no control socket, a wrapper such as setpriv), and mcr-inject.
 *
 * @module
 */
import { BUILD, buildChain, Proc, type Topology } from "../../lab/netns.ts";
import type { RelayStats } from "../../src/relay/stats.ts";
import { buildFrame } from "../fixtures/frames.ts";
import { mcrtPayload, pcap } from "../fixtures/hostile/generate.ts";

/** Add a namespace whose interfaces never get IPv6 (no ND/MLD frames). */
export async function addNsNoV6(t: Topology, role: string): Promise<void> {
  await t.addNs(role);
  for (const k of ["all", "default", "lo"]) {
    await t.sysctl(role, `net.ipv6.conf.${k}.disable_ipv6`, "1");
  }
}

/** Set an interface's MTU inside a namespace. */
export function mtu(t: Topology, role: string, dev: string, value: number): Promise<string> {
  return t.exec(role, ["ip", "link", "set", "dev", dev, "mtu", String(value)]);
}

/**
 * snd (s0 10.77.1.1) — (r0 10.77.1.2) rly (r1 10.77.2.1) — (d0 10.77.2.2) rcv,
 * IPv6 disabled everywhere; `mtu` on every veth; `extraOut` adds r2—d2
 * (10.77.3.0/24); `extraIn` adds s3—r3 (10.77.4.0/24).
 */
export async function chainV4(
  t: Topology,
  opts: { mtu?: number; extraOut?: boolean; extraIn?: boolean } = {},
): Promise<void> {
  await buildChain(t, (role) => addNsNoV6(t, role));
  const devs: [string, string][] = [["snd", "s0"], ["rly", "r0"], ["rly", "r1"], ["rcv", "d0"]];
  if (opts.extraOut) {
    await t.link({ role: "rly", dev: "r2", addr: "10.77.3.1/24" }, {
      role: "rcv",
      dev: "d2",
      addr: "10.77.3.2/24",
    });
    devs.push(["rly", "r2"], ["rcv", "d2"]);
  }
  if (opts.extraIn) {
    await t.link({ role: "snd", dev: "s3", addr: "10.77.4.1/24" }, {
      role: "rly",
      dev: "r3",
      addr: "10.77.4.2/24",
    });
    devs.push(["snd", "s3"], ["rly", "r3"]);
  }
  if (opts.mtu) { for (const [role, dev] of devs) await mtu(t, role, dev, opts.mtu); }
}

/** A private directory for config and ready files of one test (removed by `cleanup`). */
export async function workDir(prefix: string): Promise<string> {
  return await Deno.makeTempDir({ prefix: `mcr-${prefix}-` });
}

/** mcr-inject's JSON summary. */
export interface InjectReport {
  frames: number;
  file_sent: number;
  file_rejected: number;
  valid_sent: number;
  valid_rejected: number;
  /** Sends tried again after ENOBUFS/EAGAIN/EINTR (a veth that could not take the frame). */
  retries: number;
  files: { pcap: string; records: number; sent: number; rejected: number }[];
}

/** Run mcr-inject in a namespace. */
export async function runInject(t: Topology, role: string, args: string[]): Promise<InjectReport> {
  const r = await new Proc(t.ns(role), [`${BUILD}/mcr-inject`, "--json", ...args]).wait();
  if (r.code !== 0) throw new Error(`mcr-inject failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Sum of the frame-level drop reasons (what received = matched + drops counts). */
export const FRAME_DROPS = [
  "not_ipv4",
  "not_udp",
  "fragment",
  "malformed",
  "truncated",
  "vlan",
  "bad_checksum",
  "ipv6_extension",
  "no_match",
] as const;

/** Frames received on an interface = matched + frame-level drops (summed over interfaces). */
export function frameDrops(s: RelayStats): number {
  return FRAME_DROPS.reduce((a, k) => a + (s.drops[k] ?? 0), 0);
}

/**
 * Wait until `pred` on a value re-read every `everyMs` holds (no timing
 * assertion: throws on timeout).
 */
export async function until<T>(
  get: () => Promise<T>,
  pred: (v: T) => boolean,
  timeoutMs: number,
  what: string,
  everyMs = 100,
): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await get();
    if (pred(v)) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Resident set size (kB) of a process. */
export async function rssKb(pid: number): Promise<number> {
  const s = await Deno.readTextFile(`/proc/${pid}/status`);
  const m = s.match(/VmRSS:\s+(\d+)/);
  return m ? Number(m[1]) : 0;
}

/** One thread of a process: its name (comm) and nice value. */
export interface ThreadNice {
  /** Thread id. */
  tid: number;
  /** Thread name (/proc/PID/task/TID/comm). */
  comm: string;
  /** Nice value (field 19 of /proc/PID/task/TID/stat). */
  nice: number;
}

/** Every thread of a process with its name and nice value. */
export async function threadNices(pid: number): Promise<ThreadNice[]> {
  const out: ThreadNice[] = [];
  for await (const e of Deno.readDir(`/proc/${pid}/task`)) {
    try {
      const comm = (await Deno.readTextFile(`/proc/${pid}/task/${e.name}/comm`)).trim();
      const stat = await Deno.readTextFile(`/proc/${pid}/task/${e.name}/stat`);
      // fields after "comm)": state is field 3, so nice (field 19) is index 16
      const nice = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
      out.push({ tid: Number(e.name), comm, nice });
    } catch { /* the thread ended meanwhile */ }
  }
  return out;
}

/** Deno names the thread of each Web Worker "worker-N": the relay's data-path workers. */
export function dataPathThreads(threads: ThreadNice[]): ThreadNice[] {
  return threads.filter((t) => /^worker-\d+$/.test(t.comm));
}

/** Where {@link taggedStreams} sends: one destination, `n` datagrams of `size` bytes per stream. */
export interface TaggedStreamsOptions {
  /** Source address. */
  src: string;
  /** Destination group (or address). */
  dst: string;
  /** Destination port. */
  dport: number;
  /** Datagrams per stream. */
  n: number;
  /** UDP payload bytes. */
  size: number;
}

/**
 * A pcap of `o.n` datagrams for each of `streams` to one destination, interleaved round robin:
 * 802.1Q-tagged with `vid` (none: untagged), TTL 8, valid IPv4 and UDP checksums, mcr-sink
 * payloads (stream id, sequence numbers 0..n-1, the payload pattern). This kernel has no 802.1Q
 * subinterfaces (CONFIG_VLAN_8021Q is off, as are bridge VLAN filtering and tc's vlan action), so
 * a tagged sender is mcr-inject replaying these frames on the sender's veth; the receiving veth
 * hands the tag to the relay's ring as a real NIC with VLAN offload does.
 */
export function taggedStreams(
  streams: { id: number; vid?: number }[],
  o: TaggedStreamsOptions,
): Uint8Array {
  const frames: Uint8Array[] = [];
  for (let seq = 0; seq < o.n; seq++) {
    for (const s of streams) {
      frames.push(buildFrame({
        src: o.src,
        dst: o.dst,
        sport: 40000,
        dport: o.dport,
        ttl: 8,
        vlans: s.vid === undefined ? [] : [{ vid: s.vid }],
        payload: mcrtPayload(s.id, seq, o.size),
      }));
    }
  }
  return pcap(frames);
}

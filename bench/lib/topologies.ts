/**
 * The benchmark topologies, built in network namespaces with
 * `lab/netns.ts` (unique names, removed on exit and on SIGINT/SIGTERM), and
 * the workloads (stream sets) run over them.
 *
 * @module
 */
import { chainTopology as sharedChain, Topology } from "../../lab/netns.ts";

/** Where the sender, the relay and the receiver live in a topology. */
export interface BenchTopo {
  /** Topology name as shown in the tables ("chain", "dualbridge"). */
  name: string;
  /** One-line description. */
  describe: string;
  /** The namespaces. */
  topo: Topology;
  /** Sender namespace role and interface. */
  sender: { role: string; dev: string; addr: string };
  /** Relay namespace role, input and output interfaces with their addresses. */
  relay: { role: string; inDev: string; inAddr: string; outDev: string; outAddr: string };
  /** Receiver namespace role and interface. */
  receiver: { role: string; dev: string };
  /** A direct gen → sink veth with no relay (baseline), if this topology has one. */
  direct?: { sender: { role: string; dev: string }; receiver: { role: string; dev: string } };
}

/** Set rp_filter=0 and accept_local=1 on all/default and on each listed interface. */
async function relaxSourceChecks(t: Topology, role: string, devs: string[]): Promise<void> {
  for (const d of ["all", "default", ...devs]) {
    await t.sysctl(role, `net.ipv4.conf.${d}.rp_filter`, "0");
    await t.sysctl(role, `net.ipv4.conf.${d}.accept_local`, "1");
  }
}

/**
 * Chain of three namespaces plus a direct baseline link:
 *
 *     snd  s0 10.77.1.1 ── r0 10.77.1.2  rly  r1 10.77.2.1 ── d0 10.77.2.2  rcv
 *     snd  b0 10.77.9.1 ─────────────────────────────────────── b1 10.77.9.2 rcv
 */
export async function chainTopology(): Promise<BenchTopo> {
  const t = await sharedChain("bch");
  // plus a direct sender → receiver link for the no-relay baseline
  await t.link({ role: "snd", dev: "b0", addr: "10.77.9.1/24" }, {
    role: "rcv",
    dev: "b1",
    addr: "10.77.9.2/24",
  });
  return {
    name: "chain",
    describe: "sender — relay — receiver, three namespaces joined by veth pairs",
    topo: t,
    sender: { role: "snd", dev: "s0", addr: "10.77.1.1" },
    relay: { role: "rly", inDev: "r0", inAddr: "10.77.1.2", outDev: "r1", outAddr: "10.77.2.1" },
    receiver: { role: "rcv", dev: "d0" },
    direct: { sender: { role: "snd", dev: "b0" }, receiver: { role: "rcv", dev: "b1" } },
  };
}

/**
 * Single namespace, two bridges (multicast snooping off, so both flood):
 *
 *     s0 10.78.1.1 ─ s0p ┐br0┌ r0p ─ r0 10.78.1.2   (relay in)
 *     r1 10.78.2.1 ─ r1p ┐br1┌ d0p ─ d0 10.78.2.2   (relay out → receiver)
 *
 * Sender, relay and receiver share the namespace, so every datagram the
 * receiver and the relay get has a local source address: `accept_local=1`
 * and `rp_filter=0` are set (all, default and every interface) for every
 * relay under test (without them the receiving stack drops what socat relays,
 * and socat seems to fail where it works).
 */
export async function dualBridgeTopology(): Promise<BenchTopo> {
  const t = new Topology("bdb");
  await t.addNs("one");
  const pairs: [string, string, string][] = [
    ["s0", "10.78.1.1/24", "br0"],
    ["r0", "10.78.1.2/24", "br0"],
    ["r1", "10.78.2.1/24", "br1"],
    ["d0", "10.78.2.2/24", "br1"],
  ];
  for (const br of ["br0", "br1"]) {
    await t.exec("one", ["ip", "link", "add", br, "type", "bridge", "mcast_snooping", "0"]);
    await t.exec("one", ["ip", "link", "set", br, "up"]);
  }
  for (const [dev, addr, br] of pairs) {
    await t.link({ role: "one", dev, addr }, { role: "one", dev: `${dev}p` });
    await t.exec("one", ["ip", "link", "set", `${dev}p`, "master", br]);
  }
  await relaxSourceChecks(t, "one", pairs.map((p) => p[0]));
  return {
    name: "dualbridge",
    describe: "one namespace: sender + relay-in on br0, relay-out + receiver on br1",
    topo: t,
    sender: { role: "one", dev: "s0", addr: "10.78.1.1" },
    relay: { role: "one", inDev: "r0", inAddr: "10.78.1.2", outDev: "r1", outAddr: "10.78.2.1" },
    receiver: { role: "one", dev: "d0" },
  };
}

/** One input stream and the outputs it is relayed to. */
export interface StreamSpec {
  /** Input group and port. */
  inGroup: string;
  /** Input UDP port. */
  inPort: number;
  /** Output group/port pairs. */
  outs: { group: string; port: number }[];
}

/** A set of streams run together. */
export interface Workload {
  /** Name in the tables ("1:1", "fanout-1:10", "streams-50"). */
  name: string;
  /** One-line description. */
  describe: string;
  /** The streams. */
  streams: StreamSpec[];
}

/** Outputs per offered input datagram, summed over streams / streams. */
export function outputsPerInput(w: Workload): number {
  return w.streams.reduce((a, s) => a + s.outs.length, 0) / w.streams.length;
}

/** One stream 239.1.1.1:5001 → 239.10.1.1:6001. */
export const ONE_TO_ONE: Workload = {
  name: "1:1",
  describe: "one stream 239.1.1.1:5001 → 239.10.1.1:6001",
  streams: [{ inGroup: "239.1.1.1", inPort: 5001, outs: [{ group: "239.10.1.1", port: 6001 }] }],
};

/** One stream → ten groups. */
export const FANOUT_10: Workload = {
  name: "fanout-1:10",
  describe: "one stream 239.1.1.1:5001 → 239.10.1.1…10:6001 (ten outputs, all counted)",
  streams: [{
    inGroup: "239.1.1.1",
    inPort: 5001,
    outs: Array.from({ length: 10 }, (_, i) => ({ group: `239.10.1.${i + 1}`, port: 6001 })),
  }],
};

/** Fifty rules, fifty concurrent streams. */
export const STREAMS_50: Workload = {
  name: "streams-50",
  describe: "50 rules, 50 concurrent streams 239.1.2.N:(5100+N) → 239.10.2.N:(6100+N)",
  streams: Array.from({ length: 50 }, (_, i) => ({
    inGroup: `239.1.2.${i + 1}`,
    inPort: 5101 + i,
    outs: [{ group: `239.10.2.${i + 1}`, port: 6101 + i }],
  })),
};

/** Eight streams, so a fanout group has several flows to spread over its workers. */
export const STREAMS_8: Workload = {
  name: "streams-8",
  describe: "8 rules, 8 concurrent streams 239.1.3.N:(5200+N) → 239.10.3.N:(6200+N)",
  streams: Array.from({ length: 8 }, (_, i) => ({
    inGroup: `239.1.3.${i + 1}`,
    inPort: 5201 + i,
    outs: [{ group: `239.10.3.${i + 1}`, port: 6201 + i }],
  })),
};

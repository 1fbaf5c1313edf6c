/**
 * The two-path topology of redundant inputs (issue 16), for the tests and
 * the bench: one sender emits one stream on two paths — a bridge in the
 * sender's namespace floods each datagram to two veths, `pA` and `pB`,
 * which reach the relay as `rA` and `rB` — and nftables (netdev egress on
 * each path, in the sender's namespace) drops datagrams per path.
 *
 * snd: bridge `br0` 10.77.1.1/24 with ports pA, pB (multicast snooping off:
 * every datagram goes to both) — rly: rA 10.77.1.2/24, rB 10.77.1.3/24,
 * r1 10.77.2.1/24 — rcv: d0 10.77.2.2/24.
 *
 * @module
 */
import { BUILD, Proc, Topology } from "./netns.ts";

/** The stream's group and port on both paths. */
export const PATHS_GROUP = "239.1.1.1:5001";

/**
 * A relay configuration with one rule, `cam`, over both paths (rA and rB)
 * with `redundancy`, sending to 239.10.1.1:6001 on r1.
 */
export function pathsConfig(redundancy: unknown): { rules: unknown[] } {
  return {
    rules: [{
      name: "cam",
      inputs: [
        { interface: "rA", group: "239.1.1.1", port: 5001 },
        { interface: "rB", group: "239.1.1.1", port: 5001 },
      ],
      redundancy,
      outputs: [{ interface: "r1", group: "239.10.1.1", port: 6001 }],
    }],
  };
}

/** A new {@link Topology} with the two paths (removed again on failure). */
export async function pathsTopology(tag: string): Promise<Topology> {
  const t = new Topology(tag);
  try {
    for (const role of ["snd", "rly", "rcv"]) await t.addNs(role);
    await t.link({ role: "snd", dev: "pA" }, { role: "rly", dev: "rA", addr: "10.77.1.2/24" });
    await t.link({ role: "snd", dev: "pB" }, { role: "rly", dev: "rB", addr: "10.77.1.3/24" });
    await t.link({ role: "rly", dev: "r1", addr: "10.77.2.1/24" }, {
      role: "rcv",
      dev: "d0",
      addr: "10.77.2.2/24",
    });
    await t.exec("snd", ["ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"]);
    for (const p of ["pA", "pB"]) await t.exec("snd", ["ip", "link", "set", p, "master", "br0"]);
    await t.exec("snd", ["ip", "addr", "add", "10.77.1.1/24", "dev", "br0"]);
    await t.exec("snd", ["ip", "link", "set", "br0", "up"]);
    // the relay's two paths share a subnet: answer ARP only on the interface that owns the address
    await t.sysctl("rly", "net.ipv4.conf.all.arp_ignore", "1");
  } catch (e) {
    await t.destroy();
    throw e;
  }
  return t;
}

/**
 * Drop on path `dev` in the sender's namespace (netdev egress): `percent` of
 * the stream's datagrams at random, or all of them (100). Returns a reader
 * of the datagrams dropped so far.
 */
export async function lossOn(
  t: Topology,
  dev: string,
  percent: number,
): Promise<() => Promise<number>> {
  const table = `loss${dev}`;
  const verdict = percent >= 100 ? "" : `numgen random mod 100 < ${percent} `;
  const rules = `table netdev ${table} {
  chain eg {
    type filter hook egress device "${dev}" priority 0;
    udp dport ${PATHS_GROUP.split(":")[1]} ${verdict}counter drop
  }
}
`;
  const f = await Deno.makeTempFile({ suffix: ".nft" });
  try {
    await Deno.writeTextFile(f, rules);
    await t.exec("snd", ["nft", "-f", f]);
  } finally {
    await Deno.remove(f);
  }
  return async () => {
    const out = await t.exec("snd", ["nft", "-j", "list", "table", "netdev", table]);
    const j = JSON.parse(out) as {
      nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[];
    };
    for (const e of j.nftables) {
      for (const x of e.rule?.expr ?? []) if (x.counter) return x.counter.packets;
    }
    throw new Error(`no counter in ${table}`);
  };
}

/** Remove the drops of {@link lossOn} on `dev`. */
export function lossOff(t: Topology, dev: string): Promise<string> {
  return t.exec("snd", ["nft", "delete", "table", "netdev", `loss${dev}`]);
}

/**
 * mcr-gen of the stream on the bridge (both paths), or on one path
 * (`iface` pA or pB); resolves to the datagrams sent.
 */
export async function sendPaths(t: Topology, args: string[], iface = "br0"): Promise<number> {
  const r = await new Proc(t.ns("snd"), [
    `${BUILD}/mcr-gen`,
    "--iface",
    iface,
    "--json",
    "--dst",
    PATHS_GROUP,
    ...args,
  ]).wait();
  if (r.code !== 0) throw new Error(`mcr-gen failed (${r.code}): ${r.stderr}`);
  return (JSON.parse(r.stdout) as { sent: number }).sent;
}

/**
 * The dual-stack chain of bench/ipv6.ts and the relays it compares, for
 * either address family: the lab chain (`snd` — `rly` — `rcv`, IPv4 as in
 * lab/netns.ts) with IPv6 addresses added on the same veths (`nodad`), and
 * mcr, socat and the kernel's multicast forwarding (smcrouted) relaying one
 * stream over IPv4 or IPv6.
 *
 * @module
 */
import { chainTopology, REPO, runDeno, type Topology, waitIPv6 } from "../../lab/netns.ts";
import { spawnTracked } from "./procs.ts";
import { hostPort } from "../../src/common/net6.ts";
import { startMcr } from "./mcr.ts";
import type { RunningRelay } from "./relays.ts";

/** IP version of a stream, a relay or a trial. */
export type Family = 4 | 6;

/** The chain's addresses of one family (the IPv4 ones are lab/netns.ts buildChain's). */
export interface ChainAddrs {
  /** Sender `s0`. */
  sender: string;
  /** Relay input `r0`. */
  relayIn: string;
  /** Relay output `r1`. */
  relayOut: string;
  /** Receiver `d0`. */
  receiver: string;
}

/** Addresses per family; the IPv6 prefix length is 64, the IPv4 one 24. */
export const CHAIN_ADDRS: Record<Family, ChainAddrs> = {
  4: { sender: "10.77.1.1", relayIn: "10.77.1.2", relayOut: "10.77.2.1", receiver: "10.77.2.2" },
  6: { sender: "fd77:1::1", relayIn: "fd77:1::2", relayOut: "fd77:2::1", receiver: "fd77:2::2" },
};

/** The one stream relayed in each family: input group:port → output group:port. */
export interface FamilyStream {
  /** Input group. */
  inGroup: string;
  /** Input UDP port. */
  inPort: number;
  /** Output group (mcr and socat translate; the kernel forwards the input group unchanged). */
  outGroup: string;
  /** Output UDP port. */
  outPort: number;
}

/** 239.1.1.1:5001 → 239.10.1.1:6001 (bench/main.ts's 1:1) and ff3e::1:5001 → ff3e::2:5002. */
export const STREAMS: Record<Family, FamilyStream> = {
  4: { inGroup: "239.1.1.1", inPort: 5001, outGroup: "239.10.1.1", outPort: 6001 },
  6: { inGroup: "ff3e::1", inPort: 5001, outGroup: "ff3e::2", outPort: 5002 },
};

/** "A.B.C.D:PORT" or "[IPV6]:PORT", as mcr-gen, mcr-sink and socat take them (the relay's). */
export { hostPort };

/** Interfaces of the chain: where IPv6 must be up before traffic. */
const CHAIN_DEVS: [string, string][] = [
  ["snd", "s0"],
  ["rly", "r0"],
  ["rly", "r1"],
  ["rcv", "d0"],
  ["snd", "b0"],
  ["rcv", "b1"],
];
/** Longest wait for IPv6 to come up on the chain's links. */
const V6_READY_MS = 10_000;

/**
 * The lab chain plus IPv6 addresses (`nodad`: usable at once) on its four
 * veth ends, and a direct sender → receiver link for the no-relay baseline
 * (as bench/lib/topologies.ts's chain): `snd` b0 10.77.9.1, fd77:9::1 ↔
 * `rcv` b1 10.77.9.2, fd77:9::2. Resolves once the kernel configured IPv6 on every link (its
 * `multicast ff00::/8` route in the local table: up to a second after the
 * link came up, until then IPv6 multicast to the link is dropped).
 */
export async function dualStackChain(tag: string): Promise<Topology> {
  const t = await chainTopology(tag);
  try {
    await t.link({ role: "snd", dev: "b0", addr: "10.77.9.1/24" }, {
      role: "rcv",
      dev: "b1",
      addr: "10.77.9.2/24",
    });
    const a = CHAIN_ADDRS[6];
    const v6: [string, string, string][] = [
      ["snd", "s0", a.sender],
      ["rly", "r0", a.relayIn],
      ["rly", "r1", a.relayOut],
      ["rcv", "d0", a.receiver],
      ["snd", "b0", "fd77:9::1"],
      ["rcv", "b1", "fd77:9::2"],
    ];
    for (const [role, dev, addr] of v6) {
      await t.exec(role, ["ip", "-6", "addr", "add", `${addr}/64`, "dev", dev, "nodad"]);
    }
    await waitIPv6(t, CHAIN_DEVS, V6_READY_MS);
  } catch (e) {
    await t.destroy();
    throw e;
  }
  return t;
}

/** A relay of one family on the dual-stack chain. */
export interface FamilyRelay {
  /** Name in the tables ("mcr IPv6"). */
  name: string;
  /** Short name for --relays ("mcr6"). */
  id: string;
  /** The family it relays. */
  family: Family;
  /** Kind of relay. */
  kind: "mcr" | "socat" | "smcroute";
  /** One-line description (config, command form). */
  describe: string;
  /** Start it in `rly`; resolves once it forwards. */
  start(t: Topology, tmp: string): Promise<RunningRelay>;
}

async function waitUntil(what: string, check: () => Promise<boolean>, ms = 10_000) {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The mcr config of the stream: the IPv6 rule has the IPv4 rule's shape, with IPv6 groups and
 * the sender as its source (ff3e::/32 is source-specific: mcr joins it with MLDv2 for one source,
 * as the kernel's route names one).
 */
export function mcrConfig(family: Family): Record<string, unknown> {
  const s = STREAMS[family];
  const source = family === 6 ? { source: CHAIN_ADDRS[6].sender } : {};
  return {
    rules: [{
      name: `v${family}`,
      input: { interface: "r0", group: s.inGroup, port: s.inPort, ...source },
      outputs: [{ interface: "r1", group: s.outGroup, port: s.outPort, ttl: "decrement" }],
    }],
  };
}

/**
 * mcr relaying the stream of `family`. The config is checked first
 * (`cli.ts check`), so a relay that does not take it yet fails at once with
 * its own message, not after the ready-file timeout.
 */
export function mcrFamily(family: Family): FamilyRelay {
  const s = STREAMS[family];
  const config = mcrConfig(family);
  return {
    name: `mcr IPv${family}`,
    id: `mcr${family}`,
    family,
    kind: "mcr",
    describe: `mcr, default rx settings, rule ${JSON.stringify(config.rules)}`,
    async start(t, tmp) {
      const cfg = `${tmp}/check-v${family}.json`;
      await Deno.writeTextFile(cfg, JSON.stringify(config));
      const check = await runDeno(["run", "--allow-all", `${REPO}/cli.ts`, "check", "-c", cfg]);
      if (check.code !== 0) {
        const why = `${check.stdout}${check.stderr}`.replaceAll(cfg, "(the generated config)")
          .trim();
        throw new Error(`mcr refuses the IPv${family} config: ${why}`);
      }
      const relay = await startMcr(t, "rly", config, tmp);
      return {
        pids: [relay.pid],
        sinkGroups: [hostPort(s.outGroup, s.outPort)],
        async stop() {
          const st = await relay.stop();
          return {
            config,
            command: relay.command.slice(1).join(" "),
            rule_packets: st.rules.reduce((a, r) => a + r.packets, 0),
            output_packets: st.rules.reduce(
              (a, r) => a + r.outputs.reduce((b, o) => b + o.packets, 0),
              0,
            ),
            drops: st.drops,
          };
        },
      };
    },
  };
}

/**
 * socat relaying the stream of `family`: one `socat -u` process. IPv6 has no
 * multicast-interface option in socat 1.7 (`ip-multicast-if` is an IPv4
 * option): the output socket is bound to `r1` (SO_BINDTODEVICE) instead.
 */
export function socatFamily(family: Family): FamilyRelay {
  const s = STREAMS[family], a = CHAIN_ADDRS[family];
  const cmd = family === 4
    ? [
      `UDP4-RECV:${s.inPort},ip-add-membership=${s.inGroup}:${a.relayIn},reuseaddr`,
      `UDP4-SENDTO:${s.outGroup}:${s.outPort},ip-multicast-if=${a.relayOut},ip-multicast-ttl=8`,
    ]
    : [
      `UDP6-RECV:${s.inPort},ipv6-join-group=[${s.inGroup}]:r0,reuseaddr`,
      `UDP6-SENDTO:${hostPort(s.outGroup, s.outPort)},so-bindtodevice=r1`,
    ];
  return {
    name: `socat IPv${family}`,
    id: `socat${family}`,
    family,
    kind: "socat",
    describe: `\`socat -u ${cmd.join(" ")}\``,
    async start(t) {
      const proc = spawnTracked(t.ns("rly"), ["socat", "-u", ...cmd]);
      await waitUntil("socat to bind", async () => {
        const ss = await t.exec("rly", ["ss", "-uanH"], { allowFail: true });
        return ss.split("\n").some((l) => new RegExp(`:${s.inPort}\\s+\\S+\\s*$`).test(l));
      });
      await new Promise((r) => setTimeout(r, 200)); // the join follows the bind
      return {
        pids: [proc.child.pid],
        sinkGroups: [hostPort(s.outGroup, s.outPort)],
        async stop() {
          proc.kill("SIGTERM");
          return { exit_code: (await proc.wait()).code };
        },
      };
    },
  };
}

/**
 * The kernel's multicast forwarding of `family` (ip_mr / ip6_mr), one (S,G)
 * `mroute` set by smcrouted (foreground, no VIFs by default, its own
 * identity, socket and pid file). The kernel cannot translate: the receiver
 * joins the input group.
 */
export function smcrouteFamily(family: Family): FamilyRelay {
  const s = STREAMS[family], a = CHAIN_ADDRS[family];
  const cache = family === 4 ? "/proc/net/ip_mr_cache" : "/proc/net/ip6_mr_cache";
  return {
    name: `kernel IPv${family} (smcroute)`,
    id: `smcroute${family}`,
    family,
    kind: "smcroute",
    describe:
      `kernel IPv${family} multicast forwarding, \`mroute from r0 source ${a.sender} group ${s.inGroup} to r1\` set by \`smcrouted -n -N\` (no translation)`,
    async start(t, tmp) {
      const id = `mcrb6-${Deno.pid}-${crypto.randomUUID().slice(0, 6)}`;
      const conf = `${tmp}/${id}.conf`;
      await Deno.writeTextFile(
        conf,
        `phyint r0 enable\nphyint r1 enable\n` +
          `mroute from r0 source ${a.sender} group ${s.inGroup} to r1\n`,
      );
      const proc = spawnTracked(t.ns("rly"), [
        "smcrouted",
        ...["-n", "-N", "-i", id, "-f", conf, "-u", `${tmp}/${id}.sock`],
        ...["-P", `${tmp}/${id}.pid`, "-l", "err"],
      ]);
      const routes = async () =>
        (await t.exec("rly", ["cat", cache], { allowFail: true })).split("\n").slice(1)
          .filter((l) => l.trim());
      await waitUntil("smcrouted to install its route", async () => (await routes()).length >= 1);
      return {
        pids: [proc.child.pid],
        sinkGroups: [hostPort(s.inGroup, s.inPort)],
        async stop() {
          const mr = await routes();
          proc.kill("SIGTERM");
          return { exit_code: (await proc.wait()).code, mr_cache: mr };
        },
      };
    },
  };
}

/** Every relay bench/ipv6.ts can run, by id. */
export const FAMILY_RELAYS: FamilyRelay[] = [
  mcrFamily(6),
  mcrFamily(4),
  socatFamily(6),
  smcrouteFamily(6),
  socatFamily(4),
  smcrouteFamily(4),
];

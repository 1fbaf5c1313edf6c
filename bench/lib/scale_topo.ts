/**
 * Topologies of the scale benchmarks (bench/scale.ts), in network namespaces
 * with unique names (lab/netns.ts, removed on exit and on signals):
 *
 * - {@link manyInputs}: N veth pairs `v1..vN` from the sender namespace into
 *   the relay's (one input interface each), plus the relay's output r1 to the
 *   receiver's d0. Built with one `ip -batch` per namespace: 256 pairs take
 *   about 0.3 s (this kernel has no 802.1Q or dummy devices, so VLAN
 *   subinterfaces are not an option here; veth pairs are as cheap).
 * - the chain of lab/netns.ts for the rules benchmark.
 *
 * @module
 */
import { sh, Topology } from "../../lab/netns.ts";

/** Relay output / receiver link of {@link manyInputs} (the chain's addresses). */
export const OUT = { relayDev: "r1", relayAddr: "10.77.2.1", sinkDev: "d0" };

/** Name of input interface n (1-based), the same on both ends of its veth pair. */
export function inputName(n: number): string {
  return `v${n}`;
}

/** Address of input interface n: 10.(100 + n / 256).(n % 256).{1 sender, 2 relay}/24. */
function inputAddr(n: number, host: 1 | 2): string {
  return `10.${100 + (n >> 8)}.${n & 255}.${host}/24`;
}

/** Largest N {@link manyInputs} can address (10.100.x.y … 10.115.x.y). */
export const MAX_INPUTS = 4095;

/** Run `ip -n NS -batch FILE` with the given commands. */
async function batch(ns: string, lines: string[], tmp: string): Promise<void> {
  const file = `${tmp}/ip-${crypto.randomUUID().slice(0, 8)}.batch`;
  await Deno.writeTextFile(file, lines.join("\n") + "\n");
  try {
    await sh(["ip", "-n", ns, "-batch", file]);
  } finally {
    await Deno.remove(file).catch(() => {});
  }
}

/**
 * Namespaces `snd`, `rly`, `rcv`: veth pairs `vK` (snd 10.(100+K/256).(K%256).1 ↔ rly .2)
 * for K = 1..n, and rly r1 10.77.2.1/24 ↔ rcv d0 10.77.2.2/24.
 */
export async function manyInputs(tag: string, n: number, tmp: string): Promise<Topology> {
  if (!(n >= 1 && n <= MAX_INPUTS)) throw new Error(`manyInputs: 1..${MAX_INPUTS} inputs`);
  const t = new Topology(tag);
  try {
    for (const role of ["snd", "rly", "rcv"]) await t.addNs(role);
    const snd: string[] = [], rly: string[] = [];
    for (let k = 1; k <= n; k++) {
      const dev = inputName(k);
      snd.push(
        `link add ${dev} type veth peer name ${dev} netns ${t.ns("rly")}`,
        `addr add ${inputAddr(k, 1)} dev ${dev}`,
        `link set ${dev} up`,
      );
      rly.push(`addr add ${inputAddr(k, 2)} dev ${dev}`, `link set ${dev} up`);
    }
    await batch(t.ns("snd"), snd, tmp);
    await batch(t.ns("rly"), rly, tmp);
    await t.link({ role: "rly", dev: OUT.relayDev, addr: `${OUT.relayAddr}/24` }, {
      role: "rcv",
      dev: OUT.sinkDev,
      addr: "10.77.2.2/24",
    });
    return t;
  } catch (e) {
    await t.destroy();
    throw e;
  }
}

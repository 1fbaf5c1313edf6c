/**
 * What the kernel of the relay's namespace says about its IGMP memberships:
 * the groups /proc/net/igmp lists on an interface and the sources
 * /proc/net/mcfilter includes (source-specific joins). Shared by igmp_test.ts
 * and reach_test.ts.
 *
 * @module
 */
import type { Topology } from "../../lab/netns.ts";

/** `a.b.c.d` as /proc/net/igmp prints it: the network-order word in hex, on little-endian hosts. */
export function igmpHex(group: string): string {
  return group.split(".").reverse().map((b) => Number(b).toString(16).padStart(2, "0")).join("")
    .toUpperCase();
}

/** Groups /proc/net/igmp lists on `dev` in the relay's namespace (role `rly`). */
export async function igmpGroups(t: Topology, dev: string): Promise<Set<string>> {
  const text = await t.exec("rly", ["cat", "/proc/net/igmp"]);
  const out = new Set<string>();
  let cur = "";
  for (const line of text.split("\n")) {
    if (/^\d/.test(line)) cur = line.split(/\s+/)[1];
    else if (/^\s+[0-9A-F]{8}\s/.test(line) && cur === dev) out.add(line.trim().split(/\s+/)[0]);
  }
  return out;
}

/**
 * Sources of `group` included on `dev` in the relay's namespace (role `rly`), per
 * /proc/net/mcfilter (which prints them as host-order hex words), as sorted dotted quads.
 */
export async function mcfilterSources(t: Topology, dev: string, group: string): Promise<string[]> {
  const text = await t.exec("rly", ["cat", "/proc/net/mcfilter"]);
  const g = "0x" + group.split(".").map((b) => Number(b).toString(16).padStart(2, "0")).join("");
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f[1] === dev && f[2] === g && Number(f[4]) > 0) {
      out.push([0, 1, 2, 3].map((i) => parseInt(f[3].slice(2 + 2 * i, 4 + 2 * i), 16)).join("."));
    }
  }
  return out.sort();
}

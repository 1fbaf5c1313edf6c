/**
 * The chain of lab/netns.ts with IPv6 addresses on every link (`nodad`, so
 * they are usable at once) beside its IPv4 ones, for the IPv6 namespace tests.
 */
import { chainTopology, type Topology, waitIPv6 } from "../../lab/netns.ts";

/** The sender's address (s0). */
export const SND6 = "fd77:1::1";
/** The relay's address on its output link (r1). */
export const RLY_OUT6 = "fd77:2::1";
/** The receiver's address (d0). */
export const RCV6 = "fd77:2::2";

/** The chain with IPv6 addresses on every link; destroyed again when that fails. */
export async function chain6(tag: string): Promise<Topology> {
  const t = await chainTopology(tag);
  try {
    const add = (role: string, addr: string, dev: string) =>
      t.exec(role, ["ip", "-6", "addr", "add", addr, "dev", dev, "nodad"]);
    await add("snd", `${SND6}/64`, "s0");
    await add("rly", "fd77:1::2/64", "r0");
    await add("rly", `${RLY_OUT6}/64`, "r1");
    await add("rcv", `${RCV6}/64`, "d0");
    await waitIPv6(t, [["snd", "s0"], ["rly", "r0"], ["rly", "r1"], ["rcv", "d0"]]);
    return t;
  } catch (e) {
    await t.destroy();
    throw e;
  }
}

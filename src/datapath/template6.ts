/**
 * The template of an IPv6 output (issue 14): addresses, how frames leave
 * (a TX ring for a group on an Ethernet link; a UDP6 socket bound to the
 * device for a unicast destination, whose next hop the kernel finds with
 * neighbour discovery, and on a link without a link-layer header), and the
 * default source address: the output interface's global IPv6 address, else
 * its link-local one (ffi `ifaceAddr6`: the kernel's list of the namespace;
 * tentative, deprecated and duplicate addresses are never chosen).
 *
 * @module
 */
import {
  ifaceAddr6,
  type IfaceInfo,
  type LinkLayout,
  type Template,
  type TxRing,
} from "../../ffi/mod.ts";
import { ip6Bytes, isMulticast6 } from "../common/net6.ts";
import type { TableOutput } from "./messages.ts";

/**
 * The template of IPv6 output `o` on `iface` (its link laid out as
 * `layout`); `tx` opens (or finds) the interface's TX ring.
 * @throws {Error} the reason the output cannot be installed
 */
export function template6(
  o: TableOutput,
  iface: IfaceInfo,
  layout: LinkLayout,
  tx: () => TxRing,
): Template {
  const dst = o.dst6!;
  const src = o.srcIp6 ? ip6Bytes(o.srcIp6) : ifaceAddr6(iface.ifindex);
  if (!src) {
    throw new Error(
      `output interface ${o.interface} has no usable IPv6 address (global or link-local); ` +
        "give the output a source_ip",
    );
  }
  const addrs6 = new Uint8Array(32);
  addrs6.set(src, 0);
  addrs6.set(ip6Bytes(dst), 16);
  const group = isMulticast6(dst);
  const common = {
    ifindex: iface.ifindex,
    srcIp: 0,
    dstIp: dst[3],
    addrs6,
    dstHostBits: 0,
    srcPort: o.srcPort,
    dstPort: o.port,
    ttl: o.ttl || (group ? 1 : 64),
    tos: o.tos,
  };
  if (!group || layout === "ip") return { kind: "socket", ...common };
  if (!iface.mac) throw new Error(`output interface ${o.interface} has no hardware address`);
  // the 33:33 MAC of the group is libmcr's (RFC 2464)
  return { kind: "ring", ...common, srcMac: iface.mac, tx: tx() };
}

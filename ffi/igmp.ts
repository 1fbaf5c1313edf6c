/**
 * `IgmpSocket`: one kernel socket holding IGMP memberships (any-source, or
 * source-specific) on any interfaces, until closed; and
 * {@link igmpLimits}, what the network namespace lets one socket hold.
 * Which socket takes which membership is decided by the relay
 * (src/relay/igmp_sockets.ts).
 *
 * @module
 */
import { check, errBuf, hton32, lib, open } from "./util.ts";

/** A socket that holds IGMP memberships until closed (see `mcr_igmp_*` in csrc/include/mcr.h). */
export class IgmpSocket implements Disposable {
  #ptr: Deno.PointerObject | null;

  /** Open a socket holding no membership; throws McrError (EMFILE when out of descriptors). */
  constructor() {
    this.#ptr = open("mcr_igmp_open", (out, err, n) => lib().sym.mcr_igmp_open(out, err, n));
  }

  #handle(call: string): Deno.PointerObject {
    if (!this.#ptr) throw new Error(`${call}: the IGMP socket is closed`);
    return this.#ptr;
  }

  /**
   * Join `group` on `ifindex`, from any source (`source` 0) or add one
   * source. Throws McrError: ENOBUFS when a per-socket limit is reached
   * (groups, sources of the group, or option memory), EADDRINUSE when this
   * socket holds the group already (any-source).
   * @param ifindex interface index
   * @param group group (host order)
   * @param source source (host order), 0 = any
   */
  add(ifindex: number, group: number, source = 0): void {
    const p = this.#handle("mcr_igmp_add");
    const [err, errlen] = errBuf();
    check(
      "mcr_igmp_add",
      lib().sym.mcr_igmp_add(p, ifindex, hton32(group), hton32(source), err, errlen),
      err,
    );
  }

  /**
   * Leave: `source` 0 drops the group with every source (also after the
   * interface is gone), else one source (ENODEV once the interface is gone).
   * Throws McrError.
   */
  drop(ifindex: number, group: number, source = 0): void {
    const p = this.#handle("mcr_igmp_drop");
    const [err, errlen] = errBuf();
    check(
      "mcr_igmp_drop",
      lib().sym.mcr_igmp_drop(p, ifindex, hton32(group), hton32(source), err, errlen),
      err,
    );
  }

  /** Close the socket: the kernel drops every membership it holds (idempotent). */
  close(): void {
    if (!this.#ptr) return;
    lib().sym.mcr_igmp_close(this.#ptr);
    this.#ptr = null;
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** What one socket may hold in this network namespace (null: the sysctl could not be read). */
export interface IgmpLimits {
  /** `net.ipv4.igmp_max_memberships`: groups (any-source or source-specific) per socket. */
  maxMemberships: number | null;
  /** `net.ipv4.igmp_max_msf`: sources per source-specific group per socket. */
  maxMsf: number | null;
  /** `net.core.optmem_max`: option memory per socket, bytes (group and source lists use it). */
  optmemMax: number | null;
}

/** `enum mcr_igmp_limit`: where `mcr_igmp_limits` writes each value. */
const IgmpLimit = { maxMemberships: 0, maxMsf: 1, optmemMax: 2, count: 3 } as const;

/** Read the per-socket limits of the calling process's network namespace (/proc/sys). */
export function igmpLimits(): IgmpLimits {
  const out = new BigInt64Array(IgmpLimit.count);
  check("mcr_igmp_limits", lib().sym.mcr_igmp_limits(out));
  const v = (i: number) => (out[i] < 0n ? null : Number(out[i]));
  return {
    maxMemberships: v(IgmpLimit.maxMemberships),
    maxMsf: v(IgmpLimit.maxMsf),
    optmemMax: v(IgmpLimit.optmemMax),
  };
}

/**
 * `MldSocket`: one kernel socket holding MLD memberships (the IPv6
 * counterpart of `IgmpSocket`; see `mcr_mld_*` in csrc/include/mcr.h): the
 * kernel sends the MLDv2 reports (MLDv1 where the link asks for it) and
 * drops every membership when the socket closes. Which socket holds which
 * membership is the relay's choice (src/relay/mld.ts).
 *
 * @module
 */
import { check, errBuf, lib, open } from "./util.ts";

/** The 16 bytes of `::`: any source. */
const ANY = new Uint8Array(16);

/** A socket that holds MLD memberships until closed. */
export class MldSocket implements Disposable {
  #ptr: Deno.PointerObject | null;

  /** Open a socket holding no membership; throws McrError (EMFILE when out of descriptors). */
  constructor() {
    this.#ptr = open("mcr_mld_open", (out, err, n) => lib().sym.mcr_mld_open(out, err, n));
  }

  #handle(call: string): Deno.PointerObject {
    if (!this.#ptr) throw new Error(`${call}: the MLD socket is closed`);
    return this.#ptr;
  }

  /**
   * Join `group` (16 bytes) on `ifindex` from any source (`source` null) or
   * add one source. Throws McrError: ENOBUFS when the socket's option memory
   * (net.core.optmem_max) or its source list (net.ipv6.mld_max_msf) is full.
   */
  add(ifindex: number, group: Uint8Array, source: Uint8Array | null = null): void {
    const p = this.#handle("mcr_mld_add");
    const [err, errlen] = errBuf();
    check(
      "mcr_mld_add",
      lib().sym.mcr_mld_add(p, ifindex, group, source ?? ANY, err, errlen),
      err,
    );
  }

  /** Leave: `source` null drops the group with every source, else one source. Throws McrError. */
  drop(ifindex: number, group: Uint8Array, source: Uint8Array | null = null): void {
    const p = this.#handle("mcr_mld_drop");
    const [err, errlen] = errBuf();
    check(
      "mcr_mld_drop",
      lib().sym.mcr_mld_drop(p, ifindex, group, source ?? ANY, err, errlen),
      err,
    );
  }

  /** Close the socket: the kernel drops every membership it holds (idempotent). */
  close(): void {
    if (!this.#ptr) return;
    lib().sym.mcr_mld_close(this.#ptr);
    this.#ptr = null;
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }
}

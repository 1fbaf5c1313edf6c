/**
 * `IgmpMembership`: one IGMP membership (any-source, or source-specific) on
 * an interface, held until closed.
 *
 * @module
 */
import { hton32, lib, open } from "./util.ts";

/** An IGMP membership (group, optional source) on an interface, held until closed. */
export class IgmpMembership implements Disposable {
  #ptr: Deno.PointerObject | null;

  /**
   * Join; throws McrError.
   * @param ifindex interface index
   * @param group group (host order)
   * @param source source (host order), 0 = any
   */
  constructor(readonly ifindex: number, readonly group: number, readonly source = 0) {
    this.#ptr = open(
      "mcr_igmp_join",
      (out, err, n) => lib().sym.mcr_igmp_join(ifindex, hton32(group), hton32(source), out, err, n),
    );
  }

  /** Leave the group (idempotent). */
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

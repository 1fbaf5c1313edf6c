/**
 * IGMP memberships: the relay joins each rule's input group (source-specific
 * for an (S,G) rule) on its input interface, so IGMP-snooping switches
 * deliver the stream, and leaves when the last rule for it goes. An
 * interface that does not exist yet is joined when it appears (`rejoin`).
 *
 * @module
 */
import { IgmpMembership } from "../../ffi/mod.ts";
import { formatIPv4 } from "../common/net.ts";
import { logger } from "../common/log.ts";
import type { Links } from "./links.ts";
import type { RuleSpec } from "./tables.ts";

/** The relay's memberships, keyed by interface, group and source. */
export class Memberships {
  readonly #log = logger("supervisor");
  readonly #m = new Map<string, { m: IgmpMembership | null; error?: string }>();

  /** @param links where interfaces are looked up */
  constructor(readonly links: Links) {}

  /** Join what `rules` need, leave what they no longer need. */
  sync(rules: readonly RuleSpec[]): void {
    const want = new Map<string, { ifname: string; group: number; source: number }>();
    for (const r of rules) {
      const k = `${r.input.interface}|${r.input.group}|${r.input.source}`;
      want.set(k, { ifname: r.input.interface, group: r.input.group, source: r.input.source });
    }
    for (const [k, v] of this.#m) {
      if (!want.has(k)) {
        v.m?.close();
        this.#m.delete(k);
      }
    }
    for (const [k, w] of want) {
      if (this.#m.get(k)?.m) continue;
      this.#m.set(k, this.#join(w.ifname, w.group, w.source));
    }
  }

  #join(ifname: string, group: number, source: number) {
    const link = this.links.get(ifname);
    if (!link) return { m: null, error: `interface ${ifname} does not exist` };
    try {
      return { m: new IgmpMembership(link.ifindex, group, source) };
    } catch (e) {
      const error = (e as Error).message;
      this.#log.warn("{interface}: IGMP join of {group} failed: {error}", {
        group: formatIPv4(group),
        interface: ifname,
        error,
      });
      return { m: null, error };
    }
  }

  /** (Re)join every membership on an interface (it may have been re-created). */
  rejoin(ifname: string): void {
    for (const [k, v] of this.#m) {
      const [name, g, s] = k.split("|");
      if (name !== ifname) continue;
      v.m?.close();
      this.#m.set(k, this.#join(name, Number(g), Number(s)));
    }
  }

  /** Leave every group. */
  close(): void {
    for (const v of this.#m.values()) v.m?.close();
    this.#m.clear();
  }
}

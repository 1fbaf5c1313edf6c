/**
 * The output side of one data-path worker: its TX rings (one per output
 * interface), the forwarder's templates (one per output slot), and the truth
 * about each output's state. Multicast on an Ethernet link is built into a TX
 * ring; unicast, and any output on a link without a MAC (link_types.ts), goes
 * through a UDP socket bound to the interface. The forwarder counts into the
 * worker's shared counter block (counters.ts `Out`).
 *
 * An output is `error` — with the reason — whenever it cannot deliver: its
 * template could not be installed (no address, missing interface), its link
 * is down, without carrier or gone, its TX ring has stopped moving, every
 * datagram of the last second failed (too big with DF set, send errors), or
 * its unicast next hop does not answer (next_hops.ts). It returns to `ok` by
 * itself when the cause goes away: link changes reach the rings at once, a
 * ring that saw its link fail probes it, failed templates are retried on
 * every link change and every second. Outputs change one at a time; what is
 * checked at every counter sync (every 100 ms while frames flow, every 250 ms
 * when idle) is per output interface, and only the once-a-second
 * health window looks at every output. Runs inside the worker (it calls into
 * libmcr synchronously); it never blocks.
 *
 * @module
 */
import {
  type Forwarder,
  ifaceByName,
  type IfaceInfo,
  type Template,
  TxRing,
  type TxStats,
} from "../../ffi/mod.ts";
import { errnoName, McrError } from "../../ffi/errors.ts";
import { Out, OUT_BASE, OUT_WORDS } from "./counters.ts";
import { MAX_OUTPUT_SLOTS } from "../config/limits.ts";
import { linkProblem, type LinkState, readLink } from "./link_table.ts";
import type { TableOutput, TxRingOptions } from "./messages.ts";
import { template6 } from "./template6.ts";
import { sameIp6 } from "../common/net6.ts";
import { isMulticast, multicastMac } from "../common/net.ts";
import { linkLayout, linkTypeProblem } from "./link_types.ts";
import { NextHops, unicastDest } from "./next_hops.ts";
import { downReason, installReason } from "./output_reasons.ts";

/** A TX ring that has queued frames and taken none for this long is "stalled". */
export const STALL_MS = 1000;
/** Ethernet header: what a TX slot holds on top of the MTU. */
const L2_HEADER = 14;
/** How long an interface's looked-up addresses are reused (ms): one burst of installs. */
const IFACE_CACHE_MS = 50;

interface Spec {
  /** Rule the output belongs to (with the output's interface, destination and port: its identity). */
  ruleId: string;
  /** The output (a change of any field means a new template). */
  o: TableOutput;
  /** Reported state ("" = ok, else the reason). */
  reported: string;
  /** Why the template is not installed (broken), if it is not. */
  installError?: string;
  /** Why the last health window failed, if it did. */
  windowFailing?: string;
  /** Why a unicast output's next hop cannot be reached (next_hops.ts), if it cannot. */
  nextHop?: string;
  /** Interface index the installed template sends on (0 = not installed). */
  ifindex: number;
}

interface Tx {
  ring: TxRing;
  ifindex: number;
  stats?: TxStats;
}

/** Output plumbing owned by one worker (see module doc). */
export class Outputs {
  /** TX ring per output interface name (with the ifindex it was opened on). */
  readonly tx = new Map<string, Tx>();
  readonly #specs = new Map<number, Spec>();
  /** Output slots per output interface. */
  readonly #byIf = new Map<string, Set<number>>();
  /** Problem of each output interface at the last sync ("" = none). */
  readonly #ifProblem = new Map<string, string>();
  /** Verdicts on the next hops of unicast outputs. */
  readonly #hops = new NextHops();
  /** Counts at the start of the current health window, per slot: packets, failures. */
  readonly #window = new Float64Array(MAX_OUTPUT_SLOTS * 2);
  /** Link-table slot of every interface the outputs name. */
  readonly #links = new Map<string, number>();
  /** State changes not yet reported: [slot, reason ("" = ok)]. */
  #changes: [number, string][] = [];
  /** Interface addresses looked up lately (see #iface). */
  readonly #ifaceCache = new Map<string, { info: IfaceInfo; at: number }>();

  /**
   * @param fwd the worker's forwarder (its counters move into `counters`)
   * @param counters the worker's shared counter block
   * @param txOpts TX ring options
   * @param txFrames TX ring slots per output interface (overrides `txOpts.frameCount`)
   * @param broken per-slot flag the hot loop reads: 1 = output not installed
   * @param linkTable the shared link table (src/relay/links.ts)
   */
  constructor(
    readonly fwd: Forwarder,
    readonly counters: Float64Array,
    readonly txOpts: TxRingOptions,
    readonly txFrames: Record<string, number>,
    readonly broken: Uint8Array,
    readonly linkTable: Int32Array,
  ) {
    fwd.setCounters(counters.subarray(OUT_BASE), OUT_WORDS);
  }

  /**
   * Learn link-table slots of interfaces (from a rule change). Returns true
   * when a name is new or has another slot (the link table must be read again).
   */
  setLinks(links: Record<string, number>): boolean {
    let changed = false;
    for (const [name, slot] of Object.entries(links)) {
      if (this.#links.get(name) === slot) continue;
      this.#links.set(name, slot);
      changed = true;
    }
    return changed;
  }

  /** Link table state of an output interface (undefined: absent or not tracked). */
  #link(name: string): LinkState | undefined {
    const slot = this.#links.get(name);
    return slot === undefined ? undefined : readLink(this.linkTable, slot);
  }

  #openTx(name: string, ifindex: number): TxRing {
    return new TxRing({
      ifindex,
      frameCount: this.txFrames[name] ?? this.txOpts.frameCount,
      qdiscBypass: this.txOpts.qdiscBypass,
    });
  }

  #txFor(name: string, ifindex: number): TxRing {
    let t = this.tx.get(name);
    if (t && t.ifindex !== ifindex) {
      this.#dropTx(name, `output interface ${name} was re-created`);
      t = undefined;
    }
    if (!t) {
      t = { ring: this.#openTx(name, ifindex), ifindex };
      this.tx.set(name, t);
    }
    return t.ring;
  }

  /**
   * Close a TX ring whose interface is gone: what it still holds is counted
   * as link down, the templates that use it are cleared (their outputs in
   * error until the interface is back).
   */
  #dropTx(name: string, reason: string): void {
    const t = this.tx.get(name);
    if (!t) return;
    t.ring.setLink(0); // discard the queue, charged to the outputs as link_down
    for (const slot of this.#byIf.get(name) ?? []) {
      if (!this.broken[slot]) this.#uninstall(slot, reason);
    }
    t.ring.close();
    this.tx.delete(name);
  }

  /**
   * The interface's MTU grew past what the ring's slots hold: open a ring
   * with bigger slots and move the interface's templates onto it (in place:
   * same template lives and counters). The old ring is kicked once when its
   * last template leaves, and closed.
   */
  #growTx(name: string, ifindex: number): void {
    const old = this.tx.get(name)!;
    let ring: TxRing;
    try {
      ring = this.#openTx(name, ifindex);
    } catch {
      return; // keep the old ring: longer datagrams are fragmented or counted as too_big
    }
    this.tx.set(name, { ring, ifindex });
    for (const slot of this.#byIf.get(name) ?? []) if (!this.broken[slot]) this.#install(slot);
    old.ring.close();
  }

  /** Clear the template (its counts stay); the output is broken until reinstalled. */
  #uninstall(slot: number, reason: string): void {
    this.fwd.setTemplate(slot, null);
    this.broken[slot] = 1;
    this.#specs.get(slot)!.installError = reason;
    this.#evaluate(slot);
  }

  /** Install (or replace in place) the template of a slot; on failure the output is broken. */
  #install(slot: number): void {
    const s = this.#specs.get(slot)!;
    try {
      const t = this.#template(s.o);
      this.fwd.setTemplate(slot, t);
      this.broken[slot] = 0;
      s.installError = undefined;
      s.ifindex = t.ifindex;
    } catch (e) {
      const reason = installReason(e);
      if (!this.broken[slot]) this.fwd.setTemplate(slot, null);
      this.broken[slot] = 1;
      s.installError = reason;
    }
    this.#evaluate(slot);
  }

  /**
   * Install the output `o` of rule `ruleId` in its slot. The same output
   * again (same identity) keeps its counters; another output in the slot
   * starts from zero.
   */
  set(ruleId: string, o: TableOutput): void {
    const slot = o.slot;
    const cur = this.#specs.get(slot);
    // compared field by field: two strings per output would cost 65,536 outputs ~10 MB
    const same = cur !== undefined && cur.ruleId === ruleId &&
      cur.o.interface === o.interface && cur.o.dst === o.dst && cur.o.hostBits === o.hostBits &&
      cur.o.port === o.port && sameIp6(cur.o.dst6, o.dst6);
    if (
      same && cur.o.srcIp === o.srcIp && cur.o.srcPort === o.srcPort && cur.o.ttl === o.ttl &&
      cur.o.tos === o.tos && sameIp6(cur.o.srcIp6, o.srcIp6)
    ) return;
    if (cur && !same) this.clear(slot); // another output now owns the slot
    const keep = same ? cur : undefined;
    if (!keep) this.#resetSlot(slot);
    else this.#unindex(slot, keep.o.interface);
    this.#specs.set(slot, { ruleId, o, reported: keep?.reported ?? "", ifindex: 0 });
    let set = this.#byIf.get(o.interface);
    if (!set) this.#byIf.set(o.interface, set = new Set());
    set.add(slot);
    this.#install(slot);
  }

  #unindex(slot: number, name: string): void {
    const set = this.#byIf.get(name);
    set?.delete(slot);
    if (set?.size === 0) this.#byIf.delete(name);
  }

  /** The slot's output is gone: clear its template and counters. */
  clear(slot: number): void {
    const s = this.#specs.get(slot);
    if (!s) return;
    this.fwd.setTemplate(slot, null);
    this.#specs.delete(slot);
    this.#unindex(slot, s.o.interface);
    this.broken[slot] = 0;
    this.#resetSlot(slot);
  }

  /** Close TX rings no template uses any more. */
  dropUnusedRings(): void {
    for (const [name, t] of [...this.tx]) {
      if (this.#byIf.has(name)) continue;
      t.ring.close();
      this.tx.delete(name);
      this.#ifProblem.delete(name);
    }
  }

  #resetSlot(slot: number): void {
    const base = OUT_BASE + slot * OUT_WORDS;
    this.counters.fill(0, base, base + OUT_WORDS);
    this.#window.fill(0, slot * 2, slot * 2 + 2);
  }

  /**
   * The link table changed: hand every output interface's flags and MTU to
   * the rings and sockets, drop rings whose interface went away (or was
   * re-created under the same name), and retry outputs that are broken.
   */
  onLinks(): void {
    this.#ifaceCache.clear();
    for (const [name, t] of [...this.tx]) {
      const l = this.#link(name);
      if (!l || l.ifindex !== t.ifindex) {
        this.#dropTx(
          name,
          l ? `output interface ${name} was re-created` : `output interface ${name} does not exist`,
        );
      } else if (l.mtu + L2_HEADER > t.ring.stats().frameRoom) {
        this.#growTx(name, t.ifindex);
      }
    }
    for (const [name, slots] of this.#byIf) {
      const l = this.#link(name);
      if (!l) continue;
      // socket outputs are bound to an interface index: follow a re-created interface
      for (const slot of slots) {
        const s = this.#specs.get(slot)!;
        if (!this.broken[slot] && s.ifindex && l.ifindex !== s.ifindex) this.#install(slot);
      }
      this.fwd.setLink(l.ifindex, l.flags, l.mtu);
    }
    this.retry();
  }

  /** Retry the templates of broken outputs (an interface or address may be back). */
  retry(): void {
    for (const [name, slots] of this.#byIf) {
      let any = false;
      // One try per reason and interface: outputs that failed for the reason a retry just
      // failed for again (no address, no such interface) would fail the same way, and
      // 65,536 tries stall forwarding for half a second.
      const again = new Set<string>();
      for (const slot of slots) {
        if (!this.broken[slot]) continue;
        const s = this.#specs.get(slot)!;
        const before = s.installError;
        if (before !== undefined && again.has(before)) continue;
        this.#install(slot);
        if (this.broken[slot] && before !== undefined && s.installError === before) {
          again.add(before);
        }
        any ||= !this.broken[slot];
      }
      // a freshly opened ring starts from the link table's view of its link
      const l = any ? this.#link(name) : undefined;
      if (l) this.fwd.setLink(l.ifindex, l.flags, l.mtu);
    }
  }

  /**
   * The interface's addresses, cached for {@link IFACE_CACHE_MS}: a table
   * of 262,144 outputs on one interface asks the kernel once, not 262,144
   * times; a link change clears the cache.
   */
  #iface(name: string): IfaceInfo {
    const now = performance.now();
    const c = this.#ifaceCache.get(name);
    if (c && now - c.at < IFACE_CACHE_MS) return c.info;
    const info = ifaceByName(name);
    this.#ifaceCache.set(name, { info, at: now });
    return info;
  }

  #template(o: TableOutput): Template {
    let iface;
    try {
      iface = this.#iface(o.interface);
    } catch (e) {
      if (e instanceof McrError && e.code === "ENODEV") {
        throw new Error(`output interface ${o.interface} does not exist`);
      }
      throw e;
    }
    const layout = linkLayout(iface.linkType);
    if (!layout) throw new Error(linkTypeProblem("output", o.interface, iface.linkType));
    if (o.dst6) return template6(o, iface, layout, () => this.#txFor(o.interface, iface.ifindex));
    const srcIp = o.srcIp || iface.ipv4;
    if (!srcIp) {
      throw new Error(
        `output interface ${o.interface} has no IPv4 address; give the output a source_ip`,
      );
    }
    const common = {
      ifindex: iface.ifindex,
      srcIp,
      dstIp: o.dst,
      // a range kept or mapped: libmcr takes the low bits of each datagram's destination
      // (and its multicast MAC), and a port of 0 keeps each datagram's port
      dstHostBits: o.hostBits,
      srcPort: o.srcPort,
      dstPort: o.port,
      ttl: o.ttl || 64,
      tos: o.tos,
    };
    if (!isMulticast(o.dst) || layout === "ip") return { kind: "socket", ...common };
    if (!iface.mac) throw new Error(`output interface ${o.interface} has no hardware address`);
    return {
      kind: "ring",
      ...common,
      dstMac: multicastMac(o.dst),
      srcMac: iface.mac,
      tx: this.#txFor(o.interface, iface.ifindex),
    };
  }

  /** Why output interface `name` cannot deliver now ("" = it can). */
  #interfaceProblem(name: string): string {
    const st = this.tx.get(name)?.stats;
    if (this.#links.has(name)) {
      const p = linkProblem(name, this.#link(name));
      if (p) return `output ${p}`;
    }
    if (st?.down) return downReason(name, st.down);
    if (st && st.stalledMs >= STALL_MS) {
      return `TX ring on ${name} stalled: ${st.queued} frames queued, none taken for ${
        (st.stalledMs / 1000).toFixed(1)
      } s`;
    }
    return "";
  }

  /** Decide a slot's state; a change is queued for {@link takeChanges}. */
  #evaluate(slot: number): void {
    const s = this.#specs.get(slot);
    if (!s) return;
    const r = s.installError ??
      (this.#ifProblem.get(s.o.interface) || s.windowFailing || s.nextHop || "");
    if (s.reported === r) return;
    s.reported = r;
    this.#changes.push([slot, r]);
  }

  /**
   * Look at every output interface (rings, links) and, when `closeWindow`
   * ends a health window (about once a second), at every output: one that
   * sent nothing while everything failed in the window is in error.
   */
  sync(closeWindow: boolean): void {
    for (const t of this.tx.values()) t.stats = t.ring.stats();
    for (const [name, slots] of this.#byIf) {
      const p = this.#interfaceProblem(name);
      if ((this.#ifProblem.get(name) ?? "") === p) continue;
      this.#ifProblem.set(name, p);
      for (const slot of slots) this.#evaluate(slot);
    }
    if (!closeWindow) return;
    const c = this.counters;
    const w = this.#window;
    for (const [slot, spec] of this.#specs) {
      const base = OUT_BASE + slot * OUT_WORDS;
      const p = c[base + Out.packets];
      const f = c[base + Out.errors] + c[base + Out.tooBig];
      const dp = p - w[slot * 2], df = f - w[slot * 2 + 1];
      w[slot * 2] = p;
      w[slot * 2 + 1] = f;
      const failing = dp === 0 && df > 0 ? this.#failureReason(spec) : undefined;
      if (failing !== spec.windowFailing) {
        spec.windowFailing = failing;
        this.#evaluate(slot);
      }
    }
    const uni = [...this.#specs.values()].flatMap((x) => {
      const d = unicastDest(x.ifindex, x.o);
      return d ? [{ x, d }] : [];
    });
    this.#hops.check(uni.map((u) => u.d));
    for (const { x, d } of uni) {
      const p = this.#hops.problem(d) || undefined;
      if (p === x.nextHop) continue;
      x.nextHop = p;
      this.#evaluate(x.o.slot);
    }
  }

  /** State changes since the last call: [slot, reason] ("" = ok again). */
  takeChanges(): [number, string][] {
    const c = this.#changes;
    this.#changes = [];
    return c;
  }

  #failureReason(spec: Spec): string {
    const name = spec.o.interface;
    const st = this.tx.get(name)?.stats;
    const base = OUT_BASE + spec.o.slot * OUT_WORDS;
    if (this.counters[base + Out.tooBig] > 0 && !st?.lastErr) {
      return `every datagram of the last second was longer than the MTU of ${name}` +
        `${st ? ` (${st.mtu})` : ""} and may not be fragmented (DF set)`;
    }
    if (st?.lastErr) return `sending on ${name} fails (${errnoName(st.lastErr)})`;
    return `every datagram of the last second failed to send on ${name}`;
  }

  /**
   * Let queued frames leave (graceful shutdown); what could not leave in
   * time is given up and counted (so the final counters add up). Returns the
   * number of frames given up.
   */
  drain(timeoutMs: number): number {
    let left = 0;
    for (const t of this.tx.values()) {
      if (t.ring.drain(timeoutMs) > 0) left += t.ring.discard();
    }
    return left;
  }

  /** Clear every template, close the forwarder and the rings. */
  close(): void {
    for (const slot of this.#specs.keys()) {
      try {
        this.fwd.setTemplate(slot, null);
      } catch { /* closing anyway */ }
    }
    this.fwd.close();
    for (const t of this.tx.values()) t.ring.close();
    this.tx.clear();
  }
}

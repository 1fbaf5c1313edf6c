/**
 * The output side of one data-path worker: its TX rings (one per output
 * interface), the forwarder's templates (one per output slot), the
 * per-output counters it copies into the shared counter block, and the
 * truth about each output's state.
 *
 * An output is `error` — with the reason — whenever it cannot deliver: its
 * template could not be installed (no address, missing interface), its link
 * is down, without carrier or gone, its TX ring has stopped moving, or every
 * datagram of the last second failed (too big with DF set, send errors).
 * It returns to `ok` by itself when the cause goes away: link changes reach
 * the rings at once (link table), a ring that saw its link fail probes it,
 * failed templates are retried on every link change and every second.
 *
 * Runs inside the worker (it calls into libmcr synchronously); it never
 * blocks.
 *
 * @module
 */
import {
  type Forwarder,
  ifaceByName,
  OUT_COUNTER_WORDS,
  OutCounter,
  type Template,
  TxRing,
  type TxStats,
} from "../../ffi/mod.ts";
import { Errno, errnoName, McrError } from "../../ffi/errors.ts";
import { Out, OUT_BASE, OUT_WORDS } from "./counters.ts";
import { MAX_OUTPUT_SLOTS } from "../config/limits.ts";
import { linkProblem, type LinkState, readLink } from "./link_table.ts";
import { outputKey, type TableOutput, type TxRingOptions, type WorkerTable } from "./messages.ts";
import { isMulticast } from "../common/net.ts";

/** A TX ring that has queued frames and taken none for this long is "stalled". */
export const STALL_MS = 1000;
/** Ethernet header: what a TX slot holds on top of the MTU. */
const L2_HEADER = 14;

/** What an output reports when its state changes. */
export type OutputReport = (slot: number, state: "ok" | "error", reason?: string) => void;

interface Spec {
  /** Identity of the output in this slot (rule id, interface, destination, port). */
  id: string;
  /** Full description (a change means a new template). */
  key: string;
  o: TableOutput;
  /** Reported state ("" = ok, else the reason) — undefined until first reported. */
  reported?: string;
  /** Why the template is not installed (broken), if it is not. */
  installError?: string;
  /** Why the last health window failed, if it did. */
  windowFailing?: string;
  /** Interface index the installed template sends on (0 = not installed). */
  ifindex: number;
}

function mcastMac(group: number): Uint8Array {
  return new Uint8Array([
    0x01,
    0x00,
    0x5e,
    (group >>> 16) & 0x7f,
    (group >>> 8) & 0xff,
    group & 0xff,
  ]);
}

/** Reason for a ring's `down` errno. */
function downReason(name: string, errno: number): string {
  switch (errno) {
    case Errno.ENETDOWN:
      return `output interface ${name} is down`;
    case Errno.ENOLINK:
      return `output interface ${name} has no carrier`;
    default:
      return `output interface ${name} is gone`;
  }
}

/** Output plumbing owned by one worker (see module doc). */
export class Outputs {
  /** TX ring per output interface name (with the ifindex it was opened on). */
  readonly tx = new Map<string, { ring: TxRing; ifindex: number; stats?: TxStats }>();
  readonly #specs = new Map<number, Spec>();
  /** Counts carried over from earlier template lives of a slot. */
  readonly #carried = new Float64Array(MAX_OUTPUT_SLOTS * OUT_COUNTER_WORDS);
  /** Counts at the start of the current health window, per slot: packets, failures. */
  readonly #window = new Float64Array(MAX_OUTPUT_SLOTS * 2);
  #links: Record<string, number> = {};

  /**
   * @param fwd the worker's forwarder
   * @param counters the worker's shared counter block
   * @param txOpts TX ring options
   * @param broken per-slot flag the hot loop reads: 1 = output not installed
   * @param linkTable the shared link table (src/relay/links.ts)
   * @param report called when an output's state changes
   */
  constructor(
    readonly fwd: Forwarder,
    readonly counters: Float64Array,
    readonly txOpts: TxRingOptions,
    readonly broken: Uint8Array,
    readonly linkTable: Int32Array,
    readonly report: OutputReport,
  ) {}

  /** Link table state of an output interface (undefined: absent or not tracked). */
  #link(name: string): LinkState | undefined {
    const slot = this.#links[name];
    return slot === undefined ? undefined : readLink(this.linkTable, slot);
  }

  #txFor(name: string, ifindex: number): TxRing {
    let t = this.tx.get(name);
    if (t && t.ifindex !== ifindex) {
      this.#dropTx(name, `output interface ${name} was re-created`);
      t = undefined;
    }
    if (!t) {
      const ring = new TxRing({
        ifindex,
        frameCount: this.txOpts.frameCount,
        qdiscBypass: this.txOpts.qdiscBypass,
      });
      t = { ring, ifindex };
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
    for (const [slot, s] of this.#specs) {
      if (s.o.interface === name && !this.broken[slot]) this.#uninstall(slot, reason);
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
      ring = new TxRing({
        ifindex,
        frameCount: this.txOpts.frameCount,
        qdiscBypass: this.txOpts.qdiscBypass,
      });
    } catch {
      return; // keep the old ring: longer datagrams are fragmented or counted as too_big
    }
    this.tx.set(name, { ring, ifindex });
    for (const [slot, s] of this.#specs) {
      if (s.o.interface === name && !this.broken[slot]) this.#install(slot);
    }
    old.ring.close();
  }

  /** Fold the slot's C counters into the carried counts, then clear the template. */
  #uninstall(slot: number, reason: string): void {
    const c = this.fwd.counters;
    const b = slot * OUT_COUNTER_WORDS;
    for (let k = 0; k < OUT_COUNTER_WORDS; k++) {
      if (k !== OutCounter.queued) this.#carried[b + k] += Number(c[b + k]);
    }
    this.fwd.setTemplate(slot, null);
    this.broken[slot] = 1;
    this.#specs.get(slot)!.installError = reason;
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
      const reason = e instanceof Error ? e.message : String(e);
      if (!this.broken[slot]) this.#uninstall(slot, reason);
      s.installError = reason;
    }
  }

  /** Install templates for a table; clear slots no longer used. */
  apply(table: WorkerTable): void {
    this.#links = table.links ?? {};
    const used = new Set<number>();
    for (const r of table.rules) {
      for (const o of r.outputs) {
        used.add(o.slot);
        const id = outputKey(r.id, o);
        const key = JSON.stringify(o);
        const cur = this.#specs.get(o.slot);
        if (cur?.id === id && cur.key === key) continue;
        if (cur && cur.id !== id) this.#clear(o.slot); // another output now owns the slot
        const keep = cur?.id === id ? cur : undefined;
        if (!keep) this.#resetSlot(o.slot);
        this.#specs.set(o.slot, { id, key, o, reported: keep?.reported, ifindex: 0 });
        this.#install(o.slot);
      }
    }
    for (const slot of [...this.#specs.keys()]) if (!used.has(slot)) this.#clear(slot);
    this.#dropUnusedRings();
  }

  /** The slot's output is gone: clear its template and counters. */
  #clear(slot: number): void {
    this.fwd.setTemplate(slot, null);
    this.#specs.delete(slot);
    this.broken[slot] = 0;
    this.#resetSlot(slot);
  }

  /** Close TX rings no template uses any more. */
  #dropUnusedRings(): void {
    const ifs = new Set([...this.#specs.values()].map((s) => s.o.interface));
    for (const [name, t] of [...this.tx]) {
      if (ifs.has(name)) continue;
      t.ring.close();
      this.tx.delete(name);
    }
  }

  #resetSlot(slot: number): void {
    const base = OUT_BASE + slot * OUT_WORDS;
    for (let k = 0; k < OUT_WORDS; k++) this.counters[base + k] = 0;
    this.#carried.fill(0, slot * OUT_COUNTER_WORDS, (slot + 1) * OUT_COUNTER_WORDS);
    this.#window.fill(0, slot * 2, slot * 2 + 2);
  }

  /**
   * The link table changed: hand every output interface's flags and MTU to
   * the rings and sockets, drop rings whose interface went away (or was
   * re-created under the same name), and retry outputs that are broken.
   */
  onLinks(): void {
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
    // socket outputs are bound to an interface index: follow a re-created interface
    for (const [slot, s] of this.#specs) {
      const l = this.#link(s.o.interface);
      if (!this.broken[slot] && l && s.ifindex && l.ifindex !== s.ifindex) this.#install(slot);
    }
    const seen = new Set<string>();
    for (const s of this.#specs.values()) {
      const name = s.o.interface;
      if (seen.has(name)) continue;
      seen.add(name);
      const l = this.#link(name);
      if (l) this.fwd.setLink(l.ifindex, l.flags, l.mtu);
    }
    this.retry();
  }

  /** Retry the templates of broken outputs (an interface or address may be back). */
  retry(): void {
    for (const [slot, s] of this.#specs) {
      if (!this.broken[slot]) continue;
      this.#install(slot);
      // a freshly opened ring starts from the link table's view of its link
      if (!this.broken[slot]) {
        const l = this.#link(s.o.interface);
        if (l) this.fwd.setLink(l.ifindex, l.flags, l.mtu);
      }
    }
  }

  #template(o: TableOutput): Template {
    let iface;
    try {
      iface = ifaceByName(o.interface);
    } catch (e) {
      if (e instanceof McrError && e.code === "ENODEV") {
        throw new Error(`output interface ${o.interface} does not exist`);
      }
      throw e;
    }
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
      srcPort: o.srcPort,
      dstPort: o.port,
      ttl: o.ttl || 64,
      tos: o.tos,
    };
    if (!isMulticast(o.dst)) return { kind: "socket", ...common };
    if (!iface.mac) throw new Error(`output interface ${o.interface} has no hardware address`);
    return {
      kind: "ring",
      ...common,
      dstMac: mcastMac(o.dst),
      srcMac: iface.mac,
      tx: this.#txFor(o.interface, iface.ifindex),
    };
  }

  /**
   * Copy C's per-template counters (plus carried counts) into the shared
   * block and report state changes. `closeWindow` ends a health window
   * (about once a second): an output that sent nothing while every datagram
   * failed in it is in error. Returns the totals for the interface counters.
   */
  sync(closeWindow: boolean): {
    ringFull: number;
    errors: number;
    sent: number;
    linkDown: number;
    tooBig: number;
  } {
    for (const t of this.tx.values()) t.stats = t.ring.stats();
    const c = this.fwd.counters;
    const car = this.#carried;
    let ringFull = 0, errors = 0, sent = 0, linkDown = 0, tooBig = 0;
    for (const [slot, spec] of this.#specs) {
      const base = OUT_BASE + slot * OUT_WORDS;
      const s = slot * OUT_COUNTER_WORDS;
      const v = (k: number) => Number(c[s + k]) + car[s + k];
      const p = v(OutCounter.packets);
      const rf = v(OutCounter.ringFull);
      const er = v(OutCounter.errors);
      const ld = v(OutCounter.linkDown);
      const tb = v(OutCounter.tooBig);
      const out = this.counters;
      out[base + Out.packets] = p;
      out[base + Out.bytes] = v(OutCounter.bytes);
      out[base + Out.ringFull] = rf;
      out[base + Out.errors] = er;
      out[base + Out.linkDown] = ld;
      out[base + Out.tooBig] = tb;
      out[base + Out.fragmented] = v(OutCounter.fragmented);
      out[base + Out.queued] = Number(c[s + OutCounter.queued]);
      sent += p;
      ringFull += rf;
      errors += er + out[base + Out.unavailable];
      linkDown += ld;
      tooBig += tb;
      this.#updateState(slot, spec, p, er + tb, closeWindow);
    }
    return { ringFull, errors, sent, linkDown, tooBig };
  }

  #updateState(
    slot: number,
    spec: Spec,
    packets: number,
    failures: number,
    closeWindow: boolean,
  ): void {
    const name = spec.o.interface;
    let reason = spec.installError;
    if (reason === undefined) {
      const l = this.#link(name);
      const ring = this.tx.get(name);
      const st = ring?.stats;
      if (this.#links[name] !== undefined) reason = linkProblem(name, l);
      if (reason) reason = `output ${reason}`;
      if (!reason && st && st.down) reason = downReason(name, st.down);
      if (!reason && st && st.stalledMs >= STALL_MS) {
        reason = `TX ring on ${name} stalled: ${st.queued} frames queued, none taken for ${
          (st.stalledMs / 1000).toFixed(1)
        } s`;
      }
      if (!reason) {
        // the last health window: nothing sent, everything failed
        const w = slot * 2;
        const dp = packets - this.#window[w], df = failures - this.#window[w + 1];
        if (closeWindow) {
          this.#window[w] = packets;
          this.#window[w + 1] = failures;
          spec.windowFailing = dp === 0 && df > 0 ? this.#failureReason(spec, st) : undefined;
        }
        reason = spec.windowFailing;
      }
    }
    const r = reason ?? "";
    if (spec.reported === r) return;
    spec.reported = r;
    this.report(slot, r ? "error" : "ok", r || undefined);
  }

  #failureReason(spec: Spec, st: TxStats | undefined): string {
    const name = spec.o.interface;
    const c = this.fwd.counters;
    const s = spec.o.slot * OUT_COUNTER_WORDS;
    if (Number(c[s + OutCounter.tooBig]) > 0 && !st?.lastErr) {
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

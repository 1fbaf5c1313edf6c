/**
 * The input side of a pool worker: the RX rings of the input interfaces it
 * serves (one per interface, a member of that interface's fanout group), the
 * rule table of each, and their counters in the shared block. The worker's
 * loop (worker.ts) waits on all of them through one `RxSet` and hands each
 * ready batch back to `forward`.
 *
 * @module
 */
import {
  type LinkLayout,
  type RxGeometry,
  type RxOptions,
  RxRing,
  type RxSet,
  type RxStats,
} from "../../ffi/mod.ts";
import { LINK_HEADER } from "./link_types.ts";
import { Drop } from "./packet.ts";
import { In, IN_DROP, IN_WORDS, inBase, W, zeroRule } from "./counters.ts";
import { compileRule, MatchTable } from "./match.ts";
import { readLink } from "./link_table.ts";
import type { Outputs } from "./outputs.ts";
import { type InputRxOptions, RX_SLOT_OVERHEAD, type TableRule } from "./messages.ts";

/**
 * Longest gap between two reads of an idle ring's kernel counters (ms). A
 * ring that took frames is read at every sync; one that took none can have
 * new kernel counts only if frames wait in it unserved (which wakes the
 * worker, so it takes them), so this read is a safety net — one system call
 * per idle ring, which at 256 interfaces was most of the idle worker's CPU
 * when it ran every second.
 */
const KERNEL_STATS_IDLE_MS = 10_000;

/** One input interface a worker serves (its ring may be closed). */
export interface Input {
  /** Input slot (the supervisor's index of the interface; also the RxSet tag). */
  readonly slot: number;
  /** Assignment generation of the slot (counters carry it as their owner). */
  readonly gen: number;
  /** Interface name. */
  readonly name: string;
  /** First counter word of the slot's section. */
  readonly base: number;
  /** This worker's index among the interface's fanout members. */
  member: number;
  /** Link-table row of the interface, -1 when unknown. */
  link: number;
  /** Ring options the supervisor chose. */
  rx: InputRxOptions;
  /** The open ring, or null. */
  ring: RxRing | null;
  /** How the ring's frames start (the interface's link type, when the ring opened). */
  layout: LinkLayout;
  /** Length of the ring's link-layer header (`LINK_HEADER[layout]`): what the parser skips. */
  linkHeader: number;
  /** Geometry of the open ring. */
  geometry?: RxGeometry;
  /** The interface's rules, compiled (by slot too: their ids and output slots). */
  readonly lookup: MatchTable;
  /** The open ring's kernel filter passes IPv6 (the input has IPv6 rules). */
  ipv6: boolean;
  /** Kernel counts of earlier rings on the interface (a reopen). */
  readonly kernel: { packets: number; drops: number; freezes: number };
  /** Frames counted at the last kernel-stat read, and when. */
  framesAtStats: number;
  /** When the kernel counters were read last (performance.now()). */
  statsAt: number;
  /** The MTU last warned about (a configured frame size too small), 0 if none. */
  mtuWarned: number;
}

/** What the input side needs from its worker. */
export interface InputRingsHost {
  /** The worker's shared counter block. */
  readonly counters: Float64Array;
  /** The set every open ring waits in. */
  readonly set: RxSet;
  /** The worker's outputs (rules set and clear theirs). */
  readonly outs: Outputs;
  /** Process one batch of `n` frames of an input's ring. */
  forward(inp: Input, ring: RxRing, n: number): void;
  /** Log a message through the supervisor. */
  log(level: "info" | "warning", message: string): void;
  /** The set of open rings changed. */
  changed(): void;
}

/** The input interfaces of one worker, by slot. */
export class InputRings {
  readonly #h: InputRingsHost;
  readonly #inputs = new Map<number, Input>();
  /** Slot → input, for the hot loop (RxSet tags are slots). */
  readonly bySlot: (Input | undefined)[] = [];

  /** Serve the inputs of the worker `host`. */
  constructor(host: InputRingsHost) {
    this.#h = host;
  }

  /** Every input. */
  values(): IterableIterator<Input> {
    return this.#inputs.values();
  }

  /** Rules held over all inputs. */
  ruleCount(): number {
    let n = 0;
    for (const inp of this.#inputs.values()) n += inp.lookup.size;
    return n;
  }

  /** The input of `slot`, if served. */
  get(slot: number): Input | undefined {
    return this.#inputs.get(slot);
  }

  /** The interfaces with an open ring, with this worker's member index in each. */
  open(): { interface: string; member: number }[] {
    return [...this.#inputs.values()].filter((i) => i.ring).map((i) => ({
      interface: i.name,
      member: i.member,
    }));
  }

  /** The input of `slot` for assignment `gen`; a new assignment starts its counters at zero. */
  inputFor(slot: number, gen: number, name: string): Input {
    const have = this.#inputs.get(slot);
    if (have && have.gen === gen) return have;
    if (have) this.forget(have);
    const c = this.#h.counters;
    const base = inBase(slot);
    c.fill(0, base, base + IN_WORDS);
    c[base + In.owner] = gen;
    const inp: Input = {
      slot,
      gen,
      name,
      base,
      member: 0,
      link: -1,
      rx: {},
      ring: null,
      layout: "ethernet",
      linkHeader: LINK_HEADER.ethernet,
      lookup: new MatchTable(),
      ipv6: false,
      kernel: { packets: 0, drops: 0, freezes: 0 },
      framesAtStats: 0,
      statsAt: 0,
      mtuWarned: 0,
    };
    this.#inputs.set(slot, inp);
    this.bySlot[slot] = inp;
    return inp;
  }

  #zeroRule(slot: number): void {
    zeroRule(this.#h.counters, slot);
  }

  /** Remove the rule in `slot` from the input's table; its outputs go with it. */
  removeRule(inp: Input, slot: number): void {
    const r = inp.lookup.get(slot);
    if (!r) return;
    inp.lookup.delete(slot);
    for (const o of r.tmpl) this.#h.outs.clear(o);
    this.#zeroRule(slot);
    if (r.a6 !== null) this.#followIpv6(inp);
  }

  /**
   * The ring's kernel filter passes IPv6 exactly while the input has IPv6
   * rules (a failure is logged: the IPv6 rules then see nothing, or the
   * ring keeps passing IPv6 frames that count as no_match).
   */
  #followIpv6(inp: Input): void {
    const want = inp.lookup.v6 !== null;
    if (!inp.ring || inp.ipv6 === want) return;
    try {
      inp.ring.setIpv6(want);
      inp.ipv6 = want;
    } catch (e) {
      this.#h.log("warning", `${inp.name}: RX filter for IPv6: ${(e as Error).message}`);
    }
  }

  /** Add or replace a rule; outputs it keeps keep their counters and rings. */
  upsertRule(inp: Input, r: TableRule): void {
    const prev = inp.lookup.get(r.slot);
    if (!prev || prev.id !== r.id) this.#zeroRule(r.slot); // a new rule in the slot
    const now = new Set(r.outputs.map((o) => o.slot));
    if (prev) { for (const o of prev.tmpl) if (!now.has(o)) this.#h.outs.clear(o); }
    for (const o of r.outputs) this.#h.outs.set(r.id, o);
    const c = compileRule(r);
    inp.lookup.set(c);
    if (c.a6 !== null || prev?.a6) this.#followIpv6(inp);
  }

  /** Close an input's ring: forward what it holds (or count it), fold its kernel counts. */
  closeRing(inp: Input, drain: boolean): void {
    const ring = inp.ring;
    if (!ring) return;
    const c = this.#h.counters;
    this.#h.set.remove(inp.slot);
    inp.ring = null;
    try {
      if (drain) {
        for (let n = ring.poll(0); n > 0; n = ring.poll(0)) this.#h.forward(inp, ring, n);
      }
      const s = ring.stats();
      this.#writeKernel(inp, s);
      inp.kernel.packets += s.packets;
      inp.kernel.drops += s.drops;
      inp.kernel.freezes += s.freezes;
      const left = s.packets - s.drops - s.frames;
      if (left > 0) c[inp.base + IN_DROP + Drop.unprocessed] += left;
    } catch { /* the ring may be unusable */ }
    ring.close();
    c[inp.base + In.open] = 0;
    c[W.rings] = this.#h.set.size;
    this.#h.changed();
  }

  /** The interface has no rules any more: drop everything of it, counters included. */
  forget(inp: Input): void {
    this.closeRing(inp, true);
    for (const slot of [...inp.lookup.slots()]) this.removeRule(inp, slot);
    this.#h.counters.fill(0, inp.base, inp.base + IN_WORDS);
    this.#inputs.delete(inp.slot);
    this.bySlot[inp.slot] = undefined;
  }

  /** Open the input's ring with `rx` (its `layout`: the interface's) and add it to the set. */
  openRing(inp: Input, rx: RxOptions): RxRing {
    inp.ipv6 = inp.lookup.v6 !== null;
    const ring = new RxRing({ ...rx, ipv6: inp.ipv6 });
    inp.layout = rx.layout ?? "ethernet";
    inp.linkHeader = LINK_HEADER[inp.layout];
    try {
      this.#h.set.add(ring, inp.slot);
    } catch (e) {
      ring.close();
      throw e;
    }
    this.#adopt(inp, ring);
    return ring;
  }

  #adopt(inp: Input, ring: RxRing): void {
    inp.ring = ring;
    inp.geometry = ring.geometry();
    this.#h.counters[inp.base + In.open] = 1;
    this.#h.counters[W.rings] = this.#h.set.size;
    this.#h.changed();
  }

  /** Write a ring's kernel counts; true when its drop count grew. */
  #writeKernel(inp: Input, s: RxStats): boolean {
    const c = this.#h.counters;
    const drops = inp.kernel.drops + s.drops;
    const grew = drops > c[inp.base + In.kernelDrops];
    c[inp.base + In.kernelPackets] = inp.kernel.packets + s.packets;
    c[inp.base + In.kernelDrops] = drops;
    c[inp.base + In.kernelFreezes] = inp.kernel.freezes + s.freezes;
    return grew;
  }

  /**
   * Copy the kernel's ring counters into the shared block: for rings that
   * took frames since the last read, and for every ring at least every
   * {@link KERNEL_STATS_IDLE_MS}. True when a ring's kernel drop count grew
   * (a ring overflowed: the worker fell behind).
   */
  syncKernel(now: number): boolean {
    const c = this.#h.counters;
    let dropped = false;
    for (const inp of this.#inputs.values()) {
      const ring = inp.ring;
      if (!ring) continue;
      const frames = c[inp.base + In.frames];
      if (frames === inp.framesAtStats && now - inp.statsAt < KERNEL_STATS_IDLE_MS) continue;
      inp.framesAtStats = frames;
      inp.statsAt = now;
      if (this.#writeKernel(inp, ring.stats())) dropped = true;
    }
    return dropped;
  }

  /**
   * The input MTU grew past what the ring's slots hold (frames would be
   * truncated): open a bigger ring and retire the old one. In a fanout
   * group the new ring joins first and the old one is drained before it
   * closes (at most a reordering at this membership change); without
   * fanout the old ring closes first (a frame arriving in between is lost).
   */
  #reopen(inp: Input, mtu: number): void {
    const old = inp.ring!;
    const joinGroup = inp.rx.fanout !== "none";
    const opts: RxOptions = {
      ...inp.rx,
      ifindex: old.ifindex,
      layout: inp.layout,
      ipv6: inp.ipv6,
    };
    if (joinGroup) {
      opts.fanoutId = inp.geometry!.fanoutId;
      opts.uniqueFanoutId = false;
    }
    if (!joinGroup) this.closeRing(inp, true);
    const next = new RxRing(opts);
    if (joinGroup) this.closeRing(inp, true);
    this.#h.set.add(next, inp.slot);
    this.#adopt(inp, next);
    this.#h.log(
      "info",
      `${inp.name}: input MTU ${mtu}: RX ring reopened with ${inp.geometry!.frameSize}-byte slots`,
    );
  }

  /** The link table changed: reopen (or warn about) rings whose slots the input MTU outgrew. */
  checkMtu(links: Int32Array): void {
    for (const inp of this.#inputs.values()) {
      const g = inp.geometry;
      if (!inp.ring || !g || g.version !== 2 || inp.link < 0) continue;
      const l = readLink(links, inp.link);
      if (!l || l.ifindex !== inp.ring.ifindex) continue; // the supervisor reopens it
      if (l.mtu + RX_SLOT_OVERHEAD <= g.frameSize) continue;
      if (inp.rx.frameSize) {
        if (inp.mtuWarned !== l.mtu) {
          inp.mtuWarned = l.mtu;
          this.#h.log(
            "warning",
            `${inp.name}: MTU ${l.mtu} exceeds the configured RX frame_size ` +
              `${inp.rx.frameSize}: longer frames are truncated (counted as truncated)`,
          );
        }
        continue;
      }
      try {
        this.#reopen(inp, l.mtu);
      } catch (e) {
        this.#h.log(
          "warning",
          `${inp.name}: reopening the RX ring for MTU ${l.mtu}: ${(e as Error).message}`,
        );
      }
    }
  }
}

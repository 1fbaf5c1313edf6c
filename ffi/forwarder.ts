/**
 * `Forwarder`: output templates (how each output's frames are built),
 * forward descriptors written by the hot loop, per-template counters, and
 * the submit that builds and sends a batch (csrc/fwd.c).
 *
 * @module
 */
import { FWD_DESC, OUT_COUNTERS, TEMPLATE, TemplateKind, words } from "./abi.ts";
import type { RxRing } from "./rx_ring.ts";
import type { TxRing } from "./tx_ring.ts";
import { check, errBuf, lib, open, view } from "./util.ts";
import { McrError } from "./errors.ts";

/** An output template: how one output's frames are built. */
export interface Template {
  /** "ring": built into a TX ring; "socket": sent through a UDP socket bound to the device. */
  kind: "ring" | "socket";
  /** Output interface index. */
  ifindex: number;
  /** Source address (host order). */
  srcIp: number;
  /** Destination group or unicast address (host order); with `dstHostBits`, its prefix. */
  dstIp: number;
  /** Source port; 0 keeps the input datagram's (ring) or is ephemeral (socket). */
  srcPort: number;
  /** Destination port; 0 keeps the input datagram's. */
  dstPort: number;
  /**
   * Low bits of the destination address taken from the input datagram's, per
   * datagram (0 or absent: `dstIp` as is; 1..28: a range mapped onto `dstIp`'s
   * prefix of the same length, or kept; `dstIp` must then be multicast).
   */
  dstHostBits?: number;
  /** TTL used when the descriptor carries none. */
  ttl: number;
  /** TOS byte (DSCP << 2). */
  tos: number;
  /** Destination MAC (ring kind). */
  dstMac?: Uint8Array;
  /** Source MAC (ring kind). */
  srcMac?: Uint8Array;
  /** TX ring (ring kind). */
  tx?: TxRing;
  /**
   * An IPv6 output (issue 14): its source then its destination address, 32
   * bytes as on the wire (`srcIp`/`dstIp` are then unused; installed with
   * `mcr_fwd_set_template6`).
   */
  addrs6?: Uint8Array;
}

/** Words per forward descriptor in `Forwarder.desc` (struct mcr_fwd_desc is 8 × u32). */
export const FWD_DESC_WORDS: number = words(FWD_DESC, 4);

/** Word index of each `struct mcr_fwd_desc` field in `Forwarder.desc`. */
export const FwdDescWord = {
  frame: FWD_DESC.field.frame / 4,
  l3Offset: FWD_DESC.field.l3Offset / 4,
  payloadOff: FWD_DESC.field.payloadOff / 4,
  payloadLen: FWD_DESC.field.payloadLen / 4,
  tmpl: FWD_DESC.field.tmpl / 4,
  ttl: FWD_DESC.field.ttl / 4,
  flags: FWD_DESC.field.flags / 4,
} as const;

/** Words per template in `Forwarder.counters` (struct mcr_out_counters is 8 × double). */
export const OUT_COUNTER_WORDS: number = words(OUT_COUNTERS, 8);

/** Word index of each `struct mcr_out_counters` field (datagrams, not frames). */
export const OutCounter = {
  /** Datagrams the kernel took. */
  packets: OUT_COUNTERS.field.packets / 8,
  /** UDP payload bytes of those. */
  bytes: OUT_COUNTERS.field.bytes / 8,
  /** Dropped: TX ring full / socket would block. */
  ringFull: OUT_COUNTERS.field.ringFull / 8,
  /** Dropped: invalid descriptor, send error. */
  errors: OUT_COUNTERS.field.errors / 8,
  /** Dropped: output link down, without carrier, or gone. */
  linkDown: OUT_COUNTERS.field.linkDown / 8,
  /** Dropped: longer than the output MTU with DF set, or refused by the kernel as too long. */
  tooBig: OUT_COUNTERS.field.tooBig / 8,
  /** Of packets: sent as IPv4 fragments. */
  fragmented: OUT_COUNTERS.field.fragmented / 8,
  /** Gauge: in a TX ring, not yet taken by the kernel. */
  queued: OUT_COUNTERS.field.queued / 8,
} as const;

/** The `struct mcr_template` for `t` (null: unused). */
function encodeTemplate(t: Template | null): Uint8Array {
  const b = new Uint8Array(TEMPLATE.size);
  if (!t) return b; // kind 0 = unused
  const dv = new DataView(b.buffer);
  const f = TEMPLATE.field;
  dv.setUint32(f.kind, TemplateKind[t.kind], true);
  dv.setUint32(f.ifindex, t.ifindex, true);
  dv.setUint32(f.srcIp, t.srcIp >>> 0, false); // network byte order
  dv.setUint32(f.dstIp, t.dstIp >>> 0, false);
  dv.setUint16(f.srcPort, t.srcPort, false);
  dv.setUint16(f.dstPort, t.dstPort, false);
  dv.setUint8(f.ttl, t.ttl);
  dv.setUint8(f.tos, t.tos);
  dv.setUint8(f.dstHostBits, t.dstHostBits ?? 0);
  if (t.dstMac) b.set(t.dstMac.subarray(0, 6), f.dstMac);
  if (t.srcMac) b.set(t.srcMac.subarray(0, 6), f.srcMac);
  if (t.kind === "ring") {
    if (!t.tx) throw new Error("ring template needs a TxRing");
    dv.setBigUint64(f.tx, t.tx.handle, true);
  }
  return b;
}

/**
 * Builds and sends output datagrams from forward descriptors. TS writes
 * descriptors into `desc` ({@link FWD_DESC_WORDS} words each, at
 * {@link FwdDescWord}) and calls `submit`.
 */
export class Forwarder implements Disposable {
  #ptr: Deno.PointerObject | null;
  readonly #submit: (f: Deno.PointerObject, r: Deno.PointerObject, n: number) => number;
  readonly #submitMem: (
    f: Deno.PointerObject,
    batch: Uint32Array,
    nbatch: number,
    frames: Uint8Array,
    size: bigint,
    n: number,
  ) => number;
  readonly #service: (f: Deno.PointerObject) => number;
  /** Forward descriptors (zero-copy, maxDesc entries). */
  readonly desc: Uint32Array;
  /**
   * Per-template counters (zero-copy): template i's at `i * counterStride`
   * + {@link OutCounter}. The forwarder's own array until {@link setCounters}.
   */
  counters: Float64Array;
  /** Words between two templates' counters in `counters`. */
  counterStride: number = OUT_COUNTER_WORDS;
  /** Template capacity. */
  readonly maxTemplates: number;
  /** Descriptor capacity. */
  readonly maxDesc: number;

  /** @param maxTemplates template slots @param maxDesc descriptors per submit */
  constructor(maxTemplates: number, maxDesc: number) {
    const l = lib();
    const p = open(
      "mcr_fwd_open",
      (out, err, n) => l.sym.mcr_fwd_open(maxTemplates, maxDesc, out, err, n),
    );
    this.#ptr = p;
    this.maxTemplates = maxTemplates;
    this.maxDesc = maxDesc;
    this.desc = new Uint32Array(view(l.sym.mcr_fwd_desc(p), maxDesc * FWD_DESC.size));
    this.counters = new Float64Array(
      view(l.sym.mcr_fwd_counters(p), maxTemplates * OUT_COUNTERS.size),
    );
    this.#submit = l.sym.mcr_fwd_submit;
    this.#submitMem = l.sym.mcr_fwd_submit_mem;
    this.#service = l.sym.mcr_fwd_service;
  }

  /** The C handle. */
  get pointer(): Deno.PointerObject {
    if (!this.#ptr) throw new Error("Forwarder is closed");
    return this.#ptr;
  }

  /** Install or replace template `idx`; `null` clears it. */
  setTemplate(idx: number, t: Template | null): void {
    const b = encodeTemplate(t);
    const [err, errlen] = errBuf();
    if (t?.addrs6) {
      if (t.addrs6.length !== 32) throw new Error("an IPv6 template needs 32 address bytes");
      check(
        "mcr_fwd_set_template6",
        lib().sym.mcr_fwd_set_template6(this.pointer, idx, b, t.addrs6, err, errlen),
        err,
      );
      return;
    }
    check(
      "mcr_fwd_set_template",
      lib().sym.mcr_fwd_set_template(this.pointer, idx, b, err, errlen),
      err,
    );
  }

  /**
   * Keep the counters in `block` (e.g. a SharedArrayBuffer other threads
   * read): template i's at `i * strideWords` + {@link OutCounter}, from
   * element 0 of `block`. The current counts are copied there. `block` must
   * stay alive as long as the forwarder (hold a reference).
   */
  setCounters(block: Float64Array, strideWords: number): void {
    check(
      "mcr_fwd_set_counters",
      lib().sym.mcr_fwd_set_counters(
        this.pointer,
        block,
        BigInt(block.byteLength),
        strideWords * 8,
      ),
    );
    this.counters = block;
    this.counterStride = strideWords;
  }

  /** Zero template `idx`'s counters (a new output takes the slot). */
  resetCounters(idx: number): void {
    check("mcr_fwd_reset_counters", lib().sym.mcr_fwd_reset_counters(this.pointer, idx));
  }

  /** Send `n` descriptors whose frames are in `rx`'s current batch; returns datagrams queued/sent. */
  submit(rx: RxRing, n: number): number {
    const r = this.#submit(this.#ptr!, rx.pointer, n);
    if (r < 0) throw new McrError("mcr_fwd_submit", r, "");
    return r;
  }

  /**
   * Send `n` descriptors whose frames the caller copied into `frames`:
   * descriptor i's `frame` indexes `batch` (RX descriptors, `RX_DESC_WORDS`
   * words each, offsets into `frames`). Returns datagrams queued/sent.
   */
  submitMem(batch: Uint32Array, nbatch: number, frames: Uint8Array, n: number): number {
    const r = this.#submitMem(
      this.#ptr!,
      batch,
      nbatch,
      frames,
      BigInt(frames.byteLength),
      n,
    );
    if (r < 0) throw new McrError("mcr_fwd_submit_mem", r, "");
    return r;
  }

  /**
   * Housekeeping between batches: retry kicks cut short, probe rings whose
   * link is down. Returns the frames still queued (poll sooner while > 0).
   */
  service(): number {
    return check("mcr_fwd_service", this.#service(this.pointer));
  }

  /** Apply what the link monitor saw for an output interface to its rings and sockets. */
  setLink(ifindex: number, flags: number, mtu: number): void {
    lib().sym.mcr_fwd_set_link(this.pointer, ifindex >>> 0, flags >>> 0, mtu >>> 0);
  }

  /** Descriptors refused because their template index was out of range or unused. */
  invalid(): number {
    return this.#ptr ? Number(lib().sym.mcr_fwd_invalid(this.#ptr)) : 0;
  }

  /** Outcomes of frames whose template had been cleared meanwhile (charged to no output). */
  orphans(): number {
    return this.#ptr ? Number(lib().sym.mcr_fwd_orphans(this.#ptr)) : 0;
  }

  /** Close (idempotent). */
  close(): void {
    if (!this.#ptr) return;
    lib().sym.mcr_fwd_close(this.#ptr);
    this.#ptr = null;
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }
}

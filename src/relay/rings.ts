/**
 * Ring sizes: how many slots each RX and TX ring gets, chosen so that memory
 * follows what the relay does rather than how many interfaces it names.
 *
 * RX: each worker has an RX budget ({@link RX_BUDGET_BYTES}) shared by the
 * input interfaces it serves, so one interface gets the full-size ring (4096
 * slots of 2 KiB at MTU 1500, 8 MiB — about 40 ms at 100 kpps) and 256 idle
 * interfaces get 128 slots (256 KiB) each. An interface's expected peak rate
 * (`rate_pps`) sizes its rings to hold {@link HOLD_MS} of it instead; an
 * explicit `rx_frame_count` (per interface) or `rx.frame_count` (global)
 * wins over both. V3 rings (blocks of 64 KiB) are sized the same way in
 * blocks.
 *
 * TX: a worker's TX budget ({@link TX_BUDGET_BYTES}) is shared by the output
 * interfaces its rules send on (at least {@link TX_MIN_FRAMES} slots each: a
 * ring that fills is kicked at once, so it needs room for a burst, not for a
 * second of traffic); `rate_pps`, `tx_frame_count` and `tx.frame_count`
 * override it as for RX.
 *
 * @module
 */
import {
  type InputRxOptions,
  RX_SLOT_OVERHEAD,
  type TxRingOptions,
  type WorkerInit,
} from "../datapath/messages.ts";
import type { DataPathOptions } from "./pool.ts";

/** RX ring memory per worker, shared by the interfaces it serves. */
export const RX_BUDGET_BYTES = 32 * 1024 * 1024;
/** Fewest RX slots a V2 ring gets from the budget. */
export const RX_MIN_FRAMES = 128;
/** Most RX slots a V2 ring gets from the budget (the single-interface default). */
export const RX_MAX_FRAMES = 4096;
/** V3 block size libmcr uses by default. */
const V3_BLOCK_BYTES = 64 * 1024;
/** Fewest and most V3 blocks a ring gets from the budget. */
const V3_MIN_BLOCKS = 4;
const V3_MAX_BLOCKS = 64;
/** TX ring memory per worker, shared by its output interfaces. */
export const TX_BUDGET_BYTES = 16 * 1024 * 1024;
/** Fewest TX slots a ring gets from the budget. */
export const TX_MIN_FRAMES = 256;
/** Most TX slots a ring gets from the budget (libmcr's default). */
export const TX_MAX_FRAMES = 1024;
/** How much traffic at the expected peak rate a ring holds. */
export const HOLD_MS = 50;
/** Largest ring a rate hint asks for (slots). */
const RATE_MAX_FRAMES = 65536;
/** Ethernet header on top of the MTU in a TX slot (plus libmcr's tpacket header). */
const TX_SLOT_OVERHEAD = 32 + 14;

function pow2ceil(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

function pow2floor(n: number): number {
  let p = 1;
  while (p * 2 <= n) p *= 2;
  return p;
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, n));
}

/** Slots for `ratePps` held for {@link HOLD_MS}. */
function forRate(ratePps: number): number {
  return clamp(pow2ceil(Math.ceil(ratePps * HOLD_MS / 1000)), RX_MIN_FRAMES, RATE_MAX_FRAMES);
}

/**
 * RX ring options for input interface `name`, whose workers serve `inputs`
 * input interfaces (this one included); `mtu` is its MTU if known.
 */
export function rxRingFor(
  opts: DataPathOptions,
  name: string,
  inputs: number,
  mtu = 1500,
): InputRxOptions {
  const rx: InputRxOptions = { ...(opts.rx ?? {}) };
  const o = opts.interfaces?.[name] ?? {};
  if (o.fanout) rx.fanout = o.fanout;
  if (o.promisc) rx.promisc = true;
  const n = Math.max(1, inputs);
  if (rx.tpacketVersion === 3) {
    if (rx.blockCount === undefined) {
      rx.blockCount = o.ratePps
        ? clamp(
          Math.ceil(forRate(o.ratePps) * pow2ceil(RX_SLOT_OVERHEAD + mtu) / V3_BLOCK_BYTES),
          V3_MIN_BLOCKS,
          1024,
        )
        : clamp(Math.floor(RX_BUDGET_BYTES / (V3_BLOCK_BYTES * n)), V3_MIN_BLOCKS, V3_MAX_BLOCKS);
    }
    return rx;
  }
  if (o.rxFrameCount !== undefined) rx.frameCount = o.rxFrameCount;
  else if (rx.frameCount === undefined) {
    const slot = pow2ceil(RX_SLOT_OVERHEAD + mtu);
    rx.frameCount = o.ratePps
      ? forRate(o.ratePps)
      : clamp(pow2floor(RX_BUDGET_BYTES / (slot * n)), RX_MIN_FRAMES, RX_MAX_FRAMES);
  }
  return rx;
}

/**
 * TX ring options of a worker whose rules send on `outputs` (interface
 * names): the default slot count and per-interface overrides.
 */
export function txRingFor(
  opts: DataPathOptions,
  outputs: readonly string[],
  mtu = 1500,
): { options: TxRingOptions; perInterface: Record<string, number> } {
  const options: TxRingOptions = { ...(opts.tx ?? {}) };
  if (options.frameCount === undefined) {
    const slot = pow2ceil(TX_SLOT_OVERHEAD + mtu);
    options.frameCount = clamp(
      pow2floor(TX_BUDGET_BYTES / (slot * Math.max(1, outputs.length))),
      TX_MIN_FRAMES,
      TX_MAX_FRAMES,
    );
  }
  const perInterface: Record<string, number> = {};
  for (const [name, o] of Object.entries(opts.interfaces ?? {})) {
    if (o.txFrameCount !== undefined) perInterface[name] = o.txFrameCount;
    else if (o.ratePps) perInterface[name] = forRate(o.ratePps);
  }
  return { options, perInterface };
}

/** What a worker is told about its rings when it starts (see {@link workerRings}). */
export type WorkerRings = Pick<WorkerInit, "tx" | "txFrames" | "coalesceUs" | "coalescePps">;

/**
 * TX ring sizes and gathering for a worker whose inputs' rules send on
 * `outputs` (its rings are sized from what it will serve).
 */
export function workerRings(opts: DataPathOptions, outputs: Iterable<string>): WorkerRings {
  const tx = txRingFor(opts, [...outputs]);
  const rx = opts.rx ?? {};
  return {
    tx: tx.options,
    txFrames: tx.perInterface,
    // V3 rings batch by themselves (blocks): no gathering on top
    coalesceUs: rx.tpacketVersion === 3 ? -1 : rx.coalesceUs,
    coalescePps: rx.coalescePps,
  };
}

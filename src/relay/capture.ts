/**
 * Captures, the supervisor's side (`mcr ctl capture`): start a capture of
 * one rule in every worker that serves its input interface (each writes the
 * frames it matches into a capture ring of its own: datapath/capture.ts),
 * drain those rings while the capture runs, and stop it in every worker
 * when it ends — at its count, at its time limit, when its consumer stops
 * (a client that goes away), when its rule goes away, or when the relay
 * stops. A worker restarted meanwhile gets the capture again (with its
 * ring, which keeps its place).
 *
 * Bounded: at most {@link MAX_CAPTURES} captures at once and one per rule,
 * each at most {@link MAX_CAPTURE_COUNT} frames and
 * {@link MAX_CAPTURE_SECONDS}, and a ring of a fixed size per worker.
 *
 * @module
 */
import {
  CAPTURE_RING_BYTES,
  CaptureReader,
  newCaptureRing,
  unwrapUs,
} from "../datapath/capture.ts";
import type { CaptureMessage } from "../datapath/messages.ts";
import type { DataWorker } from "./pool.ts";

/** Most captures running at once. */
export const MAX_CAPTURES = 4;
/** Frames a capture takes unless told otherwise. */
export const DEFAULT_CAPTURE_COUNT = 1000;
/** Most frames one capture may take. */
export const MAX_CAPTURE_COUNT = 1_000_000;
/** How long a capture runs at most unless told a shorter time (s). */
export const DEFAULT_CAPTURE_SECONDS = 60;
/** Longest a capture may run (s). */
export const MAX_CAPTURE_SECONDS = 3600;
/** How often a running capture's rings are drained (ms). */
export const CAPTURE_DRAIN_MS = 100;

/** Why a capture ended. */
export type CaptureEnd = "count" | "seconds" | "rule_removed" | "relay_stopped";

/** What a capture takes. */
export interface CaptureSpec {
  /** Rule id. */
  ruleId: string;
  /** The rule's input interface. */
  interface: string;
  /** Which of the rule's inputs (every rule has one today: 0). */
  input: number;
  /** Most frames. */
  count: number;
  /** Longest run (s). */
  seconds: number;
  /** Size of each worker's capture ring's data area (default {@link CAPTURE_RING_BYTES}). */
  ringBytes?: number;
}

/** One captured frame, dated. */
export interface DatedFrame {
  /** Kernel receive time, µs since the epoch. */
  timeUs: number;
  /** Length on the wire. */
  origLen: number;
  /** The bytes. */
  data: Uint8Array;
}

/** What a running capture yields at each drain (and once more at its end). */
export interface CaptureBatch {
  /** Frames drained since the last batch, oldest first. */
  frames: DatedFrame[];
  /** Frames handed out so far (these included). */
  captured: number;
  /** Frames the rings had no room for so far (capture drops; forwarding lost none). */
  drops: number;
  /** Set on the last batch: why the capture ended. */
  end?: CaptureEnd;
}

/** A capture that runs: its batches, and a stop that works whether they were read or not. */
export interface CaptureRun {
  /** The batches, one per drain; the last has `end`. Ending the iteration stops the capture. */
  readonly batches: AsyncGenerator<CaptureBatch, void, undefined>;
  /** Stop the capture in every worker (again: nothing). */
  stop(): void;
}

/** Why a capture cannot start (the control layer turns it into an error reply). */
export class CaptureRefused extends Error {
  /**
   * @param code `busy` (too many captures, or one on the rule already), `not_found`, or
   *   `bad_args` (an input the rule does not have)
   * @param message for people
   */
  constructor(readonly code: "busy" | "not_found" | "bad_args", message: string) {
    super(message);
    this.name = "CaptureRefused";
  }
}

/** What {@link Captures} needs of the supervisor. */
export interface CaptureHost {
  /** The input interfaces with rules, by name (the supervisor's, kept up to date). */
  readonly inputs: ReadonlyMap<string, CaptureInput>;
  /** True once the relay is stopping. */
  closed(): boolean;
}

/** What a capture needs of an input interface (relay/inputs.ts `Input`). */
export interface CaptureInput {
  /** Input slot. */
  readonly slot: number;
  /** Its rules in force. */
  readonly table: { readonly rules: readonly { readonly id: string; readonly slot: number }[] };
  /** Its fanout members: the workers that capture. */
  readonly members: readonly { readonly worker: DataWorker }[];
}

/** One running capture. */
interface Running {
  readonly id: number;
  readonly spec: CaptureSpec;
  /** Worker → its ring's reader, and the message that started it there (for a replay). */
  readonly rings: Map<DataWorker, { reader: CaptureReader; msg: Omit<CaptureMessage, "seq"> }>;
}

/** The captures of one relay (see module doc). */
export class Captures {
  readonly #running = new Map<number, Running>();
  #nextId = 1;

  /** @param host the supervisor */
  constructor(readonly host: CaptureHost) {}

  /** Where rule `ruleId` of input `name` is and who serves it; undefined when not in force. */
  #locate(ruleId: string, name: string) {
    const g = this.host.inputs.get(name);
    const rule = g?.table.rules.find((r) => r.id === ruleId);
    if (!g || !rule) return undefined;
    return { inputSlot: g.slot, ruleSlot: rule.slot, workers: g.members.map((m) => m.worker) };
  }

  /** Number of captures running. */
  get size(): number {
    return this.#running.size;
  }

  /** A (re)started worker: start again the captures it had. */
  replay(w: DataWorker): void {
    for (const c of this.#running.values()) {
      const r = c.rings.get(w);
      if (r) w.send(r.msg);
    }
  }

  /**
   * Start capture `spec`: checked at once (throws before anything runs),
   * then its batches as an async iterator. The caller must end it: read it
   * to its end, or call `stop` (a `finally` that always runs).
   * @throws {CaptureRefused} no such rule in force, too many captures, one on the rule already
   */
  start(spec: CaptureSpec): CaptureRun {
    const where = this.#locate(spec.ruleId, spec.interface);
    if (!where) throw new CaptureRefused("not_found", `rule ${spec.ruleId} is not in force`);
    if (this.#running.size >= MAX_CAPTURES) {
      throw new CaptureRefused(
        "busy",
        `${MAX_CAPTURES} captures are running already (the most at once); try again later`,
      );
    }
    for (const c of this.#running.values()) {
      if (c.spec.ruleId === spec.ruleId) {
        throw new CaptureRefused("busy", `the rule is being captured already`);
      }
    }
    const id = this.#nextId++;
    const run: Running = { id, spec, rings: new Map() };
    for (const w of new Set(where.workers)) {
      const ring = newCaptureRing(spec.ringBytes ?? CAPTURE_RING_BYTES);
      const msg: Omit<CaptureMessage, "seq"> = {
        type: "capture",
        id,
        slot: where.inputSlot,
        rule: where.ruleSlot,
        ruleId: spec.ruleId,
        input: spec.input,
        count: spec.count,
        ring,
      };
      run.rings.set(w, { reader: new CaptureReader(ring), msg });
      w.send(msg);
    }
    this.#running.set(id, run);
    return { batches: this.#batches(run), stop: () => this.#stop(run) };
  }

  async *#batches(run: Running): AsyncGenerator<CaptureBatch, void, undefined> {
    const { spec } = run;
    const deadline = performance.now() + spec.seconds * 1000;
    let captured = 0;
    try {
      for (;;) {
        await new Promise((r) => setTimeout(r, CAPTURE_DRAIN_MS));
        const frames = this.#drain(run, spec.count - captured);
        captured += frames.length;
        let end: CaptureEnd | undefined;
        if (captured >= spec.count) end = "count";
        else if (this.host.closed()) end = "relay_stopped";
        else if (!this.#locate(spec.ruleId, spec.interface)) end = "rule_removed";
        else if (performance.now() >= deadline) end = "seconds";
        yield { frames, captured, drops: this.#drops(run), ...(end ? { end } : {}) };
        if (end) return;
      }
    } finally {
      this.#stop(run);
    }
  }

  /** Drained frames of every worker's ring (at most `max`), dated and oldest first. */
  #drain(run: Running, max: number): DatedFrame[] {
    const nowUs = Date.now() * 1000;
    const out: DatedFrame[] = [];
    for (const { reader } of run.rings.values()) {
      for (const f of reader.drain()) {
        out.push({ timeUs: unwrapUs(f.tstampUs, nowUs), origLen: f.origLen, data: f.data });
      }
    }
    // frames of one flow come from one worker (fanout keeps a flow on one member), in order
    if (run.rings.size > 1) out.sort((a, b) => a.timeUs - b.timeUs);
    return out.length > max ? out.slice(0, max) : out;
  }

  #drops(run: Running): number {
    let n = 0;
    for (const { reader } of run.rings.values()) n += reader.drops;
    return n;
  }

  #stop(run: Running): void {
    if (!this.#running.delete(run.id)) return;
    for (const w of run.rings.keys()) w.send({ type: "capture-stop", id: run.id });
  }
}

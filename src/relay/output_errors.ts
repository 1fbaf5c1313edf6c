/**
 * Output errors as the workers report them: each worker that sends on an
 * output says when it goes into error (with the reason) and when it
 * recovers. The supervisor keeps them per output slot and worker (stats
 * show an output in error while any worker reports it so) and logs the
 * changes: one line each for a few, a summary per reason for a burst (a
 * link that carries thousands of outputs going down).
 *
 * @module
 */
import { hostPort } from "../common/net6.ts";
import type { logger } from "../common/log.ts";
import type { TableRule } from "../datapath/messages.ts";
import { outputDestText, outputPortOf } from "../config/ranges.ts";

/** Output state changes of one report logged one by one; more are summarized. */
const LOG_EACH_MAX = 5;

/** Outputs in error: output slot → worker index → reason. */
export class OutputErrors {
  readonly #errors = new Map<number, Map<number, string>>();
  /** Slots whose errors changed since the last {@link takeChanged} (bounded by the slots). */
  #changed = new Set<number>();
  readonly #log: ReturnType<typeof logger>;
  readonly #rules: () => Iterable<readonly TableRule[]>;

  /**
   * @param log where changes are logged
   * @param rules the rule lists in force (to name an output in the log)
   */
  constructor(log: ReturnType<typeof logger>, rules: () => Iterable<readonly TableRule[]>) {
    this.#log = log;
    this.#rules = rules;
  }

  /** The errors by output slot, then worker index. */
  get map(): ReadonlyMap<number, ReadonlyMap<number, string>> {
    return this.#errors;
  }

  /** The output slot was freed: forget its errors. */
  deleteSlot(slot: number): void {
    this.#errors.delete(slot);
  }

  /** A worker failed (it reports again once restarted): forget what it reported. */
  deleteWorker(worker: number): void {
    for (const [slot, errs] of this.#errors) if (errs.delete(worker)) this.#changed.add(slot);
  }

  /** The slots whose errors changed since the last call (state events report just those). */
  takeChanged(): Set<number> {
    const changed = this.#changed;
    this.#changed = new Set();
    return changed;
  }

  /** Worker `worker` reported `changes` ([slot, reason], "" for recovered): keep and log them. */
  report(worker: number, changes: readonly [number, string][]): void {
    const logged: [number, string][] = [];
    const byReason = new Map<string, number>();
    for (const [slot, reason] of changes) {
      let errs = this.#errors.get(slot);
      const prev = errs?.get(worker);
      if (reason) {
        if (!errs) this.#errors.set(slot, errs = new Map());
        errs.set(worker, reason);
      } else if (errs) {
        errs.delete(worker);
        if (errs.size === 0) this.#errors.delete(slot);
      }
      if (reason === (prev ?? "")) continue;
      this.#changed.add(slot);
      const key = reason ? `error: ${reason}` : "recovered";
      byReason.set(key, (byReason.get(key) ?? 0) + 1);
      if (logged.length < LOG_EACH_MAX) logged.push([slot, reason]);
    }
    let total = 0;
    for (const n of byReason.values()) total += n;
    if (total === 0) return;
    if (total <= LOG_EACH_MAX) {
      for (const [slot, reason] of logged) {
        const output = this.#name(slot);
        if (reason) this.#log.warn("output {output}: {reason}", { output, reason });
        else this.#log.info("output {output} recovered", { output });
      }
      return;
    }
    for (const [what, count] of byReason) {
      const line = "worker {worker}: {count} outputs {what}";
      const fields = { worker, count, what };
      if (what === "recovered") this.#log.info(line, fields);
      else this.#log.warn(line, fields);
    }
  }

  /** "eth1 239.1.1.1:5000 of rule a" for an output slot. */
  #name(slot: number): string {
    for (const rules of this.#rules()) {
      for (const r of rules) {
        for (const o of r.outputs) {
          if (o.slot !== slot) continue;
          const dst = hostPort(outputDestText(o), outputPortOf(o.port));
          return `${o.interface} ${dst} of rule ${r.name}`;
        }
      }
    }
    return `#${slot}`;
  }
}

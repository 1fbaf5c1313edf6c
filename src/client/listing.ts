/**
 * `ctl list` and `ctl stats` from the records of a streamed answer (see
 * control/results.ts), printed while they arrive: JSON Lines for machines
 * ({@link jsonLines}), tables for people ({@link RecordPrinter}). Neither
 * holds more than one block of rows, so 65,536 rules print in the memory of
 * a thousand.
 *
 * @module
 */
import type {
  InterfaceWithRate,
  ListedRule,
  ListHeader,
  RuleWithRate,
  StatsHeader,
  WorkerInfo,
} from "../control/results.ts";
import {
  BlockTable,
  formatDrops,
  formatInterfaces,
  formatWorkers,
  jsonTermSafe,
  noRules,
  reasonLines,
  roleText,
  ruleTable,
  selectionHead,
  selectionHint,
  streamLines,
} from "./format.ts";

/** Records as JSON Lines (one object per line, each line ended), escaped for a terminal. */
export function jsonLines(records: readonly unknown[]): string {
  let out = "";
  for (const r of records) out += jsonTermSafe(JSON.stringify(r)) + "\n";
  return out;
}

/** The stream broke the documented order or counts (a truncated or foreign stream). */
export class RecordStreamError extends Error {
  /**
   * Create the error.
   * @param message for people
   */
  constructor(message: string) {
    super(message);
    this.name = "RecordStreamError";
  }
}

type Header = StatsHeader | ListHeader;
type KindRecord = { kind: string };

/**
 * Prints the records of a streamed `list` or `stats` for people, as they
 * arrive: the summary (when the answer is one), the rules table in blocks,
 * then (`stats`) the interfaces, workers and drops, and a hint when not every
 * matching rule was shown. `end()` checks that every record the header
 * announced came.
 */
export class RecordPrinter {
  #header: Header | null = null;
  #table: BlockTable | null = null;
  #rows: ((r: ListedRule & RuleWithRate) => string[][]) | null = null;
  #rules = 0;
  #reasons: string[] = [];
  readonly #interfaces: InterfaceWithRate[] = [];
  readonly #workers: WorkerInfo[] = [];
  #pool = 0;

  /**
   * Create a printer.
   * @param cmd which command's records
   * @param write prints one or more lines (no trailing newline)
   */
  constructor(readonly cmd: "list" | "stats", readonly write: (text: string) => void) {}

  /** Print what `records` (the next ones of the stream) add. */
  push(records: readonly unknown[]): void {
    for (const x of records as KindRecord[]) {
      if (this.#header === null) {
        if (x?.kind !== this.cmd) {
          throw new RecordStreamError(`the ${this.cmd} stream did not start with its header`);
        }
        this.#header = x as Header;
        const head = selectionHead(this.#header);
        if (head.length) this.write(head.join("\n"));
        const [columns, rows] = ruleTable(this.cmd, this.#header.summary !== undefined);
        this.#table = new BlockTable(columns, this.write);
        this.#rows = rows;
        continue;
      }
      switch (x?.kind) {
        case "rule":
          this.#rule(x);
          break;
        case "interface":
          this.#interfaces.push(x as unknown as InterfaceWithRate);
          break;
        case "worker":
          this.#workers.push(x as unknown as WorkerInfo);
          break;
        case "pool": // data-path workers: `ctl workers` shows them
          this.#pool++;
          break;
        default:
          throw new RecordStreamError(`unexpected record in the ${this.cmd} stream`);
      }
    }
  }

  #rule(x: KindRecord): void {
    if (this.#interfaces.length || this.#workers.length || this.#pool) {
      throw new RecordStreamError(`a rule after the interfaces in the ${this.cmd} stream`);
    }
    this.#rules++;
    const r = x as unknown as ListedRule & RuleWithRate;
    for (const row of this.#rows!(r)) this.#table!.add(row);
    if (this.cmd === "list") this.#reasons.push(...reasonLines([r]));
    this.#reasons.push(...streamLines([r])); // stream health and policing, when the rule has them
  }

  /**
   * Print the rest once the stream ended.
   * @throws {RecordStreamError} when records the header announced are missing
   */
  end(): void {
    const h = this.#header;
    if (h === null) throw new RecordStreamError(`the ${this.cmd} stream was empty`);
    const got = {
      rules: this.#rules,
      interfaces: this.#interfaces.length,
      workers: this.#workers.length,
      pool: this.#pool,
    };
    const want = h.records as {
      rules: number;
      interfaces?: number;
      workers?: number;
      pool?: number;
    };
    for (const k of ["rules", "interfaces", "workers", "pool"] as const) {
      if ((want[k] ?? 0) !== got[k]) {
        throw new RecordStreamError(
          `the ${this.cmd} stream ended after ${got[k]} of ${want[k] ?? 0} ${k}`,
        );
      }
    }
    this.#table!.flush();
    if (this.#rules === 0) this.write(noRules(h));
    const out: string[] = [];
    if (this.#reasons.length) out.push("", ...this.#reasons);
    if (h.kind === "stats") {
      out.push(
        "",
        formatInterfaces({ interfaces: this.#interfaces }),
        "",
        formatWorkers(this.#workers),
        "",
        formatDrops(h),
        `(rates over ${h.rate_window_s} s; uptime ${h.uptime_s} s` +
          `${h.role ? `; ${roleText(h.role.role)}` : ""})`,
      );
    }
    out.push(...selectionHint(h, this.#rules, this.cmd));
    if (out.length) this.write(out.join("\n"));
  }
}

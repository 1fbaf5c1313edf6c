/**
 * Whether configuration errors quote what the document holds. The daemon
 * turns quoting off (`setQuoteValues(false)`) once it runs: what it validates
 * afterwards comes from control clients and files they name, and its replies
 * and log must not repeat their content. Validation is synchronous, so one
 * module-level switch per validation run is enough.
 *
 * @module
 */

/** Options of `parseConfig`, `parseConfigText` and `loadConfig`. */
export interface ParseOptions {
  /**
   * Quote offending values and characters in error messages: `(got 70000)`,
   * `unexpected character 'x'`. When false, a message says what kind of value
   * it found (`(got a number)`) and repeats nothing of the document: no value
   * that failed validation, no character, no duplicate key, no invalid rule
   * name (field paths, valid rule names and values that passed validation, such
   * as addresses, remain). Default: true, or what {@link setQuoteValues} chose.
   */
  quoteValues?: boolean;
}

/** Process-wide default of {@link ParseOptions.quoteValues}. */
let quoteValuesDefault = true;
/** Whether the validation running now quotes values (set by {@link withQuoting}). */
let quoting = true;

/** Whether the validation running now quotes values. */
export function isQuoting(): boolean {
  return quoting;
}

/**
 * Set the default of {@link ParseOptions.quoteValues} for this process. The
 * daemon sets it to false once it runs: what it validates afterwards comes
 * from control clients and files they name, and its replies and log must not
 * repeat what those files hold.
 */
export function setQuoteValues(on: boolean): void {
  quoteValuesDefault = on;
}

/** Run a (synchronous) validation with the quoting `options` ask for. */
export function withQuoting<T>(options: ParseOptions | undefined, f: () => T): T {
  const outer = quoting;
  quoting = options?.quoteValues ?? quoteValuesDefault;
  try {
    return f();
  } finally {
    quoting = outer;
  }
}

/** What kind of value `v` is, for a message that must not quote it. */
export function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  switch (typeof v) {
    case "string":
      return "a string";
    case "number":
    case "bigint":
      return "a number";
    case "boolean":
      return "a boolean";
    case "object":
      return "an object";
    default:
      return String(typeof v);
  }
}

/** Renders a value from the document for an error message (or its kind, when not quoting). */
export function show(v: unknown): string {
  return quoting ? render(v) : kindOf(v);
}

/** Renders a value for an error message: JSON-like, shortened. */
export function render(v: unknown): string {
  let s: string;
  if (v === undefined) s = "undefined";
  else if (typeof v === "bigint") s = `${v}n`;
  else if (typeof v === "number" && !Number.isFinite(v)) s = String(v);
  else {
    try {
      s = JSON.stringify(v) ?? String(v);
    } catch {
      s = Object.prototype.toString.call(v);
    }
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

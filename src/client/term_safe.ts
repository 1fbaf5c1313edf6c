/**
 * Text from the relay (rule names, reasons, interface names) made safe to
 * print on a terminal: control and invisible characters shown as `\uXXXX`
 * escapes. format.ts re-exports these.
 *
 * @module
 */
/**
 * Characters a terminal acts on or that hide or reorder text: C0 controls,
 * DEL, C1 controls (U+0080–U+009F; U+009B is CSI, U+009D OSC), the Arabic
 * letter mark, zero-width spaces and joiners and the LRM/RLM marks
 * (U+200B–U+200F), line and paragraph separators and the bidirectional
 * embeddings and overrides (U+2028–U+202E), the word joiner, invisible
 * operators and bidirectional isolates (U+2060–U+206F), and the zero-width
 * no-break space (U+FEFF).
 */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/g;
/** The same without tab and newline, which plain text may keep. */
const UNSAFE_IN_TEXT =
  // deno-lint-ignore no-control-regex
  /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/g;

const escape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/**
 * `text` with every terminal control and invisible character (see UNSAFE)
 * shown as a `\uXXXX` escape, so it prints as what it is; tabs and newlines
 * are kept. Idempotent: an escaped text has nothing left to escape.
 */
export function termSafe(text: string): string {
  return text.replace(UNSAFE_IN_TEXT, escape);
}

/** {@link termSafe} for one line (a table cell, a name): tabs and newlines escaped too. */
export function lineSafe(text: string): string {
  return text.replace(UNSAFE, escape);
}

/**
 * JSON text with those characters written as `\uXXXX` escapes:
 * `JSON.stringify` escapes C0 controls but leaves C1 controls and
 * bidirectional overrides raw. The value is the same.
 */
export function jsonTermSafe(json: string): string {
  return json.replace(UNSAFE_IN_TEXT, escape);
}

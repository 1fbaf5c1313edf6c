/**
 * JSON text to a value, with the line and column of the first problem: a
 * syntax error, a duplicate object key, nesting deeper than
 * {@link MAX_JSON_DEPTH}, or more values than the caller allows. Knows
 * nothing of rules.json (src/config/ turns a problem into a ConfigError).
 *
 * One linear pass of jsonc-parser's scanner (strings are sliced, never built
 * a character at a time) finds the problem; only a text without one is handed
 * to `JSON.parse`, so a hostile text costs at most the value budget. Messages
 * say what was expected where (`expected ',' or '}' after property value,
 * unexpected character '"'`); with `quote: false` they never repeat the
 * text's content (no character, no key).
 *
 * With `jsonc`, `//` and `/* *\/` comments and a trailing comma before `]`
 * or `}` are allowed (JSONC, as VS Code's settings files): the scanner notes
 * where they are and they are blanked out (same length, so every position
 * stays where it was) before `JSON.parse`, which alone builds values — a
 * `"__proto__"` key stays an ordinary property, as in plain JSON.
 *
 * @module
 */
import { visit } from "jsonc-parser";

/** jsonc-parser's error codes that mcr words itself (its `ParseErrorCode`, a const enum). */
const ParseError = {
  InvalidNumberFormat: 2,
  InvalidCommentToken: 10,
  UnexpectedEndOfComment: 11,
  UnexpectedEndOfString: 12,
  UnexpectedEndOfNumber: 13,
  InvalidUnicode: 14,
  InvalidEscapeCharacter: 15,
  InvalidCharacter: 16,
} as const;

/** Deepest nesting of objects and arrays accepted (rules.json needs 4). */
export const MAX_JSON_DEPTH = 64;

/** Where and why a JSON text is refused. */
export interface JsonProblem {
  /** 0-based offset in the text (UTF-16 code units). */
  pos: number;
  /** 1-based line. */
  line: number;
  /** 1-based column (UTF-16 code units). */
  column: number;
  /** What is wrong, e.g. `trailing comma before ']'`. */
  message: string;
  /** True when the text may be valid JSON but exceeds a limit (values, depth). */
  limit: boolean;
}

/** Options of {@link parseJsonText}. */
export interface JsonTextOptions {
  /** Refuse the text when it holds more values (objects, arrays and literals) than this. */
  maxValues: number;
  /** Name the offending character or key in messages (default true). */
  quote?: boolean;
  /** Allow comments and trailing commas (JSONC; default false: strict JSON). */
  jsonc?: boolean;
}

/** What the scanner expects next. */
type Expect =
  | "value"
  | "value-or-close-array"
  | "value-after-comma"
  | "key-or-close"
  | "key-after-comma"
  | "colon"
  | "comma-or-close-object"
  | "comma-or-close-array"
  | "end";

class Stop {
  constructor(readonly pos: number, readonly message: string, readonly limit = false) {}
}

/** 1-based line and column of an offset (lines end at "\n"). */
function lineColumn(text: string, pos: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf("\n"); i >= 0 && i < pos; i = text.indexOf("\n", i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, column: pos - start + 1 };
}

/** A key for a message: JSON-quoted, shortened. */
function quoted(key: string): string {
  const s = JSON.stringify(key);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Names a character for a message. */
function char(c: string): string {
  if (c === "'") return `character "'"`;
  const code = c.charCodeAt(0);
  if (code < 32 || code === 127) return `control character U+${code.toString(16).padStart(4, "0")}`;
  return `character '${c}'`;
}

/** The first problem inside the string token starting at `start` (its opening quote). */
function stringProblem(text: string, start: number): Stop {
  for (let i = start + 1; i < text.length;) {
    const c = text.charCodeAt(i);
    if (c === 0x22) break;
    if (c === 0x5c) {
      const e = text[i + 1];
      if (e === "u") {
        if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
          return new Stop(i, "bad \\u escape");
        }
        i += 6;
        continue;
      }
      if (e === undefined || !'"\\/bfnrt'.includes(e)) return new Stop(i, "bad escape in string");
      i += 2;
      continue;
    }
    if (c < 0x20) return new Stop(i, "control character in string (escape it, e.g. \\n)");
    i++;
  }
  return new Stop(start, "unterminated string");
}

/**
 * Parse JSON text. A byte order mark is skipped. Returns the value, or the
 * first problem (no exception for bad input).
 */
export function parseJsonText(
  text: string,
  options: JsonTextOptions,
): { ok: true; value: unknown } | { ok: false; problem: JsonProblem } {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const blanks: [number, number][] = [];
  const problem = findProblem(
    text,
    options.maxValues,
    options.quote ?? true,
    options.jsonc ? blanks : null,
  );
  if (problem) {
    const { pos, message, limit } = problem;
    return { ok: false, problem: { pos, message, limit, ...lineColumn(text, pos) } };
  }
  try {
    return {
      ok: true,
      value: JSON.parse(blanks.length ? blankOut(text, blanks.sort((a, b) => a[0] - b[0])) : text),
    };
  } catch {
    // The scanner accepted it, so this should not happen; V8's message quotes the text.
    return {
      ok: false,
      problem: { pos: 0, line: 1, column: 1, message: "not valid JSON", limit: false },
    };
  }
}

/** `text` with each [offset, length) range of `ranges` (ascending, disjoint) replaced by spaces. */
function blankOut(text: string, ranges: [number, number][]): string {
  const parts: string[] = [];
  let at = 0;
  for (const [pos, len] of ranges) {
    parts.push(text.slice(at, pos), " ".repeat(len));
    at = pos + len;
  }
  parts.push(text.slice(at));
  return parts.join("");
}

/**
 * The first problem of `text`, or null. `blanks` null: strict JSON; else
 * JSONC, and the comments and trailing commas found are pushed there as
 * [offset, length] (a trailing comma when its close is seen, after the
 * comments that follow it).
 */
function findProblem(
  text: string,
  maxValues: number,
  quote: boolean,
  blanks: [number, number][] | null,
): Stop | null {
  const n = text.length;
  /** Offset of the last ',' separator (a trailing comma when a close follows). */
  let comma = -1;
  const stack: ("object" | "array")[] = [];
  const keys: Set<string>[] = [];
  let expect: Expect = "value";
  let values = 0;
  let numberStart = -1;
  let numberEnd = -1;

  const stop = (pos: number, message: string, limit = false): never => {
    throw new Stop(pos, message, limit);
  };
  const unexpected = (pos: number) =>
    pos >= n ? "unexpected end of input" : `unexpected ${quote ? char(text[pos]) : "character"}`;
  const valueDone = () => {
    const top = stack[stack.length - 1];
    expect = top === undefined
      ? "end"
      : top === "object"
      ? "comma-or-close-object"
      : "comma-or-close-array";
  };
  const count = (pos: number) => {
    if (++values > maxValues) {
      stop(pos, `more than ${maxValues.toLocaleString("en-US")} JSON values`, true);
    }
  };
  const open = (kind: "object" | "array", pos: number) => {
    count(pos);
    if (stack.length >= MAX_JSON_DEPTH) {
      stop(pos, `nested deeper than ${MAX_JSON_DEPTH} levels`, true);
    }
    stack.push(kind);
    if (kind === "object") keys.push(new Set());
    expect = kind === "object" ? "key-or-close" : "value-or-close-array";
  };
  const close = (kind: "object" | "array", pos: number) => {
    // At the end of the text the container is not closed: the error follows.
    if (pos >= n) return;
    if (blanks && (expect === "key-after-comma" || expect === "value-after-comma")) {
      blanks.push([comma, 1]);
    }
    stack.pop();
    if (kind === "object") keys.pop();
    valueDone();
  };
  /** The message for jsonc-parser's error `code` at `pos`. */
  const problemAt = (code: number, pos: number): Stop => {
    switch (code) {
      case ParseError.UnexpectedEndOfString:
      case ParseError.InvalidCharacter:
      case ParseError.InvalidEscapeCharacter:
      case ParseError.InvalidUnicode:
        return stringProblem(text, pos);
      case ParseError.UnexpectedEndOfNumber:
      case ParseError.InvalidNumberFormat:
        return new Stop(pos, "bad number");
      case ParseError.UnexpectedEndOfComment:
        return new Stop(pos, "unterminated comment");
      case ParseError.InvalidCommentToken:
        return new Stop(pos, blanks ? "unterminated comment" : "comments are not allowed in JSON");
    }
    // "01", "1.2.3", "1e5e5": the scanner ended a number where it should not have.
    if (pos === numberEnd && pos < n && /[0-9.eE+-]/.test(text[pos])) {
      const leadingZero = /^-?0[0-9]/.test(text.slice(numberStart, numberStart + 3));
      return new Stop(numberStart, leadingZero ? "bad number (leading zero)" : "bad number");
    }
    if (text[pos] === "-") return new Stop(pos, "bad number");
    if (blanks && text.startsWith("/*", pos) && text.indexOf("*/", pos + 2) < 0) {
      return new Stop(pos, "unterminated comment");
    }
    const what = unexpected(pos);
    switch (expect) {
      case "value":
      case "value-or-close-array":
        return new Stop(pos, `expected a value, ${what}`);
      case "value-after-comma":
        return new Stop(
          pos,
          text[pos] === "]" ? "trailing comma before ']'" : `expected a value, ${what}`,
        );
      case "key-or-close":
        return new Stop(pos, `expected a double-quoted property name, ${what}`);
      case "key-after-comma":
        return new Stop(
          pos,
          text[pos] === "}"
            ? "trailing comma before '}'"
            : `expected a double-quoted property name, ${what}`,
        );
      case "colon":
        return new Stop(pos, `expected ':' after property name, ${what}`);
      case "comma-or-close-object":
        return new Stop(pos, `expected ',' or '}' after property value, ${what}`);
      case "comma-or-close-array":
        return new Stop(pos, `expected ',' or ']' after array element, ${what}`);
      case "end":
        return new Stop(
          pos,
          `unexpected ${quote ? char(text[pos]) : "character"} after the end of the JSON document`,
        );
    }
  };

  try {
    visit(text, {
      onObjectBegin: (pos) => open("object", pos),
      onObjectEnd: (pos) => close("object", pos),
      onArrayBegin: (pos) => open("array", pos),
      onArrayEnd: (pos) => close("array", pos),
      onObjectProperty: (key, pos) => {
        const seen = keys[keys.length - 1];
        if (seen.has(key)) stop(pos, quote ? `duplicate key ${quoted(key)}` : "duplicate key");
        seen.add(key);
        expect = "colon";
      },
      onSeparator: (c, pos) => {
        if (c === ":") expect = "value";
        else {
          comma = pos;
          expect = stack[stack.length - 1] === "object" ? "key-after-comma" : "value-after-comma";
        }
      },
      onLiteralValue: (value, pos, length) => {
        count(pos);
        if (typeof value === "number") {
          numberStart = pos;
          numberEnd = pos + length;
        }
        valueDone();
      },
      onComment: (pos, length) => {
        blanks?.push([pos, length]);
      },
      onError: (code, pos) => {
        throw problemAt(code, pos);
      },
    }, { disallowComments: !blanks, allowTrailingComma: !!blanks, allowEmptyContent: false });
  } catch (e) {
    if (e instanceof Stop) return e;
    throw e;
  }
  return null;
}

/**
 * Logging through @logtape/logtape: human-readable text on stderr by
 * default, JSON lines on request. Categories are per subsystem under "mcr"
 * (`["mcr", "supervisor"]`, `["mcr", "worker"]`, `["mcr", "config"]`,
 * `["mcr", "control"]`, ...).
 *
 * Levels can be changed while the process runs, globally or per category
 * ({@link setLogLevel}); the change applies to the next record. Repeated
 * warnings and errors (same category, level, message template, rule and
 * interface) are rate-limited: at most {@link THROTTLE_LIMIT} per
 * {@link THROTTLE_WINDOW_MS}, then one summary saying how many were
 * suppressed.
 *
 * Text lines are ASCII-punctuated (`mcr.supervisor`), one per event (a
 * message's own line breaks become " | "); when stderr is the systemd
 * journal each line starts with its syslog priority (`<3>` for an error), so
 * `journalctl -p err` finds errors, and carries no timestamp of its own.
 *
 * @module
 */
import {
  compareLogLevel,
  configureSync,
  getLogger,
  getTextFormatter,
  getThrottlingFilter,
  jsonLinesFormatter,
  type Logger,
  type LogLevel,
  type LogRecord,
  resetSync,
} from "@logtape/logtape";
import { fstatSync } from "node:fs";

/** Log output format. */
export type LogFormat = "text" | "json";

/** Log levels accepted by {@link setupLogging}. */
export const LOG_LEVELS: readonly LogLevel[] = [
  "trace",
  "debug",
  "info",
  "warning",
  "error",
  "fatal",
];

/** Records of one key allowed per window before throttling. */
export const THROTTLE_LIMIT = 5;
/** Throttling window. */
export const THROTTLE_WINDOW_MS = 60_000;

/**
 * Most per-category level overrides kept at once. Every override is stored
 * and every `log-level` reply lists them all, so their number is bounded; a
 * few dozen is more than the subsystems and interfaces anyone tunes at once.
 */
export const MAX_LOG_CATEGORIES = 64;

/** Longest category name (e.g. "worker." and a 15-character interface name fit easily). */
export const MAX_LOG_CATEGORY_LENGTH = 64;

/**
 * A category: dot-separated words of letters, digits, "_", "-" and ":"
 * ("supervisor", "worker.eth0:1").
 */
const CATEGORY_RE = /^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*$/;

/** A level change that was refused (bad category name, too many overrides). */
export class LogLevelError extends Error {
  /**
   * Create the error.
   * @param message why, for people
   */
  constructor(message: string) {
    super(message);
    this.name = "LogLevelError";
  }
}

const enc = new TextEncoder();

/** syslog priority of each level (sd-daemon(3) prefixes: `<3>` for an error). */
export const SYSLOG_PRIORITY: Readonly<Record<LogLevel, number>> = {
  fatal: 2,
  error: 3,
  warning: 4,
  info: 6,
  debug: 7,
  trace: 7,
};

/**
 * Whether stderr is connected to the systemd journal: systemd sets
 * `JOURNAL_STREAM` to the device and inode ("DEV:INO") of the stream it
 * gives the service, which a process compares with its own stderr (as
 * sd_journal_stream_fd(3) describes). Redirected elsewhere, it is not.
 */
export function stderrIsJournal(): boolean {
  try {
    const want = Deno.env.get("JOURNAL_STREAM");
    if (!want) return false;
    const st = fstatSync(2);
    return want === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

/**
 * A property as text lines show it: a string as it is (not JSON-quoted), other
 * values inspected on one line; control characters but the line break (C0,
 * C1), bidirectional overrides and invisible characters escaped (`\u001b`),
 * so a value cannot move the cursor, reorder text or forge a line.
 */
export function textValue(v: unknown): string {
  const s = typeof v === "string"
    ? v
    : Deno.inspect(v, { colors: false, depth: 4, compact: true, breakLength: Infinity });
  return s.replace(
    // deno-lint-ignore no-control-regex
    /[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function stderrSink(format: LogFormat, journal = stderrIsJournal()): (r: LogRecord) => void {
  // Under the journal: a syslog priority prefix per line (`journalctl -p err` works) and no
  // timestamp of our own (the journal keeps one).
  const fmt = format === "json" ? jsonLinesFormatter : getTextFormatter({
    timestamp: journal ? "none" : "date-time-tz",
    category: ".",
    value: textValue,
  });
  return (r: LogRecord) => {
    // One line per event: a multi-line message (a configuration error lists one problem per
    // line) keeps its lines apart with " | ", so no line reaches the log without its header.
    const line = fmt(r).replace(/\n(?!$)\s*/g, " | ");
    const s = journal ? `<${SYSLOG_PRIORITY[r.level]}>${line}` : line;
    try {
      Deno.stderr.writeSync(enc.encode(s.endsWith("\n") ? s : s + "\n"));
    } catch {
      // stderr gone: nothing sensible to do
    }
  };
}

/** Live level state: the global level and per-category overrides (keys like "supervisor"). */
const state: { global: LogLevel; categories: Map<string, LogLevel> } = {
  global: "info",
  categories: new Map(),
};
const listeners = new Set<(category: string, level: LogLevel) => void>();

/** Whether `v` is a log level name. */
export function isLogLevel(v: unknown): v is LogLevel {
  return typeof v === "string" && (LOG_LEVELS as readonly string[]).includes(v);
}

/**
 * The level in force for a category path under "mcr" (e.g. "supervisor" or
 * "worker.r0"): the most specific override, else the global level.
 */
export function levelFor(category: string | readonly string[]): LogLevel {
  const parts = typeof category === "string" ? category.split(".").filter(Boolean) : category;
  for (let n = parts.length; n > 0; n--) {
    const l = state.categories.get(parts.slice(0, n).join("."));
    if (l) return l;
  }
  return state.global;
}

/** The levels in force: global and per-category overrides. */
export function getLogLevels(): { global: LogLevel; categories: Record<string, LogLevel> } {
  return { global: state.global, categories: Object.fromEntries(state.categories) };
}

/**
 * Change a level live. Without `category` it sets the global level; with one
 * (e.g. "supervisor", "control", "worker.r0") it overrides that category and
 * its children; `level` null removes the override.
 *
 * @throws {LogLevelError} for a category that is not a dot-separated name of
 *   at most {@link MAX_LOG_CATEGORY_LENGTH} characters, or a new override
 *   beyond {@link MAX_LOG_CATEGORIES}
 */
export function setLogLevel(level: LogLevel | null, category?: string): void {
  if (category === undefined || category === "" || category === "mcr") {
    if (level === null) throw new LogLevelError("the global level cannot be removed");
    state.global = level;
  } else {
    const key = category.replace(/^mcr\./, "");
    if (key.length > MAX_LOG_CATEGORY_LENGTH || !CATEGORY_RE.test(key)) {
      throw new LogLevelError(
        `a category is a dot-separated name of at most ${MAX_LOG_CATEGORY_LENGTH} characters ` +
          'from A-Z a-z 0-9 _ - : (e.g. "supervisor" or "worker.eth0")',
      );
    }
    if (level === null) state.categories.delete(key);
    else if (state.categories.has(key) || state.categories.size < MAX_LOG_CATEGORIES) {
      state.categories.set(key, level);
    } else {
      throw new LogLevelError(
        `there are already ${MAX_LOG_CATEGORIES} category overrides, the most kept; ` +
          'drop one first (level "default")',
      );
    }
  }
  const cat = category ?? "";
  for (const f of listeners) {
    try {
      f(cat, level ?? levelFor(cat));
    } catch { /* a listener's problem */ }
  }
}

/**
 * Be told of level changes (e.g. to forward them to worker threads, which
 * should ask {@link levelFor} for their category). Returns an unsubscribe
 * function.
 */
export function onLogLevelChange(f: (category: string, level: LogLevel) => void): () => void {
  listeners.add(f);
  return () => listeners.delete(f);
}

/** Passes a record when its level is at least the level in force for its category. */
function levelFilter(r: LogRecord): boolean {
  if (r.category[0] !== "mcr") return true;
  return compareLogLevel(r.level, levelFor(r.category.slice(1))) >= 0;
}

/** Throttling key: category, level, template, and the rule and interface named. */
function throttleKey(r: LogRecord): string {
  const p = r.properties as Record<string, unknown>;
  return JSON.stringify([
    r.category,
    r.level,
    r.rawMessage,
    p.rule ?? null,
    p.interface ?? null,
  ]);
}

let throttle: ReturnType<typeof getThrottlingFilter> | undefined;

/**
 * Configure logging for the process (idempotent; a later call replaces the
 * setup). `level` becomes the global level; per-category overrides set with
 * {@link setLogLevel} are kept.
 */
export function setupLogging(level: LogLevel = "info", format: LogFormat = "text"): void {
  state.global = level;
  throttle?.[Symbol.dispose]();
  resetSync();
  throttle = getThrottlingFilter({
    limit: THROTTLE_LIMIT,
    windowMs: THROTTLE_WINDOW_MS,
    key: throttleKey,
    summary: {
      logger: getLogger(["mcr", "log"]),
      level: "warning",
      message: (s) =>
        `suppressed ${s.suppressed} repeats of "${s.lastRecord.rawMessage}" ` +
        `(${s.allowed} shown) in the last ${Math.round((s.endTime - s.startTime) / 1000)} s`,
    },
  });
  const t = throttle;
  configureSync({
    reset: true,
    sinks: { stderr: stderrSink(format) },
    filters: {
      mcr: (r: LogRecord) => {
        if (!levelFilter(r)) return false;
        // Only warnings and worse repeat in bursts worth limiting.
        return compareLogLevel(r.level, "warning") < 0 || t(r);
      },
    },
    loggers: [
      // Level decisions are made by the live filter, so the logger passes everything.
      { category: ["mcr"], lowestLevel: "trace", sinks: ["stderr"], filters: ["mcr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

/** Logger for a subsystem, e.g. `logger("supervisor")`. */
export function logger(...sub: string[]): Logger {
  return getLogger(["mcr", ...sub]);
}

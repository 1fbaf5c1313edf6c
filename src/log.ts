/**
 * Logging through @logtape/logtape: human-readable text on stderr by
 * default, JSON lines on request. Categories are per subsystem under "mcr"
 * (`["mcr", "supervisor"]`, `["mcr", "worker"]`, `["mcr", "config"]`, ...).
 *
 * @module
 */
import {
  configureSync,
  getLogger,
  getTextFormatter,
  jsonLinesFormatter,
  type Logger,
  type LogLevel,
  type LogRecord,
  resetSync,
} from "@logtape/logtape";

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

const enc = new TextEncoder();

function stderrSink(format: LogFormat): (r: LogRecord) => void {
  const fmt = format === "json"
    ? jsonLinesFormatter
    : getTextFormatter({ timestamp: "date-time-tz" });
  return (r: LogRecord) => {
    const s = fmt(r);
    try {
      Deno.stderr.writeSync(enc.encode(s.endsWith("\n") ? s : s + "\n"));
    } catch {
      // stderr gone: nothing sensible to do
    }
  };
}

/** Configure logging for the process (idempotent; a later call replaces the setup). */
export function setupLogging(level: LogLevel = "info", format: LogFormat = "text"): void {
  resetSync();
  configureSync({
    reset: true,
    sinks: { stderr: stderrSink(format) },
    loggers: [
      { category: ["mcr"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

/** Logger for a subsystem, e.g. `logger("supervisor")`. */
export function logger(...sub: string[]): Logger {
  return getLogger(["mcr", ...sub]);
}

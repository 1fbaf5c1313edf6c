/**
 * `include`: a configuration file may list other files whose rules join its
 * own — `"include": ["rules.d/*.json", "/etc/mcr/site.json"]`, as chrony's
 * confdir or BIRD's include. Hundreds of channels then live in small files,
 * one per venue or customer, that tools can write and remove.
 *
 * - Patterns are relative to the including file's directory (absolute ones
 *   as written). `*`, `?`, `[...]` and `{a,b}` are globs (node:fs
 *   `globSync`); a glob that matches nothing is fine (an empty rules.d), a
 *   plain path that does not exist is an error naming it.
 * - Files are read in pattern order, each pattern's matches sorted by name; a
 *   file matched twice is read once; the main file is never included again.
 * - An included file is JSONC like the main file and holds only
 *   `{ "rules": [...] }` (and `$schema`): settings stay in the main file, and
 *   included files include nothing further.
 * - Limits: {@link MAX_INCLUDE_PATTERNS} patterns, {@link MAX_INCLUDED_FILES}
 *   files, and all files together at most `MAX_CONFIG_BYTES`.
 * - The rules are validated as one document (a conflict between two files is
 *   found as one within a file); a problem names its file and the rule's index
 *   there (`rules.d/cams.json rule 3 "cam4": outputs[0].port: ...`); a syntax
 *   error names the file, line and column. A reload re-reads every file.
 *
 * @module
 */
import { globSync } from "node:fs";
import { dirname, isAbsolute, relative, resolve } from "node:path";
import { ConfigError, isRecord } from "./errors.ts";
import {
  MAX_CONFIG_BYTES,
  MAX_INCLUDE_PATTERN_LENGTH,
  MAX_INCLUDE_PATTERNS,
  MAX_INCLUDED_FILES,
} from "./limits.ts";
import { type RuleOrigin, withRuleOrigins } from "./origins.ts";

/** Characters that make a pattern a glob. */
const GLOB_CHARS = /[*?[\]{}]/;
/** Keys an included file may hold. */
const INCLUDED_KEYS = new Set(["$schema", "rules"]);

/** How the loader reads and parses one file (load.ts: bounded read, JSONC scan). */
export interface IncludeIo {
  /** Read a file (throws ConfigError naming it). */
  read(path: string): Promise<string>;
  /** Parse JSONC text (throws ConfigError naming `source`, with line and column). */
  parse(text: string, source: string): unknown;
  /** Whether messages may quote what the files hold (quoting.ts). */
  quote: boolean;
}

/** A problem with `include` itself, in the main file. */
function includeError(source: string, field: string, message: string): ConfigError {
  return new ConfigError([{ path: ["include"], field, message }], source);
}

/** The files `patterns` name, in order, each once, without `main`. */
function expand(patterns: string[], base: string, main: string, source: string): string[] {
  const files: string[] = [];
  const seen = new Set<string>([resolve(main)]);
  patterns.forEach((p, i) => {
    let matches: string[];
    if (GLOB_CHARS.test(p)) {
      matches = globSync(p, { cwd: base }).map((m) => resolve(base, m)).sort();
    } else {
      matches = [resolve(base, p)];
    }
    for (const m of matches) {
      if (seen.has(m)) continue;
      seen.add(m);
      files.push(m);
      if (files.length > MAX_INCLUDED_FILES) {
        throw includeError(
          source,
          `include[${i}]`,
          `the patterns name more than ${MAX_INCLUDED_FILES} files`,
        );
      }
    }
  });
  return files;
}

/** `file` as messages name it: relative to the main file's directory when inside it. */
function shown(file: string, base: string): string {
  const r = relative(base, file);
  return r.startsWith("..") || isAbsolute(r) ? file : r;
}

/**
 * The main document `value` (parsed from `source`) with the rules of the
 * files its `include` names appended, validated by `validate` (which gets the
 * merged document): problems in included rules name their file. A document
 * without `include` is validated as it is.
 */
export async function withIncludes<T>(
  value: unknown,
  source: string,
  io: IncludeIo,
  validate: (merged: unknown) => T,
): Promise<T> {
  if (!isRecord(value) || value.include === undefined) return validate(value);
  const patterns = value.include;
  if (!Array.isArray(patterns)) {
    throw includeError(source, "include", "must be a list of file names or glob patterns");
  }
  if (patterns.length > MAX_INCLUDE_PATTERNS) {
    throw includeError(source, "include", `has more than ${MAX_INCLUDE_PATTERNS} patterns`);
  }
  patterns.forEach((p, i) => {
    if (typeof p !== "string" || p.length === 0 || p.length > MAX_INCLUDE_PATTERN_LENGTH) {
      throw includeError(
        source,
        `include[${i}]`,
        `must be a file name or glob pattern of 1 to ${MAX_INCLUDE_PATTERN_LENGTH} characters`,
      );
    }
  });
  const main = resolve(source);
  const base = dirname(main);
  const rules: unknown[] = Array.isArray(value.rules) ? [...value.rules] : [];
  const origins: RuleOrigin[] = [];
  let bytes = 0;
  for (const file of expand(patterns as string[], base, main, source)) {
    const name = shown(file, base);
    const text = await io.read(file);
    bytes += text.length;
    if (bytes > MAX_CONFIG_BYTES) {
      throw includeError(
        source,
        "include",
        `the included files hold more than ${MAX_CONFIG_BYTES} bytes together (at ${name})`,
      );
    }
    const doc = io.parse(text, name);
    const extra = isRecord(doc) ? Object.keys(doc).filter((k) => !INCLUDED_KEYS.has(k)) : [];
    if (!isRecord(doc) || !Array.isArray(doc.rules) || extra.length > 0) {
      const why = extra.length > 0
        ? `holds ${extra.length === 1 ? "a key" : "keys"} an included file may not` +
          (io.quote
            ? ` (${extra.slice(0, 3).map((k) => JSON.stringify(k.slice(0, 64))).join(", ")})`
            : "") +
          ': only "rules" (settings and include belong in the main file)'
        : 'must be an object with a "rules" list';
      throw new ConfigError([{ path: [], field: "", message: `an included file ${why}` }], name);
    }
    origins.push({ file: name, start: rules.length, count: doc.rules.length });
    rules.push(...doc.rules);
  }
  const { include: _, ...rest } = value;
  return withRuleOrigins(origins, () => validate({ ...rest, rules }));
}

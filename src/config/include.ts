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
 * - `runtime_rules` names the file where `ctl` keeps the rules it adds and
 *   changes (src/relay/runtime_rules.ts): read last, like an included file,
 *   and absent until the first change (no rules then).
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
import type { RuntimeRulesFile } from "./types.ts";

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

/** The files `patterns` name, in order, each once, without `main` and `skip` (read apart). */
function expand(
  patterns: string[],
  base: string,
  main: string,
  source: string,
  skip: string[],
): string[] {
  const files: string[] = [];
  const seen = new Set<string>([resolve(main), ...skip]);
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

/** What {@link withIncludes} read besides the main file. */
export interface Included {
  /** The included files' rules, by file (in document order). */
  origins: RuleOrigin[];
  /** The runtime rules file (`runtime_rules`), when the main file names one. */
  runtime?: RuntimeRulesFile;
}

/**
 * The main document `value` (parsed from `source`) with the rules of the
 * files its `include` names appended, then those of its `runtime_rules` file
 * (when it exists), validated by `validate` (which gets the merged document):
 * problems in included rules name their file.
 */
export async function withIncludes<T>(
  value: unknown,
  source: string,
  io: IncludeIo,
  validate: (merged: unknown, included: Included) => T,
): Promise<T> {
  if (!isRecord(value) || (value.include === undefined && value.runtime_rules === undefined)) {
    return validate(value, { origins: [] });
  }
  const patterns = value.include ?? [];
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
  const runtimeName = value.runtime_rules;
  if (
    runtimeName !== undefined &&
    (typeof runtimeName !== "string" || runtimeName.length === 0 ||
      runtimeName.length > MAX_INCLUDE_PATTERN_LENGTH)
  ) {
    throw new ConfigError([{
      path: ["runtime_rules"],
      field: "runtime_rules",
      message: `must be a file name of 1 to ${MAX_INCLUDE_PATTERN_LENGTH} characters`,
    }], source);
  }
  const main = resolve(source);
  const base = dirname(main);
  const runtimePath = typeof runtimeName === "string" ? resolve(base, runtimeName) : undefined;
  const rules: unknown[] = Array.isArray(value.rules) ? [...value.rules] : [];
  const origins: RuleOrigin[] = [];
  let bytes = 0;
  /** Read one more file's rules (null: a runtime file not written yet). */
  const add = async (file: string, optional: boolean): Promise<unknown[] | null> => {
    const name = shown(file, base);
    if (optional && !(await exists(file))) return null;
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
    return doc.rules;
  };
  const skip = runtimePath === undefined ? [] : [runtimePath];
  for (const file of expand(patterns as string[], base, main, source, skip)) await add(file, false);
  let runtime: RuntimeRulesFile | undefined;
  if (runtimePath !== undefined) {
    const got = await add(runtimePath, true);
    runtime = { path: runtimePath, name: runtimeName as string, rules: got ?? [] };
  }
  const { include: _, runtime_rules: __, ...rest } = value;
  return withRuleOrigins(
    origins,
    () => validate({ ...rest, rules }, runtime ? { origins, runtime } : { origins }),
  );
}

/** Whether `path` exists (any error but "not found" is left to the read, which names it). */
async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    return !(e instanceof Deno.errors.NotFound);
  }
}

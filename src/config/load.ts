/**
 * rules.json in, `Config` out: the entry points of the configuration side.
 *
 * The file is validated in two passes:
 *
 * 1. Structure, with zod (schema.ts): strict objects everywhere (an unknown
 *    key such as "ouputs" is an error naming the key, with a suggestion),
 *    types and ranges of every field.
 * 2. Semantics (semantics.ts): address classes, loops, duplicates, conflicts
 *    between rules, and the relay-wide capacity.
 *
 * Every problem found is reported at once in a `ConfigError`, one issue per
 * line, e.g. `rule 2 "cam1": outputs[0].port: must be an integer from 1 to
 * 65535 (got 70000)`. The semantic pass also runs on the rules that are
 * structurally valid when others are not, so one run lists everything. The
 * result is normalized (normalize.ts, types.ts).
 *
 * @module
 */
import { fileURLToPath as fromFileUrl } from "node:url";
import { parseJsonText } from "./json_text.ts";
import { withIncludes } from "./include.ts";
import { readTextFileBounded } from "./text_file.ts";
import { ConfigError, isRecord, issueAt, sortIssues } from "./errors.ts";
import {
  DEFAULT_DSCP,
  DEFAULT_TTL,
  MAX_CONFIG_BYTES,
  MAX_CONFIG_VALUES,
  MAX_OUTPUT_SLOTS,
  MAX_RULES,
} from "./limits.ts";
import { normalize, normalizeRule } from "./normalize.ts";
import { isQuoting, type ParseOptions, withQuoting } from "./quoting.ts";
import { ConfigShapeSchema, type RawConfig, RuleSchema } from "./schema.ts";
import type { RuleIndex } from "./rule_index.ts";
import {
  capacityIssues,
  capacityIssuesOf,
  checkAcross,
  keyOfConfig,
  keyOfLoose,
  loosen,
  type RuleKey,
  semanticIssues,
  tooManyRules,
  tuningIssues,
} from "./semantics.ts";
import { checkRule } from "./rule_checks.ts";
import type { Config, RuleConfig } from "./types.ts";
import { fromZod } from "./zod_issues.ts";
import type { z } from "zod";

/**
 * Zod schema of rules.json including the semantic checks (as refinement
 * issues with the same messages). {@link parseConfig} is the usual entry
 * point: it also reports semantic problems of valid rules when other parts are
 * broken, and returns the normalized {@link Config}; this schema's output is
 * the {@link RawConfig}.
 */
export const ConfigSchema: z.ZodType<RawConfig> = ConfigShapeSchema.superRefine((raw, ctx) => {
  for (
    const i of [
      ...semanticIssues(raw.rules, raw),
      ...capacityIssues(raw.rules, raw),
      ...tuningIssues(raw),
    ]
  ) {
    ctx.addIssue({ code: "custom", path: i.path, message: i.message });
  }
});

/**
 * Validates and normalizes a configuration value (parsed JSON).
 *
 * @param value The parsed rules.json document.
 * @param source Where it came from (file name), for the error message.
 * @param options Whether messages quote values.
 * @returns The normalized configuration.
 * @throws {ConfigError} listing every problem found.
 */
export function parseConfig(value: unknown, source?: string, options?: ParseOptions): Config {
  return withQuoting(options, () => {
    const parsed = ConfigShapeSchema.safeParse(value);
    const issues = parsed.success ? [] : fromZod(parsed.error.issues, value);
    const rules = isRecord(value) ? value.rules : undefined;
    issues.push(...semanticIssues(rules, value));
    if (Array.isArray(rules)) issues.push(...capacityIssues(rules, value));
    issues.push(...tuningIssues(value));
    for (const key of ["include", "runtime_rules"]) {
      if (isRecord(value) && value[key] !== undefined) {
        issues.push(issueAt([key], "is read from a configuration file only (loadConfig)", value));
      }
    }
    if (issues.length > 0 || !parsed.success) {
      throw new ConfigError(sortIssues(issues), source);
    }
    return normalize(parsed.data);
  });
}

/**
 * Parses rules.json text — JSON with comments and trailing commas allowed
 * (JSONC) — (syntax errors, duplicate keys, too deep nesting
 * and more than {@link MAX_CONFIG_VALUES} values are reported with their line
 * and column), then validates it like {@link parseConfig}.
 *
 * @param text The file's contents.
 * @param source File name, for messages.
 * @param options Whether messages quote values and characters.
 * @throws {ConfigError}
 */
export function parseConfigText(text: string, source?: string, options?: ParseOptions): Config {
  return withQuoting(options, () => parseConfig(parseDocument(text, source), source, options));
}

/** JSONC text to a value; a syntax problem is a ConfigError naming `source`, line and column. */
function parseDocument(text: string, source?: string): unknown {
  const parsed = parseJsonText(text, {
    maxValues: MAX_CONFIG_VALUES,
    quote: isQuoting(),
    jsonc: true,
  });
  if (!parsed.ok) {
    const { line, column, message, limit } = parsed.problem;
    const what = limit
      ? `the document is too large at line ${line}, column ${column}: ${message} ` +
        `(a configuration within the relay's limits, ${MAX_RULES} rules and ${MAX_OUTPUT_SLOTS} outputs, ` +
        "has fewer than 3,000,000)"
      : `invalid JSON at line ${line}, column ${column}: ${message}`;
    throw new ConfigError([{ path: [], field: "", message: what, line, column }], source);
  }
  return parsed.value;
}

/**
 * Parses the text of the configuration file `source` like
 * {@link parseConfigText}, and reads the files its `include` names
 * (include.ts: relative to `source`'s directory, each read through
 * {@link readConfigFile}); the rules of all of them are validated together.
 *
 * @param text The main file's contents.
 * @param source The main file's path.
 * @param options Whether messages quote values and characters.
 * @throws {ConfigError} naming the file a problem is in.
 */
export async function parseConfigSource(
  text: string,
  source: string,
  options?: ParseOptions,
): Promise<Config> {
  const quote = withQuoting(options, isQuoting);
  const opts = { ...options, quoteValues: quote };
  const value = withQuoting(opts, () => parseDocument(text, source));
  return await withIncludes(value, source, {
    read: (path) => readConfigFile(path),
    parse: (t, name) => withQuoting(opts, () => parseDocument(t, name)),
    quote,
  }, (merged, included) => {
    const config = parseConfig(merged, source, opts);
    if (included.runtime) config.runtime_rules = included.runtime;
    return config;
  });
}

/**
 * Reads rules.json text the safe way: only a regular file, at most
 * {@link MAX_CONFIG_BYTES} bytes, UTF-8 (text_file.ts). `cli.ts check`, the
 * relay at start, `reload` (socket or SIGHUP) and the socket's `check` all read
 * through here.
 *
 * @param path File to read.
 * @throws {ConfigError} saying why it cannot be read (never quoting its content).
 */
export async function readConfigFile(path: string | URL): Promise<string> {
  try {
    return await readTextFileBounded(path, MAX_CONFIG_BYTES);
  } catch (e) {
    // Deno's messages name the path and the OS error; TextFileError's say why in words.
    const why = e instanceof Error ? e.message : String(e);
    const source = String(path);
    throw new ConfigError(
      [{ path: [], field: "", message: `cannot read the file ${source}: ${why}` }],
      source,
    );
  }
}

/**
 * Reads and validates a rules.json file and the files its `include` names
 * ({@link readConfigFile}, then {@link parseConfigSource}).
 *
 * @param path File to read.
 * @param options Whether messages quote values and characters.
 * @throws {ConfigError} when the file cannot be read (saying why) or is invalid.
 */
export async function loadConfig(path: string | URL, options?: ParseOptions): Promise<Config> {
  const file = path instanceof URL ? fromFileUrl(path) : path;
  const text = await readConfigFile(file);
  return parseConfigSource(text, file, options);
}

/**
 * Validates one rule to be added at run time, with the same checks as a whole
 * file, including conflicts (name, input) with the rules of `existing`.
 * Issues are reported as for rule index `existing.rules.length` (where the
 * rule would be appended). Defaults (TTL, DSCP) come from `existing`, or the
 * built-in defaults without it.
 *
 * @param value The rule object (parsed JSON).
 * @param existing The running configuration.
 * @param index An index of `existing.rules` ({@link RuleIndex}): the checks against
 *   the rules in force then take constant time instead of reading them all.
 * @returns The normalized rule.
 * @throws {ConfigError}
 */
export function validateRule(value: unknown, existing?: Config, index?: RuleIndex): RuleConfig {
  return withQuoting(undefined, () => validateRuleNow(value, existing, index));
}

/** The rules of `existing` the rule `key` could conflict with (all of them without an index). */
function priorKeys(key: RuleKey, existing?: Config, index?: RuleIndex): RuleKey[] {
  const rules = existing?.rules ?? [];
  if (!index) return rules.flatMap((r, n) => keyOfConfig(n, r));
  const near = new Set([index.byName(key.name), index.byInput(key.key)]);
  const keys: RuleKey[] = [];
  for (const r of near) if (r) keys.push(...keyOfConfig(rules.indexOf(r), r));
  return keys.sort((a, b) => a.index - b.index);
}

function validateRuleNow(value: unknown, existing?: Config, index?: RuleIndex): RuleConfig {
  const at = existing?.rules.length ?? 0;
  // Present the rule at its future position so paths and messages match a file.
  const root = { rules: Object.assign(new Array(at), { [at]: value }) };
  const parsed = RuleSchema.safeParse(value);
  const issues = parsed.success ? [] : fromZod(
    parsed.error.issues.map((i) => ({ ...i, path: ["rules", at, ...i.path] })),
    root,
  );
  const loose = loosen(value);
  if (loose) {
    for (const i of checkRule(loose)) {
      issues.push(issueAt(["rules", at, ...i.path], i.message, root));
    }
    const fresh = keyOfLoose(at, loose);
    const prior = new Map<string, RuleKey>();
    for (const key of fresh) {
      for (const p of priorKeys(key, existing, index)) prior.set(`${p.index}|${p.key}`, p);
    }
    const sorted = [...prior.values()].sort((a, b) => a.index - b.index);
    for (const i of fresh.length > 0 ? checkAcross(sorted, fresh) : []) {
      issues.push(issueAt(["rules", i.index, ...i.path], i.message, root));
    }
  }
  // The relay-wide limits, counted over the rules in force plus this one.
  if (at + 1 > MAX_RULES) issues.push(issueAt(["rules"], tooManyRules(at + 1), root));
  issues.push(
    ...(index
      ? capacityIssuesOf(index.countsWith(value), root)
      : capacityIssues([...(existing?.rules ?? []), value], root)),
  );
  if (issues.length > 0 || !parsed.success) throw new ConfigError(issues);
  return normalizeRule(parsed.data, {
    ttl: existing?.ttl ?? DEFAULT_TTL,
    dscp: existing?.dscp ?? DEFAULT_DSCP,
  });
}

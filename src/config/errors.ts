/**
 * Configuration problems: `ConfigIssue` (where, what, why), `ConfigError`
 * (all of them, one per line, capped at MAX_REPORTED_ISSUES), and the helpers
 * that place an issue at its rule and field.
 *
 * @module
 */
import { MAX_REPORTED_ISSUES } from "./limits.ts";
import { isQuoting, render } from "./quoting.ts";
import { RULE_NAME_RE } from "./schema.ts";
import { originOf } from "./origins.ts";

/** One configuration problem. */
export interface ConfigIssue {
  /** Path of the offending value in the JSON document, e.g. `["rules", 2, "outputs", 0, "port"]`. */
  path: (string | number)[];
  /**
   * The rule concerned: its index in `rules` (of `file` when it came from an
   * included file), and its name when it has a string one.
   */
  rule?: { index: number; name?: string };
  /** The included file the rule came from (absent: the main file). */
  file?: string;
  /** Field within the rule (or within the config for non-rule issues), e.g. `outputs[0].port`; "" for the whole rule/document. */
  field: string;
  /** What is wrong, and why. */
  message: string;
  /** 1-based line of a JSON syntax error. */
  line?: number;
  /** 1-based column of a JSON syntax error. */
  column?: number;
}

/** Renders one issue as a line: `rule 2 "cam1": outputs[0].port: ...` or `config: ttl: ...`. */
export function formatIssue(issue: ConfigIssue): string {
  let where: string;
  if (issue.rule) {
    where = issue.file === undefined
      ? `rule ${issue.rule.index}`
      : `${issue.file} rule ${issue.rule.index}`;
    if (issue.rule.name !== undefined) where += ` ${render(issue.rule.name)}`;
  } else {
    where = "config";
  }
  return issue.field ? `${where}: ${issue.field}: ${issue.message}` : `${where}: ${issue.message}`;
}

/** Invalid configuration. `issues` lists the problems found; `message` has one per line. */
export class ConfigError extends Error {
  /** The problems found (the first {@link MAX_REPORTED_ISSUES}). */
  readonly issues: ConfigIssue[];
  /** How many more problems were found than `issues` lists. */
  readonly omitted: number;
  /** The file (or other origin) the configuration came from, if known. */
  readonly source?: string;

  /**
   * Builds the error and its message (a header line, then one line per issue).
   *
   * @param issues The problems (at least one).
   * @param source Where the configuration came from, for the message header.
   */
  constructor(issues: ConfigIssue[], source?: string) {
    const n = issues.length;
    const head = `invalid configuration${source ? ` in ${source}` : ""} (${n} problem${
      n === 1 ? "" : "s"
    }):`;
    const listed = issues.slice(0, MAX_REPORTED_ISSUES);
    const more = n > listed.length
      ? [`  ... and ${n - listed.length} more (the first ${listed.length} are listed)`]
      : [];
    super([head, ...listed.map((i) => `  ${formatIssue(i)}`), ...more].join("\n"));
    this.name = "ConfigError";
    this.issues = listed;
    this.omitted = n - listed.length;
    this.source = source;
  }
}

/** Formats a path relative to a rule or the document: `outputs[0].port`. */
function formatField(path: readonly PropertyKey[]): string {
  let s = "";
  for (const p of path) {
    if (typeof p === "number") s += `[${p}]`;
    else s += s ? `.${keyText(p)}` : keyText(p);
  }
  return s;
}

/** Longest key shown in a field path (an unknown key can be any length). */
const KEY_SHOWN = 64;

function keyText(key: PropertyKey): string {
  const s = String(key);
  return s.length > KEY_SHOWN ? `${s.slice(0, KEY_SHOWN - 3)}...` : s;
}

/** Builds an issue from an absolute path, splitting off the rule part. */
export function issueAt(path: readonly PropertyKey[], message: string, root: unknown): ConfigIssue {
  const clean = path.map((p) => (typeof p === "symbol" ? String(p) : p)) as (string | number)[];
  if (clean.length >= 2 && clean[0] === "rules" && typeof clean[1] === "number") {
    const index = clean[1];
    const raw = valueAt(root, ["rules", index]);
    // Without quoting, only a valid name (a label the relay itself shows) is repeated.
    const name = isRecord(raw) && typeof raw.name === "string" &&
        (isQuoting() || RULE_NAME_RE.test(raw.name))
      ? raw.name
      : undefined;
    const o = originOf(index);
    return {
      path: clean,
      rule: name === undefined ? { index: o.index } : { index: o.index, name },
      ...(o.file === undefined ? {} : { file: o.file }),
      field: formatField(clean.slice(2)),
      message,
    };
  }
  return { path: clean, field: formatField(clean), message };
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const p of path) {
    if (v === null || typeof v !== "object") return undefined;
    if (!Object.prototype.hasOwnProperty.call(v, p)) return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

/** The document index of an issue's rule (included files' rules follow the main file's); -1 for none. */
function docIndex(issue: ConfigIssue): number {
  if (!issue.rule) return -1;
  const [top, index] = issue.path;
  return top === "rules" && typeof index === "number" ? index : issue.rule.index;
}

/** Orders issues: document-level first, then by rule, in document order (stable otherwise). */
export function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues
    .map((issue, n) => ({ issue, n }))
    .sort((a, b) => docIndex(a.issue) - docIndex(b.issue) || a.n - b.n)
    .map((x) => x.issue);
}

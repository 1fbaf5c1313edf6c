/**
 * Rules with redundant inputs (`"inputs": [...]` with `"redundancy"`): their
 * checks beyond structure, their normalized form with defaults applied, and
 * {@link ruleInputs}, the one way code that must see every input of a rule
 * (joins, tables, capacity, listings) reads them. What the data path does
 * with them: src/datapath/arbiter.ts.
 *
 * A redundant rule relays ONE stream that arrives on several paths, so each
 * input must name one stream: one group (no range) and one port (not
 * "any"). Outputs that `keep` the group or port take the first input's.
 *
 * @module
 */
import { isRecord } from "./errors.ts";
import {
  DEFAULT_FAILOVER_MS,
  DEFAULT_MAX_DELAY_MS,
  DEFAULT_MERGE_WINDOW,
  MAX_REDUNDANT_RULES,
} from "./limits.ts";
import { inputKey } from "./ids.ts";
import type { RawInput, RawRedundancy } from "./schema.ts";
import type { InputConfig, RedundancyConfig } from "./types.ts";

/** Every input of a rule (normalized): its `inputs`, or its one `input`. */
export function ruleInputs(r: { input: InputConfig; inputs?: InputConfig[] }): InputConfig[] {
  return r.inputs ?? [r.input];
}

/**
 * Every input of a rule as written (parsed JSON): `inputs` when it is an
 * array, else `input`; each entry as found (possibly invalid), with its path
 * relative to the rule.
 */
export function rawInputs(r: unknown): { value: unknown; path: (string | number)[] }[] {
  if (!isRecord(r)) return [];
  if (Array.isArray(r.inputs)) return r.inputs.map((value, k) => ({ value, path: ["inputs", k] }));
  return r.input === undefined ? [] : [{ value: r.input, path: ["input"] }];
}

/** The normalized form of a valid `redundancy`. */
export function normalizeRedundancy(r: RawRedundancy): RedundancyConfig {
  const out: RedundancyConfig = {
    mode: r.mode,
    max_delay_ms: r.max_delay_ms ?? DEFAULT_MAX_DELAY_MS,
    window: r.window ?? DEFAULT_MERGE_WINDOW,
    failover_ms: r.failover_ms ?? DEFAULT_FAILOVER_MS,
    revertive: r.revertive ?? true,
  };
  if (r.reorder_ms !== undefined) out.reorder_ms = r.reorder_ms;
  return out;
}

/** A normalized `redundancy` written back as rules.json holds it (only its mode's options). */
export function rawRedundancy(r: RedundancyConfig): Record<string, unknown> {
  const raw: Record<string, unknown> = {
    mode: r.mode,
    max_delay_ms: r.max_delay_ms,
    window: r.window,
  };
  if (r.mode === "failover") {
    raw.failover_ms = r.failover_ms;
    raw.revertive = r.revertive;
  } else if (r.reorder_ms !== undefined) raw.reorder_ms = r.reorder_ms;
  return raw;
}

/** A problem at a path relative to the rule. */
export interface RedundancyIssue {
  /** Path relative to the rule. */
  path: (string | number)[];
  /** What is wrong. */
  message: string;
}

/**
 * Problems of a rule's inputs as a whole (parsed JSON): exactly one of
 * `input` and `inputs`; `redundancy` exactly with `inputs`; each redundant
 * input one stream; no input twice; failover options only for failover.
 * `inputs` entries are checked one by one like an `input` elsewhere.
 */
export function redundancyIssues(r: Record<string, unknown>): RedundancyIssue[] {
  const issues: RedundancyIssue[] = [];
  const has = (k: string) => r[k] !== undefined;
  if (has("input") && has("inputs")) {
    issues.push({
      path: ["inputs"],
      message: 'a rule has either one "input" or redundant "inputs", not both',
    });
  } else if (!has("input") && !has("inputs")) {
    issues.push({
      path: ["input"],
      message: 'is required (an object: interface, group, port; or "inputs" with "redundancy")',
    });
  }
  if (has("inputs") && !has("redundancy")) {
    issues.push({
      path: ["redundancy"],
      message: 'is required with "inputs" ("merge": each datagram once from whichever input ' +
        'delivers it first; "failover": one input at a time)',
    });
  }
  if (has("redundancy") && !has("inputs")) {
    issues.push({
      path: ["redundancy"],
      message: 'combines redundant "inputs"; this rule has one "input"',
    });
  }
  const red = typeof r.redundancy === "string" ? { mode: r.redundancy } : r.redundancy;
  if (isRecord(red) && red.mode === "failover" && red.reorder_ms !== undefined) {
    issues.push({
      path: ["redundancy", "reorder_ms"],
      message: 'applies to "merge"; a failover forwards one path at a time, in its order',
    });
  }
  if (isRecord(red) && red.mode === "merge") {
    for (const k of ["failover_ms", "revertive"]) {
      if (red[k] !== undefined) {
        issues.push({
          path: ["redundancy", k],
          message: 'applies to "failover"; a merge forwards from every input at once',
        });
      }
    }
  }
  if (!Array.isArray(r.inputs)) return issues;
  const seen = new Map<string, number>();
  r.inputs.forEach((input, k) => {
    if (!isRecord(input) || typeof input.group !== "string") return;
    if (input.group.includes("/") || input.port === "any" || input.port === 0) {
      issues.push({
        path: ["inputs", k],
        message: `takes ${
          input.group.includes("/") ? "a range of groups" : "every port"
        }, but redundant inputs carry one stream each: name one group and one port`,
      });
    }
    if (typeof input.interface !== "string") return;
    const key = inputKey(input as unknown as RawInput);
    const first = seen.get(key);
    if (first !== undefined) {
      issues.push({
        path: ["inputs", k],
        message: `is the same input as inputs[${first}]: redundant inputs are different paths`,
      });
    } else seen.set(key, k);
  });
  return issues;
}

/** Whether a rule (parsed JSON or normalized) is enabled and has redundant inputs. */
export function isRedundant(r: unknown): boolean {
  return isRecord(r) && r.enabled !== false && Array.isArray(r.inputs);
}

/** The message for more than {@link MAX_REDUNDANT_RULES} enabled redundant rules. */
export function tooManyRedundant(n: number): string {
  return `has ${n} enabled rules with redundant "inputs"; at most ${MAX_REDUNDANT_RULES} are ` +
    "allowed (each holds an arbitration block every worker on its inputs maps)";
}

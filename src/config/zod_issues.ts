/**
 * zod's issues turned into `ConfigIssue`s with readable messages: required
 * fields, types, list lengths named with their limit, and unknown keys with a
 * "did you mean" suggestion (edit distance over the keys the object kind
 * knows).
 *
 * @module
 */
import type { z } from "zod";
import { type ConfigIssue, issueAt, valueAt } from "./errors.ts";
import { MAX_OUTPUTS_PER_RULE } from "./limits.ts";
import { show } from "./quoting.ts";
import { KNOWN_KEYS } from "./schema.ts";
import { tooManyRules } from "./semantics.ts";

function knownKeysFor(path: readonly PropertyKey[]): readonly string[] {
  const n = path.length;
  if (n === 0) return KNOWN_KEYS.config;
  if (n === 1 && typeof path[0] === "string" && path[0] in KNOWN_KEYS) {
    return KNOWN_KEYS[path[0] as keyof typeof KNOWN_KEYS];
  }
  if (path[0] === "rules") {
    if (n === 2) return KNOWN_KEYS.rule;
    if (n === 3 && path[2] === "input") return KNOWN_KEYS.input;
    if (n === 4 && path[2] === "inputs") return KNOWN_KEYS.input;
    if (n === 3 && path[2] === "redundancy") return KNOWN_KEYS.redundancy;
    if (n === 4 && path[2] === "outputs") return KNOWN_KEYS.output;
    if (n === 3 && path[2] === "rate_limit") return KNOWN_KEYS.rate_limit;
    if (n === 3 && path[2] === "health") return KNOWN_KEYS.health;
    if (n === 5 && path[2] === "outputs" && path[4] === "rate_limit") return KNOWN_KEYS.rate_limit;
  }
  return [];
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

function suggest(key: string, known: readonly string[]): string | undefined {
  const squash = (s: string) => s.toLowerCase().replace(/[-_]/g, "");
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const a = squash(key);
    const b = squash(k);
    const d = a === b || (a.length >= 3 && b.startsWith(a)) || (b.length >= 3 && a.startsWith(b))
      ? 0
      : editDistance(key.toLowerCase(), k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return bestD <= Math.max(1, Math.min(3, Math.floor(key.length / 3))) ? best : undefined;
}

/** Converts zod issues into ConfigIssues with readable messages. */
export function fromZod(issues: readonly z.core.$ZodIssue[], root: unknown): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const iss of issues) {
    const path = iss.path;
    const value = valueAt(root, path);
    switch (iss.code) {
      case "unrecognized_keys": {
        const known = knownKeysFor(path);
        for (const key of iss.keys) {
          const s = suggest(key, known);
          const hint = s ? `did you mean "${s}"?` : `known keys: ${known.join(", ")}`;
          out.push(issueAt([...path, key], `unknown key (${hint})`, root));
        }
        break;
      }
      case "invalid_type": {
        const what = iss.expected === "array"
          ? "an array"
          : iss.expected === "object"
          ? "an object"
          : iss.expected;
        out.push(
          issueAt(
            path,
            value === undefined ? `is required (${what})` : `must be ${what} (got ${show(value)})`,
            root,
          ),
        );
        break;
      }
      case "too_small":
      case "too_big": {
        const count = Array.isArray(value) ? value.length : undefined;
        let msg = iss.message;
        if (path.length === 1 && path[0] === "rules") {
          msg = tooManyRules(count ?? 0);
        } else if (path[path.length - 1] === "outputs") {
          msg = count === 0
            ? "must list at least one output"
            : `has ${count} outputs; at most ${MAX_OUTPUTS_PER_RULE} are allowed`;
        }
        out.push(issueAt(path, msg, root));
        break;
      }
      default:
        out.push(issueAt(path, iss.message, root));
    }
  }
  return out;
}

/**
 * Which file each rule of a configuration came from, while it is validated:
 * a configuration with `include` is validated as one document (conflicts
 * between files are found like conflicts within one), and its messages name
 * a rule by its file and its index in that file's `rules`
 * (`rules.d/cams.json rule 3 "cam4"`). Validation is synchronous, so one
 * module-level setting per validation run is enough (as quoting.ts).
 *
 * @module
 */

/** The rules one file contributed: `count` rules from document index `start` on. */
export interface RuleOrigin {
  /** The file, as the messages name it (relative to the main file's directory when inside it). */
  file: string;
  /** Document index of its first rule. */
  start: number;
  /** How many rules it holds. */
  count: number;
}

/** The included files of the validation running now (the main file's rules come first). */
let origins: readonly RuleOrigin[] = [];

/** Run a (synchronous) validation whose rules beyond the main file's came from `from`. */
export function withRuleOrigins<T>(from: readonly RuleOrigin[], f: () => T): T {
  const outer = origins;
  origins = from;
  try {
    return f();
  } finally {
    origins = outer;
  }
}

/** The file (undefined: the main one) and the index in its `rules` of document rule `index`. */
export function originOf(index: number): { file?: string; index: number } {
  for (const o of origins) {
    if (index >= o.start && index < o.start + o.count) {
      return { file: o.file, index: index - o.start };
    }
  }
  return { index };
}

/** `rule 3`, or `rules.d/cams.json rule 3` for a rule of an included file. */
export function ruleWhere(index: number): string {
  const o = originOf(index);
  return o.file === undefined ? `rule ${o.index}` : `${o.file} rule ${o.index}`;
}

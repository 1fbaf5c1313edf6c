/**
 * The checks zod's structure cannot express, over the individually valid
 * parts of each rule (so one run lists every problem): those of one rule on
 * its own (rule_checks.ts: address classes, ranges, loops, duplicate
 * outputs); across rules, duplicate names and two enabled rules consuming the
 * same input; and the relay-wide capacity (rules, output slots, IGMP joins).
 *
 * @module
 */
import { ruleWhere } from "./origins.ts";
import { isMulticast, parseIPv4 } from "../common/net.ts";
import { ConfigError, type ConfigIssue, isRecord, issueAt } from "./errors.ts";
import { describeInput, inputKey, inputsId, type InputTuple } from "./ids.ts";
import { isRedundant, rawInputs, ruleInputs, tooManyRedundant } from "./redundancy.ts";
import {
  DEFAULT_WORKERS,
  MAX_ANALYSED_RULES,
  MAX_DATA_PATH_WORKERS,
  MAX_HEALTH_RULES,
  MAX_INPUT_SLOTS,
  MAX_INTERFACES,
  MAX_JOINS,
  MAX_OUTPUT_SLOTS,
  MAX_REDUNDANT_RULES,
  MAX_RULES,
} from "./limits.ts";
import { render } from "./quoting.ts";
import {
  HealthSchema,
  InputSchema,
  OutputSchema,
  RateLimitSchema,
  type RawHealth,
  type RawInput,
  type RawOutput,
  type RawRateLimit,
  RULE_NAME_RE,
} from "./schema.ts";
import {
  fanoutIssues,
  isAnalysed,
  isMonitored,
  tooManyAnalysed,
  tooManyMonitored,
} from "./stream_options.ts";
import type { RuleConfig } from "./types.ts";
import { checkRule } from "./rule_checks.ts";

/** What the cross-rule checks need to know about a rule. */
export interface RuleKey {
  index: number;
  /** Effective name (explicit, or the id). */
  name: string;
  /** Whether the name was written explicitly. */
  named: boolean;
  /** Whether the name takes part in the uniqueness check (false when it is invalid). */
  checkName: boolean;
  enabled: boolean;
  key: string;
  input: InputTuple;
  /** Where the input is in the rule: ["input"], or ["inputs", k] for a redundant one. */
  path: (string | number)[];
}

/**
 * The parts of a rule that are individually valid, so semantic checks can run
 * on them while other parts of the rule have structural errors.
 */
export interface LooseRule {
  /** The (first) input, if valid. */
  input?: RawInput;
  /** Every input (one, or the redundant `inputs`), each if valid, with its path in the rule. */
  inputs: { input?: RawInput; path: (string | number)[] }[];
  /** The rule as written (for the checks across its fields: redundancy.ts). */
  record: Record<string, unknown>;
  /** Each output if valid, else undefined. */
  outputs: (RawOutput | undefined)[];
  /** allow_link_local when valid (absent = false); undefined when invalid. */
  allowLinkLocal?: boolean;
  /** "absent", "valid" or "invalid" name. */
  nameState: "absent" | "valid" | "invalid";
  name?: string;
  enabled: boolean;
  /** `rate_limit` if structurally valid. */
  rateLimit?: RawRateLimit;
  /** `health` if structurally valid. */
  health?: RawHealth;
}

/** `v` parsed by `schema`, or undefined when absent or invalid. */
function valid<T>(schema: { safeParse(v: unknown): { success: boolean; data?: T } }, v: unknown) {
  if (v === undefined) return undefined;
  const r = schema.safeParse(v);
  return r.success ? r.data : undefined;
}

export function loosen(v: unknown): LooseRule | null {
  if (!isRecord(v)) return null;
  const inputs = rawInputs(v).map(({ value, path }) => {
    const r = InputSchema.safeParse(value);
    return { input: r.success ? r.data : undefined, path };
  });
  const outputs = Array.isArray(v.outputs)
    ? v.outputs.map((o) => {
      const r = OutputSchema.safeParse(o);
      return r.success ? r.data : undefined;
    })
    : [];
  const all = v.allow_link_local;
  const name = v.name;
  return {
    input: inputs[0]?.input,
    inputs,
    record: v,
    outputs,
    allowLinkLocal: all === undefined ? false : typeof all === "boolean" ? all : undefined,
    nameState: name === undefined
      ? "absent"
      : typeof name === "string" && RULE_NAME_RE.test(name)
      ? "valid"
      : "invalid",
    name: typeof name === "string" ? name : undefined,
    enabled: v.enabled !== false,
    rateLimit: valid(RateLimitSchema, v.rate_limit),
    health: valid(HealthSchema, v.health),
  };
}

/** The cross-rule keys of a rule: one per valid input (the name is checked on the first). */
export function keyOfLoose(index: number, rule: LooseRule): RuleKey[] {
  const valid = rule.inputs.filter((i) => i.input !== undefined);
  if (valid.length === 0) return [];
  const name = rule.nameState === "valid" ? rule.name! : inputsId(valid.map((i) => i.input!));
  return valid.map((i, k) => ({
    index,
    name,
    named: rule.nameState === "valid",
    checkName: k === 0 && rule.nameState !== "invalid",
    enabled: rule.enabled,
    key: inputKey(i.input!),
    input: i.input!,
    path: i.path,
  }));
}

/** The cross-rule keys of a normalized rule: one per input (the name is checked on the first). */
export function keyOfConfig(index: number, rule: RuleConfig): RuleKey[] {
  return ruleInputs(rule).map((input, k) => ({
    index,
    name: rule.name,
    named: rule.name !== rule.id,
    checkName: k === 0,
    enabled: rule.enabled,
    key: inputKey(input),
    input,
    path: rule.inputs ? ["inputs", k] : ["input"],
  }));
}

function ruleLabel(k: RuleKey): string {
  return k.named ? `${ruleWhere(k.index)} ${render(k.name)}` : ruleWhere(k.index);
}

/**
 * Cross-rule checks of `fresh` rules against each other and against `prior`
 * (already accepted) rules. Issues are reported on the later rule and name the
 * earlier one.
 */
export function checkAcross(
  prior: RuleKey[],
  fresh: RuleKey[],
): { index: number; path: (string | number)[]; message: string }[] {
  const issues: { index: number; path: (string | number)[]; message: string }[] = [];
  const names = new Map<string, RuleKey>();
  const inputs = new Map<string, RuleKey>();
  const add = (k: RuleKey) => {
    if (k.checkName && !names.has(k.name)) names.set(k.name, k);
    if (k.enabled && !inputs.has(k.key)) inputs.set(k.key, k);
  };
  prior.forEach(add);
  for (const k of fresh) {
    const other = k.checkName ? names.get(k.name) : undefined;
    if (other) {
      const message = k.named
        ? `duplicate rule name ${render(k.name)} (also used by ${ruleLabel(other)})`
        : `the rule has no name and its default name (its id ${k.name}) is already used by ` +
          `${ruleLabel(other)}; give the rule a distinct "name"`;
      issues.push({ index: k.index, path: ["name"], message });
    }
    const found = k.enabled ? inputs.get(k.key) : undefined;
    // an input twice in one rule is redundancy.ts's to report
    const clash = found && found.index !== k.index ? found : undefined;
    if (clash) {
      issues.push({
        index: k.index,
        path: k.path,
        message: `same input (${describeInput(k.input)}) as enabled ${ruleLabel(clash)}; ` +
          "two enabled rules cannot consume the same stream: merge their outputs into one " +
          "rule or disable one of them",
      });
    }
    add(k);
  }
  return issues;
}

/** The message for a rule list longer than {@link MAX_RULES}. */
export function tooManyRules(count: number): string {
  return `has ${count} rules; at most ${MAX_RULES} are allowed`;
}

/**
 * Relay-wide capacity of a rule list (parsed JSON rules or normalized ones):
 * every output of an enabled rule holds one of the relay's MAX_OUTPUT_SLOTS
 * output slots, so a list whose enabled rules have more outputs in total
 * cannot run. This is the same arithmetic as the slot allocation at start
 * and on every change (src/relay/tables.ts), so `check` refuses exactly what the
 * relay would. Disabled rules hold no slot.
 */
export function capacityIssues(rules: readonly unknown[], root: unknown): ConfigIssue[] {
  const inputs = new Set<string>();
  const names = new Set<string>();
  let outputs = 0, joins = 0, analysed = 0, monitored = 0, redundant = 0;
  for (const r of rules) {
    const share = capacityShare(r);
    if (!share) continue;
    outputs += share.outputs;
    joins += share.joins;
    analysed += share.analysed;
    monitored += share.monitored;
    redundant += share.redundant;
    for (const i of share.inputs) inputs.add(i);
    for (const n of share.interfaces) names.add(n);
  }
  return capacityIssuesOf(
    { outputs, inputs: inputs.size, interfaces: names.size, joins, analysed, monitored, redundant },
    root,
  );
}

/** What one rule (parsed JSON or normalized) counts for in {@link capacityIssues}. */
export interface CapacityShare {
  /** Its outputs. */
  outputs: number;
  /** Its input interfaces (distinct), as named. */
  inputs: string[];
  /** The interface names it uses (input and outputs). */
  interfaces: Set<string>;
  /** The IGMP joins it asks for (see {@link joinsOf}). */
  joins: number;
  /** 1 when it asks for payload analysis (`health.payload`), else 0. */
  analysed: number;
  /** 1 when it has `health`, else 0. */
  monitored: number;
  /** 1 when it has redundant `inputs`, else 0. */
  redundant: number;
}

/**
 * The IGMP joins an input (parsed JSON or normalized) asks for: 1 for one
 * multicast group, the length of `joins` for a range, 0 for a unicast
 * address (or what cannot be read).
 */
export function joinsOf(input: unknown): number {
  if (!isRecord(input)) return 0;
  if (Array.isArray(input.joinAddrs)) return input.joinAddrs.length;
  if (typeof input.group !== "string") return 0;
  if (input.group.includes("/")) return Array.isArray(input.joins) ? input.joins.length : 0;
  const a = parseIPv4(input.group);
  return a !== null && isMulticast(a) ? 1 : 0;
}

/** A rule's {@link CapacityShare}; null for a disabled rule (it holds no slot) or a non-object. */
export function capacityShare(r: unknown): CapacityShare | null {
  if (!isRecord(r) || r.enabled === false) return null;
  const share: CapacityShare = {
    outputs: 0,
    inputs: [],
    interfaces: new Set(),
    joins: 0,
    analysed: isAnalysed(r) ? 1 : 0,
    monitored: isMonitored(r) ? 1 : 0,
    redundant: isRedundant(r) ? 1 : 0,
  };
  if (Array.isArray(r.outputs)) {
    share.outputs = r.outputs.length;
    for (const o of r.outputs) {
      if (isRecord(o) && typeof o.interface === "string") share.interfaces.add(o.interface);
    }
  }
  for (const { value } of rawInputs(r)) {
    share.joins += joinsOf(value);
    if (isRecord(value) && typeof value.interface === "string") {
      if (!share.inputs.includes(value.interface)) share.inputs.push(value.interface);
      share.interfaces.add(value.interface);
    }
  }
  return share;
}

/** What the relay-wide capacity is counted in (see {@link capacityIssues}). */
export interface CapacityCounts {
  /** Outputs of the enabled rules (each holds an output slot). */
  outputs: number;
  /** Distinct input interfaces of the enabled rules. */
  inputs: number;
  /** Distinct interface names (inputs and outputs) of the enabled rules. */
  interfaces: number;
  /** IGMP joins the enabled rules ask for ({@link joinsOf}). */
  joins: number;
  /** Enabled rules with payload analysis (`health.payload`). */
  analysed: number;
  /** Enabled rules with `health`. */
  monitored: number;
  /** Enabled rules with redundant `inputs`. */
  redundant: number;
}

/** The capacity issues of a rule list with these counts (see {@link capacityIssues}). */
export function capacityIssuesOf(counts: CapacityCounts, root: unknown): ConfigIssue[] {
  const { outputs } = counts;
  const issues: ConfigIssue[] = [];
  if (outputs > MAX_OUTPUT_SLOTS) {
    issues.push(issueAt(
      ["rules"],
      `has ${outputs} outputs in its enabled rules; at most ${MAX_OUTPUT_SLOTS} are allowed ` +
        "per relay",
      root,
    ));
  }
  if (counts.inputs > MAX_INPUT_SLOTS) {
    issues.push(issueAt(
      ["rules"],
      `has ${counts.inputs} input interfaces in its enabled rules; at most ${MAX_INPUT_SLOTS} ` +
        "are allowed per relay",
      root,
    ));
  }
  if (counts.joins > MAX_JOINS) {
    issues.push(issueAt(
      ["rules"],
      `asks for ${counts.joins} IGMP joins in its enabled rules (one per multicast input ` +
        `group, one per group of a range's "joins"); at most ${MAX_JOINS} are allowed per relay`,
      root,
    ));
  }
  if (counts.monitored > MAX_HEALTH_RULES) {
    issues.push(issueAt(["rules"], tooManyMonitored(counts.monitored), root));
  }
  if (counts.redundant > MAX_REDUNDANT_RULES) {
    issues.push(issueAt(["rules"], tooManyRedundant(counts.redundant), root));
  }
  if (counts.analysed > MAX_ANALYSED_RULES) {
    issues.push(issueAt(["rules"], tooManyAnalysed(counts.analysed), root));
  }
  if (counts.interfaces > MAX_INTERFACES) {
    issues.push(issueAt(
      ["rules"],
      `names ${counts.interfaces} interfaces (inputs and outputs) in its enabled rules; at most ` +
        `${MAX_INTERFACES} are allowed per relay`,
      root,
    ));
  }
  return issues;
}

/**
 * Worker settings that cannot work: fanout "none" where several workers
 * read one interface (each would get every frame and send it again: every
 * datagram duplicated), a CPU listed twice, more data-path workers than
 * {@link MAX_DATA_PATH_WORKERS}. Runs on the raw document, so `check` and
 * start refuse the same files.
 */
export function tuningIssues(value: unknown): ConfigIssue[] {
  if (!isRecord(value)) return [];
  const issues: ConfigIssue[] = [];
  const pool = typeof value.workers === "number" ? value.workers : DEFAULT_WORKERS;
  const globalNone = isRecord(value.rx) && value.rx.fanout === "none";
  const copies = (n: number) =>
    `each of the ${n} workers would get every frame and send every datagram again; use a ` +
    'fanout mode (e.g. "hash") or one worker';
  const dupCpus = (list: unknown, path: (string | number)[]) => {
    if (!Array.isArray(list)) return;
    const seen = new Set<unknown>();
    list.forEach((c, i) => {
      if (seen.has(c)) {
        issues.push(issueAt([...path, i], `CPU ${render(c)} is listed twice`, value));
      }
      seen.add(c);
    });
  };
  dupCpus(value.cpus, ["cpus"]);
  if (globalNone && pool > 1) {
    issues.push(
      issueAt(["rx", "fanout"], `is "none" with a pool of ${pool} workers: ${copies(pool)}`, value),
    );
  }
  let total = pool;
  const ifs = isRecord(value.interfaces) ? value.interfaces : {};
  for (const [name, t] of Object.entries(ifs)) {
    if (!isRecord(t)) continue;
    dupCpus(t.cpus, ["interfaces", name, "cpus"]);
    const own = typeof t.workers === "number" ? t.workers : undefined;
    const cpus = Array.isArray(t.cpus) ? t.cpus.length : undefined;
    const dedicated = own !== undefined || cpus !== undefined;
    const n = dedicated ? own ?? Math.max(1, cpus!) : pool;
    if (dedicated) total += n;
    if (n <= 1) continue;
    if (t.fanout === "none") {
      issues.push(
        issueAt(
          ["interfaces", name, "fanout"],
          `is "none" but ${n} workers read ${name}: ${copies(n)}`,
          value,
        ),
      );
    } else if (t.fanout === undefined && globalNone && dedicated) {
      const at = ["interfaces", name, own !== undefined ? "workers" : "cpus"];
      issues.push(
        issueAt(at, `gives ${name} ${n} workers while rx.fanout is "none": ${copies(n)}`, value),
      );
    }
  }
  for (const [i, message] of fanoutIssues(value)) {
    issues.push(issueAt(["rules", i, "health", "payload"], message, value));
  }
  if (total > MAX_DATA_PATH_WORKERS) {
    issues.push(issueAt(
      ["workers"],
      `adds up to ${total} data-path workers with the interfaces' dedicated ones; at most ` +
        `${MAX_DATA_PATH_WORKERS} are allowed`,
      value,
    ));
  }
  return issues;
}

/**
 * Checks that a complete rule list fits the relay's limits ({@link MAX_RULES}
 * rules, MAX_OUTPUT_SLOTS outputs over the enabled rules) before it is
 * applied, with the same messages as a file.
 *
 * @param rules The rules to apply.
 * @param source Where they came from, for the message.
 * @throws {ConfigError} naming the limit and the count.
 */
export function checkCapacity(rules: readonly RuleConfig[], source?: string): void {
  const root = { rules };
  const issues = rules.length > MAX_RULES
    ? [issueAt(["rules"], tooManyRules(rules.length), root)]
    : [];
  issues.push(...capacityIssues(rules, root));
  if (issues.length > 0) throw new ConfigError(issues, source);
}

/** Semantic issues of `rules` (absolute paths), over their individually valid parts. */
export function semanticIssues(rules: unknown, root: unknown): ConfigIssue[] {
  if (!Array.isArray(rules)) return [];
  const issues: ConfigIssue[] = [];
  const keys: RuleKey[] = [];
  rules.forEach((r, index) => {
    const loose = loosen(r);
    if (!loose) return;
    for (const i of checkRule(loose)) {
      issues.push(issueAt(["rules", index, ...i.path], i.message, root));
    }
    keys.push(...keyOfLoose(index, loose));
  });
  for (const i of checkAcross([], keys)) {
    issues.push(issueAt(["rules", i.index, ...i.path], i.message, root));
  }
  return issues;
}

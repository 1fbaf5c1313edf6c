/**
 * rules.json: schema, validation and normalization.
 *
 * The file is validated in two passes:
 *
 * 1. Structure, with zod ({@link ConfigSchema}): strict objects everywhere
 *    (an unknown key such as "ouputs" is an error naming the key, with a
 *    suggestion), types and ranges of every field.
 * 2. Semantics: address classes (input groups must be multicast, link-local
 *    groups need `allow_link_local`, output destinations must be multicast or
 *    usable unicast), outputs looping into their own input, duplicate outputs,
 *    duplicate rule names and two enabled rules consuming the same input.
 *
 * Every problem found is reported at once in a {@link ConfigError}, one issue
 * per line, e.g. `rule 2 "cam1": outputs[0].port: must be an integer from 1 to
 * 65535 (got 70000)`. The semantic pass also runs on the rules that are
 * structurally valid when others are not, so one run lists everything.
 *
 * The returned {@link Config} is normalized: defaults applied, TTL and DSCP
 * resolved per output (output, then rule, then global), addresses also given
 * as unsigned 32-bit numbers, and each rule has a stable {@link ruleId}.
 *
 * Naming: fields that come from rules.json keep their JSON spelling
 * (`source_ip`, `allow_link_local`); fields derived by normalization are
 * camelCase (`groupAddr`, `sourceAddr`, `vlanId`, `tos`).
 *
 * @module
 */

import { z } from "zod";
import { parseJsonText } from "./json_text.ts";
import { isLinkLocalMulticast, isMulticast, parseIPv4, unicastProblem } from "./net.ts";
import { MAX_OUTPUT_SLOTS, MAX_RULE_SLOTS } from "./counters.ts";
import { readTextFileBounded } from "./text_file.ts";

// ---------------------------------------------------------------- limits

/** Most rules a configuration may hold (enabled or not). */
export const MAX_RULES = 4096;
/** Most outputs one rule may have. */
export const MAX_OUTPUTS_PER_RULE = 64;
// The outputs of all enabled rules together are capped by the relay's output
// slots (MAX_OUTPUT_SLOTS, src/counters.ts; see capacityIssues). Rules need no
// check of their own as long as every configuration fits the rule slots:
if (MAX_RULES > MAX_RULE_SLOTS) throw new Error("MAX_RULES exceeds the relay's rule slots");
/** Default output TTL policy when neither output, rule nor config sets one (as the Rust mcrd). */
export const DEFAULT_TTL = 1;
/** Default DSCP (outputs carry TOS = dscp << 2). */
export const DEFAULT_DSCP = 0;
/** Default number of workers. */
export const DEFAULT_WORKERS = 1;
/**
 * Largest rules.json read, in bytes (64 MiB). Sized for 65,536 rules with 4
 * outputs each, pretty-printed with a 2-space indent (46 MB,
 * bench/config_bench.ts), with room for longer names; the largest
 * configuration the relay can run is under 5 MB. A larger file is refused
 * before it is read; one at the cap is read and scanned in about a second,
 * and {@link MAX_CONFIG_VALUES} stops the scan of a file with too much in it.
 */
export const MAX_CONFIG_BYTES = 64 * 1024 * 1024;
/**
 * Most JSON values (objects, arrays, strings, numbers, booleans, nulls) a
 * rules.json may hold. Validation costs memory per value (about 1 KB for each
 * value with a problem), so this, not the byte size, bounds what a hostile file
 * can cost whatever its shape. The largest configuration the relay can run —
 * {@link MAX_RULES} rules and 16,384 outputs (its slot capacity, src/counters.ts),
 * every field set — has 184,322 values (tests/unit/config_file_test.ts).
 */
export const MAX_CONFIG_VALUES = 262_144;

// ---------------------------------------------------------------- leaf validators

/** Options of {@link parseConfig}, {@link parseConfigText} and {@link loadConfig}. */
export interface ParseOptions {
  /**
   * Quote offending values and characters in error messages: `(got 70000)`,
   * `unexpected character 'x'`. When false, a message says what kind of value
   * it found (`(got a number)`) and repeats nothing of the document: no value
   * that failed validation, no character, no duplicate key, no invalid rule
   * name (field paths, valid rule names and values that passed validation, such
   * as addresses, remain). Default: true, or what {@link setQuoteValues} chose.
   */
  quoteValues?: boolean;
}

/** Process-wide default of {@link ParseOptions.quoteValues}. */
let quoteValuesDefault = true;
/** Whether the validation running now quotes values (set by {@link withQuoting}). */
let quoting = true;

/**
 * Set the default of {@link ParseOptions.quoteValues} for this process. The
 * daemon sets it to false once it runs: what it validates afterwards comes
 * from control clients and files they name, and its replies and log must not
 * repeat what those files hold.
 */
export function setQuoteValues(on: boolean): void {
  quoteValuesDefault = on;
}

/** Run a (synchronous) validation with the quoting `options` ask for. */
function withQuoting<T>(options: ParseOptions | undefined, f: () => T): T {
  const outer = quoting;
  quoting = options?.quoteValues ?? quoteValuesDefault;
  try {
    return f();
  } finally {
    quoting = outer;
  }
}

/** What kind of value `v` is, for a message that must not quote it. */
function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  switch (typeof v) {
    case "string":
      return "a string";
    case "number":
    case "bigint":
      return "a number";
    case "boolean":
      return "a boolean";
    case "object":
      return "an object";
    default:
      return String(typeof v);
  }
}

/** Renders a value from the document for an error message (or its kind, when not quoting). */
function show(v: unknown): string {
  return quoting ? render(v) : kindOf(v);
}

/** Renders a value for an error message: JSON-like, shortened. */
function render(v: unknown): string {
  let s: string;
  if (v === undefined) s = "undefined";
  else if (typeof v === "bigint") s = `${v}n`;
  else if (typeof v === "number" && !Number.isFinite(v)) s = String(v);
  else {
    try {
      s = JSON.stringify(v) ?? String(v);
    } catch {
      s = Object.prototype.toString.call(v);
    }
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * A leaf field: `check` decides, `expected` describes valid values (used as
 * "must be <expected> (got X)" or "is required (<expected>)"), `json` is the
 * same constraint as JSON Schema (zod metadata; `cli.ts schema` emits it).
 */
function leaf<T>(check: (v: unknown) => boolean, expected: string, json: Record<string, unknown>) {
  return z.custom<T>(check, {
    error: (iss) =>
      iss.input === undefined
        ? `is required (${expected})`
        : `must be ${expected} (got ${show(iss.input)})`,
  }).meta(json);
}

/** JSON Schema of an integer range. */
const jsonInt = (minimum: number, maximum: number) => ({ type: "integer", minimum, maximum });
/** JSON Schema pattern of a dotted quad without leading zeros (as `parseIPv4`). */
const OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";

const isInt = (lo: number, hi: number) => (v: unknown): boolean =>
  typeof v === "number" && Number.isInteger(v) && v >= lo && v <= hi;

function intIn(lo: number, hi: number) {
  return leaf<number>(isInt(lo, hi), `an integer from ${lo} to ${hi}`, jsonInt(lo, hi));
}

const port = () => intIn(1, 65535);
const dscp = () => intIn(0, 63);
const bool = () =>
  leaf<boolean>((v) => typeof v === "boolean", "true or false", { type: "boolean" });

/** TTL policy: a fixed TTL 1..255, or "decrement" (input TTL - 1; TTL 1 is dropped). */
export type TtlPolicy = number | "decrement";

const ttl = () =>
  leaf<TtlPolicy>(
    (v) => v === "decrement" || isInt(1, 255)(v),
    'an integer from 1 to 255 or "decrement"',
    { anyOf: [jsonInt(1, 255), { const: "decrement" }] },
  );

/** PACKET_FANOUT modes accepted in `rx.fanout`. */
export const FANOUT_MODES = ["hash", "lb", "cpu", "rollover", "random", "qm"] as const;
/** A PACKET_FANOUT mode name. */
export type FanoutMode = (typeof FANOUT_MODES)[number];

const ipv4 = () =>
  leaf<string>(
    (v) => typeof v === "string" && parseIPv4(v) !== null,
    'an IPv4 address in dotted-quad form like "239.1.1.1" (no leading zeros)',
    { type: "string", format: "ipv4", pattern: `^${OCTET}(\\.${OCTET}){3}$` },
  );

/** Longest interface name: IFNAMSIZ (16) - 1 for the NUL. */
const IFNAME_MAX = 15;
/** Printable ASCII without space and "/": the characters of an interface name. */
const IFNAME_RE = /^[!-.0-~]+$/;

/**
 * Whether `s` is an acceptable interface name: 1 to 15 printable ASCII
 * characters (so 1 to 15 bytes: IFNAMSIZ - 1), no space and no "/", not "."
 * or "..". The kernel's dev_valid_name() refuses "/", whitespace and those two
 * names; mcr also refuses control characters and everything outside ASCII, as
 * systemd's ifname_valid_full() does, so that a name printed by `ctl` or `top`
 * can carry no terminal control (U+009B CSI), bidirectional override (U+202E)
 * or invisible character. ":" is allowed: an IPv4 alias label like "eth0:1"
 * names its interface in the kernel's SIOCGIF* lookups.
 */
export function isValidInterfaceName(s: unknown): s is string {
  return typeof s === "string" && s.length <= IFNAME_MAX && IFNAME_RE.test(s) && s !== "." &&
    s !== "..";
}

const ifname = () =>
  leaf<string>(
    isValidInterfaceName,
    'an interface name of 1 to 15 printable ASCII characters without space or "/" ' +
      '(not "." or "..")',
    {
      type: "string",
      minLength: 1,
      maxLength: IFNAME_MAX,
      pattern: IFNAME_RE.source,
      not: { enum: [".", ".."] },
    },
  );

const RULE_NAME_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
const ruleName = () =>
  leaf<string>(
    (v) => typeof v === "string" && RULE_NAME_RE.test(v),
    "a name of 1 to 64 characters from A-Z a-z 0-9 _ . : -",
    { type: "string", pattern: RULE_NAME_RE.source },
  );

const nonEmptyString = (max: number) =>
  leaf<string>(
    (v) => typeof v === "string" && v.length > 0 && v.length <= max,
    `a non-empty string of at most ${max} characters`,
    { type: "string", minLength: 1, maxLength: max },
  );

// ---------------------------------------------------------------- structure (zod)

const inputShape = {
  interface: ifname(),
  group: ipv4(),
  port: port(),
  source: ipv4().optional(),
  vlan: intIn(0, 4094).optional(),
};

const outputShape = {
  interface: ifname(),
  group: ipv4(),
  port: port(),
  ttl: ttl().optional(),
  dscp: dscp().optional(),
  source_ip: ipv4().optional(),
  source_port: port().optional(),
};

const ruleShape = {
  name: ruleName().optional(),
  enabled: bool().optional(),
  input: z.strictObject(inputShape),
  outputs: z.array(z.strictObject(outputShape)).min(1).max(MAX_OUTPUTS_PER_RULE),
  ttl: ttl().optional(),
  dscp: dscp().optional(),
  allow_link_local: bool().optional(),
};

const rxShape = {
  tpacket_version: leaf<2 | 3>((v) => v === 2 || v === 3, "2 or 3", { enum: [2, 3] }),
  frame_count: intIn(64, 1048576),
  batch_max: intIn(1, 4096),
  coalesce_us: intIn(0, 10000),
  coalesce_pps: intIn(0, 4294967295),
  filter: bool(),
  fanout: leaf<FanoutMode>(
    (v) => typeof v === "string" && (FANOUT_MODES as readonly string[]).includes(v),
    `one of ${FANOUT_MODES.map((m) => `"${m}"`).join(", ")}`,
    { enum: [...FANOUT_MODES] },
  ),
};

const txShape = {
  frame_count: intIn(64, 1048576),
  qdisc_bypass: bool(),
};

const interfaceShape = {
  workers: intIn(1, 64),
  fanout: rxShape.fanout,
  cpus: z.array(intIn(0, 4095)).min(1).max(64),
};

const configShape = {
  // Lets editors find the JSON Schema (schema/rules.schema.json); ignored by the relay.
  $schema: nonEmptyString(2048).optional(),
  rules: z.array(z.strictObject(ruleShape)).max(MAX_RULES),
  interfaces: z.record(ifname(), z.strictObject(interfaceShape).partial()).optional(),
  ttl: ttl().optional(),
  dscp: dscp().optional(),
  workers: intIn(1, 64).optional(),
  rx: z.strictObject(rxShape).partial().optional(),
  tx: z.strictObject(txShape).partial().optional(),
  // Unix socket path: sun_path holds 108 bytes including the NUL.
  control: z.strictObject({ socket: nonEmptyString(107) }).optional(),
  metrics: z.strictObject({ listen: nonEmptyString(255) }).optional(),
};

/** A rule's input as written in rules.json. */
export interface RawInput {
  /** Receiving interface. */
  interface: string;
  /** Multicast group. */
  group: string;
  /** UDP port. */
  port: number;
  /** Source filter. */
  source?: string;
  /** VLAN ID (0 = untagged). */
  vlan?: number;
}

/** An output as written in rules.json. */
export interface RawOutput {
  /** Sending interface. */
  interface: string;
  /** Destination group or unicast address. */
  group: string;
  /** UDP port. */
  port: number;
  /** TTL policy. */
  ttl?: TtlPolicy;
  /** DSCP. */
  dscp?: number;
  /** Source address. */
  source_ip?: string;
  /** Source port. */
  source_port?: number;
}

/** A rule as written in rules.json (structurally valid, not normalized). */
export interface RawRule {
  /** Rule name. */
  name?: string;
  /** Whether the rule is enabled. */
  enabled?: boolean;
  /** Input. */
  input: RawInput;
  /** Outputs. */
  outputs: RawOutput[];
  /** Rule default TTL policy. */
  ttl?: TtlPolicy;
  /** Rule default DSCP. */
  dscp?: number;
  /** Allow 224.0.0.0/24 groups. */
  allow_link_local?: boolean;
}

/** rules.json as written (structurally valid, not normalized). */
export interface RawConfig {
  /** Rules. */
  rules: RawRule[];
  /** Global default TTL policy. */
  ttl?: TtlPolicy;
  /** Global default DSCP. */
  dscp?: number;
  /** Worker count. */
  workers?: number;
  /** Per input interface overrides. */
  interfaces?: Record<string, Partial<InterfaceTuning>>;
  /** RX tuning, all optional. */
  rx?: Partial<RxTuning>;
  /** TX tuning. */
  tx?: TxTuning;
  /** Control socket. */
  control?: { socket: string };
  /** Metrics endpoint. */
  metrics?: { listen: string };
}

const InputSchema: z.ZodType<RawInput> = z.strictObject(inputShape);
const OutputSchema: z.ZodType<RawOutput> = z.strictObject(outputShape);

/** Structural schema of one rule in rules.json (no semantic checks). */
export const RuleSchema: z.ZodType<RawRule> = z.strictObject(ruleShape);

/** Structural schema of rules.json, without the semantic checks. */
const ConfigShapeSchema = z.strictObject(configShape);

/** Known keys of each object kind, for "did you mean" suggestions. */
const KNOWN_KEYS = {
  config: Object.keys(configShape),
  rule: Object.keys(ruleShape),
  input: Object.keys(inputShape),
  output: Object.keys(outputShape),
  rx: Object.keys(rxShape),
  tx: Object.keys(txShape),
  control: ["socket"],
  metrics: ["listen"],
} as const;

// ---------------------------------------------------------------- normalized types

/** A rule's input: where the relayed stream is received. */
export interface InputConfig {
  /** Receiving interface name. */
  interface: string;
  /** Multicast group (dotted quad). */
  group: string;
  /** UDP destination port. */
  port: number;
  /** Only datagrams from this source address (optional, dotted quad). */
  source?: string;
  /** VLAN ID as written (optional; absent or 0 = untagged frames only). */
  vlan?: number;
  /** `group` as an unsigned 32-bit number. */
  groupAddr: number;
  /** `source` as an unsigned 32-bit number; 0 when absent (any source). */
  sourceAddr: number;
  /**
   * VLAN to match, in the convention of `ParsedPacket.vlan`: 1..4094, or -1
   * for untagged (absent, or 0 which a priority tag normalizes to).
   */
  vlanId: number;
}

/** One destination of a rule, with every default resolved. */
export interface OutputConfig {
  /** Sending interface name. */
  interface: string;
  /** Destination: multicast group or unicast address (dotted quad). */
  group: string;
  /** UDP destination port. */
  port: number;
  /** Resolved TTL policy: output's, else rule's, else config's, else 1. */
  ttl: TtlPolicy;
  /** Resolved DSCP: output's, else rule's, else config's, else 0. */
  dscp: number;
  /** IPv4 TOS byte to send: `dscp << 2` (ECN bits 0). */
  tos: number;
  /** Source address to send from (optional; default: the interface's address). */
  source_ip?: string;
  /** UDP source port to send from (optional; default: the input datagram's). */
  source_port?: number;
  /** `group` as an unsigned 32-bit number. */
  groupAddr: number;
  /** `source_ip` as an unsigned 32-bit number; 0 when absent. */
  sourceAddr: number;
}

/** One relay rule, normalized. */
export interface RuleConfig {
  /** Stable id: {@link ruleId} of the input (16 hex digits). Not unique across disabled rules. */
  id: string;
  /** Unique name; defaults to `id`. */
  name: string;
  /** Whether the rule relays (default true). */
  enabled: boolean;
  /** Where the stream comes from. */
  input: InputConfig;
  /** Where it goes (1..64 outputs, pairwise distinct). */
  outputs: OutputConfig[];
  /** Rule default TTL policy, resolved (rule's, else config's, else 1). */
  ttl: TtlPolicy;
  /** Rule default DSCP, resolved (rule's, else config's, else 0). */
  dscp: number;
  /** Whether link-local (224.0.0.0/24) groups are allowed (default false). */
  allow_link_local: boolean;
}

/**
 * RX ring tuning. Unset numeric fields mean "the library's default" (they map
 * to 0 in `struct mcr_rx_config`).
 */
export interface RxTuning {
  /** TPACKET version 2 or 3. */
  tpacket_version?: 2 | 3;
  /** Ring slots (V2). */
  frame_count?: number;
  /** Most frames returned per poll. */
  batch_max?: number;
  /** Adaptive gather budget in microseconds. */
  coalesce_us?: number;
  /** Packet rate above which gathering starts. */
  coalesce_pps?: number;
  /** Install the kernel BPF filter for the configured groups (default true). */
  filter: boolean;
  /** PACKET_FANOUT mode across workers (default "hash"). */
  fanout: FanoutMode;
}

/** Per input interface tuning (`interfaces` in rules.json). */
export interface InterfaceTuning {
  /** Workers (RX rings in one fanout group) on this interface. */
  workers: number;
  /** Fanout mode for this interface. */
  fanout: FanoutMode;
  /** CPUs to pin the workers to, round robin. */
  cpus: number[];
}

/** TX ring tuning; unset fields mean "the library's default". */
export interface TxTuning {
  /** Ring slots. */
  frame_count?: number;
  /** PACKET_QDISC_BYPASS. */
  qdisc_bypass?: boolean;
}

/** The validated, normalized configuration. */
export interface Config {
  /** Relay rules, in file order. */
  rules: RuleConfig[];
  /** Global default TTL policy (default 1). */
  ttl: TtlPolicy;
  /** Global default DSCP (default 0). */
  dscp: number;
  /** Worker threads per input interface (default 1). */
  workers: number;
  /** Per input interface overrides of `workers`, `fanout` and CPU pinning. */
  interfaces: Record<string, Partial<InterfaceTuning>>;
  /** RX tuning (defaults applied to `filter` and `fanout`). */
  rx: RxTuning;
  /** TX tuning. */
  tx: TxTuning;
  /** Control socket settings, if configured. */
  control?: { socket: string };
  /** Metrics endpoint settings, if configured. */
  metrics?: { listen: string };
}

// ---------------------------------------------------------------- errors

/** One configuration problem. */
export interface ConfigIssue {
  /** Path of the offending value in the JSON document, e.g. `["rules", 2, "outputs", 0, "port"]`. */
  path: (string | number)[];
  /** The rule concerned (its index in `rules`, and its name when it has a string one). */
  rule?: { index: number; name?: string };
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
    where = `rule ${issue.rule.index}`;
    if (issue.rule.name !== undefined) where += ` ${render(issue.rule.name)}`;
  } else {
    where = "config";
  }
  return issue.field ? `${where}: ${issue.field}: ${issue.message}` : `${where}: ${issue.message}`;
}

/**
 * Most problems a {@link ConfigError} lists: enough to fix a file in a few
 * rounds, and a bound on the message, the control reply and the log line
 * (a hostile file can hold 200,000 problems).
 */
export const MAX_REPORTED_ISSUES = 1000;

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
function issueAt(path: readonly PropertyKey[], message: string, root: unknown): ConfigIssue {
  const clean = path.map((p) => (typeof p === "symbol" ? String(p) : p)) as (string | number)[];
  if (clean.length >= 2 && clean[0] === "rules" && typeof clean[1] === "number") {
    const index = clean[1];
    const raw = valueAt(root, ["rules", index]);
    // Without quoting, only a valid name (a label the relay itself shows) is repeated.
    const name = isRecord(raw) && typeof raw.name === "string" &&
        (quoting || RULE_NAME_RE.test(raw.name))
      ? raw.name
      : undefined;
    return {
      path: clean,
      rule: name === undefined ? { index } : { index, name },
      field: formatField(clean.slice(2)),
      message,
    };
  }
  return { path: clean, field: formatField(clean), message };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const p of path) {
    if (v === null || typeof v !== "object") return undefined;
    if (!Object.prototype.hasOwnProperty.call(v, p)) return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

function knownKeysFor(path: readonly PropertyKey[]): readonly string[] {
  const n = path.length;
  if (n === 0) return KNOWN_KEYS.config;
  if (n === 1 && typeof path[0] === "string" && path[0] in KNOWN_KEYS) {
    return KNOWN_KEYS[path[0] as keyof typeof KNOWN_KEYS];
  }
  if (path[0] === "rules") {
    if (n === 2) return KNOWN_KEYS.rule;
    if (n === 3 && path[2] === "input") return KNOWN_KEYS.input;
    if (n === 4 && path[2] === "outputs") return KNOWN_KEYS.output;
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
function fromZod(issues: readonly z.core.$ZodIssue[], root: unknown): ConfigIssue[] {
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

// ---------------------------------------------------------------- rule ids

const FNV64_OFFSET = 0xcbf29ce484222325n;
const FNV64_PRIME = 0x100000001b3n;
const U64 = 0xffffffffffffffffn;

/** The fields of an input that identify a stream. */
export interface InputTuple {
  /** Receiving interface. */
  interface: string;
  /** Multicast group, dotted quad. */
  group: string;
  /** UDP port. */
  port: number;
  /** Source filter, dotted quad (optional). */
  source?: string;
  /** VLAN ID (optional; 0 is the same as absent). */
  vlan?: number;
}

/** The canonical text of an input tuple: `interface|group|port|source|vlan` (empty when absent). */
function inputKey(input: InputTuple): string {
  const vlan = input.vlan === undefined || input.vlan === 0 ? "" : String(input.vlan);
  return `${input.interface}|${input.group}|${input.port}|${input.source ?? ""}|${vlan}`;
}

/**
 * Stable id of a rule's input: FNV-1a 64-bit over the UTF-8 bytes of
 * `"interface|group|port|source|vlan"` (absent source/vlan as empty strings;
 * vlan 0 counts as absent), as 16 lowercase hex digits. Equal inputs give
 * equal ids, whatever the rule's name or outputs.
 */
export function ruleId(input: InputTuple): string {
  let h = FNV64_OFFSET;
  for (const byte of new TextEncoder().encode(inputKey(input))) {
    h ^= BigInt(byte);
    h = (h * FNV64_PRIME) & U64;
  }
  return h.toString(16).padStart(16, "0");
}

function describeInput(input: InputTuple): string {
  let s = `${input.interface} ${input.group}:${input.port}`;
  if (input.source) s += ` from ${input.source}`;
  if (input.vlan) s += ` vlan ${input.vlan}`;
  return s;
}

// ---------------------------------------------------------------- semantic checks

/** What the cross-rule checks need to know about a rule. */
interface RuleKey {
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
}

/**
 * The parts of a rule that are individually valid, so semantic checks can run
 * on them while other parts of the rule have structural errors.
 */
interface LooseRule {
  /** The input, if valid. */
  input?: RawInput;
  /** Each output if valid, else undefined. */
  outputs: (RawOutput | undefined)[];
  /** allow_link_local when valid (absent = false); undefined when invalid. */
  allowLinkLocal?: boolean;
  /** "absent", "valid" or "invalid" name. */
  nameState: "absent" | "valid" | "invalid";
  name?: string;
  enabled: boolean;
}

function loosen(v: unknown): LooseRule | null {
  if (!isRecord(v)) return null;
  const input = InputSchema.safeParse(v.input);
  const outputs = Array.isArray(v.outputs)
    ? v.outputs.map((o) => {
      const r = OutputSchema.safeParse(o);
      return r.success ? r.data : undefined;
    })
    : [];
  const all = v.allow_link_local;
  const name = v.name;
  return {
    input: input.success ? input.data : undefined,
    outputs,
    allowLinkLocal: all === undefined ? false : typeof all === "boolean" ? all : undefined,
    nameState: name === undefined
      ? "absent"
      : typeof name === "string" && RULE_NAME_RE.test(name)
      ? "valid"
      : "invalid",
    name: typeof name === "string" ? name : undefined,
    enabled: v.enabled !== false,
  };
}

function keyOfLoose(index: number, rule: LooseRule): RuleKey | null {
  if (!rule.input) return null;
  return {
    index,
    name: rule.nameState === "valid" ? rule.name! : ruleId(rule.input),
    named: rule.nameState === "valid",
    checkName: rule.nameState !== "invalid",
    enabled: rule.enabled,
    key: inputKey(rule.input),
    input: rule.input,
  };
}

function keyOfConfig(index: number, rule: RuleConfig): RuleKey {
  return {
    index,
    name: rule.name,
    named: rule.name !== rule.id,
    checkName: true,
    enabled: rule.enabled,
    key: inputKey(rule.input),
    input: rule.input,
  };
}

function ruleLabel(k: RuleKey): string {
  return k.named ? `rule ${k.index} ${render(k.name)}` : `rule ${k.index}`;
}

const LINK_LOCAL_WHY = "is link-local multicast (224.0.0.0/24), reserved for control traffic " +
  "such as IGMP, OSPF, RIP, VRRP, PIM and mDNS; relaying it breaks those protocols. " +
  'Set "allow_link_local": true on the rule to relay it anyway';

/**
 * Checks of one rule on its own, over its individually valid parts. Paths are
 * relative to the rule. (Link-local checks are skipped while
 * `allow_link_local` itself is invalid.)
 */
function checkRule(rule: LooseRule): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  const allowLL = rule.allowLinkLocal ?? true;
  const input = rule.input;
  if (input) {
    const inGroup = parseIPv4(input.group)!;
    if (!isMulticast(inGroup)) {
      issues.push({
        path: ["input", "group"],
        message: `must be an IPv4 multicast address (224.0.0.0/4) (got "${input.group}")`,
      });
    } else if (isLinkLocalMulticast(inGroup) && !allowLL) {
      issues.push({ path: ["input", "group"], message: `${input.group} ${LINK_LOCAL_WHY}` });
    }
    if (input.source !== undefined) {
      const why = unicastProblem(parseIPv4(input.source)!);
      if (why) {
        issues.push({
          path: ["input", "source"],
          message: `must be a unicast source address (got "${input.source}": ${why})`,
        });
      }
    }
  }
  const seen = new Map<string, number>();
  rule.outputs.forEach((o, j) => {
    if (!o) return;
    const g = parseIPv4(o.group)!;
    if (isMulticast(g)) {
      if (isLinkLocalMulticast(g) && !allowLL) {
        issues.push({ path: ["outputs", j, "group"], message: `${o.group} ${LINK_LOCAL_WHY}` });
      }
    } else {
      const why = unicastProblem(g);
      if (why) {
        issues.push({
          path: ["outputs", j, "group"],
          message:
            `must be a multicast group or a usable unicast address (got "${o.group}": ${why})`,
        });
      }
    }
    if (o.source_ip !== undefined) {
      const why = unicastProblem(parseIPv4(o.source_ip)!);
      if (why) {
        issues.push({
          path: ["outputs", j, "source_ip"],
          message: `must be a unicast address of this host (got "${o.source_ip}": ${why})`,
        });
      }
    }
    const dest = `${o.interface} ${o.group}:${o.port}`;
    if (
      input && o.interface === input.interface && o.group === input.group &&
      o.port === input.port
    ) {
      issues.push({
        path: ["outputs", j],
        message: `same interface, group and port as the rule's input (${dest}); ` +
          "it would forward the stream into itself",
      });
    }
    const k = `${o.interface}|${o.group}|${o.port}`;
    const first = seen.get(k);
    if (first !== undefined) {
      issues.push({
        path: ["outputs", j],
        message: `duplicate of outputs[${first}] (same interface, group and port: ${dest})`,
      });
    } else {
      seen.set(k, j);
    }
  });
  return issues;
}

/**
 * Cross-rule checks of `fresh` rules against each other and against `prior`
 * (already accepted) rules. Issues are reported on the later rule and name the
 * earlier one.
 */
function checkAcross(
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
    const clash = k.enabled ? inputs.get(k.key) : undefined;
    if (clash) {
      issues.push({
        index: k.index,
        path: ["input"],
        message: `same input (${describeInput(k.input)}) as enabled ${ruleLabel(clash)}; ` +
          "two enabled rules cannot consume the same stream: merge their outputs into one " +
          "rule or disable one of them",
      });
    }
    add(k);
  }
  return issues;
}

// ---------------------------------------------------------------- normalization

interface Defaults {
  ttl: TtlPolicy;
  dscp: number;
}

function normalizeRule(rule: RawRule, d: Defaults): RuleConfig {
  const id = ruleId(rule.input);
  const rttl = rule.ttl ?? d.ttl;
  const rdscp = rule.dscp ?? d.dscp;
  const i = rule.input;
  const input: InputConfig = {
    interface: i.interface,
    group: i.group,
    port: i.port,
    groupAddr: parseIPv4(i.group)!,
    sourceAddr: i.source === undefined ? 0 : parseIPv4(i.source)!,
    vlanId: i.vlan === undefined || i.vlan === 0 ? -1 : i.vlan,
  };
  if (i.source !== undefined) input.source = i.source;
  if (i.vlan !== undefined) input.vlan = i.vlan;
  const outputs = rule.outputs.map((o): OutputConfig => {
    const oDscp = o.dscp ?? rdscp;
    const out: OutputConfig = {
      interface: o.interface,
      group: o.group,
      port: o.port,
      ttl: o.ttl ?? rttl,
      dscp: oDscp,
      tos: oDscp << 2,
      groupAddr: parseIPv4(o.group)!,
      sourceAddr: o.source_ip === undefined ? 0 : parseIPv4(o.source_ip)!,
    };
    if (o.source_ip !== undefined) out.source_ip = o.source_ip;
    if (o.source_port !== undefined) out.source_port = o.source_port;
    return out;
  });
  return {
    id,
    name: rule.name ?? id,
    enabled: rule.enabled ?? true,
    input,
    outputs,
    ttl: rttl,
    dscp: rdscp,
    allow_link_local: rule.allow_link_local ?? false,
  };
}

function normalize(raw: RawConfig): Config {
  const d: Defaults = { ttl: raw.ttl ?? DEFAULT_TTL, dscp: raw.dscp ?? DEFAULT_DSCP };
  const rx: RxTuning = { filter: raw.rx?.filter ?? true, fanout: raw.rx?.fanout ?? "hash" };
  if (raw.rx?.tpacket_version !== undefined) rx.tpacket_version = raw.rx.tpacket_version;
  if (raw.rx?.frame_count !== undefined) rx.frame_count = raw.rx.frame_count;
  if (raw.rx?.batch_max !== undefined) rx.batch_max = raw.rx.batch_max;
  if (raw.rx?.coalesce_us !== undefined) rx.coalesce_us = raw.rx.coalesce_us;
  if (raw.rx?.coalesce_pps !== undefined) rx.coalesce_pps = raw.rx.coalesce_pps;
  const tx: TxTuning = {};
  if (raw.tx?.frame_count !== undefined) tx.frame_count = raw.tx.frame_count;
  if (raw.tx?.qdisc_bypass !== undefined) tx.qdisc_bypass = raw.tx.qdisc_bypass;
  const config: Config = {
    rules: raw.rules.map((r) => normalizeRule(r, d)),
    ttl: d.ttl,
    dscp: d.dscp,
    workers: raw.workers ?? DEFAULT_WORKERS,
    interfaces: structuredClone(raw.interfaces ?? {}),
    rx,
    tx,
  };
  if (raw.control) config.control = { socket: raw.control.socket };
  if (raw.metrics) config.metrics = { listen: raw.metrics.listen };
  return config;
}

// ---------------------------------------------------------------- relay-wide limits

/** The message for a rule list longer than {@link MAX_RULES}. */
function tooManyRules(count: number): string {
  return `has ${count} rules; at most ${MAX_RULES} are allowed`;
}

/**
 * Relay-wide capacity of a rule list (parsed JSON rules or normalized ones):
 * every output of an enabled rule holds one of the relay's MAX_OUTPUT_SLOTS
 * output slots, so a list whose enabled rules have more outputs in total
 * cannot run. This is the same arithmetic as the slot allocation at start
 * and on every change (src/rules.ts), so `check` refuses exactly what the
 * relay would. Disabled rules hold no slot.
 */
function capacityIssues(rules: readonly unknown[], root: unknown): ConfigIssue[] {
  let outputs = 0;
  for (const r of rules) {
    if (isRecord(r) && r.enabled !== false && Array.isArray(r.outputs)) outputs += r.outputs.length;
  }
  if (outputs <= MAX_OUTPUT_SLOTS) return [];
  return [
    issueAt(
      ["rules"],
      `has ${outputs} outputs in its enabled rules; at most ${MAX_OUTPUT_SLOTS} are allowed ` +
        "per relay",
      root,
    ),
  ];
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

// ---------------------------------------------------------------- public API

/** Semantic issues of `rules` (absolute paths), over their individually valid parts. */
function semanticIssues(rules: unknown, root: unknown): ConfigIssue[] {
  if (!Array.isArray(rules)) return [];
  const issues: ConfigIssue[] = [];
  const keys: RuleKey[] = [];
  rules.forEach((r, index) => {
    const loose = loosen(r);
    if (!loose) return;
    for (const i of checkRule(loose)) {
      issues.push(issueAt(["rules", index, ...i.path], i.message, root));
    }
    const key = keyOfLoose(index, loose);
    if (key) keys.push(key);
  });
  for (const i of checkAcross([], keys)) {
    issues.push(issueAt(["rules", i.index, ...i.path], i.message, root));
  }
  return issues;
}

/** Orders issues: document-level first, then by rule index (stable otherwise). */
function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues
    .map((issue, n) => ({ issue, n }))
    .sort((a, b) => (a.issue.rule?.index ?? -1) - (b.issue.rule?.index ?? -1) || a.n - b.n)
    .map((x) => x.issue);
}

/**
 * Zod schema of rules.json including the semantic checks (as refinement
 * issues with the same messages). {@link parseConfig} is the usual entry
 * point: it also reports semantic problems of valid rules when other parts are
 * broken, and returns the normalized {@link Config}; this schema's output is
 * the {@link RawConfig}.
 */
export const ConfigSchema: z.ZodType<RawConfig> = ConfigShapeSchema.superRefine((raw, ctx) => {
  for (const i of [...semanticIssues(raw.rules, raw), ...capacityIssues(raw.rules, raw)]) {
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
    if (issues.length > 0 || !parsed.success) {
      throw new ConfigError(sortIssues(issues), source);
    }
    return normalize(parsed.data);
  });
}

/**
 * Parses rules.json text (JSON syntax errors, duplicate keys, too deep nesting
 * and more than {@link MAX_CONFIG_VALUES} values are reported with their line
 * and column), then validates it like {@link parseConfig}.
 *
 * @param text The file's contents.
 * @param source File name, for messages.
 * @param options Whether messages quote values and characters.
 * @throws {ConfigError}
 */
export function parseConfigText(text: string, source?: string, options?: ParseOptions): Config {
  return withQuoting(options, () => {
    const parsed = parseJsonText(text, { maxValues: MAX_CONFIG_VALUES, quote: quoting });
    if (!parsed.ok) {
      const { line, column, message, limit } = parsed.problem;
      const what = limit
        ? `the document is too large at line ${line}, column ${column}: ${message} ` +
          `(a configuration within the relay's limits, ${MAX_RULES} rules and 16,384 outputs, ` +
          "has fewer than 190,000)"
        : `invalid JSON at line ${line}, column ${column}: ${message}`;
      throw new ConfigError([{ path: [], field: "", message: what, line, column }], source);
    }
    return parseConfig(parsed.value, source, options);
  });
}

/**
 * Reads rules.json text the safe way: only a regular file, at most
 * {@link MAX_CONFIG_BYTES} bytes, UTF-8 (src/text_file.ts). `cli.ts check`, the
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
 * Reads and validates a rules.json file ({@link readConfigFile}, then
 * {@link parseConfigText}).
 *
 * @param path File to read.
 * @param options Whether messages quote values and characters.
 * @throws {ConfigError} when the file cannot be read (saying why) or is invalid.
 */
export async function loadConfig(path: string | URL, options?: ParseOptions): Promise<Config> {
  const text = await readConfigFile(path);
  return parseConfigText(text, String(path), options);
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
 * @returns The normalized rule.
 * @throws {ConfigError}
 */
export function validateRule(value: unknown, existing?: Config): RuleConfig {
  return withQuoting(undefined, () => validateRuleNow(value, existing));
}

function validateRuleNow(value: unknown, existing?: Config): RuleConfig {
  const index = existing?.rules.length ?? 0;
  // Present the rule at its future position so paths and messages match a file.
  const root = { rules: Object.assign(new Array(index), { [index]: value }) };
  const parsed = RuleSchema.safeParse(value);
  const issues = parsed.success ? [] : fromZod(
    parsed.error.issues.map((i) => ({ ...i, path: ["rules", index, ...i.path] })),
    root,
  );
  const loose = loosen(value);
  if (loose) {
    for (const i of checkRule(loose)) {
      issues.push(issueAt(["rules", index, ...i.path], i.message, root));
    }
    const key = keyOfLoose(index, loose);
    const prior = (existing?.rules ?? []).map((r, n) => keyOfConfig(n, r));
    for (const i of key ? checkAcross(prior, [key]) : []) {
      issues.push(issueAt(["rules", i.index, ...i.path], i.message, root));
    }
  }
  // The relay-wide limits, counted over the rules in force plus this one.
  if (index + 1 > MAX_RULES) issues.push(issueAt(["rules"], tooManyRules(index + 1), root));
  issues.push(...capacityIssues([...(existing?.rules ?? []), value], root));
  if (issues.length > 0 || !parsed.success) throw new ConfigError(issues);
  return normalizeRule(parsed.data, {
    ttl: existing?.ttl ?? DEFAULT_TTL,
    dscp: existing?.dscp ?? DEFAULT_DSCP,
  });
}

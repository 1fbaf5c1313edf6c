/**
 * The structure of rules.json as zod schemas: every leaf field with its
 * check, its message ("must be <expected> (got X)") and its JSON Schema
 * fragment (`cli.ts schema` emits them), the strict object shapes, and the
 * raw (as written) types inferred from them (`z.infer`: one definition, not
 * two; deno.json therefore turns off the lint rule no-slow-types, which asks
 * for spelled-out types and matters only for publishing to JSR).
 *
 * @module
 */
import { z } from "zod";
import { parseIPv4, parsePrefix } from "../common/net.ts";
import { parseIPv6Any } from "../common/net6.ts";
import {
  MAX_INCLUDE_PATTERN_LENGTH,
  MAX_INCLUDE_PATTERNS,
  MAX_JOINS_PER_RULE,
  MAX_MERGE_WINDOW,
  MAX_OUTPUTS_PER_RULE,
  MAX_RATE_BPS,
  MAX_RATE_PPS,
  MAX_REDUNDANT_INPUTS,
  MAX_REORDER_MS,
  MAX_RULES,
  MAX_WORKERS,
  MIN_MERGE_WINDOW,
  MIN_SILENCE_MS,
} from "./limits.ts";
import { show } from "./quoting.ts";

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
/** JSON Schema pattern of a dotted quad. */
const IPV4_PATTERN = `${OCTET}(\\.${OCTET}){3}`;
/**
 * JSON Schema pattern of an IPv6 address in the canonical form the relay
 * accepts (lowercase hex words and colons, one `::` at most; the relay's own
 * check, `parseIPv6`, is exact).
 */
const IPV6_PATTERN = "[0-9a-f]{0,4}(:[0-9a-f]{0,4}){2,7}";

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

/**
 * Roles of a relay (`role`): `active` forwards; `standby` keeps rings, IGMP
 * memberships and tables hot, counts what it would send, and sends nothing
 * (one of an active/standby pair, e.g. under keepalived).
 */
export const ROLES = ["active", "standby"] as const;
/** A relay role. */
export type Role = (typeof ROLES)[number];

/**
 * How the data-path workers use `worker_nice` (`worker_priority`): only
 * while they fall behind (`adaptive`, the default), or all the time (`fixed`).
 */
export const PRIORITY_MODES = ["adaptive", "fixed"] as const;
/** A worker priority mode. */
export type PriorityMode = (typeof PRIORITY_MODES)[number];

const priorityMode = () =>
  leaf<PriorityMode>(
    (v) => typeof v === "string" && (PRIORITY_MODES as readonly string[]).includes(v),
    `one of ${PRIORITY_MODES.map((m) => `"${m}"`).join(", ")}`,
    { enum: [...PRIORITY_MODES] },
  );

const role = () =>
  leaf<Role>(
    (v) => typeof v === "string" && (ROLES as readonly string[]).includes(v),
    `one of ${ROLES.map((m) => `"${m}"`).join(", ")}`,
    { enum: [...ROLES] },
  );

const ipv4 = () =>
  leaf<string>(
    (v) => typeof v === "string" && parseIPv4(v) !== null,
    'an IPv4 address in dotted-quad form like "239.1.1.1" (no leading zeros)',
    { type: "string", format: "ipv4", pattern: `^${IPV4_PATTERN}$` },
  );

/**
 * An address of either family: a dotted quad, or IPv6 text (any RFC 4291
 * form here; rule_checks.ts asks for the canonical one, naming it).
 */
const ipAddr = () =>
  leaf<string>(
    (v) => typeof v === "string" && (parseIPv4(v) !== null || parseIPv6Any(v) !== null),
    'an IPv4 address like "10.0.0.5" (dotted quad, no leading zeros) or an IPv6 address ' +
      'like "2001:db8::5"',
    { anyOf: [{ type: "string", pattern: `^${IPV4_PATTERN}$` }, ipv6Json()] },
  );

/** JSON Schema of one IPv6 address. */
function ipv6Json() {
  return { type: "string", pattern: `^${IPV6_PATTERN}$` };
}

/** JSON Schema pattern of a prefix length 0..32 without leading zeros (as `parsePrefix`). */
const PREFIX_LEN = "(3[0-2]|[12][0-9]|[0-9])";

/**
 * The spelling of "any UDP port" in `input.port` (0 means the same). One
 * rule then takes datagrams to every port of its group or range.
 */
export const ANY_PORT = "any";
/**
 * The spelling of "the input datagram's own" in `outputs[].group` and
 * `outputs[].port`: the output sends to the group (port) the datagram was
 * sent to.
 */
export const KEEP = "keep";

/** An input port as written: 1..65535, or any port ("any", or 0). */
export type InputPort = number | typeof ANY_PORT;
/** An output port as written: 1..65535, or the input datagram's ("keep"). */
export type OutputPort = number | typeof KEEP;

/** Input `group`: one address, or a range "a.b.c.d/len" (its semantics are semantics.ts's). */
const inputGroup = () =>
  leaf<string>(
    (v) =>
      typeof v === "string" &&
      (parseIPv4(v) !== null || parsePrefix(v) !== null || parseIPv6Any(v) !== null),
    'an IPv4 address like "239.1.1.1", a range like "239.1.0.0/16" (dotted quad, no ' +
      'leading zeros), or an IPv6 address like "ff3e::1"',
    {
      anyOf: [{ type: "string", pattern: `^${IPV4_PATTERN}(/${PREFIX_LEN})?$` }, ipv6Json()],
    },
  );

/** Output `group`: one address, a range of the input range's length, or "keep". */
const outputGroup = () =>
  leaf<string>(
    (v) =>
      typeof v === "string" &&
      (v === KEEP || parseIPv4(v) !== null || parsePrefix(v) !== null ||
        parseIPv6Any(v) !== null),
    'an IPv4 address like "239.10.1.1" (dotted quad, no leading zeros), a range like ' +
      `"239.20.0.0/16" (mapped from the input range), an IPv6 address like "ff3e::10", or ` +
      `"${KEEP}" (the input datagram's group)`,
    {
      anyOf: [
        { type: "string", pattern: `^${IPV4_PATTERN}(/${PREFIX_LEN})?$` },
        ipv6Json(),
        { const: KEEP },
      ],
    },
  );

const inputPort = () =>
  leaf<InputPort>(
    (v) => v === ANY_PORT || isInt(0, 65535)(v),
    `an integer from 1 to 65535, or "${ANY_PORT}" (or 0) for every port`,
    { anyOf: [jsonInt(0, 65535), { const: ANY_PORT }] },
  );

const outputPort = () =>
  leaf<OutputPort>(
    (v) => v === KEEP || isInt(1, 65535)(v),
    `an integer from 1 to 65535, or "${KEEP}" (the input datagram's port)`,
    { anyOf: [jsonInt(1, 65535), { const: KEEP }] },
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

/** What a rule name may be. */
export const RULE_NAME_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
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

/** What a rule's `health.payload` analyses: RTP headers, MPEG-TS packets, or MPEG-TS in RTP. */
export const PAYLOAD_KINDS = ["rtp", "ts", "rtp+ts"] as const;
/** A `health.payload` value. */
export type PayloadKind = (typeof PAYLOAD_KINDS)[number];

/**
 * How a rule with redundant `inputs` combines them: `merge` forwards each
 * datagram once, from whichever input delivers it first (SMPTE ST 2022-7
 * style); `failover` forwards from one input at a time, the next after the
 * active one has been silent for `failover_ms`.
 */
export const REDUNDANCY_MODES = ["merge", "failover"] as const;
/** A `redundancy.mode` value. */
export type RedundancyMode = (typeof REDUNDANCY_MODES)[number];

// ---------------------------------------------------------------- structure (zod)

/** `rate_limit` of a rule or an output: a token bucket (src/datapath/policer.ts). */
const rateLimitShape = {
  pps: intIn(1, MAX_RATE_PPS).optional(),
  bps: intIn(1, MAX_RATE_BPS).optional(),
  burst_packets: intIn(1, MAX_RATE_PPS).optional(),
  burst_bytes: intIn(1, MAX_RATE_BPS / 8).optional(),
};

/** `health` of a rule: alarms (src/relay/stream_monitor.ts) and payload analysis. */
const healthShape = {
  silence_ms: intIn(MIN_SILENCE_MS, 3_600_000).optional(),
  min_pps: intIn(1, MAX_RATE_PPS).optional(),
  payload: leaf<PayloadKind>(
    (v) => typeof v === "string" && (PAYLOAD_KINDS as readonly string[]).includes(v),
    `one of ${PAYLOAD_KINDS.map((m) => `"${m}"`).join(", ")}`,
    { enum: [...PAYLOAD_KINDS] },
  ).optional(),
  clock_rate: intIn(1000, 10_000_000).optional(),
};

const redundancyMode = () =>
  leaf<RedundancyMode>(
    (v) => typeof v === "string" && (REDUNDANCY_MODES as readonly string[]).includes(v),
    `one of ${REDUNDANCY_MODES.map((m) => `"${m}"`).join(", ")}`,
    { enum: [...REDUNDANCY_MODES] },
  );

/** `redundancy` of a rule with `inputs` (src/datapath/arbiter.ts). */
const redundancyShape = {
  mode: redundancyMode(),
  max_delay_ms: intIn(1, 10_000).optional(),
  window: leaf<number>(
    (v) =>
      isInt(MIN_MERGE_WINDOW, MAX_MERGE_WINDOW)(v) && ((v as number) & ((v as number) - 1)) === 0,
    `a power of two from ${MIN_MERGE_WINDOW} to ${MAX_MERGE_WINDOW}`,
    { ...jsonInt(MIN_MERGE_WINDOW, MAX_MERGE_WINDOW), description: "a power of two" },
  ).optional(),
  reorder_ms: intIn(1, MAX_REORDER_MS).optional(),
  failover_ms: intIn(1, 60_000).optional(),
  revertive: bool().optional(),
};

/** `redundancy`: the object, or its `mode` alone as a string (read as `{ "mode": ... }`). */
const redundancy = () =>
  z.preprocess(
    (v) => (typeof v === "string" ? { mode: v } : v),
    z.strictObject(redundancyShape),
  );

const inputShape = {
  interface: ifname(),
  group: inputGroup(),
  port: inputPort(),
  source: ipAddr().optional(),
  vlan: intIn(0, 4094).optional(),
  joins: z.array(ipv4()).min(1).max(MAX_JOINS_PER_RULE).optional(),
};

const outputShape = {
  interface: ifname(),
  group: outputGroup(),
  port: outputPort(),
  ttl: ttl().optional(),
  // IPv6's name for the TTL: the same policy (rule_checks.ts refuses both at once)
  hops: ttl().optional(),
  dscp: dscp().optional(),
  source_ip: ipAddr().optional(),
  source_port: port().optional(),
  rate_limit: z.strictObject(rateLimitShape).optional(),
};

const ruleShape = {
  name: ruleName().optional(),
  enabled: bool().optional(),
  input: z.strictObject(inputShape).optional(),
  inputs: z.array(z.strictObject(inputShape)).min(2).max(MAX_REDUNDANT_INPUTS).optional(),
  redundancy: redundancy().optional(),
  outputs: z.array(z.strictObject(outputShape)).min(1).max(MAX_OUTPUTS_PER_RULE),
  ttl: ttl().optional(),
  hops: ttl().optional(),
  dscp: dscp().optional(),
  allow_link_local: bool().optional(),
  rate_limit: z.strictObject(rateLimitShape).optional(),
  health: z.strictObject(healthShape).optional(),
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

const cpuList = z.array(intIn(0, 4095)).min(1).max(MAX_WORKERS);

const interfaceShape = {
  workers: intIn(1, MAX_WORKERS),
  fanout: rxShape.fanout,
  cpus: cpuList,
  rx_frame_count: intIn(64, 1048576),
  tx_frame_count: intIn(64, 1048576),
  rate_pps: intIn(1, 100_000_000),
  promisc: bool(),
};

const configShape = {
  // Lets editors find the JSON Schema (schema/rules.schema.json); ignored by the relay.
  $schema: nonEmptyString(2048).optional(),
  // Read by the file loader (include.ts), which replaces it by the files' rules.
  include: z.array(nonEmptyString(MAX_INCLUDE_PATTERN_LENGTH)).max(MAX_INCLUDE_PATTERNS).optional(),
  rules: z.array(z.strictObject(ruleShape)).max(MAX_RULES),
  // Read by the file loader (include.ts): where ctl changes are kept.
  runtime_rules: nonEmptyString(MAX_INCLUDE_PATTERN_LENGTH).optional(),
  interfaces: z.record(ifname(), z.strictObject(interfaceShape).partial()).optional(),
  ttl: ttl().optional(),
  dscp: dscp().optional(),
  workers: intIn(1, MAX_WORKERS).optional(),
  cpus: cpuList.optional(),
  worker_nice: intIn(-20, 19).optional(),
  worker_priority: priorityMode().optional(),
  role: role().optional(),
  rx: z.strictObject(rxShape).partial().optional(),
  tx: z.strictObject(txShape).partial().optional(),
  // Unix socket path: sun_path holds 108 bytes including the NUL.
  control: z.strictObject({
    socket: nonEmptyString(107).optional(),
    readonly_socket: nonEmptyString(107).optional(),
  }).optional(),
  metrics: z.strictObject({
    listen: nonEmptyString(255),
    health_grace_s: intIn(0, 3600).optional(),
  }).optional(),
};

/** Structural schema of a rule's input. */
export const InputSchema = z.strictObject(inputShape);
/** Structural schema of one output. */
export const OutputSchema = z.strictObject(outputShape);
/** Structural schema of one rule in rules.json (no semantic checks). */
export const RuleSchema = z.strictObject(ruleShape);
/** Structural schema of rules.json, without the semantic checks. */
export const ConfigShapeSchema = z.strictObject(configShape);

/** Structural schema of a rule's `redundancy` (the object form; a string is its `mode`). */
export const RedundancySchema = redundancy();
/** A `redundancy` as written. */
export type RawRedundancy = z.infer<typeof RedundancySchema>;
/** Structural schema of a `rate_limit`. */
export const RateLimitSchema = z.strictObject(rateLimitShape);
/** Structural schema of a rule's `health`. */
export const HealthSchema = z.strictObject(healthShape);
/** A `rate_limit` as written. */
export type RawRateLimit = z.infer<typeof RateLimitSchema>;
/** A rule's `health` as written. */
export type RawHealth = z.infer<typeof HealthSchema>;

/** A rule's input as written in rules.json. */
export type RawInput = z.infer<typeof InputSchema>;
/** An output as written in rules.json. */
export type RawOutput = z.infer<typeof OutputSchema>;
/** A rule as written in rules.json (structurally valid, not normalized). */
export type RawRule = z.infer<typeof RuleSchema>;
/** rules.json as written (structurally valid, not normalized). */
export type RawConfig = z.infer<typeof ConfigShapeSchema>;

/** Known keys of each object kind, for "did you mean" suggestions. */
export const KNOWN_KEYS = {
  config: Object.keys(configShape),
  rule: Object.keys(ruleShape),
  input: Object.keys(inputShape),
  output: Object.keys(outputShape),
  rx: Object.keys(rxShape),
  tx: Object.keys(txShape),
  interface: Object.keys(interfaceShape),
  rate_limit: Object.keys(rateLimitShape),
  health: Object.keys(healthShape),
  redundancy: Object.keys(redundancyShape),
  control: ["socket", "readonly_socket"],
  metrics: ["listen", "health_grace_s"],
} as const;

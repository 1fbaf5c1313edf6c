/**
 * Every limit of a configuration and of the relay that runs it, in one place
 * (one name each). `check` and start refuse exactly the same things: both
 * validate against these.
 *
 * @module
 */

/**
 * Rule slots of a relay: every enabled rule holds one (its counters) for as
 * long as it exists.
 */
export const MAX_RULE_SLOTS = 65_536;
/**
 * Output slots of a relay: every output of every enabled rule holds one (its
 * counters, and its template index in each worker's forwarder). Config
 * validation refuses a rule set whose enabled rules have more outputs in
 * total (not to be confused with {@link MAX_OUTPUTS_PER_RULE}).
 */
export const MAX_OUTPUT_SLOTS = 262_144;
/** Most rules a configuration may hold (enabled or not). */
export const MAX_RULES = 65_536;
/** Most outputs one rule may have. */
export const MAX_OUTPUTS_PER_RULE = 64;
/** Most groups a range input may list in `joins`. */
export const MAX_JOINS_PER_RULE = 256;
/**
 * Most IGMP joins the enabled rules may ask for together (an exact multicast
 * input joins its group, a range input each group of its `joins`): as many
 * as {@link MAX_RULES} exact rules ask for.
 */
export const MAX_JOINS = 65_536;
/**
 * Shortest prefix of a range input (`input.group` "239.1.0.0/16"): a range
 * is multicast, and 224.0.0.0/4 is all of multicast.
 */
export const MIN_RANGE_PREFIX = 4;
// The outputs of all enabled rules together are capped by the relay's output
// slots (MAX_OUTPUT_SLOTS; see capacityIssues in semantics.ts). Rules need no
// check of their own as long as every configuration fits the rule slots:
if (MAX_RULES > MAX_RULE_SLOTS) throw new Error("MAX_RULES exceeds the relay's rule slots");
/**
 * Most enabled rules whose `health.payload` asks for RTP or MPEG-TS analysis:
 * each costs every data-path worker serving its input a reorder window and,
 * for MPEG-TS, a byte per PID (about 9 KiB).
 */
export const MAX_ANALYSED_RULES = 1024;
/**
 * Most enabled rules with `health`: the stream monitor looks at each every
 * 50 ms on the relay's main thread.
 */
export const MAX_HEALTH_RULES = 4096;
/** Most packets per second a `rate_limit` or `health.min_pps` may name. */
export const MAX_RATE_PPS = 100_000_000;
/** Most bits per second a `rate_limit` may name (1 Tbit/s). */
export const MAX_RATE_BPS = 1_000_000_000_000;
/** Most inputs of a rule with redundant `inputs` (ST 2022-7 uses two; up to four paths). */
export const MAX_REDUNDANT_INPUTS = 4;
/**
 * Most enabled rules with redundant `inputs`: each holds a shared arbitration
 * block (`window` entries of 16 bytes) that every worker serving its inputs maps.
 */
export const MAX_REDUNDANT_RULES = 1024;
/** Default `redundancy.max_delay_ms`: the path differential delay a merge tolerates. */
export const DEFAULT_MAX_DELAY_MS = 50;
/** Default `redundancy.window`: datagrams a merge remembers (RTP sequence numbers or payload hashes). */
export const DEFAULT_MERGE_WINDOW = 8192;
/** Smallest and largest `redundancy.window` (a power of two). */
export const MIN_MERGE_WINDOW = 256;
/** Largest `redundancy.window`: 1 MiB of arbitration state per rule. */
export const MAX_MERGE_WINDOW = 65536;
/** Longest `redundancy.reorder_ms`: held frames are bounded per worker (src/datapath/reorder.ts). */
export const MAX_REORDER_MS = 1000;
/** Default `redundancy.failover_ms`: silence of the active input before the next takes over. */
export const DEFAULT_FAILOVER_MS = 200;
/** Default `health.silence_ms`. */
export const DEFAULT_SILENCE_MS = 1000;
/** Shortest `health.silence_ms`: the stream monitor looks every 50 ms. */
export const MIN_SILENCE_MS = 100;
/** Default RTP timestamp clock rate (`health.clock_rate`, Hz): video (RFC 3551). */
export const DEFAULT_CLOCK_RATE = 90_000;
/** Default output TTL policy when neither output, rule nor config sets one (as the Rust mcrd). */
export const DEFAULT_TTL = 1;
/** Default DSCP (outputs carry TOS = dscp << 2). */
export const DEFAULT_DSCP = 0;
/** Default size of the worker pool (`workers`). */
export const DEFAULT_WORKERS = 1;
/**
 * Default nice value of the data-path workers (`worker_nice`): ahead of
 * ordinary processes, as the kernel's own forwarding (softirq) is, so that a
 * busy host does not keep a worker from its rings until they overflow.
 */
export const DEFAULT_WORKER_NICE = -10;
/**
 * Default `worker_priority`: a worker takes `worker_nice` only while it falls
 * behind (src/datapath/priority.ts).
 */
export const DEFAULT_WORKER_PRIORITY = "adaptive";
/** Largest worker pool, and most dedicated workers of one interface. */
export const MAX_WORKERS = 64;
/** Most data-path workers of a relay: the pool and every dedicated worker together. */
export const MAX_DATA_PATH_WORKERS = 256;
/**
 * Input interfaces of a relay: every input interface with an enabled rule
 * holds one input slot (its counters in each worker that serves it) for as
 * long as it has rules.
 */
export const MAX_INPUT_SLOTS = 4096;
/**
 * Distinct interface names (inputs and outputs) of the enabled rules: each
 * holds a row of the link table the workers read (src/datapath/link_table.ts).
 */
export const MAX_INTERFACES = 8192;
/**
 * Largest rules.json read, in bytes (96 MiB). Sized for the largest
 * configuration the relay can run — {@link MAX_RULES} rules with 4 outputs
 * each ({@link MAX_OUTPUT_SLOTS} outputs), every field set, pretty-printed
 * with a 2-space indent: 78.5 MB (43 MB without indentation;
 * tests/unit/config_file_test.ts). A larger file is refused before it is
 * read, and {@link MAX_CONFIG_VALUES} stops the scan of a file with too much
 * in it.
 */
export const MAX_CONFIG_BYTES = 96 * 1024 * 1024;
/**
 * Most JSON values (objects, arrays, strings, numbers, booleans, nulls) a
 * rules.json may hold. Validation costs memory per value (about 1 KB for each
 * value with a problem), so this, not the byte size, bounds what a hostile file
 * can cost whatever its shape. The largest configuration the relay can run —
 * {@link MAX_RULES} rules and {@link MAX_OUTPUT_SLOTS} outputs,
 * every field set — has 2,949,122 values (tests/unit/config_file_test.ts).
 */
export const MAX_CONFIG_VALUES = 4_194_304;

/**
 * Most problems a `ConfigError` lists: enough to fix a file in a few
 * rounds, and a bound on the message, the control reply and the log line
 * (a hostile file can hold 200,000 problems).
 */
export const MAX_REPORTED_ISSUES = 1000;

/** Most patterns in a configuration's `include` (include.ts). */
export const MAX_INCLUDE_PATTERNS = 64;
/** Most files the `include` patterns may name together. */
export const MAX_INCLUDED_FILES = 1024;
/** Longest `include` pattern (UTF-16 code units). */
export const MAX_INCLUDE_PATTERN_LENGTH = 4096;

/**
 * mcr — a high-performance userspace IPv4 multicast relay for Linux.
 *
 * Embed the relay in a Deno script: build a configuration (from a file or in
 * code), start a {@link Relay}, change its rules live, read its counters and
 * subscribe to its events.
 *
 * ```ts
 * import { parseConfig, Relay } from "./mod.ts";
 *
 * const relay = new Relay(parseConfig({
 *   rules: [{
 *     name: "cam1",
 *     input: { interface: "eth0", group: "239.1.1.1", port: 5001 },
 *     outputs: [{ interface: "eth1", group: "239.10.1.1", port: 6001 }],
 *   }],
 * }));
 * relay.on((ev) => console.log(ev.type, ev));  // rule/output/interface/worker state changes
 * await relay.start();
 * await relay.addRule({
 *   name: "cam2",
 *   input: { interface: "eth0", group: "239.1.1.2", port: 5002 },
 *   outputs: [{ interface: "eth1", group: "10.0.5.20", port: 7002 }],
 * });
 * console.log(relay.stats().rules.map((r) => [r.name, r.packets]));
 * await relay.removeRule("cam2");
 * await relay.stop();
 * ```
 *
 * Talk to a running daemon (`cli.ts run`) over its control socket with
 * {@link ControlClient}; validate a file with {@link loadConfig}; get the JSON
 * Schema of rules.json with {@link rulesJsonSchema}.
 *
 * Permissions: `--allow-ffi --allow-read --allow-env` for a relay, and the
 * process needs CAP_NET_RAW (AF_PACKET sockets). libmcr is loaded lazily, on
 * the first ring opened, so importing this module, `deno doc` and
 * `deno check` need no permission.
 *
 * @module
 */

// The relay
export {
  Relay,
  type RelayOptions,
  type ReloadSummary,
  RuleNotFoundError,
} from "./src/relay/relay.ts";
export type {
  InterfaceStats,
  OutputStats,
  RelayStats,
  RuleStats,
  State,
  StreamStats,
  WorkerStats,
} from "./src/relay/stats.ts";
export type { RelayEvent } from "./src/relay/events.ts";
export type { StreamAlarm, StreamEvent } from "./src/relay/stream_monitor.ts";
export type { IgmpStats } from "./src/relay/igmp.ts";
export { FdLimitError, type FdNeed, type FdStats } from "./src/relay/fd_budget.ts";

// Configuration: loading, validation, schema
export {
  checkCapacity,
  type Config,
  ConfigError,
  type ConfigIssue,
  FANOUT_MODES,
  type FanoutMode,
  type InputConfig,
  type InputTuple,
  type InterfaceTuning,
  loadConfig,
  MAX_DATA_PATH_WORKERS,
  MAX_INPUT_SLOTS,
  MAX_INTERFACES,
  MAX_OUTPUT_SLOTS,
  MAX_OUTPUTS_PER_RULE,
  MAX_RULE_SLOTS,
  MAX_RULES,
  MAX_WORKERS,
  type OutputConfig,
  parseConfig,
  parseConfigText,
  type RawConfig,
  type RawInput,
  type RawOutput,
  type RawRule,
  type RuleConfig,
  ruleId,
  type RxTuning,
  type TtlPolicy,
  type TxTuning,
  validateRule,
} from "./src/config/mod.ts";

export { type JsonSchema, rulesJsonSchema } from "./src/config/json_schema.ts";

// Control-socket client
export { ControlClient } from "./src/client/client.ts";
export {
  type Command,
  COMMANDS,
  DEFAULT_CONTROL_SOCKET,
  type ErrorBody,
  type ErrorCode,
  type ErrReply,
  type OkReply,
  PROTOCOL_VERSION,
  type Reply,
  type RequestId,
} from "./src/control/protocol.ts";
export type {
  InterfaceWithRate,
  ListedRule,
  ListState,
  OutputWithRate,
  RuleWithRate,
  StatsResult,
  WorkerInfo,
} from "./src/control/results.ts";

// Counters and errors
export { Drop, DROP_NAMES } from "./src/datapath/packet.ts";
export { McrError, McrLoadError } from "./ffi/errors.ts";

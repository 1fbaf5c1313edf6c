/**
 * mcr — a high-performance userspace IPv4 multicast relay for Linux.
 *
 * ```ts
 * import { loadConfig, Relay } from "./mod.ts";
 * const relay = new Relay(await loadConfig("rules.json"));
 * await relay.start();
 * console.log(relay.stats().rules[0].packets);
 * await relay.stop();
 * ```
 *
 * Needs `--allow-ffi --allow-read --allow-env` and CAP_NET_RAW. libmcr is
 * loaded lazily, on the first ring opened, so importing this module (and
 * `deno doc`/`deno check`) needs no permission.
 *
 * @module
 */
export { Relay } from "./src/relay.ts";
export type {
  InterfaceStats,
  OutputStats,
  RelayStats,
  RuleStats,
  State,
} from "./src/supervisor.ts";
export {
  type Config,
  ConfigError,
  type ConfigIssue,
  FANOUT_MODES,
  type FanoutMode,
  type InputConfig,
  loadConfig,
  type OutputConfig,
  parseConfig,
  parseConfigText,
  type RuleConfig,
  type RxTuning,
  type TtlPolicy,
  type TxTuning,
  validateRule,
} from "./src/config.ts";
export { Drop, DROP_NAMES } from "./src/packet.ts";
export { McrError, McrLoadError } from "./ffi/errors.ts";

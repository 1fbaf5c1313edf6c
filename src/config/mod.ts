/**
 * The configuration side of mcr: rules.json in, a validated, normalized
 * `Config` out. No FFI, no I/O but reading the file.
 *
 * @module
 */
export * from "./limits.ts";
export { type ParseOptions, setQuoteValues } from "./quoting.ts";
export {
  FANOUT_MODES,
  type FanoutMode,
  isValidInterfaceName,
  type RawConfig,
  type RawInput,
  type RawOutput,
  type RawRule,
  type Role,
  ROLES,
  RuleSchema,
  type TtlPolicy,
} from "./schema.ts";
export type {
  Config,
  InputConfig,
  InterfaceTuning,
  OutputConfig,
  RuleConfig,
  RuntimeRulesFile,
  RxTuning,
  TxTuning,
} from "./types.ts";
export { ConfigError, type ConfigIssue, formatIssue } from "./errors.ts";
export { type InputTuple, ruleId } from "./ids.ts";
export { checkCapacity } from "./semantics.ts";
export {
  ConfigSchema,
  loadConfig,
  parseConfig,
  parseConfigSource,
  parseConfigText,
  readConfigFile,
  validateRule,
} from "./load.ts";
export { RuleIndex } from "./rule_index.ts";

/**
 * The configuration as the relay applies it: rules in the supervisor's shape
 * ({@link ruleSpecs}), ring and worker options ({@link dataPathOptions}), what
 * a reload changes and which settings wait for a restart, the runtime rules
 * of a configuration, and the errors of live rule changes. `Relay`
 * (relay.ts) re-exports the public part.
 *
 * @module
 */
import type { RoleDiff } from "./role.ts";
import type { Config, RuleConfig } from "../config/mod.ts";
import type { HealthConfig, RateLimitConfig } from "../config/types.ts";
import type { RateLimit } from "../datapath/policer.ts";
import type { TableHealth } from "../datapath/messages.ts";
import type { RuleSpec } from "./tables.ts";
import type { DataPathOptions, InterfaceOptions } from "./pool.ts";
import { DefinedInFileError, RuntimeRules } from "./runtime_rules.ts";
import { ruleInputs } from "../config/redundancy.ts";
import { newArbiterState } from "../datapath/arbiter.ts";

export { DefinedInFileError };

/**
 * Convert validated rules to the supervisor's rule shape (enabled rules
 * only). A rule with redundant inputs becomes one spec per input — a path,
 * named `NAME[k]` with id `ID[k]`, on its own input interface, with the
 * rule's outputs — all sharing the rule's arbitration block from `arbiters`
 * (src/datapath/arbiter.ts; without `arbiters`, new blocks).
 */
export function ruleSpecs(
  rules: readonly RuleConfig[],
  arbiters: ArbiterStates = new ArbiterStates(),
): RuleSpec[] {
  const specs: RuleSpec[] = [];
  for (const r of rules) {
    if (!r.enabled) continue;
    const outputs = r.outputs.map((o) => ({
      interface: o.interface,
      dst: o.groupAddr,
      hostBits: o.hostBits,
      port: o.portNumber,
      srcIp: o.sourceAddr,
      ...(o.group6 ? { dst6: o.group6 } : {}),
      ...(o.source6 ? { srcIp6: o.source6 } : {}),
      srcPort: o.source_port ?? 0,
      ttl: o.ttl === "decrement" ? 0 : o.ttl,
      tos: o.tos,
      ...(o.rate_limit ? { rateLimit: rateLimitOf(o.rate_limit) } : {}),
    }));
    const common = {
      ...(r.rate_limit ? { rateLimit: rateLimitOf(r.rate_limit) } : {}),
      ...(r.health ? { health: healthOf(r.health) } : {}),
    };
    const red = r.redundancy;
    const inputs = ruleInputs(r);
    const state = red ? arbiters.state(r.id, red.window) : undefined;
    inputs.forEach((i, k) => {
      specs.push({
        id: red ? pathKey(r.id, k) : r.id,
        name: red ? pathKey(r.name, k) : r.name,
        input: {
          interface: i.interface,
          group: i.groupAddr,
          prefixLen: i.prefixLen,
          port: i.portNumber,
          source: i.sourceAddr,
          vlan: i.vlanId,
          joins: i.joinAddrs,
          ...(i.group6 ? { group6: i.group6 } : {}),
          ...(i.source6 ? { source6: i.source6 } : {}),
        },
        outputs,
        ...common,
        ...(red && state
          ? {
            redundancy: {
              rule: r.name,
              mode: red.mode,
              input: k,
              inputs: inputs.length,
              state,
              window: red.window,
              maxDelayUs: red.max_delay_ms * 1000,
              reorderUs: (red.reorder_ms ?? 0) * 1000,
              failoverUs: red.failover_ms * 1000,
              revertive: red.revertive,
            },
          }
          : {}),
      });
    });
  }
  return specs;
}

/**
 * The id or name of path `k` of a rule with redundant inputs, from the
 * rule's id or name: `cam` → `cam[1]` (the relay's one spelling of a path).
 */
export function pathKey(ruleIdOrName: string, k: number): string {
  return `${ruleIdOrName}[${k}]`;
}

/**
 * The arbitration blocks of the rules with redundant inputs, by rule id:
 * kept across reloads and changes (a new block would forget which datagrams
 * were forwarded and let copies through), dropped when the rule goes.
 */
export class ArbiterStates {
  readonly #blocks = new Map<string, { window: number; state: SharedArrayBuffer }>();

  /** The block of rule `id` with a window of `window` entries (a new one when the window changed). */
  state(id: string, window: number): SharedArrayBuffer {
    const b = this.#blocks.get(id);
    if (b && b.window === window) return b.state;
    const state = newArbiterState(window);
    this.#blocks.set(id, { window, state });
    return state;
  }

  /** Forget the blocks of rules not in `rules`. */
  keep(rules: readonly RuleConfig[]): void {
    const ids = new Set(rules.filter((r) => r.redundancy).map((r) => r.id));
    for (const id of this.#blocks.keys()) if (!ids.has(id)) this.#blocks.delete(id);
  }

  /** The blocks held (for tests and stats). */
  get size(): number {
    return this.#blocks.size;
  }
}

/** A `rate_limit` as the data path takes it (policer.ts). */
function rateLimitOf(l: RateLimitConfig): RateLimit {
  return {
    pps: l.pps ?? 0,
    bps: l.bps ?? 0,
    burstPackets: l.burst_packets,
    burstBytes: l.burst_bytes,
  };
}

/** A rule's `health` as the data path and the stream monitor take it. */
function healthOf(h: HealthConfig): TableHealth {
  return {
    silenceMs: h.silence_ms,
    minPps: h.min_pps ?? 0,
    clockRate: h.clock_rate,
    ...(h.payload ? { payload: h.payload } : {}),
  };
}

/** Ring and worker options from the config's `rx`, `tx`, `workers`, `cpus` and `interfaces`. */
export function dataPathOptions(c: Config): DataPathOptions {
  const interfaces: Record<string, InterfaceOptions> = {};
  for (const [name, t] of Object.entries(c.interfaces)) {
    interfaces[name] = {
      workers: t.workers,
      fanout: t.fanout,
      cpus: t.cpus,
      rxFrameCount: t.rx_frame_count,
      txFrameCount: t.tx_frame_count,
      ratePps: t.rate_pps,
      promisc: t.promisc,
    };
  }
  return {
    rx: {
      tpacketVersion: c.rx.tpacket_version,
      frameCount: c.rx.frame_count,
      batchMax: c.rx.batch_max,
      // rules.json "coalesce_us": 0 means no gathering (libmcr: -1 = off, 0 = default)
      coalesceUs: c.rx.coalesce_us === 0 ? -1 : c.rx.coalesce_us,
      coalescePps: c.rx.coalesce_pps,
      noFilter: !c.rx.filter,
      fanout: c.rx.fanout,
    },
    tx: { frameCount: c.tx.frame_count, qdiscBypass: c.tx.qdisc_bypass },
    workers: c.workers,
    cpus: c.cpus,
    workerNice: c.worker_nice,
    workerPriority: c.worker_priority,
    interfaces,
  };
}

/** No rule has the name or id asked for (see {@link Relay.removeRule}). */
export class RuleNotFoundError extends Error {
  /**
   * Create the error.
   * @param nameOrId what was looked for
   */
  constructor(readonly nameOrId: string) {
    super(`no rule named or with id "${nameOrId}"`);
    this.name = "RuleNotFoundError";
  }
}

/** Options of a live rule change. */
export interface ChangeOptions {
  /**
   * Change the running rules only, not the runtime rules file: the change
   * lasts until the next reload or restart.
   */
  transient?: boolean;
}

/** The runtime rules of `config`: its last rules came from the file. */
export function runtimeOf(config: Config): RuntimeRules | undefined {
  const f = config.runtime_rules;
  if (!f) return undefined;
  return new RuntimeRules(
    f,
    config.rules.slice(config.rules.length - f.rules.length).map((r) => r.name),
  );
}

/** What {@link Relay.reload} (or a dry run of it) changes, by rule name. */
export interface ReloadSummary {
  /** The file read. */
  path: string;
  /** Rules that are new (or whose input changed: a new id). */
  added: string[];
  /** Rules that are gone. */
  removed: string[];
  /** Rules with the same id whose name, outputs or settings changed. */
  changed: string[];
  /** Rules left exactly as they were (counters kept, no packet missed). */
  unchanged: string[];
  /** Settings that differ in the file but only take effect after a restart. */
  restart_needed: string[];
  /** When the file's `role` is not the one in force: whether a reload applies it (role.ts). */
  role?: RoleDiff;
}

/** Options of a {@link Relay}. */
export interface RelayOptions {
  /** The file the configuration came from (what `reload()` re-reads). */
  configPath?: string;
  /** The data-path worker module (URL), for instrumentation; see `DataPathOptions.workerModule`. */
  workerModule?: string;
}

/** Settings that take effect only at start (a reload keeps them and lists them as restart_needed). */
export const RESTART_SETTINGS = [
  "workers",
  "cpus",
  "worker_nice",
  "worker_priority",
  "interfaces",
  "rx",
  "tx",
  "control",
  "metrics",
] as const;

/** The part of a rule that decides its forwarding, for diffs. */
export function ruleKey(r: RuleConfig): string {
  return JSON.stringify([
    r.id,
    r.name,
    r.enabled,
    r.input,
    r.inputs,
    r.redundancy,
    r.outputs,
    r.ttl,
    r.dscp,
    r.rate_limit,
    r.health,
  ]);
}

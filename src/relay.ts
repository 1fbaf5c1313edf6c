/**
 * `Relay`: the embeddable relay. Give it a validated {@link Config}, `start()`
 * it, change rules live with `setConfig()`, read `stats()`, `stop()` it.
 *
 * @module
 */
import type { Config, RuleConfig } from "./config.ts";
import type { RuleSpec } from "./rules.ts";
import { type DataPathOptions, type RelayStats, Supervisor } from "./supervisor.ts";

/** Convert validated rules to the supervisor's rule shape (enabled rules only). */
export function ruleSpecs(rules: readonly RuleConfig[]): RuleSpec[] {
  return rules.filter((r) => r.enabled).map((r) => ({
    id: r.id,
    name: r.name,
    input: {
      interface: r.input.interface,
      group: r.input.groupAddr,
      port: r.input.port,
      source: r.input.sourceAddr,
      vlan: r.input.vlanId,
    },
    outputs: r.outputs.map((o) => ({
      interface: o.interface,
      dst: o.groupAddr,
      port: o.port,
      srcIp: o.sourceAddr,
      srcPort: o.source_port ?? 0,
      ttl: o.ttl === "decrement" ? 0 : o.ttl,
      tos: o.tos,
    })),
  }));
}

/** Ring options from the config's `rx`/`tx` sections. */
export function dataPathOptions(c: Config): DataPathOptions {
  return {
    rx: {
      tpacketVersion: c.rx.tpacket_version,
      frameCount: c.rx.frame_count,
      batchMax: c.rx.batch_max,
      coalesceUs: c.rx.coalesce_us,
      coalescePps: c.rx.coalesce_pps,
      noFilter: !c.rx.filter,
      fanout: c.rx.fanout,
    },
    tx: { frameCount: c.tx.frame_count, qdiscBypass: c.tx.qdisc_bypass },
  };
}

/** A running relay. */
export class Relay implements AsyncDisposable {
  #sup: Supervisor;
  #config: Config;
  #started = false;

  /**
   * Create a relay (nothing is opened until `start()`).
   * @param config a validated configuration (see `parseConfig`/`loadConfig`)
   */
  constructor(config: Config) {
    this.#config = config;
    this.#sup = new Supervisor(dataPathOptions(config));
  }

  /** The configuration in force. */
  get config(): Config {
    return this.#config;
  }

  /** Open rings and start forwarding; resolves once every worker has its rules (or failed). */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.#sup.setRules(ruleSpecs(this.#config.rules));
  }

  /** Apply a new configuration's rules live (unchanged rules keep counters and never pause). */
  async setConfig(config: Config): Promise<void> {
    this.#config = config;
    await this.#sup.setRules(ruleSpecs(config.rules));
  }

  /** Snapshot of all counters. */
  stats(): RelayStats {
    return this.#sup.stats();
  }

  /** Stop forwarding, drain, release everything. Final counters stay readable. */
  async stop(): Promise<void> {
    await this.#sup.stop();
  }

  /** Same as stop(). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

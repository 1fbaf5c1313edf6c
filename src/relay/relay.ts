/**
 * `Relay`: the embeddable relay. Give it a validated {@link Config}, `start()`
 * it, change rules live with `setConfig()`, read `stats()`, `stop()` it.
 *
 * @module
 */
import {
  checkCapacity,
  type Config,
  ConfigError,
  loadConfig,
  type RuleConfig,
  RuleIndex,
  validateRule,
} from "../config/mod.ts";
import { Supervisor } from "./supervisor.ts";
import { CaptureRefused, type CaptureRun, type CaptureSpec } from "./capture.ts";
import { linkLayout } from "../datapath/link_types.ts";
import type { LinkLayout } from "../../ffi/mod.ts";
import type { DataPathOptions } from "./pool.ts";
import type { RelayEvent } from "./events.ts";
import { countRuleStates, type RelayStats, type RuleStats, type State } from "./stats.ts";
import type { CounterSnapshot } from "./counter_snapshot.ts";
import { RELEASE_MIN_RULES, releaseMemory } from "../common/memory.ts";
import { logger } from "../common/log.ts";
import { rawRule, type RuntimeRules } from "./runtime_rules.ts";
import { RelayRole } from "./role.ts";
import {
  ArbiterStates,
  type ChangeOptions,
  dataPathOptions,
  DefinedInFileError,
  pathKey,
  type RelayOptions,
  type ReloadSummary,
  RESTART_SETTINGS,
  ruleKey,
  RuleNotFoundError,
  ruleSpecs,
  runtimeOf,
} from "./relay_config.ts";

export {
  type ChangeOptions,
  dataPathOptions,
  DefinedInFileError,
  type RelayOptions,
  type ReloadSummary,
  RuleNotFoundError,
  ruleSpecs,
};
import { FdGuard } from "./fd_guard.ts";
import { ruleInputs } from "../config/redundancy.ts";

/**
 * How long after a large load the relay collects its garbage (ms): long enough for the load's
 * state events and first replies to have become garbage too.
 */
export const RELEASE_DELAY_MS = 500;

/** A running relay. */
export class Relay implements AsyncDisposable {
  #sup: Supervisor;
  #config: Config;
  #started = false;
  #configPath?: string;
  readonly #dataPath: DataPathOptions;
  /** File descriptors: room made in RLIMIT_NOFILE before each rule set, the figures shown. */
  readonly #fds: FdGuard;
  /** Index of the rules in force for live changes (built at start and at every reload). */
  #index?: RuleIndex;
  /** Arbitration blocks of the rules with redundant inputs (kept across changes). */
  readonly #arbiters = new ArbiterStates();
  /** Serializes rule changes (add/remove/reload/setConfig). */
  #queue: Promise<unknown> = Promise.resolve();
  /** The runtime rules file, when the configuration names one. */
  #runtime?: RuntimeRules;
  /** The full collection due after a large load ({@link #releaseAfterLoad}). */
  #releaseTimer?: ReturnType<typeof setTimeout>;
  /** Active or standby, and its changes (`role.set`; relay/role.ts). Starts as `config.role`. */
  readonly role: RelayRole;

  /**
   * Create a relay (nothing is opened until `start()`).
   * @param config a validated configuration (see `parseConfig`/`loadConfig`)
   * @param options where the configuration came from
   */
  constructor(config: Config, options: RelayOptions = {}) {
    this.#config = config;
    this.#arbiters.keep(config.rules);
    this.#runtime = runtimeOf(config);
    this.#configPath = options.configPath;
    this.#dataPath = { ...dataPathOptions(config), workerModule: options.workerModule };
    this.#sup = new Supervisor(this.#dataPath);
    this.#fds = new FdGuard(this.#dataPath);
    const sup = this.#sup;
    this.role = new RelayRole(config.role, (s) => sup.setStandby(s), (ev) => sup.emit(ev));
  }

  /**
   * The configuration in force: changed by add/remove/reload/setConfig only
   * once the data path runs the new rules, so it always matches `stats()`.
   */
  get config(): Config {
    return this.#config;
  }

  /** The configuration file `reload()` re-reads, if the relay was started from one. */
  get configPath(): string | undefined {
    return this.#configPath;
  }

  /** Run `f` after every earlier rule change has finished. */
  #serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(f, f);
    this.#queue = run.catch(() => {});
    return run;
  }

  /**
   * Add one rule live (same checks as a file, including conflicts with the
   * rules in force). Resolves with the normalized rule once it is forwarding.
   * The runtime rules file keeps it, unless `opts.transient`.
   * @throws {ConfigError} when the rule is invalid, conflicts, or would exceed the relay's limits
   * @throws {RuntimeRulesError} when the runtime rules file cannot be written (nothing changed)
   */
  addRule(raw: unknown, opts: ChangeOptions = {}): Promise<RuleConfig> {
    return this.#serial(async () => {
      const index = this.#index ??= new RuleIndex(this.#config.rules);
      const rule = validateRule(raw, this.#config, index);
      const next = { ...this.#config, rules: [...this.#config.rules, rule] };
      const undo = await this.#persist([[rule.name, raw]], opts);
      try {
        if (this.#started) {
          const add = ruleSpecs([rule], this.#arbiters);
          this.#fds.ensureAdded(add, () => ruleSpecs(next.rules, this.#arbiters));
          await this.#sup.changeRules(add, []);
        }
      } catch (e) {
        await undo();
        throw e;
      }
      this.#config = next;
      index.add(rule);
      return rule;
    });
  }

  /**
   * Remove rules live by name, or by id (all rules with that id, e.g. a
   * disabled copy). Resolves with the removed rules. With a runtime rules
   * file, only its rules can be removed for good: a rule defined in the
   * configuration files is refused ({@link DefinedInFileError}) unless
   * `opts.transient` (then it returns at the next reload).
   * @throws {RuleNotFoundError}
   * @throws {DefinedInFileError}
   * @throws {RuntimeRulesError} when the runtime rules file cannot be written (nothing changed)
   */
  removeRule(nameOrId: string, opts: ChangeOptions = {}): Promise<RuleConfig[]> {
    return this.#serial(async () => {
      let gone = this.#config.rules.filter((r) => r.name === nameOrId);
      if (gone.length === 0) gone = this.#config.rules.filter((r) => r.id === nameOrId);
      if (gone.length === 0) throw new RuleNotFoundError(nameOrId);
      const leaving = new Set(gone);
      const next = { ...this.#config, rules: this.#config.rules.filter((r) => !leaving.has(r)) };
      const undo = await this.#persist(gone.map((r) => [r.name, null]), opts);
      try {
        if (this.#started) await this.#sup.changeRules([], ruleSpecs(gone, this.#arbiters));
      } catch (e) {
        await undo();
        throw e;
      }
      this.#config = next;
      this.#arbiters.keep(next.rules);
      for (const r of gone) this.#index?.remove(r);
      this.#fds.changed();
      return gone;
    });
  }

  /**
   * Change the outputs of rule `name` live: `edit` gets its outputs as
   * written (rules.json form) and returns the new list. Outputs that stay
   * keep their counters and never pause; the rule keeps its input, name and
   * counters. Persisted like {@link addRule}.
   * @throws {RuleNotFoundError}
   * @throws {ConfigError} when the changed rule is invalid (e.g. no output left, a duplicate)
   * @throws {DefinedInFileError}
   * @throws {RuntimeRulesError} when the runtime rules file cannot be written (nothing changed)
   */
  changeOutputs(
    name: string,
    edit: (outputs: Record<string, unknown>[]) => Record<string, unknown>[],
    opts: ChangeOptions = {},
  ): Promise<RuleConfig> {
    return this.#serial(async () => {
      const at = this.#config.rules.findIndex((r) => r.name === name);
      if (at < 0) throw new RuleNotFoundError(name);
      const old = this.#config.rules[at];
      const written = this.#runtime?.rules.find((r) => r.name === name)?.raw;
      const base = (written ?? rawRule(old)) as Record<string, unknown>;
      const outputs = edit(structuredClone(base.outputs as Record<string, unknown>[]));
      const raw = { ...base, outputs };
      const index = this.#index ??= new RuleIndex(this.#config.rules);
      const others = { ...this.#config, rules: this.#config.rules.filter((r) => r !== old) };
      index.remove(old);
      let rule: RuleConfig;
      try {
        rule = validateRule(raw, others, index);
      } finally {
        index.add(old);
      }
      const rules = [...this.#config.rules];
      rules[at] = rule;
      const next = { ...this.#config, rules };
      const undo = await this.#persist([[name, raw]], opts);
      try {
        if (this.#started) {
          const spec = ruleSpecs([rule], this.#arbiters);
          this.#fds.ensureAdded(spec, () => ruleSpecs(next.rules, this.#arbiters));
          // same id: the rule is replaced in place; outputs that stay keep their slots
          await this.#sup.changeRules(spec, []);
        }
      } catch (e) {
        await undo();
        throw e;
      }
      this.#config = next;
      index.remove(old);
      index.add(rule);
      this.#fds.changed();
      return rule;
    });
  }

  /**
   * The interfaces that exist now (sorted), as the link monitor reports them;
   * null before the relay started (nothing is watched yet).
   */
  interfaceNames(): string[] | null {
    return this.#started ? this.#sup.links.names() : null;
  }

  /** The runtime rules file (`runtime_rules`), when the configuration names one. */
  get runtimeRules(): RuntimeRules | undefined {
    return this.#runtime;
  }

  /** {@link RuntimeRules.persist} of `changes`, unless there is no file or `opts.transient`. */
  #persist(changes: [string, unknown | null][], opts: ChangeOptions): Promise<() => Promise<void>> {
    if (!this.#runtime || opts.transient) return Promise.resolve(() => Promise.resolve());
    return this.#runtime.persist(changes, this.#config.rules);
  }

  /**
   * What applying the rules of `next` would change (nothing is applied).
   * Ring, worker, control and metrics settings take effect only at start.
   */
  diff(next: Config, path = ""): ReloadSummary {
    const old = new Map(this.#config.rules.map((r) => [r.id + "|" + r.name, r]));
    const oldById = new Map(this.#config.rules.map((r) => [r.id, r]));
    const s: ReloadSummary = {
      path,
      added: [],
      removed: [],
      changed: [],
      unchanged: [],
      restart_needed: [],
    };
    const seen = new Set<RuleConfig>();
    for (const r of next.rules) {
      const prev = old.get(r.id + "|" + r.name) ?? oldById.get(r.id);
      if (!prev || seen.has(prev)) {
        s.added.push(r.name);
        continue;
      }
      seen.add(prev);
      (ruleKey(prev) === ruleKey(r) ? s.unchanged : s.changed).push(r.name);
    }
    for (const r of this.#config.rules) if (!seen.has(r)) s.removed.push(r.name);
    for (const k of RESTART_SETTINGS) {
      if (JSON.stringify(this.#config[k]) !== JSON.stringify(next[k])) s.restart_needed.push(k);
    }
    const role = this.role.diff(next.role);
    if (role) s.role = role;
    return s;
  }

  /**
   * Re-read the configuration file (default: the one the relay was started
   * with) and apply only the difference: unchanged rules keep their counters
   * and never miss a packet. Rules added at run time and not in the file are
   * removed. Ring, worker, control and metrics settings are kept as they are
   * (they are listed in `restart_needed` when the file changes them); `role`
   * only when its value in the file changed ({@link RelayRole.reloaded}).
   * @throws {ConfigError} when the file is unreadable or invalid (nothing is changed)
   */
  reload(path?: string): Promise<ReloadSummary> {
    return this.#serial(async () => {
      const file = path ?? this.#configPath;
      if (!file) {
        throw new ConfigError([{
          path: [],
          field: "",
          message: "the relay was not started from a file; give a path",
        }]);
      }
      const source = String(file);
      this.#sup.emit({ type: "reload", phase: "start", path: source });
      try {
        const next = await loadConfig(file);
        const summary = this.diff(next, file);
        const cur = this.#config;
        const kept = Object.fromEntries(RESTART_SETTINGS.map((k) => [k, cur[k]]));
        await this.#apply({ ...next, ...kept } as Config);
        this.role.reloaded(next.role); // only an edited `role`: keepalived's survives (role.ts)
        this.#sup.emit({ type: "reload", phase: "done", path: source });
        return summary;
      } catch (e) {
        this.#sup.emit({
          type: "reload",
          phase: "failed",
          path: source,
          reason: (e as Error).message,
        });
        throw e;
      }
    });
  }

  /**
   * Apply `config`'s rules, all or nothing: the rule set is checked against
   * the relay's limits first, and {@link config} changes only once the data
   * path has taken the new tables (when the supervisor refuses them, nothing
   * changed, here or there).
   */
  async #apply(config: Config): Promise<void> {
    checkCapacity(config.rules);
    if (this.#started) {
      const specs = ruleSpecs(config.rules, this.#arbiters);
      this.#fds.ensure(specs);
      await this.#sup.setRules(specs);
    }
    this.#config = config;
    this.#arbiters.keep(config.rules);
    this.#runtime = runtimeOf(config);
    this.#index = this.#started ? new RuleIndex(config.rules) : undefined;
    if (this.#started) this.#releaseAfterLoad(config.rules.length);
  }

  /**
   * After loading a large rule set, hand the garbage of the load back to the
   * operating system (src/common/memory.ts) once the load's own aftermath —
   * the state events of every rule and output, the first replies — has
   * passed: one full collection {@link RELEASE_DELAY_MS} after the last large
   * load. It blocks this thread (the control plane) for a fraction of a
   * second; the workers forward meanwhile.
   */
  #releaseAfterLoad(rules: number): void {
    if (rules < RELEASE_MIN_RULES) return;
    clearTimeout(this.#releaseTimer);
    this.#releaseTimer = setTimeout(() => {
      this.#releaseTimer = undefined;
      const ms = releaseMemory();
      logger("supervisor").debug(
        ms === null
          ? "{rules} rules loaded; V8's collector is not available to release the load's garbage"
          : "{rules} rules loaded; released the load's garbage in {ms} ms",
        { rules, ms: ms === null ? null : Math.round(ms) },
      );
    }, RELEASE_DELAY_MS);
    Deno.unrefTimer(this.#releaseTimer);
  }

  /**
   * Open rings and start forwarding; resolves once every worker has its rules (or failed).
   * Raises the soft open-file limit when the rules need more descriptors.
   * @throws {ConfigError} when the rules exceed the relay's limits (nothing is started)
   * @throws {FdLimitError} when the hard open-file limit is too low for the rules
   */
  start(): Promise<void> {
    return this.#serial(async () => {
      if (this.#started) return;
      this.#runtime?.checkWritable();
      checkCapacity(this.#config.rules);
      const specs = ruleSpecs(this.#config.rules, this.#arbiters);
      this.#fds.ensure(specs);
      await this.#sup.setRules(specs);
      this.#started = true;
      // built now rather than at the first live add (about 0.1 s at 65,536 rules)
      this.#index ??= new RuleIndex(this.#config.rules);
      this.#releaseAfterLoad(specs.length);
    });
  }

  /**
   * Apply a new configuration's rules live (unchanged rules keep counters and
   * never pause), all or nothing like {@link reload}.
   * @throws {ConfigError} when the rules exceed the relay's limits (nothing is changed)
   */
  setConfig(config: Config): Promise<void> {
    return this.#serial(() => this.#apply(config));
  }

  /**
   * The counters of every rule, output and input interface in compact form,
   * without states: what a rate sampler keeps (see `collectCounters`).
   */
  counters(): CounterSnapshot {
    return this.#sup.counters();
  }

  /** How many rules are active, pending and in error: what `stats()` says, for a fraction of its cost. */
  ruleStateCounts(): Record<State, number> {
    return countRuleStates(this.#sup.statsSource());
  }

  /**
   * Start a capture of the frames rule `nameOrId` matches (relay/capture.ts;
   * `mcr ctl capture`). Returns the rule, how its input's frames start
   * (`layout`: an Ethernet header, or the IPv4 packet) and the running
   * capture, which the caller reads to its end or stops.
   * @throws {RuleNotFoundError}
   * @throws {CaptureRefused} a disabled rule, or too many captures
   */
  capture(
    nameOrId: string,
    spec: Omit<CaptureSpec, "ruleId" | "interface">,
  ): { rule: RuleConfig; interface: string; layout: LinkLayout; run: CaptureRun } {
    const rules = this.#config.rules;
    const rule = rules.find((r) => r.name === nameOrId && r.enabled) ??
      rules.find((r) => r.id === nameOrId && r.enabled) ??
      rules.find((r) => r.name === nameOrId || r.id === nameOrId);
    if (!rule) throw new RuleNotFoundError(nameOrId);
    if (!rule.enabled) throw new CaptureRefused("not_found", `rule ${rule.name} is disabled`);
    // a rule with redundant inputs captures one of its paths (relay_config.ts ruleSpecs)
    const inputs = ruleInputs(rule);
    if (spec.input >= inputs.length) {
      throw new CaptureRefused(
        "bad_args",
        `args.input: the rule has ${inputs.length} input${inputs.length > 1 ? "s" : ""} ` +
          `(index 0${inputs.length > 1 ? `..${inputs.length - 1}` : ""}); got ${spec.input}`,
      );
    }
    const name = inputs[spec.input].interface;
    const ruleId = rule.inputs ? pathKey(rule.id, spec.input) : rule.id;
    const type = this.#sup.links.get(name)?.type;
    const layout = (type === undefined ? undefined : linkLayout(type)) ?? "ethernet";
    const run = this.#sup.captures.start({ ...spec, ruleId, interface: name });
    return { rule, interface: name, layout, run };
  }

  /** Snapshot of all counters. */
  stats(): RelayStats {
    const s = { ...this.#sup.stats(), role: this.role.stats() };
    const fds = this.#fds.stats(() => ruleSpecs(this.#config.rules, this.#arbiters));
    return fds ? { ...s, fds } : s;
  }

  /**
   * The stats of the rules with these ids only (the same figures as in
   * `stats().rules`), in time proportional to their input interfaces' rule
   * count rather than to the whole relay's: for a reply about one rule.
   */
  ruleStats(ids: Iterable<string>): RuleStats[] {
    return this.#sup.ruleStats(new Set(ids));
  }

  /** True when a worker could not open its rings for lack of CAP_NET_RAW. */
  get permissionDenied(): boolean {
    return this.#sup.permissionDenied;
  }

  /**
   * Subscribe to state changes (rules, outputs, interfaces up/pending/removed,
   * workers). Returns a function that unsubscribes.
   */
  on(listener: (ev: RelayEvent) => void): () => void {
    return this.#sup.on(listener);
  }

  /** Stop forwarding, drain, release everything. Final counters stay readable. */
  async stop(): Promise<void> {
    clearTimeout(this.#releaseTimer);
    await this.#sup.stop();
  }

  /** Same as stop(). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

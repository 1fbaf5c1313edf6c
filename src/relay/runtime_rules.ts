/**
 * The runtime rules file (config `runtime_rules`): where the rules that
 * `ctl add`, `add-output`, `remove-output` and `remove` create or change are
 * kept, so that a reload or a restart keeps them. The configuration reads it
 * last, like an included file (src/config/include.ts); the relay rewrites it
 * whole at every change, atomically — a temporary file in the same
 * directory, fsync, rename over the old one, fsync of the directory — so a
 * crash leaves the old file or the new one, never a mix.
 *
 * The file holds the rules as the client wrote them (defaults not filled in,
 * so a changed global `ttl` still applies to them), in the order they were
 * added; a rule is known by its name (rule names are unique).
 *
 * @module
 */
import { dirname } from "node:path";
import type { RuleConfig, RuntimeRulesFile } from "../config/mod.ts";
import type { InputConfig } from "../config/types.ts";
import { rawRedundancy } from "../config/redundancy.ts";

/** One rule of the file: its name and the rule as written. */
export interface RuntimeRule {
  /** The rule's name (its id when it has none). */
  name: string;
  /** The rule object as written (JSON). */
  raw: unknown;
}

/** The first line of the file. */
const HEADER =
  "// mcr runtime rules (runtime_rules): written by `mcr ctl` at every rule change.\n" +
  "// Rules added or changed at run time live here; edit with the relay stopped, or use ctl.\n";

/**
 * A rule defined in the configuration files cannot be changed for good while
 * a runtime rules file keeps the ctl changes (see `Relay.removeRule`).
 */
export class DefinedInFileError extends Error {
  /**
   * @param rule the rule's name
   * @param runtimeFile the runtime rules file
   */
  constructor(readonly rule: string, readonly runtimeFile: string) {
    super(
      `rule "${rule}" is defined in the configuration files, not in the runtime rules file ` +
        `(${runtimeFile}): change it there and reload, or change it until the next reload ` +
        "with --transient",
    );
    this.name = "DefinedInFileError";
  }
}

/** The file could not be written: the change was not made. */
export class RuntimeRulesError extends Error {
  /**
   * @param path the file
   * @param why the system's reason
   * @param outcome what did not happen because of it
   */
  constructor(readonly path: string, why: string, outcome = "nothing was changed") {
    super(`cannot write the runtime rules file ${path}: ${why}; ${outcome}`);
    this.name = "RuntimeRulesError";
  }
}

/** The runtime rules of a running relay (see module doc). */
export class RuntimeRules {
  #rules: RuntimeRule[];
  #names: Set<string>;

  /**
   * @param file the file as the configuration read it
   * @param names the names of its rules, in order (the normalized rules' names)
   */
  constructor(readonly file: RuntimeRulesFile, names: readonly string[]) {
    this.#rules = names.map((name, i) => ({ name, raw: file.rules[i] }));
    this.#names = new Set(names);
  }

  /** Where the file is. */
  get path(): string {
    return this.file.path;
  }

  /**
   * Throw a {@link RuntimeRulesError} now, at start, when this process may
   * not write the file's directory (Deno's `--allow-write`): better than
   * refusing the first `ctl add`.
   */
  checkWritable(): void {
    const dir = dirname(this.path);
    if (Deno.permissions.querySync({ name: "write", path: dir }).state !== "granted") {
      throw new RuntimeRulesError(
        this.path,
        `the relay may not write ${dir} (run it with --allow-write=${dir})`,
        "the relay did not start",
      );
    }
  }

  /** Whether rule `name` lives in the file. */
  has(name: string): boolean {
    return this.#names.has(name);
  }

  /** The rules in the file, in order. */
  get rules(): readonly RuntimeRule[] {
    return this.#rules;
  }

  /**
   * `list` with rule `name` set to `raw` (replaced in place, or appended), or
   * removed when `raw` is null. Changes nothing until {@link commit}.
   */
  withIn(list: readonly RuntimeRule[], name: string, raw: unknown | null): RuntimeRule[] {
    const out = list.filter((r) => r.name !== name || raw !== null);
    if (raw === null) return out;
    const at = out.findIndex((r) => r.name === name);
    if (at >= 0) out[at] = { name, raw };
    else out.push({ name, raw });
    return out;
  }

  /**
   * Write what `changes` ([rule name, rule as written or null to remove])
   * do to the file. Returns what undoes the write (when the live change then
   * fails).
   * @throws {DefinedInFileError} when a rule of `inForce` is not the file's
   * @throws {RuntimeRulesError} when the file cannot be written (nothing changed)
   */
  async persist(
    changes: [string, unknown | null][],
    inForce: readonly { name: string }[],
  ): Promise<() => Promise<void>> {
    const names = new Set(inForce.map((r) => r.name));
    for (const [name] of changes) {
      if (names.has(name) && !this.has(name)) throw new DefinedInFileError(name, this.path);
    }
    const before = [...this.#rules];
    let list = before;
    for (const [name, raw] of changes) list = this.withIn(list, name, raw);
    await this.commit(list);
    return () => this.commit(before).catch(() => {});
  }

  /** Write `rules` to the file atomically, then make them the ones in force. */
  async commit(rules: RuntimeRule[]): Promise<void> {
    const text = HEADER + JSON.stringify({ rules: rules.map((r) => r.raw) }, null, 2) + "\n";
    await writeAtomically(this.path, text);
    this.#rules = rules;
    this.#names = new Set(rules.map((r) => r.name));
  }
}

/** Replace `path` with `text`: temporary file, fsync, rename, fsync of the directory. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  try {
    const f = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o640 });
    try {
      const bytes = new TextEncoder().encode(text);
      for (let off = 0; off < bytes.length;) off += await f.write(bytes.subarray(off));
      await f.sync();
    } finally {
      f.close();
    }
    await Deno.rename(tmp, path);
    const dir = await Deno.open(dirname(path), { read: true });
    try {
      await dir.sync().catch(() => {}); // some filesystems cannot sync a directory
    } finally {
      dir.close();
    }
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw new RuntimeRulesError(path, e instanceof Error ? e.message : String(e));
  }
}

/** A normalized input written back as rules.json would hold it. */
function rawInput(i: InputConfig): Record<string, unknown> {
  const input: Record<string, unknown> = { interface: i.interface, group: i.group, port: i.port };
  if (i.source !== undefined) input.source = i.source;
  if (i.vlan !== undefined) input.vlan = i.vlan;
  if (i.joins !== undefined) input.joins = [...i.joins];
  return input;
}

/**
 * A normalized rule written back as rules.json would hold it (each output
 * with its resolved TTL and DSCP, options with their defaults spelled out):
 * the base for changing the outputs of a rule the runtime file does not hold.
 */
export function rawRule(r: RuleConfig): Record<string, unknown> {
  const raw: Record<string, unknown> = r.inputs
    ? { inputs: r.inputs.map(rawInput), redundancy: rawRedundancy(r.redundancy!) }
    : { input: rawInput(r.input) };
  if (r.name !== r.id) raw.name = r.name;
  if (!r.enabled) raw.enabled = false;
  if (r.allow_link_local) raw.allow_link_local = true;
  if (r.rate_limit) raw.rate_limit = { ...r.rate_limit };
  if (r.health) raw.health = { ...r.health };
  raw.outputs = r.outputs.map((o) => {
    const out: Record<string, unknown> = {
      interface: o.interface,
      group: o.group,
      port: o.port,
      ttl: o.ttl,
      dscp: o.dscp,
    };
    if (o.source_ip !== undefined) out.source_ip = o.source_ip;
    if (o.source_port !== undefined) out.source_port = o.source_port;
    if (o.rate_limit) out.rate_limit = { ...o.rate_limit };
    return out;
  });
  return raw;
}

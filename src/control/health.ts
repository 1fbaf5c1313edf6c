/**
 * What `/healthz` answers, and what it remembers to answer it: a relay is
 * healthy only when everything the configuration asks for works. A fault —
 * a rule or output in error, an input link down or without carrier, a
 * failed worker — fails the check at once, with the reason. A rule waiting
 * for its input interface (`pending`) or an input whose rings are opening
 * (`starting`/`pending`) fails it once it has waited longer than the grace
 * period (`metrics.health_grace_s`, default {@link DEFAULT_HEALTH_GRACE_S}):
 * a start, a reload or an interface being re-created does not flap the
 * check, and a rule that never comes up does not pass it. Until then it is
 * listed under `waiting`. An active rule with `health` whose stream is
 * `silent` or `low_rate` (src/relay/stream_monitor.ts) fails it too, named
 * under `streams`.
 *
 * {@link HealthTracker} follows the relay's events for when each of those
 * began (anything pending when it was created counts from then), and counts
 * reloads for the metrics.
 *
 * @module
 */
import type { RelayEvent } from "../relay/events.ts";
import type { StatsResult } from "./results.ts";
import { hostPort } from "../common/net6.ts";

/** Default grace period of a pending rule or starting input (seconds). */
export const DEFAULT_HEALTH_GRACE_S = 10;

/** Health verdict for /healthz. */
export interface Health {
  /** "ok" or "fail". */
  status: "ok" | "fail";
  /** What is wrong (faults, and what waited longer than the grace period). */
  problems: string[];
  /** What is not working yet but still within the grace period. */
  waiting?: string[];
  /**
   * The relay's role. A standby whose rules, interfaces and workers work is
   * healthy (it is ready to take over): VRRP may track /healthz on both relays.
   */
  role?: string;
  /** The unhealthy streams (rules with `health` in alarm), by rule name. */
  streams?: { rule: string; id: string; alarm: string; reason?: string }[];
}

/** What is waiting: a rule (by id) or an input interface (by name). */
export type WaitingKind = "rule" | "interface";

/** Options of {@link health}. */
export interface HealthOptions {
  /** Grace period of a pending rule or starting input (ms; default 0: none). */
  graceMs?: number;
  /** How long `key` has been waiting (ms; default: always longer than the grace). */
  waitedMs?: (kind: WaitingKind, key: string) => number;
}

/** The verdict for one snapshot (see module doc). */
export function health(
  s: Pick<StatsResult, "rules" | "workers" | "interfaces" | "role">,
  opts: HealthOptions = {},
): Health {
  const graceMs = opts.graceMs ?? 0;
  const waited = opts.waitedMs ?? (() => Infinity);
  const problems: string[] = [];
  const waiting: string[] = [];
  const why = (reason?: string) => (reason ? `: ${reason}` : "");
  const report = (kind: WaitingKind, key: string, text: string, waits: boolean) => {
    if (!waits) return problems.push(text);
    const ms = waited(kind, key);
    if (ms > graceMs) problems.push(text);
    else waiting.push(`${text} (${Math.floor(ms / 1000)} s of ${Math.round(graceMs / 1000)} s)`);
  };
  for (const i of s.interfaces) {
    if (i.state !== "running") {
      const text = `interface ${i.name}: ${i.state}${why(i.reason)}`;
      report("interface", i.name, text, i.state === "pending" || i.state === "starting");
    }
  }
  const streams: NonNullable<Health["streams"]> = [];
  for (const r of s.rules) {
    if (r.state !== "active") {
      report("rule", r.id, `rule ${r.name}: ${r.state}${why(r.reason)}`, r.state === "pending");
    } else if (r.stream && r.stream.alarm !== "ok") {
      const { alarm, reason } = r.stream;
      problems.push(`rule ${r.name}: stream ${alarm}${why(reason)}`);
      streams.push({ rule: r.name, id: r.id, alarm, ...(reason ? { reason } : {}) });
    }
    for (const o of r.outputs) {
      if (o.state !== "active") {
        problems.push(
          `rule ${r.name} output ${o.interface} ${hostPort(o.group, o.port)}: ${o.state}${
            why(o.reason)
          }`,
        );
      }
    }
  }
  for (const w of s.workers) {
    if (w.state === "error") {
      problems.push(`worker ${w.interface}#${w.index}: ${w.state}${why(w.reason)}`);
    }
  }
  const h: Health = { status: problems.length ? "fail" : "ok", problems };
  if (waiting.length) h.waiting = waiting;
  if (s.role) h.role = s.role.role;
  if (streams.length) h.streams = streams;
  return h;
}

/** Reloads seen by a {@link HealthTracker}. */
export interface ReloadCounts {
  /** Reloads applied. */
  done: number;
  /** Reloads refused (nothing changed). */
  failed: number;
  /** The last one: when it ended (ms since the epoch) and whether it applied. */
  last?: { at: number; ok: boolean };
}

/** Follows the relay's events for {@link health} and the reload metrics (see module doc). */
export class HealthTracker {
  /** When each waiting rule or interface began waiting. */
  readonly #since = new Map<string, number>();
  readonly #start: number;
  /** Reloads so far. */
  readonly reloads: ReloadCounts = { done: 0, failed: 0 };

  /**
   * @param graceMs grace period of a pending rule or starting input
   * @param now the clock (ms; tests put a model here)
   */
  constructor(readonly graceMs: number, readonly now: () => number = Date.now) {
    this.#start = now();
  }

  /** Take one relay event into account. */
  observe(ev: RelayEvent): void {
    const mark = (key: string, waits: boolean) => {
      if (!waits) this.#since.delete(key);
      else if (!this.#since.has(key)) this.#since.set(key, this.now());
    };
    if (ev.type === "rule") mark(`rule|${ev.id}`, ev.state === "pending");
    else if (ev.type === "interface") {
      mark(`interface|${ev.interface}`, ev.state === "pending" || ev.state === "starting");
    } else if (ev.type === "reload" && ev.phase !== "start") {
      const ok = ev.phase === "done";
      if (ok) this.reloads.done++;
      else this.reloads.failed++;
      this.reloads.last = { at: this.now(), ok };
    }
  }

  /** How long `key` has been waiting (since the tracker began, when no event said). */
  waitedMs(kind: WaitingKind, key: string): number {
    return this.now() - (this.#since.get(`${kind}|${key}`) ?? this.#start);
  }

  /** The verdict for `s`. */
  check(s: Pick<StatsResult, "rules" | "workers" | "interfaces" | "role">): Health {
    return health(s, { graceMs: this.graceMs, waitedMs: (k, key) => this.waitedMs(k, key) });
  }
}
